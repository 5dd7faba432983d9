/**
 * CSV data: numeric columns, a header row, one label column (integer class) — every bad cell is named.
 *
 *   a,b,y        the header names the columns; `label` picks the class column, the rest are features
 *   0.5,3,1      (in file order); a first line of numbers only is refused as a missing header
 *
 * Optional feature scaling (`scale`, default "none"), applied per feature column with statistics of
 * this file only (each node scales its own data; nothing is shared or sent):
 *   - "minmax":   (v − min) / (max − min), into [0, 1];
 *   - "standard": (v − mean) / std, the population standard deviation (divided by n);
 *   - "none":     the values as written.
 * A constant column (max = min, std = 0) becomes all 0 rather than NaN. The label column is never scaled.
 */
import { readFile } from "node:fs/promises";
import { checkInputSize } from "./check.ts";
import { DataError, type Dataset } from "./dataset.ts";

export type Scale = "minmax" | "standard" | "none";
export const SCALES: readonly Scale[] = ["minmax", "standard", "none"];

export interface CsvOptions {
  /** The header name of the label column. */
  label: string;
  /** Labels must be integers in 0..classes−1. */
  classes: number;
  /** Feature scaling with this file's own statistics (default "none"). */
  scale?: Scale;
  /** The model's per-sample input shape (`spec.input`): when given, the feature count must match it. */
  input?: number[];
}

/** Per-column statistics a scaling used: v' = (v − offset[c]) / divisor[c] (divisor 0: v' = 0). */
export interface ScaleStats {
  scale: Scale;
  offset: Float64Array;
  divisor: Float64Array;
}

/**
 * Scales `x` (n × features, row-major) in place, column by column, with statistics of `x` itself
 * (see the file comment); returns them. A column whose range (minmax) or deviation (standard) is 0
 * becomes 0.
 */
export function scaleFeatures(x: Float32Array, n: number, features: number, scale: Scale): ScaleStats {
  const offset = new Float64Array(features);
  const divisor = new Float64Array(features).fill(1);
  if (scale === "none" || n === 0) return { scale, offset, divisor };
  for (let c = 0; c < features; c++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let r = 0; r < n; r++) {
      const v = x[r * features + c]!;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (scale === "minmax") {
      offset[c] = lo;
      divisor[c] = hi - lo;
    } else {
      let sum = 0;
      for (let r = 0; r < n; r++) sum += x[r * features + c]!;
      const mean = sum / n;
      let sq = 0;
      for (let r = 0; r < n; r++) sq += (x[r * features + c]! - mean) ** 2;
      offset[c] = mean;
      divisor[c] = Math.sqrt(sq / n);
    }
    const o = offset[c]!;
    const d = divisor[c]!;
    // A constant column carries no information: 0, not NaN (0/0); min = max decides it, not a tiny std.
    const flat = lo === hi || !(d > 0) || !Number.isFinite(1 / d);
    if (flat) divisor[c] = 0;
    for (let r = 0; r < n; r++) {
      const i = r * features + c;
      x[i] = flat ? 0 : (x[i]! - o) / d;
    }
  }
  return { scale, offset, divisor };
}

const isNumber = (cell: string): boolean => cell.trim() !== "" && Number.isFinite(Number(cell.trim()));

export async function loadCsv(file: string, opts: CsvOptions): Promise<Dataset> {
  const scale = opts.scale ?? "none";
  if (!SCALES.includes(scale)) {
    throw new DataError(`${file}: scale must be ${SCALES.map((s) => `"${s}"`).join(", ")}, got ${JSON.stringify(opts.scale)}`);
  }
  const text = (await readFile(file, "utf8")).replace(/^\uFEFF/, "");
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length === 0) throw new DataError(`${file}: needs a header and at least one row`);
  const header = lines[0]!.split(",").map((h) => h.trim());
  // A header-less file would otherwise lose its first sample and (with a numeric label name) read the
  // wrong column as the label: refuse it.
  if (header.every(isNumber)) {
    throw new DataError(
      `${file}: the first line "${lines[0]!.trim()}" is all numbers: the header row is missing ` +
        `(add a first line naming the columns, with "${opts.label}" for the label)`,
    );
  }
  if (lines.length < 2) throw new DataError(`${file}: needs a header and at least one row`);
  const labelCol = header.indexOf(opts.label);
  if (labelCol < 0) throw new DataError(`${file}: no column named "${opts.label}" (columns: ${header.join(", ")})`);
  if (header.lastIndexOf(opts.label) !== labelCol) {
    throw new DataError(`${file}: the header names "${opts.label}" more than once (columns: ${header.join(", ")})`);
  }
  const width = header.length;
  const n = lines.length - 1;
  const features = width - 1;
  if (opts.input) checkInputSize({ features }, { input: opts.input }, `${file} (${features} feature columns besides "${opts.label}")`);
  const x = new Float32Array(n * features);
  const labels = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const lineNo = r + 2;
    const cells = lines[r + 1]!.split(",");
    if (cells.length !== width) throw new DataError(`${file}:${lineNo}: ${cells.length} columns, the header has ${width}`);
    let f = 0;
    cells.forEach((c, col) => {
      const v = Number(c.trim());
      if (c.trim() === "" || !Number.isFinite(v)) throw new DataError(`${file}:${lineNo}: column "${header[col]}" is not a number: "${c}"`);
      if (col === labelCol) {
        if (!Number.isInteger(v)) {
          throw new DataError(`${file}:${lineNo}: column "${header[col]}": label "${c.trim()}" is not an integer (classes are 0..${opts.classes - 1})`);
        }
        if (v < 0 || v >= opts.classes) {
          throw new DataError(`${file}:${lineNo}: label ${v} is out of range 0..${opts.classes - 1} (column "${header[col]}")`);
        }
        labels[r] = v;
      } else {
        x[r * features + f++] = v;
      }
    });
  }
  scaleFeatures(x, n, features, scale);
  return { n, features, x, labels };
}
