/**
 * The acceptance rules one by one, on synthetic updates with a synthetic held-out evaluation: each
 * rejection with its code, the rules' order (a rule judges only what earlier rules kept), the job spec's
 * rule list and its errors, and the decision table's metric columns.
 */
import { expect } from "chai";
import { encodeArtifact, type ArtifactHeader, type Tensor } from "../../worker/artifacts/index.ts";
import { parseJobSpec, parseValidation } from "../../worker/node/jobSpec.ts";
import { MNIST_MLP } from "../../worker/training/presets.ts";
import { flatten } from "../../worker/training/delta.ts";
import { l2 } from "../../worker/validation/rule.ts";
import { DEFAULT_RULES, parseRules } from "../../worker/validation/rules/index.ts";
import { decisionTable } from "../../worker/validation/report.ts";
import { decideRound, type Evaluation, type Revealed } from "../../worker/validation/validate.ts";
import { prng } from "../../worker/util/prng.ts";

const D = 20_000;
const model = [{ name: "w", shape: [D] }];
const rand = prng(3);
const gauss = () => Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
/** The task's common direction: honest updates are it plus their own (non-IID) part. */
const common = Float32Array.from({ length: D }, () => gauss());
const honest = () => [{ name: "w", shape: [D], data: Float32Array.from(common, (v) => v + 1.2 * gauss()) }];
const tensors = (data: Float32Array): Tensor[] => [{ name: "w", shape: [D], data }];
const baseCid = new Uint8Array(36).fill(1);
const reveal = (index: number, delta: Tensor[]): Revealed => {
  const worker = new Uint8Array(20).fill(index + 1);
  const header: ArtifactHeader = { kind: "update", jobId: 1n, round: 2, baseModelCid: baseCid, worker, numSamples: 100n };
  return { index, jobId: 1n, round: 2, baseModelCid: baseCid, worker, numSamples: 100n, bytes: encodeArtifact(header, delta, { encoding: "f32" }) };
};
/**
 * Held-out loss per class (two classes): base 1; an update lowers class 0's loss in proportion to its
 * cosine with the common direction, and raises both in proportion to its squared size beyond the typical.
 */
const evaluation: Evaluation = {
  async classLosses(delta) {
    if (!delta) return [1, 1];
    const f = flatten(delta);
    const c = flatten(tensors(common));
    const cos = l2(f) ? f.reduce((s, v, i) => s + v * c[i]!, 0) / (l2(f) * l2(c)) : 0;
    const harm = Math.max(0, l2(f) / l2(c) - 2) ** 2;
    return [1 - 0.5 * cos + harm, 1 + 0.1 * Math.abs(cos) + harm];
  },
  async reference() {
    return tensors(Float32Array.from(common, (v) => v + 0.5 * gauss()));
  },
};
const policy = { model, rules: DEFAULT_RULES };

describe("acceptance rules", function () {
  it("accepts honest updates and rejects zero, scaled, sign-flipped, noise and copied updates, each with its rule's code", async function () {
    const hs = Array.from({ length: 6 }, honest);
    const noise = Float32Array.from({ length: D }, () => gauss());
    const n = l2(flatten(hs[0]!)) / l2(Float64Array.from(noise));
    const revealed = [
      ...hs.map((h, i) => reveal(i, h)),
      reveal(6, tensors(new Float32Array(D))),
      reveal(7, tensors(Float32Array.from(honest()[0]!.data, (v) => 10 * v))),
      reveal(8, tensors(Float32Array.from(hs[1]![0]!.data, (v) => -v))),
      reveal(9, tensors(Float32Array.from(noise, (v) => v * n))),
      reveal(10, hs[2]!),
    ];
    const { bitmap, decisions } = await decideRound(revealed, policy, evaluation, { round: 2 });
    const code = (i: number) => decisions[i]!.code;
    expect([6, 7, 8, 9, 10].map(code)).to.deep.equal(["zero-update", "norm-outlier", "no-gain", "no-gain", "duplicate"]);
    // The copied update's original is rejected with it: which of two identical updates is the copy cannot be known.
    expect(code(2)).to.equal("duplicate");
    expect(bitmap).to.equal(0b111011n);
    for (const i of [0, 1, 3, 4, 5]) expect(decisions[i]!.accept, decisions[i]!.reason).to.equal(true);
    // Every rule that judged an update left its scores.
    expect(decisions[0]!.metrics).to.include.keys("maxSimilarity", "norm", "normRatio", "bestClassGain", "trust", "similarity", "alignment", "lossZ");
    const table = decisionTable(decisions);
    expect(table[0]).to.match(/index\s+maxSimilarity\s+norm\s+normRatio\s+bestClassGain/);
    expect(table).to.have.length(12);
  });

  it("in a round of two, an attacker's scale does not decide the honest update's fate", async function () {
    // Of two updates the median is their mean: judged by it, an update scaled ×100 would make the honest one "near zero".
    const big = tensors(Float32Array.from(honest()[0]!.data, (v) => 100 * v));
    const { decisions } = await decideRound([reveal(0, honest()), reveal(1, big)], policy, evaluation, { round: 2 });
    expect(decisions.map((d) => d.code)).to.deep.equal(["accepted", "norm-outlier"]);
    expect(decisions[1]!.reason).to.match(/the validator's reference update's norm/);
  });

  it("rejects a replay of an earlier round's update or aggregate step", async function () {
    const old = honest();
    const history = [{ round: 1, source: "the aggregate step", flat: flatten(old), norm: l2(flatten(old)) }];
    const { decisions } = await decideRound([reveal(0, honest()), reveal(1, old), reveal(2, honest()), reveal(3, honest())], policy, evaluation, { round: 2, history });
    expect(decisions[1]!.code).to.equal("replay");
    expect(decisions[1]!.reason).to.match(/the aggregate step of round 1/);
    expect(decisions.filter((d) => d.accept)).to.have.length(3);
  });

  it("rejects an update unrelated to the others, and a group that points against the reference", async function () {
    const unrelated = () => tensors(Float32Array.from({ length: D }, () => 2 * gauss()));
    const { decisions } = await decideRound([0, 1, 2, 3].map((i) => reveal(i, honest())).concat([reveal(4, unrelated())]), { model, rules: parseRules([{ rule: "neighbours" }]) }, evaluation, { round: 2 });
    expect(decisions.map((d) => d.code)).to.deep.equal(["accepted", "accepted", "accepted", "accepted", "unrelated"]);
    // Of four, no similarity test: a neighbourhood of one cannot tell a skewed honest update from an unrelated one.
    const four = await decideRound([0, 1, 2].map((i) => reveal(i, honest())).concat([reveal(3, unrelated())]), { model, rules: parseRules([{ rule: "neighbours" }]) }, evaluation, { round: 2 });
    expect(four.decisions[3]!.code).to.not.equal("unrelated");
    const flipped = () => tensors(Float32Array.from(honest()[0]!.data, (v) => -v));
    // As many colluders as honest workers: the colluders are each other's neighbours, alike enough; their group points against the validator's data.
    const r = await decideRound([0, 1, 2].map((i) => reveal(i, honest())).concat([3, 4, 5].map((i) => reveal(i, flipped()))), { model, rules: parseRules([{ rule: "neighbours" }]) }, evaluation, { round: 2 });
    expect(r.decisions.map((d) => d.code)).to.deep.equal(["accepted", "accepted", "accepted", "misaligned", "misaligned", "misaligned"]);
  });

  it("judges sparse (top-k) updates' similarity against their neighbourhood's mean direction: honest ones pass, noise does not", async function () {
    // Very skewed honest updates, sent top-2 % in 2 bits: each keeps its own few coordinates, so two of
    // them share little and their pairwise cosine falls below the dense threshold; noise stays near 1/√d.
    const r = prng(21);
    const g = () => Math.sqrt(-2 * Math.log(r() || 1e-12)) * Math.cos(2 * Math.PI * r());
    const topk = (data: Float32Array, index: number): Revealed => {
      const plain = reveal(index, tensors(data));
      const header: ArtifactHeader = { kind: "update", jobId: 1n, round: 2, baseModelCid: baseCid, worker: plain.worker, numSamples: 100n };
      return { ...plain, bytes: encodeArtifact(header, tensors(data), { encoding: "topk2", fraction: 0.02 }) };
    };
    const skewed = () => Float32Array.from(common, (v) => v + 3 * g());
    const revealed = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => topk(skewed(), i)).concat([topk(Float32Array.from({ length: D }, () => 2 * g()), 8)]);
    const { decisions, candidates } = await decideRound(revealed, { model, rules: parseRules([{ rule: "neighbours" }]) }, evaluation, { round: 2 });
    expect(decisions.map((d) => d.code)).to.deep.equal([...Array(8).fill("accepted"), "unrelated"]);
    expect(decisions[8]!.reason).to.match(/cosine -?0\.0[01]\d+ of this sparse update to the mean direction of its 4 nearest updates is below 0\.02/);
    // What the dense statistic (mean pairwise cosine to the 4 nearest) would have said of the honest ones.
    const flat = candidates.map((c) => c.flat);
    const cos = (a: Float64Array, b: Float64Array) => a.reduce((t, v, i) => t + v * b[i]!, 0) / (l2(a) * l2(b));
    const pairwise = flat.slice(0, 8).map((a, i) => {
      const near = flat.filter((_, j) => j !== i).map((b) => cos(a, b)).sort((x, y) => y - x).slice(0, 4);
      return near.reduce((t, v) => t + v, 0) / 4;
    });
    expect(Math.min(...pairwise)).to.be.below(0.02);
    expect(Math.min(...decisions.slice(0, 8).map((d) => d.metrics.similarity!))).to.be.above(0.02);
  });

  it("rejects an update that points away from the validator's reference update (FLTrust's trust score)", async function () {
    // Two sign-flipped updates among six honest ones: each one's own cosine to the reference is negative.
    const flipped = () => tensors(Float32Array.from(honest()[0]!.data, (v) => -v));
    const revealed = [0, 1, 2, 3, 4, 5].map((i) => reveal(i, honest())).concat([reveal(6, flipped()), reveal(7, flipped())]);
    const { decisions } = await decideRound(revealed, { model, rules: parseRules([{ rule: "trust" }]) }, evaluation, { round: 2 });
    expect(decisions.map((d) => d.code)).to.deep.equal([...Array(6).fill("accepted"), "distrusted", "distrusted"]);
    expect(decisions[6]!.metrics.trust).to.be.below(0);
    expect(decisions[0]!.metrics.trust).to.be.above(0);
    expect(decisions[6]!.reason).to.match(/cosine -0\.\d+ to its reference update is below -0\.02/);
    // A job can demand more trust: minTrust above every honest cosine rejects them all.
    const strict = await decideRound(revealed.slice(0, 6), { model, rules: parseRules([{ rule: "trust", minTrust: 0.99 }]) }, evaluation, { round: 2 });
    expect(strict.decisions.every((d) => d.code === "distrusted")).to.equal(true);
  });

  it("rejects an update that moves coordinates the data never exercises (a trigger outside the data's support)", async function () {
    // The last 500 coordinates stand for weights fed by an input that is always zero: honest updates and
    // the reference leave them at exactly 0; a backdoor writes its trigger there.
    const dead = (t: Tensor[]) => tensors(Float32Array.from(t[0]!.data, (v, j) => (j >= D - 500 ? 0 : v)));
    const onSupport: Evaluation = { classLosses: evaluation.classLosses, reference: async () => dead(await evaluation.reference()) };
    const backdoor = tensors(Float32Array.from(dead(honest())[0]!.data, (v, j) => (j >= D - 500 ? 3 : v)));
    const revealed = [0, 1, 2, 3].map((i) => reveal(i, dead(honest()))).concat([reveal(4, backdoor)]);
    const { decisions } = await decideRound(revealed, { model, rules: parseRules([{ rule: "support" }]) }, onSupport, { round: 2 });
    expect(decisions.map((d) => d.code)).to.deep.equal(["accepted", "accepted", "accepted", "accepted", "off-support"]);
    expect(decisions[4]!.metrics.deadShare).to.be.above(0.02);
    expect(decisions[0]!.metrics.deadShare).to.equal(0);
  });

  it("parses the job spec's rule list: defaults, order, parameters, and errors that name the field", function () {
    expect(parseValidation(undefined).rules.map((r) => r.rule)).to.deep.equal(["duplicate", "norm", "heldout", "trust", "neighbours", "support", "loss"]);
    const v = parseValidation({ rules: [{ rule: "norm", maxRatio: 3 }, { rule: "duplicate" }] });
    expect(v.rules).to.deep.equal([{ rule: "norm", minRatio: 0.1, maxRatio: 3 }, { rule: "duplicate", maxSimilarity: 0.99 }]);
    // A parsed policy written back to JSON (as `job create` and the demo pin it) parses to itself.
    const spec = parseJobSpec({ model: MNIST_MLP, aggregation: { kind: "multi_krum", f: 2 } });
    expect(parseJobSpec(JSON.parse(JSON.stringify(spec)))).to.deep.equal(spec);
    // A misspelt part would silently take the defaults (FedAvg here): it is refused by name.
    expect(() => parseJobSpec({ model: MNIST_MLP, aggregaton: { kind: "median" } })).to.throw(/job spec: "aggregaton" is not a part of a job spec \(it has: model, aggregation, validation, compression, privacy, encryption\)/);
    expect(() => parseValidation({ rules: [{ rule: "krumm" }] })).to.throw(/validation\.rules\[0\]\.rule must be one of "duplicate", "norm", "heldout", "trust", "neighbours", "support", "loss", "dp-norm", got "krumm"/);
    expect(() => parseValidation({ rules: [{ rule: "norm", maxratio: 3 }] })).to.throw(/rules\[0\]\.maxratio is not a parameter of this rule \(it has: minRatio, maxRatio\)/);
    expect(() => parseValidation({ rules: [{ rule: "norm", maxRatio: 0.5 }] })).to.throw(/rules\[0\]\.maxRatio must be a number in \[1, 1000000\], got 0.5/);
    expect(() => parseValidation({ rules: [{ rule: "norm" }, { rule: "norm" }] })).to.throw(/rule "norm" is listed twice/);
    expect(() => parseValidation({ maxNorm: 50 })).to.throw(/validation\.maxNorm is not a field/);
    expect(() => parseValidation({ reference: { lr: -1 } })).to.throw(/reference\.lr must be a positive number/);
    expect(() => parseValidation({ reference: "fast" })).to.throw(/reference must be an object/);
    expect(() => parseValidation({ reference: { learningRate: 1 } })).to.throw(/reference\.learningRate is not a field \(it has: epochs, batch, lr, momentum\)/);
  });
});
