/**
 * The inference export (`inferenceModel`, what `model get --onnx` writes): a stock onnxruntime loads it
 * and its logits agree with the project's own eval graph (`evaluate`) on the same weights, for a conv
 * net using every layer type and an MLP, with either loss; the batch dimension is symbolic.
 */
import { expect } from "chai";
import * as ort from "onnxruntime-node";
import { inferenceModel, initParams } from "../../worker/training/model.ts";
import type { ModelSpec } from "../../worker/training/spec.ts";
import { evaluate } from "../../worker/training/trainer.ts";
import { prng } from "../../worker/util/prng.ts";

const CONV: ModelSpec = {
  input: [2, 7, 7],
  classes: 3,
  seed: 4,
  loss: "softmax_cross_entropy",
  layers: [
    { type: "conv2d", filters: 3, kernel: 3, stride: 2, padding: 1 },
    { type: "tanh" },
    { type: "maxpool", size: 2 },
    { type: "conv2d", filters: 4, kernel: 1 },
    { type: "sigmoid" },
    { type: "avgpool", size: 2 },
    { type: "flatten" },
    { type: "dense", units: 3 },
  ],
};
const DENSE: ModelSpec = {
  input: [6],
  classes: 4,
  seed: 5,
  loss: "mse",
  layers: [{ type: "dense", units: 8 }, { type: "relu" }, { type: "dense", units: 4 }],
};

/** The spec's initial weights, moved off their init (biases off zero) so every tensor matters. */
function weights(spec: ModelSpec): Map<string, Float32Array> {
  const r = prng(21);
  const w = initParams(spec);
  for (const v of w.values()) for (let i = 0; i < v.length; i++) v[i] = v[i]! + (r() - 0.5) * 0.5;
  return w;
}

/** The loss of one sample against the target e_j, from its logits row, as the spec's loss defines it. */
function lossOf(spec: ModelSpec, row: Float32Array, j: number): number {
  if (spec.loss === "mse") return row.reduce((s, o, c) => s + (o - (c === j ? 1 : 0)) ** 2, 0) / row.length;
  const max = Math.max(...row);
  return Math.log(row.reduce((s, o) => s + Math.exp(o - max), 0)) + max - row[j]!;
}

async function run(session: ort.InferenceSession, spec: ModelSpec, x: Float32Array, n: number): Promise<Float32Array> {
  const out = await session.run({ input: new ort.Tensor("float32", x, [n, ...spec.input]) });
  expect(out.logits!.dims).to.deep.equal([n, spec.classes]);
  return out.logits!.data as Float32Array;
}

for (const [name, spec] of [["conv net (every layer type, cross-entropy)", CONV], ["MLP (mse)", DENSE]] as const) {
  describe(`ONNX inference export: ${name}`, function () {
    it("runs in onnxruntime and gives the logits of the project's eval graph", async function () {
      const params = weights(spec);
      const session = await ort.InferenceSession.create(inferenceModel(spec, params));
      expect(session.inputNames).to.deep.equal(["input"]);
      expect(session.outputNames).to.deep.equal(["logits"]);
      const n = 5;
      const f = spec.input.reduce((a, b) => a * b, 1);
      const r = prng(8);
      const x = Float32Array.from({ length: n * f }, () => r() * 2 - 1);
      const logits = await run(session, spec, x, n);

      // evaluate() gives the loss of sample i against the target e_j for every class j: for either loss
      // these pin the logits down (cross-entropy: up to a shift per row, which no loss sees).
      const cache = new Map<number, ort.InferenceSession>();
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * spec.classes, (i + 1) * spec.classes);
        for (let j = 0; j < spec.classes; j++) {
          const targets = new Float32Array(spec.classes);
          targets[j] = 1;
          const { loss } = await evaluate(spec, params, { n: 1, features: f, x: x.subarray(i * f, (i + 1) * f), targets }, { cache });
          worst = Math.max(worst, Math.abs(loss - lossOf(spec, row, j)));
        }
      }
      expect(worst).to.be.below(1e-4);

      // The batch dimension is symbolic: one sample alone gives the same row as in the batch.
      const alone = await run(session, spec, x.subarray(0, f), 1);
      const shift = Math.max(...alone.map((v, c) => Math.abs(v - logits[c]!)));
      expect(shift).to.be.below(1e-5);
    });
  });
}

describe("ONNX inference export: weights that do not fit the spec", function () {
  it("names the missing or misshapen tensor", function () {
    const params = initParams(DENSE);
    params.set("l2.weight", new Float32Array(3));
    expect(() => inferenceModel(DENSE, params)).to.throw(RangeError, "weights for l2.weight [8,4]: 3 values, the spec needs 32");
    params.delete("l0.bias");
    expect(() => inferenceModel(DENSE, params)).to.throw(RangeError, "no weights for l0.bias [8]");
  });
});
