/**
 * IDX files (the MNIST format): big-endian magic (0x0000 08 NN: unsigned bytes, NN dimensions), the
 * dimension sizes, then the data.
 */
import { readFile } from "node:fs/promises";
import { checkImageSize } from "./check.ts";
import { DataError, type Dataset } from "./dataset.ts";

export function parseIdx(bytes: Uint8Array, file: string): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4) throw new DataError(`${file}: ${bytes.length} bytes is too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[0] !== 0 || bytes[1] !== 0 || bytes[2] !== 0x08) {
    throw new DataError(`${file}: not an unsigned-byte IDX file (magic ${Buffer.from(bytes.subarray(0, 4)).toString("hex")})`);
  }
  const rank = bytes[3]!;
  if (rank < 1 || rank > 4 || bytes.length < 4 + 4 * rank) throw new DataError(`${file}: bad IDX rank ${rank}`);
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = dims.reduce((a, b) => a * b, 1);
  const start = 4 + 4 * rank;
  if (bytes.length - start !== count) {
    throw new DataError(`${file}: header promises ${count} values (dims ${dims.join("×")}), file holds ${bytes.length - start}`);
  }
  return { dims, data: bytes.subarray(start) };
}

/**
 * Images scaled to [0, 1] with their labels; `classes` bounds the labels (checked). With `input` (the
 * model's `spec.input`), the image size from the IDX header (rows × cols) must match it (checkImageSize).
 */
export async function loadIdx(
  imagesFile: string,
  labelsFile: string,
  opts: { classes: number; limit?: number; input?: number[] },
): Promise<Dataset> {
  const images = parseIdx(new Uint8Array(await readFile(imagesFile)), imagesFile);
  if (opts.input) checkImageSize(images.dims, { input: opts.input }, imagesFile);
  const labels = parseIdx(new Uint8Array(await readFile(labelsFile)), labelsFile);
  if (labels.dims.length !== 1) throw new DataError(`${labelsFile}: labels must be one-dimensional, got ${labels.dims.join("×")}`);
  if (images.dims[0] !== labels.dims[0]) {
    throw new DataError(`${imagesFile} has ${images.dims[0]} images but ${labelsFile} has ${labels.dims[0]} labels`);
  }
  const n = Math.min(images.dims[0]!, opts.limit ?? Infinity);
  const features = images.dims.slice(1).reduce((a, b) => a * b, 1);
  const x = new Float32Array(n * features);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i]! / 255;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const l = labels.data[i]!;
    if (l >= opts.classes) throw new DataError(`${labelsFile}: label ${l} at index ${i} is out of range 0..${opts.classes - 1}`);
    y[i] = l;
  }
  return { n, features, x, labels: y };
}
