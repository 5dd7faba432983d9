/**
 * Tensor payload encodings of the artifact container. Each encoder is deterministic (same values and
 * options → same bytes) and each decoder checks every length, index and value it reads.
 *
 *   f32   raw little-endian float32
 *   f16   IEEE binary16, round to nearest even
 *   int8  per-chunk scales: ⌈n/chunk⌉ float32 scales, then n int8 values; x ≈ q × scale, |error| ≤ scale/2
 *   topk  sparse: u32 k, u32 index-bytes, LEB128 delta-coded indices (strictly increasing), then the k
 *         values as int8 with per-chunk scales (as above); everything not listed is 0
 *   topk4, topk2  u32 k, u32 index-bytes, the gaps between the indices Golomb–Rice coded (a u8 parameter
 *         r ≤ 30, then per gap g: ⌊g / 2^r⌋ one bits, a zero bit, the r low bits of g; packed low bits
 *         first, unused bits of the last byte 0): at a few % density about 6.5 bits an index where
 *         LEB128 takes 8, and indices are most of a low-bit payload. Then the k values (all non-zero) in 4 or 2 bits each: ⌈k/chunk⌉ float32
 *         scales s (> 0), then the codes q ∈ [0, 2^b) packed low bits first, 8/b to a byte (unused high
 *         bits of the last byte 0); x ≈ (q − (2^b − 1)/2) × s. A mid-rise quantiser: no level is 0,
 *         since every value kept is among the largest. s is the one of 16 clipping levels with the
 *         least squared error in its chunk (what is clipped stays in the sender's error feedback).
 *
 * New encodings take new codes: a version-1 reader that predates one refuses it by its code
 * (BAD_ENCODING), and the codes and payloads of the older encodings never change.
 */
import { ArtifactError } from "./errors.ts";

export const Encoding = { f32: 0, f16: 1, int8: 2, topk: 3, topk4: 4, topk2: 5 } as const;
export type EncodingName = keyof typeof Encoding;
export const encodingName = (code: number): EncodingName | undefined =>
  (Object.keys(Encoding) as EncodingName[]).find((k) => Encoding[k] === code);

/** Bits per sent value of the sparse encodings. */
const TOPK_BITS = { topk: 8, topk4: 4, topk2: 2 } as const;
type TopkName = keyof typeof TOPK_BITS;
export const isTopk = (e: EncodingName): e is TopkName => e in TOPK_BITS;
/** The top-k encoding that sends values in `bits` bits. */
export const topkEncoding = (bits: 2 | 4 | 8): TopkName => (bits === 8 ? "topk" : `topk${bits}`);
/** Whether the encoding has per-chunk scales (a chunk size in the tensor table; 0 otherwise). */
export const isChunked = (e: EncodingName): boolean => e === "int8" || isTopk(e);

export const DEFAULT_CHUNK = 256;
/** Share of the entries a top-k encoding keeps when neither `fraction` nor `k` is given. */
export const DEFAULT_FRACTION = 0.01;

export interface EncodeOptions {
  encoding: EncodingName;
  /** Values per scale (int8 and the topk encodings). */
  chunk?: number;
  /** topk: fraction of entries kept (0 < fraction ≤ 1), or an explicit count with `k`. */
  fraction?: number;
  k?: number;
  /**
   * topk with `fraction`, in encodeArtifact: whose entries the fraction is of — each tensor's (default),
   * or the whole update's, the largest magnitudes across all its tensors (`topkCounts`).
   */
  across?: "tensor" | "update";
}

/** Parameters stored in the tensor table, needed to decode the payload. */
export interface EncodingParams {
  encoding: EncodingName;
  chunk: number; // 0 for f32 / f16
}

class Writer {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;
  private ensure(n: number) {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number) {
    this.ensure(1);
    this.buf[this.length++] = v;
  }
  u32(v: number) {
    this.ensure(4);
    this.view.setUint32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number) {
    this.ensure(4);
    this.view.setFloat32(this.length, v, true);
    this.length += 4;
  }
  /** IEEE binary16, round to nearest even (native `DataView.setFloat16`). */
  f16(v: number) {
    this.ensure(2);
    this.view.setFloat16(this.length, v, true);
    this.length += 2;
  }
  i8(v: number) {
    this.ensure(1);
    this.view.setInt8(this.length++, v);
  }
  varint(v: number) {
    while (v >= 0x80) {
      this.u8((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    this.u8(v);
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function writeInt8Chunks(w: Writer, values: Float32Array, chunk: number) {
  const nChunks = Math.ceil(values.length / chunk);
  const scales = new Float32Array(nChunks);
  for (let c = 0; c < nChunks; c++) {
    let max = 0;
    const end = Math.min(values.length, (c + 1) * chunk);
    for (let i = c * chunk; i < end; i++) max = Math.max(max, Math.abs(values[i]!));
    scales[c] = max / 127;
    w.f32(scales[c]!);
  }
  for (let c = 0; c < nChunks; c++) {
    const s = scales[c]!; // float32-rounded scale, exactly what the decoder will use
    const end = Math.min(values.length, (c + 1) * chunk);
    for (let i = c * chunk; i < end; i++) {
      const q = s === 0 ? 0 : Math.round(values[i]! / s);
      w.i8(Math.max(-127, Math.min(127, q)));
    }
  }
}

/** Indices of the k entries of largest magnitude, ascending; ties go to the lower index. */
export function topkIndices(values: Float32Array, k: number): Uint32Array {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || a - b);
  return Uint32Array.from(idx.slice(0, k)).sort();
}

/**
 * How many entries of each tensor the update-wide top-k keeps: the ⌈fraction × all entries⌉ largest
 * magnitudes across the tensors, ties to the earlier tensor and the lower index (as topkIndices breaks
 * them within one). Layers whose values move more get more of the budget.
 */
export function topkCounts(tensors: readonly Float32Array[], fraction: number): number[] {
  const total = tensors.reduce((n, t) => n + t.length, 0);
  if (total === 0) return tensors.map(() => 0);
  const k = Math.min(total, Math.max(1, Math.ceil(total * fraction)));
  const magnitudes = new Float32Array(total);
  let p = 0;
  for (const t of tensors) for (const v of t) magnitudes[p++] = Math.abs(v);
  const threshold = Float32Array.from(magnitudes).sort()[total - k]!;
  let ties = k - magnitudes.reduce((n, m) => n + (m > threshold ? 1 : 0), 0);
  return tensors.map((t) => {
    let n = 0;
    for (const v of t) {
      const m = Math.abs(v);
      if (m > threshold) n++;
      else if (m === threshold && ties > 0) [n, ties] = [n + 1, ties - 1];
    }
    return n;
  });
}

export function encodePayload(values: Float32Array, opts: EncodeOptions): { params: EncodingParams; bytes: Uint8Array } {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new ArtifactError("NON_FINITE", `value at index ${i} is ${values[i]}`);
  }
  const w = new Writer();
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  if (isChunked(opts.encoding) && (!Number.isInteger(chunk) || chunk < 1 || chunk > 1 << 20)) {
    throw new ArtifactError("BAD_INPUT", `chunk must be an integer in 1..${1 << 20}, got ${chunk}`);
  }
  switch (opts.encoding) {
    case "f32":
      return { params: { encoding: "f32", chunk: 0 }, bytes: new Uint8Array(Float32Array.from(values).buffer) };
    case "f16":
      for (const v of values) {
        if (!Number.isFinite(Math.f16round(v))) throw new ArtifactError("NON_FINITE", `value ${v} overflows float16`);
        w.f16(v);
      }
      return { params: { encoding: "f16", chunk: 0 }, bytes: w.bytes() };
    case "int8":
      writeInt8Chunks(w, values, chunk);
      return { params: { encoding: "int8", chunk }, bytes: w.bytes() };
    case "topk":
    case "topk4":
    case "topk2": {
      const k = opts.k ?? Math.max(1, Math.ceil(values.length * (opts.fraction ?? DEFAULT_FRACTION)));
      if (!Number.isInteger(k) || k < 0 || k > values.length) {
        throw new ArtifactError("BAD_INPUT", `top-k count ${k} is outside 0..${values.length}`);
      }
      const bits = TOPK_BITS[opts.encoding];
      // Low-bit levels cannot say 0: a zero picked only because fewer than k values are non-zero is left out.
      const indices = bits === 8 ? topkIndices(values, k) : topkIndices(values, k).filter((i) => values[i] !== 0);
      // Gaps ≥ 0 between strictly increasing indices.
      const gaps = Array.from(indices, (i, j) => i - (j === 0 ? -1 : indices[j - 1]!) - 1);
      const idxBytes = bits === 8 ? leb128(gaps) : rice(gaps);
      w.u32(indices.length);
      w.u32(idxBytes.length);
      for (const b of idxBytes) w.u8(b);
      const kept = Float32Array.from(indices, (i) => values[i]!);
      if (bits === 8) writeInt8Chunks(w, kept, chunk);
      else writeLowBitChunks(w, kept, chunk, bits);
      return { params: { encoding: opts.encoding, chunk }, bytes: w.bytes() };
    }
  }
}

function leb128(gaps: readonly number[]): Uint8Array {
  const w = new Writer();
  for (const g of gaps) w.varint(g);
  return w.bytes();
}

/** Largest Golomb–Rice parameter (gaps are below 2^32). */
const MAX_RICE = 30;

/** The gaps Golomb–Rice coded with the parameter that takes the fewest bits (ties: the smaller). */
function rice(gaps: readonly number[]): Uint8Array {
  let r = 0;
  let best = Infinity;
  for (let c = 0; c <= MAX_RICE; c++) {
    const cost = gaps.reduce((n, g) => n + Math.floor(g / 2 ** c) + 1 + c, 0);
    if (cost < best) [best, r] = [cost, c];
  }
  const out = new Uint8Array(1 + Math.ceil(best / 8));
  out[0] = r;
  let bit = 8;
  const put = (b: number) => {
    out[bit >> 3]! |= b << (bit & 7);
    bit++;
  };
  for (const g of gaps) {
    for (let q = Math.floor(g / 2 ** r); q > 0; q--) put(1);
    put(0);
    for (let j = 0; j < r; j++) put(Math.floor(g / 2 ** j) & 1);
  }
  return out;
}

/** Reads k LEB128 gaps from bytes[start, end) into indices < numel. */
function readLeb128(bytes: Uint8Array, start: number, end: number, k: number, numel: number, where: string): Uint32Array {
  const indices = new Uint32Array(k);
  let pos = start;
  let prev = -1;
  for (let j = 0; j < k; j++) {
    let gap = 0;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new ArtifactError("TRUNCATED", `${where}: index ${j} runs past the index bytes`);
      const b = bytes[pos++]!;
      if (shift === 28 && b > 0x0f) throw new ArtifactError("BAD_ENCODING", `${where}: index ${j} varint overflows 32 bits`);
      gap += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) break;
      shift += 7;
    }
    prev = checkedIndex(prev + 1 + gap, j, numel, where);
    indices[j] = prev;
  }
  if (pos !== end) throw new ArtifactError("LENGTH_MISMATCH", `${where}: ${end - pos} unused index bytes`);
  return indices;
}

/** Reads k Golomb–Rice gaps (see `rice`) from bytes[start, end) into indices < numel. */
function readRice(bytes: Uint8Array, start: number, end: number, k: number, numel: number, where: string): Uint32Array {
  if (end - start < 1) throw new ArtifactError("LENGTH_MISMATCH", `${where}: index bytes must hold the Rice parameter`);
  const r = bytes[start]!;
  if (r > MAX_RICE) throw new ArtifactError("BAD_ENCODING", `${where}: Rice parameter ${r} exceeds ${MAX_RICE}`);
  const endBit = (end - start) * 8;
  let bit = 8;
  const take = (j: number) => {
    if (bit >= endBit) throw new ArtifactError("TRUNCATED", `${where}: index ${j} runs past the index bytes`);
    const b = (bytes[start + (bit >> 3)]! >> (bit & 7)) & 1;
    bit++;
    return b;
  };
  const indices = new Uint32Array(k);
  let prev = -1;
  for (let j = 0; j < k; j++) {
    let q = 0;
    while (take(j)) {
      // Stop an overlong run before it is summed: no index can lie this far.
      if (++q * 2 ** r >= numel) throw new ArtifactError("INDEX_OUT_OF_RANGE", `${where}: index ${j} lies beyond ${numel} elements`);
    }
    let low = 0;
    for (let b = 0; b < r; b++) low += take(j) * 2 ** b;
    prev = checkedIndex(prev + 1 + q * 2 ** r + low, j, numel, where);
    indices[j] = prev;
  }
  if (end - start !== 1 + Math.ceil((bit - 8) / 8)) throw new ArtifactError("LENGTH_MISMATCH", `${where}: ${end - start - 1 - Math.ceil((bit - 8) / 8)} unused index bytes`);
  for (; bit < endBit; bit++) {
    if ((bytes[start + (bit >> 3)]! >> (bit & 7)) & 1) throw new ArtifactError("BAD_ENCODING", `${where}: padding bits after the last index are not 0`);
  }
  return indices;
}

const checkedIndex = (i: number, j: number, numel: number, where: string): number => {
  if (i >= numel) throw new ArtifactError("INDEX_OUT_OF_RANGE", `${where}: index ${i} (entry ${j}) ≥ ${numel} elements`);
  return i;
};

/** Largest representable level of a b-bit mid-rise quantiser, in units of its scale. */
const topLevel = (bits: number) => ((1 << bits) - 1) / 2;

/** The b-bit code of `v` at scale `s` (the nearest level, clamped to the outermost). */
const lowBitCode = (v: number, s: number, bits: number) => {
  const half = topLevel(bits);
  return Math.max(0, Math.min(2 * half, Math.round(v / s + half)));
};

/** Clipping levels tried per chunk, as fractions 1/CLIP_STEPS … 1 of the chunk's largest magnitude. */
const CLIP_STEPS = 16;

function writeLowBitChunks(w: Writer, values: Float32Array, chunk: number, bits: number) {
  const nChunks = Math.ceil(values.length / chunk);
  const half = topLevel(bits);
  const scales = new Float32Array(nChunks);
  for (let c = 0; c < nChunks; c++) {
    const end = Math.min(values.length, (c + 1) * chunk);
    let max = 0;
    for (let i = c * chunk; i < end; i++) max = Math.max(max, Math.abs(values[i]!));
    // Top-k magnitudes are heavy-tailed: scaling to the largest would send most values at a level far
    // from them. The clipping level with the least squared error wins (ties: the larger one).
    let best = Infinity;
    for (let j = CLIP_STEPS; j >= 1; j--) {
      const s = Math.fround((max * j) / CLIP_STEPS / half);
      if (s === 0) continue;
      let err = 0;
      for (let i = c * chunk; i < end; i++) {
        const d = values[i]! - (lowBitCode(values[i]!, s, bits) - half) * s;
        err += d * d;
      }
      if (err < best) [best, scales[c]] = [err, s];
    }
    // Values so small that every scale rounds to 0 in float32: the smallest positive scale.
    if (scales[c] === 0) scales[c] = 2 ** -149;
    w.f32(scales[c]!);
  }
  const perByte = 8 / bits;
  for (let j0 = 0; j0 < values.length; j0 += perByte) {
    let byte = 0;
    for (let j = j0; j < Math.min(values.length, j0 + perByte); j++) byte |= lowBitCode(values[j]!, scales[Math.floor(j / chunk)]!, bits) << ((j - j0) * bits);
    w.u8(byte);
  }
}

/** Decodes one payload of `numel` values; `where` names the tensor in errors. */
export function decodePayload(bytes: Uint8Array, numel: number, params: EncodingParams, where: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(numel);
  const need = (n: number, what: string) => {
    if (bytes.length !== n) {
      throw new ArtifactError("LENGTH_MISMATCH", `${where}: ${what} needs ${n} bytes, payload has ${bytes.length}`);
    }
  };
  const finite = (v: number, i: number) => {
    if (!Number.isFinite(v)) throw new ArtifactError("NON_FINITE", `${where}: value ${i} is ${v}`);
    return v;
  };
  switch (params.encoding) {
    case "f32":
      need(numel * 4, "f32");
      for (let i = 0; i < numel; i++) out[i] = finite(view.getFloat32(i * 4, true), i);
      return out;
    case "f16":
      need(numel * 2, "f16");
      for (let i = 0; i < numel; i++) out[i] = finite(view.getFloat16(i * 2, true), i);
      return out;
    case "int8": {
      const nChunks = Math.ceil(numel / params.chunk);
      need(nChunks * 4 + numel, `int8 (chunk ${params.chunk})`);
      readInt8Chunks(view, 0, out, numel, params.chunk, (i) => i, where);
      return out;
    }
    case "topk":
    case "topk4":
    case "topk2": {
      const bits = TOPK_BITS[params.encoding];
      if (bytes.length < 8) throw new ArtifactError("TRUNCATED", `${where}: ${params.encoding} header needs 8 bytes, payload has ${bytes.length}`);
      const k = view.getUint32(0, true);
      const idxLen = view.getUint32(4, true);
      if (k > numel) throw new ArtifactError("BAD_ENCODING", `${where}: top-k count ${k} exceeds ${numel} elements`);
      const nChunks = Math.ceil(k / params.chunk);
      if (idxLen > bytes.length) throw new ArtifactError("LENGTH_MISMATCH", `${where}: index bytes ${idxLen} exceed payload`);
      need(8 + idxLen + nChunks * 4 + Math.ceil((k * bits) / 8), `${params.encoding} (k ${k}, index bytes ${idxLen})`);
      const end = 8 + idxLen;
      const indices = (bits === 8 ? readLeb128 : readRice)(bytes, 8, end, k, numel, where);
      if (bits === 8) readInt8Chunks(view, end, out, k, params.chunk, (j) => indices[j]!, where);
      else readLowBitChunks(view, end, out, k, params.chunk, bits, indices, where);
      return out;
    }
  }
}

function readLowBitChunks(view: DataView, start: number, out: Float32Array, n: number, chunk: number, bits: number, indices: Uint32Array, where: string) {
  const nChunks = Math.ceil(n / chunk);
  const scales = new Float32Array(nChunks);
  for (let c = 0; c < nChunks; c++) {
    const s = view.getFloat32(start + c * 4, true);
    // The encoder never writes a zero scale (its values are non-zero): one is not canonical.
    if (!Number.isFinite(s) || !(s > 0)) throw new ArtifactError("NON_FINITE", `${where}: scale ${c} is ${s} (must be finite and > 0)`);
    scales[c] = s;
  }
  const qStart = start + nChunks * 4;
  const perByte = 8 / bits;
  const mask = (1 << bits) - 1;
  const half = topLevel(bits);
  for (let j = 0; j < n; j++) {
    const q = (view.getUint8(qStart + Math.floor(j / perByte)) >> ((j % perByte) * bits)) & mask;
    out[indices[j]!] = (q - half) * scales[Math.floor(j / chunk)]!;
  }
  // Unused high bits of the last byte must be 0 (one value set, one byte string).
  const used = n % perByte;
  if (used !== 0 && view.getUint8(qStart + Math.floor(n / perByte)) >> (used * bits) !== 0) {
    throw new ArtifactError("BAD_ENCODING", `${where}: padding bits after value ${n - 1} are not 0`);
  }
}

function readInt8Chunks(
  view: DataView,
  start: number,
  out: Float32Array,
  n: number,
  chunk: number,
  target: (j: number) => number,
  where: string,
) {
  const nChunks = Math.ceil(n / chunk);
  const qStart = start + nChunks * 4;
  for (let c = 0; c < nChunks; c++) {
    const s = view.getFloat32(start + c * 4, true);
    if (!Number.isFinite(s) || s < 0) throw new ArtifactError("NON_FINITE", `${where}: scale ${c} is ${s}`);
    const endJ = Math.min(n, (c + 1) * chunk);
    for (let j = c * chunk; j < endJ; j++) {
      const q = view.getInt8(qStart + j);
      if (q === -128) throw new ArtifactError("BAD_ENCODING", `${where}: int8 value ${j} is -128 (range is ±127)`);
      out[target(j)] = q * s;
    }
  }
}
