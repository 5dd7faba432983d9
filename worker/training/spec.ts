/**
 * Model specs: the JSON that describes a network. Validation walks the layers with their shapes and
 * names the first layer that does not fit.
 *
 *   { "input": [1, 28, 28], "classes": 10, "seed": 1, "loss": "softmax_cross_entropy",
 *     "layers": [ { "type": "conv2d", "filters": 8, "kernel": 3, "stride": 1, "padding": 1 },
 *                 { "type": "relu" }, { "type": "maxpool", "size": 2 }, { "type": "flatten" },
 *                 { "type": "dense", "units": 10 } ] }
 */
export type Layer =
  | { type: "dense"; units: number }
  | { type: "conv2d"; filters: number; kernel: number; stride?: number; padding?: number }
  | { type: "maxpool"; size: number }
  | { type: "avgpool"; size: number }
  | { type: "flatten" }
  | { type: "relu" }
  | { type: "tanh" }
  | { type: "sigmoid" };

export type Loss = "softmax_cross_entropy" | "mse";

export interface ModelSpec {
  /** Per-sample input shape: [features] for dense nets, [channels, height, width] for conv nets. */
  input: number[];
  /** Output width: classes for classification, targets for regression. */
  classes: number;
  layers: Layer[];
  loss: Loss;
  /** Seed of the deterministic initialisation. */
  seed: number;
}

export class SpecError extends Error {
  override readonly name = "SpecError";
}

const LAYER_TYPES = ["dense", "conv2d", "maxpool", "avgpool", "flatten", "relu", "tanh", "sigmoid"];

/** The fields of a spec and of each layer type: any other key is a typo, refused rather than ignored. */
const SPEC_FIELDS = ["input", "classes", "layers", "loss", "seed"];
const LAYER_FIELDS: Record<string, string[]> = {
  dense: ["units"],
  conv2d: ["filters", "kernel", "stride", "padding"],
  maxpool: ["size"],
  avgpool: ["size"],
};

function refuseUnknown(o: Record<string, unknown>, known: string[], where: string): void {
  const extra = Object.keys(o).filter((k) => !known.includes(k));
  if (extra.length) throw new SpecError(`${where}: unknown field${extra.length > 1 ? "s" : ""} ${extra.map((k) => JSON.stringify(k)).join(", ")} (it has: ${known.join(", ") || "no parameters"})`);
}

const posInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;

/** Checks a spec and returns the per-layer output shapes (per sample). */
export function validateSpec(raw: unknown): { spec: ModelSpec; shapes: number[][] } {
  if (typeof raw !== "object" || raw === null) throw new SpecError("spec must be a JSON object");
  const s = raw as Record<string, unknown>;
  refuseUnknown(s, SPEC_FIELDS, "spec");
  if (!Array.isArray(s.input) || s.input.length === 0 || !s.input.every(posInt)) {
    throw new SpecError(`spec.input must be a non-empty list of positive integers, got ${JSON.stringify(s.input)}`);
  }
  if (s.input.length !== 1 && s.input.length !== 3) throw new SpecError(`spec.input must be [features] or [channels, height, width]`);
  if (!posInt(s.classes)) throw new SpecError(`spec.classes must be a positive integer, got ${JSON.stringify(s.classes)}`);
  if (s.loss !== "softmax_cross_entropy" && s.loss !== "mse") throw new SpecError(`spec.loss must be "softmax_cross_entropy" or "mse", got ${JSON.stringify(s.loss)}`);
  if (!Number.isInteger(s.seed)) throw new SpecError(`spec.seed must be an integer, got ${JSON.stringify(s.seed)}`);
  if (!Array.isArray(s.layers) || s.layers.length === 0) throw new SpecError("spec.layers must be a non-empty list");
  let shape = [...(s.input as number[])];
  const shapes: number[][] = [];
  (s.layers as unknown[]).forEach((l, i) => {
    const where = `layer ${i}`;
    if (typeof l !== "object" || l === null) throw new SpecError(`${where}: must be an object`);
    const layer = l as Record<string, unknown>;
    if (!LAYER_TYPES.includes(layer.type as string)) {
      throw new SpecError(`${where}: unknown layer type ${JSON.stringify(layer.type)} (known: ${LAYER_TYPES.join(", ")})`);
    }
    const at = `${where} (${layer.type})`;
    refuseUnknown(layer, ["type", ...(LAYER_FIELDS[layer.type as string] ?? [])], at);
    switch (layer.type) {
      case "dense":
        if (!posInt(layer.units)) throw new SpecError(`${at}: units must be a positive integer`);
        if (shape.length !== 1) throw new SpecError(`${at}: needs a flat input, got [${shape}] (add a flatten layer)`);
        shape = [layer.units];
        break;
      case "conv2d": {
        if (!posInt(layer.filters) || !posInt(layer.kernel)) throw new SpecError(`${at}: filters and kernel must be positive integers`);
        const stride = layer.stride ?? 1;
        const pad = layer.padding ?? 0;
        if (!posInt(stride) || !Number.isInteger(pad) || (pad as number) < 0) throw new SpecError(`${at}: stride ≥ 1 and padding ≥ 0 must be integers`);
        if (shape.length !== 3) throw new SpecError(`${at}: needs a [channels, height, width] input, got [${shape}]`);
        const [, h, w] = shape as [number, number, number];
        const ho = Math.floor((h + 2 * (pad as number) - (layer.kernel as number)) / (stride as number)) + 1;
        const wo = Math.floor((w + 2 * (pad as number) - (layer.kernel as number)) / (stride as number)) + 1;
        if (ho < 1 || wo < 1) throw new SpecError(`${at}: kernel ${layer.kernel} does not fit a ${h}×${w} input`);
        shape = [layer.filters as number, ho, wo];
        break;
      }
      case "maxpool":
      case "avgpool": {
        if (!posInt(layer.size)) throw new SpecError(`${at}: size must be a positive integer`);
        if (shape.length !== 3) throw new SpecError(`${at}: needs a [channels, height, width] input, got [${shape}]`);
        const [c, h, w] = shape as [number, number, number];
        const k = layer.size as number;
        if (h < k || w < k) throw new SpecError(`${at}: size ${k} does not fit a ${h}×${w} input`);
        if (layer.type === "avgpool" && (h % k !== 0 || w % k !== 0)) throw new SpecError(`${at}: ${h}×${w} is not divisible by ${k}`);
        shape = [c, Math.floor(h / k), Math.floor(w / k)];
        break;
      }
      case "flatten":
        shape = [shape.reduce((a, b) => a * b, 1)];
        break;
      default:
        break;
    }
    shapes.push(shape);
  });
  if (shape.length !== 1 || shape[0] !== s.classes) {
    throw new SpecError(`the last layer outputs [${shape}], but spec.classes is ${s.classes}`);
  }
  return { spec: s as unknown as ModelSpec, shapes };
}
