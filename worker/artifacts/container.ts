/**
 * The artifact container: one binary format for models and updates.
 *
 *   offset  size  field
 *   0       4     magic "FSTK"
 *   4       2     version (1), u16 little-endian
 *   6       2     flags (0; reserved)
 *   8       4     header length H, u32
 *   12      H     header: kind u8 (0 model, 1 update), jobId u64, round u32, base model CID (u8 length +
 *                 bytes, ≤ 64), worker (20 bytes), numSamples u64, tensor count u16, then per tensor:
 *                 name (u8 length + UTF-8, ≤ 128), rank u8 (≤ 8), dims u32×rank, dtype u8 (0 float32),
 *                 encoding u8, chunk u32, offset u32, length u32
 *   12+H    …     payloads, in table order, contiguous: offset i = offset i-1 + length i-1, from 0
 *
 * The file ends exactly after the last payload. Encoding is deterministic; decoding is strict: every
 * read is bounds-checked against the real byte length before anything is allocated, and a violation
 * is an ArtifactError naming the field.
 */
import { ArtifactError } from "./errors.ts";
import { decodePayload, encodePayload, Encoding, encodingName, DEFAULT_FRACTION, isChunked, isTopk, topkCounts, type EncodeOptions, type EncodingParams } from "./encodings.ts";

export const MAGIC = new Uint8Array([0x46, 0x53, 0x54, 0x4b]); // "FSTK"
export const VERSION = 1;
const FIXED = 12;
const MAX_HEADER = 1 << 20;
const MAX_TENSORS = 4096;
const MAX_NAME = 128;
const MAX_RANK = 8;
const MAX_CID = 64;

export type ArtifactKind = "model" | "update";

export interface ArtifactHeader {
  kind: ArtifactKind;
  jobId: bigint;
  round: number;
  /** Binary CID of the base model (empty for a job's initial model). */
  baseModelCid: Uint8Array;
  /** 20-byte worker address (zero for models). */
  worker: Uint8Array;
  numSamples: bigint;
}

export interface Tensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface TensorInfo {
  name: string;
  shape: number[];
  encoding: EncodingParams;
  offset: number;
  length: number;
}

export interface Artifact {
  header: ArtifactHeader;
  tensors: Tensor[];
  table: TensorInfo[];
}

export interface DecodeLimits {
  /** Largest artifact accepted, in bytes (default 256 MiB). */
  maxBytes?: number;
  /** Most float32 values decoded across all tensors (default 2^26 = 256 MiB of floats). */
  maxElements?: number;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

export const numelOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Encodes tensors with one encoding for all (an update-wide top-k with `across: "update"`), or per tensor. */
export function encodeArtifact(
  header: ArtifactHeader,
  tensors: Tensor[],
  options: EncodeOptions | ((t: Tensor) => EncodeOptions) = { encoding: "f32" },
): Uint8Array {
  if (header.baseModelCid.length > MAX_CID) throw new ArtifactError("BAD_INPUT", `base model CID longer than ${MAX_CID} bytes`);
  if (header.worker.length !== 20) throw new ArtifactError("BAD_INPUT", `worker must be 20 bytes, got ${header.worker.length}`);
  if (tensors.length > MAX_TENSORS) throw new ArtifactError("BAD_INPUT", `more than ${MAX_TENSORS} tensors`);
  const names = new Set<string>();
  const payloads: { info: TensorInfo; bytes: Uint8Array }[] = [];
  let offset = 0;
  const updateWide = typeof options !== "function" && isTopk(options.encoding) && options.across === "update" && options.k === undefined;
  const counts = updateWide ? topkCounts(tensors.map((t) => t.data), options.fraction ?? DEFAULT_FRACTION) : undefined;
  for (const [i, t] of tensors.entries()) {
    const nameBytes = utf8.encode(t.name);
    if (nameBytes.length === 0 || nameBytes.length > MAX_NAME) throw new ArtifactError("BAD_INPUT", `tensor name "${t.name}" must be 1..${MAX_NAME} bytes`);
    if (names.has(t.name)) throw new ArtifactError("BAD_INPUT", `duplicate tensor name "${t.name}"`);
    names.add(t.name);
    if (t.shape.length > MAX_RANK || t.shape.some((d) => !Number.isInteger(d) || d < 1 || d > 0xffffffff)) {
      throw new ArtifactError("BAD_INPUT", `tensor "${t.name}": bad shape [${t.shape}]`);
    }
    if (numelOf(t.shape) !== t.data.length) {
      throw new ArtifactError("BAD_INPUT", `tensor "${t.name}": shape [${t.shape}] has ${numelOf(t.shape)} elements, data has ${t.data.length}`);
    }
    const opts = typeof options === "function" ? options(t) : counts ? { ...options, k: counts[i] } : options;
    let encoded;
    try {
      encoded = encodePayload(t.data, opts);
    } catch (e) {
      if (e instanceof ArtifactError) throw new ArtifactError(e.code, `tensor "${t.name}": ${e.message}`);
      throw e;
    }
    payloads.push({ info: { name: t.name, shape: [...t.shape], encoding: encoded.params, offset, length: encoded.bytes.length }, bytes: encoded.bytes });
    offset += encoded.bytes.length;
  }
  // Header
  const h: number[] = [];
  const u8 = (v: number) => h.push(v & 0xff);
  const u16 = (v: number) => (u8(v), u8(v >>> 8));
  const u32 = (v: number) => (u16(v & 0xffff), u16(v >>> 16));
  const u64 = (v: bigint) => {
    if (v < 0n || v >= 1n << 64n) throw new ArtifactError("BAD_INPUT", `u64 out of range: ${v}`);
    u32(Number(v & 0xffffffffn));
    u32(Number(v >> 32n));
  };
  u8(header.kind === "model" ? 0 : 1);
  u64(header.jobId);
  if (!Number.isInteger(header.round) || header.round < 0 || header.round > 0xffffffff) throw new ArtifactError("BAD_INPUT", `round out of range: ${header.round}`);
  u32(header.round);
  u8(header.baseModelCid.length);
  h.push(...header.baseModelCid);
  h.push(...header.worker);
  u64(header.numSamples);
  u16(payloads.length);
  for (const { info } of payloads) {
    const nb = utf8.encode(info.name);
    u8(nb.length);
    h.push(...nb);
    u8(info.shape.length);
    for (const d of info.shape) u32(d);
    u8(0); // dtype float32
    u8(Encoding[info.encoding.encoding]);
    u32(info.encoding.chunk);
    u32(info.offset);
    u32(info.length);
  }
  if (h.length > MAX_HEADER) throw new ArtifactError("BAD_INPUT", `header of ${h.length} bytes exceeds ${MAX_HEADER}`);
  if (offset > 0xffffffff) throw new ArtifactError("BAD_INPUT", "payloads exceed 4 GiB");
  const out = new Uint8Array(FIXED + h.length + offset);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint16(4, VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, h.length, true);
  out.set(h, FIXED);
  let pos = FIXED + h.length;
  for (const { bytes } of payloads) {
    out.set(bytes, pos);
    pos += bytes.length;
  }
  return out;
}

class Reader {
  pos: number;
  private readonly bytes: Uint8Array;
  private readonly end: number;
  private readonly view: DataView;
  constructor(bytes: Uint8Array, start: number, end: number) {
    this.bytes = bytes;
    this.end = end;
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private take(n: number, what: string): number {
    if (this.pos + n > this.end) throw new ArtifactError("TRUNCATED", `header ends inside ${what}`);
    const p = this.pos;
    this.pos += n;
    return p;
  }
  u8(what: string) {
    return this.view.getUint8(this.take(1, what));
  }
  u16(what: string) {
    return this.view.getUint16(this.take(2, what), true);
  }
  u32(what: string) {
    return this.view.getUint32(this.take(4, what), true);
  }
  u64(what: string) {
    const p = this.take(8, what);
    return BigInt(this.view.getUint32(p, true)) | (BigInt(this.view.getUint32(p + 4, true)) << 32n);
  }
  raw(n: number, what: string) {
    const p = this.take(n, what);
    return this.bytes.slice(p, p + n);
  }
}

/** Reads the header and tensor table without decoding payloads. */
export function decodeHeader(bytes: Uint8Array, limits: DecodeLimits = {}): { header: ArtifactHeader; table: TensorInfo[]; payloadStart: number } {
  const maxBytes = limits.maxBytes ?? 256 * 1024 * 1024;
  const maxElements = limits.maxElements ?? 1 << 26;
  if (!(bytes instanceof Uint8Array)) throw new ArtifactError("BAD_INPUT", "artifact must be a Uint8Array");
  if (bytes.length > maxBytes) throw new ArtifactError("TOO_LARGE", `${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  if (bytes.length < FIXED) throw new ArtifactError("TRUNCATED", `${bytes.length} bytes is shorter than the ${FIXED}-byte preamble`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) throw new ArtifactError("BAD_MAGIC", "not a fedstake artifact (magic is not FSTK)");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw new ArtifactError("BAD_VERSION", `version ${version} is not supported (this node reads ${VERSION})`);
  const flags = view.getUint16(6, true);
  if (flags !== 0) throw new ArtifactError("BAD_HEADER", `unknown flags 0x${flags.toString(16)}`);
  const hLen = view.getUint32(8, true);
  if (hLen > MAX_HEADER) throw new ArtifactError("BAD_HEADER", `header length ${hLen} exceeds ${MAX_HEADER}`);
  if (FIXED + hLen > bytes.length) throw new ArtifactError("TRUNCATED", `header length ${hLen} runs past the end (${bytes.length} bytes)`);
  const r = new Reader(bytes, FIXED, FIXED + hLen);
  const kindByte = r.u8("kind");
  if (kindByte > 1) throw new ArtifactError("BAD_HEADER", `kind ${kindByte} is neither model (0) nor update (1)`);
  const jobId = r.u64("jobId");
  const round = r.u32("round");
  const cidLen = r.u8("base CID length");
  if (cidLen > MAX_CID) throw new ArtifactError("BAD_HEADER", `base CID length ${cidLen} exceeds ${MAX_CID}`);
  const baseModelCid = r.raw(cidLen, "base CID");
  const worker = r.raw(20, "worker");
  const numSamples = r.u64("numSamples");
  const count = r.u16("tensor count");
  if (count > MAX_TENSORS) throw new ArtifactError("BAD_HEADER", `${count} tensors exceeds ${MAX_TENSORS}`);
  const table: TensorInfo[] = [];
  const names = new Set<string>();
  let expectedOffset = 0;
  let totalElements = 0;
  for (let t = 0; t < count; t++) {
    const nameLen = r.u8(`tensor ${t} name length`);
    if (nameLen === 0 || nameLen > MAX_NAME) throw new ArtifactError("BAD_TENSOR", `tensor ${t}: name length ${nameLen} outside 1..${MAX_NAME}`);
    let name: string;
    try {
      name = utf8Strict.decode(r.raw(nameLen, `tensor ${t} name`));
    } catch (e) {
      if (e instanceof ArtifactError) throw e;
      throw new ArtifactError("BAD_TENSOR", `tensor ${t}: name is not valid UTF-8`);
    }
    if (names.has(name)) throw new ArtifactError("BAD_TENSOR", `duplicate tensor name "${name}"`);
    names.add(name);
    const rank = r.u8(`tensor "${name}" rank`);
    if (rank > MAX_RANK) throw new ArtifactError("BAD_TENSOR", `tensor "${name}": rank ${rank} exceeds ${MAX_RANK}`);
    const shape: number[] = [];
    let numel = 1;
    for (let d = 0; d < rank; d++) {
      const dim = r.u32(`tensor "${name}" dim ${d}`);
      if (dim === 0) throw new ArtifactError("BAD_TENSOR", `tensor "${name}": dimension ${d} is 0`);
      shape.push(dim);
      numel *= dim;
      if (numel > maxElements) throw new ArtifactError("TOO_LARGE", `tensor "${name}": more than ${maxElements} elements`);
    }
    totalElements += numel;
    if (totalElements > maxElements) throw new ArtifactError("TOO_LARGE", `tensors hold more than ${maxElements} elements`);
    const dtype = r.u8(`tensor "${name}" dtype`);
    if (dtype !== 0) throw new ArtifactError("BAD_TENSOR", `tensor "${name}": dtype ${dtype} unknown (0 = float32)`);
    const encCode = r.u8(`tensor "${name}" encoding`);
    const enc = encodingName(encCode);
    if (enc === undefined) throw new ArtifactError("BAD_ENCODING", `tensor "${name}": encoding ${encCode} unknown`);
    const chunk = r.u32(`tensor "${name}" chunk`);
    if (isChunked(enc) ? chunk < 1 || chunk > 1 << 20 : chunk !== 0) {
      throw new ArtifactError("BAD_ENCODING", `tensor "${name}": chunk ${chunk} invalid for ${enc}`);
    }
    const offset = r.u32(`tensor "${name}" offset`);
    const length = r.u32(`tensor "${name}" length`);
    if (offset !== expectedOffset) throw new ArtifactError("BAD_TENSOR", `tensor "${name}": offset ${offset}, expected ${expectedOffset} (payloads are contiguous)`);
    expectedOffset = offset + length;
    table.push({ name, shape, encoding: { encoding: enc, chunk }, offset, length });
  }
  if (r.pos !== FIXED + hLen) throw new ArtifactError("BAD_HEADER", `${FIXED + hLen - r.pos} unread bytes at the end of the header`);
  const payloadStart = FIXED + hLen;
  const payloadBytes = bytes.length - payloadStart;
  if (expectedOffset > payloadBytes) throw new ArtifactError("TRUNCATED", `payloads need ${expectedOffset} bytes, ${payloadBytes} present`);
  if (expectedOffset < payloadBytes) throw new ArtifactError("TRAILING_BYTES", `${payloadBytes - expectedOffset} bytes after the last payload`);
  const header: ArtifactHeader = { kind: kindByte === 0 ? "model" : "update", jobId, round, baseModelCid, worker, numSamples };
  return { header, table, payloadStart };
}

/** Decodes and validates a whole artifact. Throws ArtifactError, never anything else, on bad bytes. */
export function decodeArtifact(bytes: Uint8Array, limits: DecodeLimits = {}): Artifact {
  const { header, table, payloadStart } = decodeHeader(bytes, limits);
  const tensors = table.map((info) => {
    const start = payloadStart + info.offset;
    const data = decodePayload(bytes.subarray(start, start + info.length), numelOf(info.shape), info.encoding, `tensor "${info.name}"`);
    return { name: info.name, shape: info.shape, data };
  });
  return { header, tensors, table };
}
