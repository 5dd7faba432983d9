/**
 * Tensor payload encodings of the artifact container. Each encoder is deterministic (same values and
 * options → same bytes) and each decoder checks every length, index and value it reads.
 *
 *   f32   raw little-endian float32
 *   f16   IEEE binary16, round to nearest even
 *   int8  per-chunk scales: ⌈n/chunk⌉ float32 scales, then n int8 values; x ≈ q × scale, |error| ≤ scale/2
 *   topk  sparse: u32 k, u32 index-bytes, LEB128 delta-coded indices (strictly increasing), then the k
 *         values as int8 with per-chunk scales (as above); everything not listed is 0
 */
import { ArtifactError } from "./errors.ts";

export const Encoding = { f32: 0, f16: 1, int8: 2, topk: 3 } as const;
export type EncodingName = keyof typeof Encoding;
export const encodingName = (code: number): EncodingName | undefined =>
  (Object.keys(Encoding) as EncodingName[]).find((k) => Encoding[k] === code);

export const DEFAULT_CHUNK = 256;

export interface EncodeOptions {
  encoding: EncodingName;
  /** Values per int8 scale (int8 and topk). */
  chunk?: number;
  /** topk: fraction of entries kept (0 < fraction ≤ 1), or an explicit count with `k`. */
  fraction?: number;
  k?: number;
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

export function encodePayload(values: Float32Array, opts: EncodeOptions): { params: EncodingParams; bytes: Uint8Array } {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new ArtifactError("NON_FINITE", `value at index ${i} is ${values[i]}`);
  }
  const w = new Writer();
  const chunk = opts.chunk ?? DEFAULT_CHUNK;
  if (opts.encoding !== "f32" && opts.encoding !== "f16" && (!Number.isInteger(chunk) || chunk < 1 || chunk > 1 << 20)) {
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
    case "topk": {
      const k = opts.k ?? Math.max(1, Math.ceil(values.length * (opts.fraction ?? 0.01)));
      if (!Number.isInteger(k) || k < 0 || k > values.length) {
        throw new ArtifactError("BAD_INPUT", `top-k count ${k} is outside 0..${values.length}`);
      }
      const indices = topkIndices(values, k);
      const idxWriter = new Writer();
      let prev = -1;
      for (const i of indices) {
        idxWriter.varint(i - prev - 1); // gaps ≥ 0 between strictly increasing indices
        prev = i;
      }
      const idxBytes = idxWriter.bytes();
      w.u32(k);
      w.u32(idxBytes.length);
      for (const b of idxBytes) w.u8(b);
      writeInt8Chunks(w, Float32Array.from(indices, (i) => values[i]!), chunk);
      return { params: { encoding: "topk", chunk }, bytes: w.bytes() };
    }
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
    case "topk": {
      if (bytes.length < 8) throw new ArtifactError("TRUNCATED", `${where}: topk header needs 8 bytes, payload has ${bytes.length}`);
      const k = view.getUint32(0, true);
      const idxLen = view.getUint32(4, true);
      if (k > numel) throw new ArtifactError("BAD_ENCODING", `${where}: top-k count ${k} exceeds ${numel} elements`);
      const nChunks = Math.ceil(k / params.chunk);
      if (idxLen > bytes.length) throw new ArtifactError("LENGTH_MISMATCH", `${where}: index bytes ${idxLen} exceed payload`);
      need(8 + idxLen + nChunks * 4 + k, `topk (k ${k}, index bytes ${idxLen})`);
      const indices = new Uint32Array(k);
      let pos = 8;
      const end = 8 + idxLen;
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
        const i = prev + 1 + gap;
        if (i >= numel) throw new ArtifactError("INDEX_OUT_OF_RANGE", `${where}: index ${i} (entry ${j}) ≥ ${numel} elements`);
        indices[j] = i;
        prev = i;
      }
      if (pos !== end) throw new ArtifactError("LENGTH_MISMATCH", `${where}: ${end - pos} unused index bytes`);
      readInt8Chunks(view, end, out, k, params.chunk, (j) => indices[j]!, where);
      return out;
    }
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
