/** CSV data: numeric columns, a header row, one label column (integer class) — every bad cell is named. */
import { readFile } from "node:fs/promises";
import { DataError, type Dataset } from "./dataset.ts";

export async function loadCsv(file: string, opts: { label: string; classes: number }): Promise<Dataset> {
  const lines = (await readFile(file, "utf8")).split(/\r?\n/).filter((l) => l.trim() !== "");
  if (lines.length < 2) throw new DataError(`${file}: needs a header and at least one row`);
  const header = lines[0]!.split(",").map((h) => h.trim());
  const labelCol = header.indexOf(opts.label);
  if (labelCol < 0) throw new DataError(`${file}: no column named "${opts.label}" (columns: ${header.join(", ")})`);
  const width = header.length;
  const n = lines.length - 1;
  const features = width - 1;
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
        if (!Number.isInteger(v) || v < 0 || v >= opts.classes) {
          throw new DataError(`${file}:${lineNo}: label ${v} is out of range 0..${opts.classes - 1}`);
        }
        labels[r] = v;
      } else {
        x[r * features + f++] = v;
      }
    });
  }
  return { n, features, x, labels };
}
