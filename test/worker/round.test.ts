import { expect } from "chai";
import { encodeArtifact, type ArtifactHeader, type Tensor } from "../../worker/artifacts/index.ts";
import { aggregate, AggregationError, type Contribution } from "../../worker/aggregation/index.ts";
import { deltaOf } from "../../worker/training/delta.ts";
import { loadMnist } from "../../worker/data/mnist.ts";
import { dirichletSplit } from "../../worker/data/partition.ts";
import { initParams, paramsOf } from "../../worker/training/model.ts";
import { prng } from "../../worker/util/prng.ts";
import type { ModelSpec } from "../../worker/training/spec.ts";
import { evaluate, Trainer } from "../../worker/training/trainer.ts";
import { checkStructure, decideRound, type Policy, type Revealed } from "../../worker/validation/validate.ts";
import { DEFAULT_RULES } from "../../worker/validation/rules/index.ts";
import { HeldOutSet } from "../../worker/validation/evaluation.ts";
import { DEFAULT_REFERENCE } from "../../worker/node/jobSpec.ts";

const base = (): Tensor[] => [
  { name: "w", shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
  { name: "b", shape: [3], data: Float32Array.from([0, 0, 0]) },
];
const delta = (seed: number, scale = 0.01): Tensor[] => {
  const r = prng(seed);
  return base().map((t) => ({ ...t, data: Float32Array.from(t.data, () => (r() - 0.5) * scale) }));
};
const bytesOf = (ts: Tensor[]) => Buffer.concat(ts.map((t) => Buffer.from(t.data.buffer)));

describe("aggregation policies", function () {
  it("FedAvg is deterministic and weights by capped sample counts", function () {
    const ups: Contribution[] = [1, 2, 3].map((s) => ({ delta: delta(s), numSamples: s * 100 }));
    const a = aggregate({ kind: "fedavg" }, base(), ups);
    const b = aggregate({ kind: "fedavg" }, base(), ups.map((u) => ({ delta: u.delta.map((t) => ({ ...t, data: Float32Array.from(t.data) })), numSamples: u.numSamples })));
    expect(bytesOf(a).equals(bytesOf(b))).to.equal(true);
    const w = [100, 200, 300];
    const expected = Math.fround(1 + (w[0]! * ups[0]!.delta[0]!.data[0]! + w[1]! * ups[1]!.delta[0]!.data[0]! + w[2]! * ups[2]!.delta[0]!.data[0]!) / 600);
    expect(a[0]!.data[0]).to.equal(expected);
    // With a cap of 100 every update weighs the same.
    const capped = aggregate({ kind: "fedavg", sampleCap: 100 }, base(), ups);
    const plain = (ups[0]!.delta[1]!.data[2]! + ups[1]!.delta[1]!.data[2]! + ups[2]!.delta[1]!.data[2]!) / 3;
    expect(capped[1]!.data[2]).to.equal(Math.fround(plain));
  });

  it("median, trimmed mean, Krum and Multi-Krum resist one huge malicious update; FedAvg does not", function () {
    const honest: Contribution[] = [1, 2, 3, 4].map((s) => ({ delta: delta(s), numSamples: 100 }));
    const evil: Contribution = { delta: delta(9, 1000), numSamples: 100 };
    const maxShift = (ts: Tensor[]) => Math.max(...ts.flatMap((t, i) => [...t.data].map((v, j) => Math.abs(v - base()[i]!.data[j]!))));
    expect(maxShift(aggregate({ kind: "median" }, base(), [...honest, evil]))).to.be.below(0.01);
    expect(maxShift(aggregate({ kind: "trimmed_mean", trim: 0.2 }, base(), [...honest, evil]))).to.be.below(0.01);
    expect(maxShift(aggregate({ kind: "krum" }, base(), [...honest, evil]))).to.be.below(0.01);
    expect(maxShift(aggregate({ kind: "multi_krum" }, base(), [...honest, evil]))).to.be.below(0.01);
    expect(maxShift(aggregate({ kind: "fedavg" }, base(), [...honest, evil]))).to.be.above(10);
  });

  it("refuses empty rounds, mismatched tensors and bad trims", function () {
    expect(() => aggregate({ kind: "fedavg" }, base(), [])).to.throw(AggregationError, /no accepted updates/);
    const wrong = { delta: [base()[0]!], numSamples: 1 };
    expect(() => aggregate({ kind: "median" }, base(), [wrong])).to.throw(AggregationError, /has 1 tensors/);
    expect(() => aggregate({ kind: "trimmed_mean", trim: 0.5 }, base(), [{ delta: delta(1), numSamples: 1 }])).to.throw(/trim/);
  });
});

describe("validator checks", function () {
  const worker = new Uint8Array(20).fill(7);
  const baseCid = new Uint8Array(36).fill(3);
  const header: ArtifactHeader = { kind: "update", jobId: 1n, round: 2, baseModelCid: baseCid, worker, numSamples: 500n };
  const policy: Policy = { model: base().map((t) => ({ name: t.name, shape: t.shape })), rules: DEFAULT_RULES };
  const revealed = (bytes: Revealed["bytes"], over: Partial<Revealed> = {}): Revealed => ({
    index: 0,
    jobId: 1n,
    round: 2,
    baseModelCid: baseCid,
    worker,
    numSamples: 500n,
    bytes,
    ...over,
  });

  it("accepts a well-formed update and rejects each kind of bad one with its reason", function () {
    const good = encodeArtifact(header, delta(1));
    expect(checkStructure(revealed(good), policy)).to.include({ accept: true });
    const cases: [Revealed, RegExp][] = [
      [revealed({ error: "TIMEOUT: no peer delivered bafy… within 30000 ms" }), /^unavailable: TIMEOUT/],
      [revealed(good.subarray(0, 30)), /^malformed artifact: TRUNCATED/],
      [revealed(Uint8Array.from([0x47, ...good.subarray(1)])), /^malformed artifact: BAD_MAGIC/],
      [revealed(good, { jobId: 9n }), /header names job 1, the chain says 9/],
      [revealed(good, { round: 3 }), /header names round 2, the chain says 3/],
      [revealed(good, { baseModelCid: new Uint8Array(36) }), /another base model/],
      [revealed(good, { worker: new Uint8Array(20).fill(8) }), /header names worker 0x0707/],
      [revealed(good, { numSamples: 1n }), /claims 500 samples, the chain says 1/],
      [revealed(encodeArtifact(header, [delta(1)[1]!, delta(1)[0]!])), /tensor 0 is "b" \[3\], the model has "w" \[2,3\]/],
      [revealed(encodeArtifact({ ...header, kind: "model" }, delta(1))), /is a model, not an update/],
    ];
    for (const [r, re] of cases) {
      const d = checkStructure(r, policy);
      expect(d.accept, String(re)).to.equal(false);
      expect(d.reason).to.match(re);
    }
  });
});

describe("a federated round on MNIST: train, validate, aggregate", function () {
  this.timeout(300_000);
  it("rejects a sign-flipped, scaled update, accepts the honest ones, and the aggregate improves", async function () {
    const spec: ModelSpec = {
      input: [784],
      classes: 10,
      seed: 5,
      loss: "softmax_cross_entropy",
      layers: [{ type: "dense", units: 64 }, { type: "relu" }, { type: "dense", units: 10 }],
    };
    const names = paramsOf(spec);
    const toTensors = (m: Map<string, Float32Array>): Tensor[] => names.map((p) => ({ name: p.name, shape: p.shape, data: m.get(p.name)! }));
    const fromTensors = (ts: Tensor[]) => new Map(ts.map((t) => [t.name, t.data]));
    const baseModel = toTensors(initParams(spec));
    const shards = dirichletSplit(await loadMnist("train", 6000), 3, 1.0, 7);
    const holdout = await loadMnist("test", 1000);
    const worker = (i: number) => new Uint8Array(20).fill(i + 1);
    const baseCid = new Uint8Array(36).fill(1);
    const revealed: Revealed[] = [];
    for (const [i, shard] of shards.entries()) {
      const t = await Trainer.create(spec, { batch: 32, steps: 10, optimizer: { kind: "sgd", lr: 0.05, momentum: 0.9 } }, fromTensors(baseModel));
      await t.train(shard, { epochs: 1, seed: i });
      let d = deltaOf(toTensors(t.params), baseModel);
      const malicious = i === 2;
      if (malicious) d = d.map((x) => ({ ...x, data: Float32Array.from(x.data, (v) => -4 * v) }));
      const header: ArtifactHeader = { kind: "update", jobId: 1n, round: 1, baseModelCid: baseCid, worker: worker(i), numSamples: BigInt(shard.n) };
      revealed.push({ index: i, jobId: 1n, round: 1, baseModelCid: baseCid, worker: worker(i), numSamples: BigInt(shard.n), bytes: encodeArtifact(header, d) });
    }
    const baseEval = await evaluate(spec, fromTensors(baseModel), holdout);
    const policy: Policy = { model: names, rules: DEFAULT_RULES };
    const { bitmap, decisions } = await decideRound(revealed, policy, new HeldOutSet(spec, holdout, DEFAULT_REFERENCE).round(baseModel, 1), { round: 1 });
    for (const d of decisions) console.log(`      update ${d.index}: ${d.accept ? "accept" : "reject"} — ${d.reason}`);
    expect(bitmap).to.equal(0b011n);
    const accepted = decisions.filter((d) => d.accept).map((d) => ({ delta: d.delta!, numSamples: shards[d.index]!.n }));
    const next = aggregate({ kind: "fedavg" }, baseModel, accepted);
    const after = await evaluate(spec, fromTensors(next), holdout);
    console.log(`      global accuracy ${(baseEval.accuracy * 100).toFixed(1)}% → ${(after.accuracy * 100).toFixed(1)}%`);
    expect(after.accuracy).to.be.above(baseEval.accuracy + 0.3);
  });
});
