/**
 * Checks of local data against the job's model, run when a job is joined (before any training), so a
 * wrong file fails with its name and both sizes rather than deep inside a training step.
 */
import { DataError, type Dataset } from "./dataset.ts";
import type { ModelSpec } from "../training/spec.ts";

/** Values per sample the model takes: the product of `spec.input` (784 for [784] and [1, 28, 28]). */
export function inputSize(spec: Pick<ModelSpec, "input">): number {
  return spec.input.reduce((a, b) => a * b, 1);
}

/**
 * Throws a DataError naming `source` (a file, or a description of the data) when the data's values
 * per sample differ from what the model takes.
 */
export function checkInputSize(data: Pick<Dataset, "features">, spec: Pick<ModelSpec, "input">, source: string): void {
  const need = inputSize(spec);
  if (data.features !== need) {
    throw new DataError(
      `${source}: ${data.features} values per sample, the model takes ${need} (spec.input ${JSON.stringify(spec.input)})`,
    );
  }
}

/**
 * IDX images against the model: `dims` is the image file's header (count, rows, cols[, …]). The
 * values per image must match the model's input size; for a conv model ([channels, height, width])
 * and 2-D images, rows × cols must also be height × width with one channel, so a transposed or
 * re-cut image of the same size is refused too.
 */
export function checkImageSize(dims: number[], spec: Pick<ModelSpec, "input">, file: string): void {
  const image = dims.slice(1);
  const size = image.reduce((a, b) => a * b, 1);
  const need = inputSize(spec);
  const shape = image.length ? image.join("×") : "scalar";
  const model = `the model takes ${need} (spec.input ${JSON.stringify(spec.input)})`;
  if (size !== need) throw new DataError(`${file}: images are ${shape} = ${size} values, ${model}`);
  const [c, h, w] = spec.input;
  if (spec.input.length === 3 && image.length === 2 && (c !== 1 || image[0] !== h || image[1] !== w)) {
    throw new DataError(`${file}: images are ${shape} (one channel), the model takes ${c}×${h}×${w} (spec.input ${JSON.stringify(spec.input)})`);
  }
}
