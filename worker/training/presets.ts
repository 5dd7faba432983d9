/** Named model specs shared by the demo, the benchmarks, the simulator and the tests. */
import type { ModelSpec } from "./spec.ts";

/** The MNIST model of the demo and `bench:round`: an MLP 784-128-10. */
export const MNIST_MLP: ModelSpec = {
  input: [784],
  classes: 10,
  seed: 7,
  loss: "softmax_cross_entropy",
  layers: [{ type: "dense", units: 128 }, { type: "relu" }, { type: "dense", units: 10 }],
};
