import { expect } from "chai";
import { aggregate, DEFAULT_MEDIAN_MULTIPLE, AggregationError, type Contribution } from "../../worker/aggregation/index.ts";
import type { Tensor } from "../../worker/artifacts/index.ts";

const base = (): Tensor[] => [{ name: "w", shape: [4], data: new Float32Array(4) }];
const delta = (v: number): Tensor[] => [{ name: "w", shape: [4], data: new Float32Array(4).fill(v) }];

describe("FedAvg's cap on declared sample counts (review finding 10)", function () {
  it("a worker claiming a million times its samples weighs at most twice the round's median", function () {
    // Nine honest workers move the model by +1; one sends a zero update and claims 10⁶ × their count.
    const honest: Contribution[] = Array.from({ length: 9 }, () => ({ delta: delta(1), numSamples: 600 }));
    const liar: Contribution = { delta: delta(0), numSamples: 600 * 1_000_000 };
    const next = aggregate({ kind: "fedavg" }, base(), [...honest, liar]);
    // Weights 9 × 600 and min(6e8, 2 × 600): the step keeps 9 / (9 + 2) of its honest size.
    expect(next[0]!.data[0]).to.equal(Math.fround((9 * 600) / (9 * 600 + DEFAULT_MEDIAN_MULTIPLE * 600)));
    // Uncapped (a multiple large enough to never bind), the liar holds the model in place.
    const uncapped = aggregate({ kind: "fedavg", medianMultiple: 1e12 }, base(), [...honest, liar]);
    expect(uncapped[0]!.data[0]).to.be.below(1e-4);
  });

  it("refuses a multiple below 1", function () {
    expect(() => aggregate({ kind: "fedavg", medianMultiple: 0.5 }, base(), [{ delta: delta(1), numSamples: 1 }])).to.throw(AggregationError, /medianMultiple/);
  });
});
