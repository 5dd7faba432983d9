import { expect } from "chai";
import type { Tensor } from "../../worker/artifacts/index.ts";
import {
  AGGREGATION_KINDS,
  AGGREGATIONS,
  aggregate,
  AggregationError,
  defaultKrumF,
  krumSelect,
  parseAggregation,
  type AggregationKind,
  type AggregationPolicy,
  type Contribution,
} from "../../worker/aggregation/index.ts";
import { SpecError } from "../../worker/training/spec.ts";
import { prng } from "../../worker/util/prng.ts";

const base = (): Tensor[] => [
  { name: "w", shape: [2, 2], data: Float32Array.from([1, -2, 3, 0.5]) },
  { name: "b", shape: [2], data: Float32Array.from([0, 0.25]) },
];
/** An update moving every coordinate by `v`. */
const constant = (v: number, numSamples = 100): Contribution => ({ delta: base().map((t) => ({ ...t, data: new Float32Array(t.data.length).fill(v) })), numSamples });
/** An update with random coordinates in ±scale/2 around `centre`. */
const random = (seed: number, scale = 0.01, centre = 0, numSamples = 100): Contribution => {
  const r = prng(seed);
  return { delta: base().map((t) => ({ ...t, data: Float32Array.from(t.data, () => centre + (r() - 0.5) * scale) })), numSamples };
};
const bytesOf = (ts: Tensor[]) => Buffer.concat(ts.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)));
const copy = (ups: Contribution[]): Contribution[] => ups.map((u) => ({ delta: u.delta.map((t) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data) })), numSamples: u.numSamples }));
/** The model moved by exactly `d` at every coordinate (computed as the strategies do: float64, rounded once). */
const movedBy = (d: number) => base().map((t) => Float32Array.from(t.data, (v) => v + d));
const values = (ts: Tensor[]) => ts.map((t) => t.data);
const f32 = Math.fround;

/** A valid policy of every kind (typed so that a new strategy must be added here). */
const SAMPLE: Record<AggregationKind, AggregationPolicy> = {
  fedavg: { kind: "fedavg" },
  median: { kind: "median" },
  trimmed_mean: { kind: "trimmed_mean", trim: 0.2 },
  krum: { kind: "krum" },
  multi_krum: { kind: "multi_krum" },
};

describe("aggregation registry", function () {
  it("lists every strategy under its own kind", function () {
    expect(AGGREGATION_KINDS).to.deep.equal(["fedavg", "median", "trimmed_mean", "krum", "multi_krum"]);
    for (const k of AGGREGATION_KINDS) {
      expect(AGGREGATIONS[k].kind).to.equal(k);
      expect(AGGREGATIONS[k].summary).to.be.a("string").that.is.not.empty;
    }
    expect(AGGREGATIONS.fedavg.defaults).to.deep.equal({ medianMultiple: 2 });
  });

  it("parses each kind, returning the parameters as given (absent: fedavg)", function () {
    expect(parseAggregation(undefined)).to.deep.equal({ kind: "fedavg" });
    expect(parseAggregation({ kind: "fedavg" })).to.deep.equal({ kind: "fedavg" });
    expect(parseAggregation({ kind: "fedavg", sampleCap: 500, medianMultiple: 3 })).to.deep.equal({ kind: "fedavg", sampleCap: 500, medianMultiple: 3 });
    expect(parseAggregation({ kind: "median" })).to.deep.equal({ kind: "median" });
    expect(parseAggregation({ kind: "trimmed_mean", trim: 0 })).to.deep.equal({ kind: "trimmed_mean", trim: 0 });
    expect(parseAggregation({ kind: "krum" })).to.deep.equal({ kind: "krum" });
    expect(parseAggregation({ kind: "krum", f: 0 })).to.deep.equal({ kind: "krum", f: 0 });
    expect(parseAggregation({ kind: "multi_krum", f: 2, m: 3 })).to.deep.equal({ kind: "multi_krum", f: 2, m: 3 });
  });

  it("names the field of every bad value", function () {
    const bad = (raw: unknown, msg: string | RegExp) => expect(() => parseAggregation(raw), JSON.stringify(raw)).to.throw(SpecError, msg);
    bad({ kind: "mean" }, 'job spec: aggregation.kind must be one of "fedavg", "median", "trimmed_mean", "krum", "multi_krum", got "mean"');
    bad({}, /aggregation\.kind must be one of .*, got nothing$/);
    bad("fedavg", /job spec: aggregation must be an object/);
    bad(null, /job spec: aggregation must be an object/);
    bad({ kind: "fedavg", sampleCap: 0 }, "job spec: aggregation.sampleCap must be a positive number, got 0");
    bad({ kind: "fedavg", sampleCap: "100" }, /aggregation\.sampleCap must be a positive number/);
    bad({ kind: "fedavg", medianMultiple: 0.5 }, "job spec: aggregation.medianMultiple must be a number ≥ 1, got 0.5");
    bad({ kind: "trimmed_mean", trim: 0.5 }, "job spec: aggregation.trim must be in [0, 0.5), got 0.5");
    bad({ kind: "trimmed_mean", trim: -0.1 }, /aggregation\.trim must be in \[0, 0\.5\)/);
    bad({ kind: "trimmed_mean" }, "job spec: aggregation.trim must be in [0, 0.5), got nothing");
    bad({ kind: "krum", f: -1 }, /job spec: aggregation\.f must be a non-negative integer/);
    bad({ kind: "krum", f: 1.5 }, /aggregation\.f must be a non-negative integer/);
    bad({ kind: "multi_krum", f: "1" }, /aggregation\.f must be a non-negative integer/);
    bad({ kind: "multi_krum", m: 0 }, /job spec: aggregation\.m must be a positive integer.*got 0$/);
    bad({ kind: "multi_krum", m: 2.5 }, /aggregation\.m must be a positive integer/);
    // A parameter the kind does not take is a mistake in the spec, not something to ignore.
    bad({ kind: "median", trim: 0.2 }, 'job spec: aggregation.trim is not a parameter of "median" (it takes no parameters)');
    bad({ kind: "krum", m: 3 }, 'job spec: aggregation.m is not a parameter of "krum" (it takes f)');
    bad({ kind: "fedavg", samplecap: 3 }, /aggregation\.samplecap is not a parameter of "fedavg" \(it takes sampleCap, medianMultiple\)/);
  });

  it("types the policy as a union discriminated by kind", function () {
    const ok: AggregationPolicy[] = [{ kind: "krum", f: 1 }, { kind: "multi_krum", m: 2 }, { kind: "fedavg", sampleCap: 3 }];
    // @ts-expect-error trim is not a Krum parameter
    const wrongField: AggregationPolicy = { kind: "krum", trim: 0.2 };
    // @ts-expect-error unknown kind
    const wrongKind: AggregationPolicy = { kind: "mean" };
    expect(ok.length + [wrongField, wrongKind].length).to.equal(5);
    expect(() => aggregate(wrongKind, base(), [constant(1)])).to.throw(AggregationError, /unknown aggregation kind "mean"/);
  });
});

describe("Krum and Multi-Krum", function () {
  // Five honest updates near +1 and two colluding attackers far away, interleaved in index order.
  // Squared distances are 6 × (cᵢ − cⱼ)²; with n = 7, f = 2 each score sums the 3 nearest:
  //   0.9 → 0.0725, 1.0 → 0.0225, 1.05 → 0.0275, 1.1 → 0.0525, 1.3 → 0.1925 (× 6); attackers: huge.
  const C = [0.9, 50, 1.0, 1.05, 50, 1.1, 1.3];
  const ups = (): Contribution[] => C.map((c) => constant(c));
  const honest = [0, 2, 3, 5, 6];

  it("defaults f to the largest the round tolerates", function () {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 10, 11].map(defaultKrumF)).to.deep.equal([0, 0, 0, 0, 1, 1, 2, 2, 3, 4]);
    for (let n = 3; n < 40; n++) {
      const f = defaultKrumF(n);
      expect(n > 2 * f + 2 && !(n > 2 * (f + 1) + 2), `n = ${n}`).to.equal(true);
    }
  });

  it("Krum picks the honest update with the lowest score, not the attackers' point", function () {
    const sel = krumSelect(ups(), undefined, 1);
    expect(sel).to.include({ f: 2, neighbours: 3 });
    expect(sel.selected).to.deep.equal([2]);
    expect(Math.abs(sel.scores[2] - 6 * 0.0225)).to.be.below(1e-5); // (the Hardhat chai plugin makes closeTo a bigint matcher)
    expect(Math.abs(sel.scores[3] - 6 * 0.0275)).to.be.below(1e-5); // (the Hardhat chai plugin makes closeTo a bigint matcher)
    expect(sel.scores[1]).to.be.above(6 * 48 * 48);
    // The model moves by exactly update 2 (1.0); FedAvg is dragged towards the attackers.
    expect(values(aggregate({ kind: "krum" }, base(), ups()))).to.deep.equal(movedBy(1.0));
    // f = 1: 4 neighbours each; 1.05 → 0.09 beats 1.1 → 0.0925 and 1.0 → 0.1125.
    expect(values(aggregate({ kind: "krum", f: 1 }, base(), ups()))).to.deep.equal(movedBy(f32(1.05)));
    expect(aggregate({ kind: "fedavg" }, base(), ups())[0]!.data[0]! - 1).to.be.above(10);
  });

  it("Multi-Krum averages the honest cluster (m = n − f by default), unweighted", function () {
    expect(krumSelect(ups(), undefined).selected).to.deep.equal(honest);
    const honestMean = honest.reduce((s, i) => s + f32(C[i]!), 0) / honest.length; // ≈ 1.07
    // The attackers declare huge sample counts: Multi-Krum ignores counts.
    const claimed = ups().map((u, i) => (honest.includes(i) ? u : { ...u, numSamples: 1e9 }));
    expect(values(aggregate({ kind: "multi_krum" }, base(), claimed))).to.deep.equal(movedBy(honestMean));
    // m = 2: the two lowest scores, 1.0 and 1.05.
    expect(values(aggregate({ kind: "multi_krum", m: 2 }, base(), ups()))).to.deep.equal(movedBy((f32(1.0) + f32(1.05)) / 2));
    // m = 1 is Krum.
    expect(bytesOf(aggregate({ kind: "multi_krum", m: 1 }, base(), ups())).equals(bytesOf(aggregate({ kind: "krum" }, base(), ups())))).to.equal(true);
  });

  it("keeps random honest updates and drops random far attackers", function () {
    const n = 11;
    const f = defaultKrumF(n); // 4
    const attackers = new Set([1, 4, 6, 9]);
    const round = Array.from({ length: n }, (_, i) => (attackers.has(i) ? random(100 + i, 200) : random(i, 0.02, 0.5)));
    expect(krumSelect(round, undefined).selected).to.deep.equal([0, 2, 3, 5, 7, 8, 10]);
    const [pick] = krumSelect(round, f, 1).selected;
    expect(attackers.has(pick!)).to.equal(false);
    expect(values(aggregate({ kind: "krum" }, base(), round))).to.deep.equal(values(base().map((t, i) => ({ ...t, data: Float32Array.from(t.data, (v, j) => v + round[pick!]!.delta[i]!.data[j]!) }))));
    const shift = aggregate({ kind: "multi_krum" }, base(), round).flatMap((t, i) => [...t.data].map((v, j) => v - base()[i]!.data[j]!));
    for (const s of shift) expect(Math.abs(s - 0.5)).to.be.below(0.01); // (the Hardhat chai plugin makes closeTo a bigint matcher)
  });

  it("never selects an update with NaN coordinates", function () {
    const nan = { ...constant(1), delta: constant(1).delta.map((t) => ({ ...t, data: t.data.map(() => NaN) })) };
    // n = 5, f = 1, 2 neighbours: 1 → 0.0125, 0.95 → 0.025, 1.1 → 0.0325, 1.3 → 0.13 (× 6); NaN's score counts as +∞.
    const round = [constant(1), constant(1.1), nan, constant(1.3), constant(0.95)];
    const sel = krumSelect(round, 1, 1);
    expect(sel.selected).to.deep.equal([0]);
    expect(sel.scores[2]).to.be.NaN;
    expect(krumSelect(round, 1, 3).selected).to.deep.equal([0, 1, 4]);
    expect(krumSelect(round, 1, 4).selected).to.deep.equal([0, 1, 3, 4]);
  });

  it("refuses an f the round cannot tolerate, naming n and f", function () {
    const four = ups().slice(0, 4);
    expect(() => aggregate({ kind: "krum", f: 1 }, base(), four)).to.throw(AggregationError, /n = 4, f = 1 \(n = 4 tolerates at most f = 0\)/);
    expect(() => aggregate({ kind: "multi_krum", f: 3 }, base(), ups())).to.throw(AggregationError, /n = 7, f = 3/);
    expect(() => aggregate({ kind: "krum", f: 1 }, base(), four.slice(0, 2))).to.throw(AggregationError, /n = 2, f = 1/);
    expect(() => aggregate({ kind: "multi_krum", m: 6 }, base(), ups())).to.throw(AggregationError, /m = 6 exceeds n − f = 5 \(n = 7, f = 2\)/);
    expect(() => aggregate({ kind: "multi_krum", f: 0, m: 8 }, base(), ups())).to.throw(AggregationError, /m = 8 exceeds n − f = 7/);
  });

  it("with n ≤ 2 (f = 0) selects nothing out: the update itself, or the mean of both", function () {
    expect(values(aggregate({ kind: "krum" }, base(), [constant(0.5)]))).to.deep.equal(movedBy(0.5));
    expect(values(aggregate({ kind: "krum", f: 0 }, base(), [constant(0.5), constant(1.5)]))).to.deep.equal(movedBy(1));
    expect(values(aggregate({ kind: "multi_krum", m: 1 }, base(), [constant(0.5), constant(1.5)]))).to.deep.equal(movedBy(1));
    // n = 3, f = 0: one neighbour each; 1.0 and 1.2 are each other's nearest, the tie goes to the lower index.
    expect(values(aggregate({ kind: "krum" }, base(), [constant(3), constant(1.2), constant(1)]))).to.deep.equal(movedBy(f32(1.2)));
  });
});

describe("every aggregation strategy", function () {
  const round = (): Contribution[] => [random(1), random(2, 0.05), random(3), random(4, 1), random(5), random(6, 0.02, 0.01), random(7)].map((u, i) => ({ ...u, numSamples: 50 + 30 * i }));

  for (const kind of AGGREGATION_KINDS) {
    const policy = SAMPLE[kind];

    it(`${kind}: the same bytes for copied inputs, and differs from the base`, function () {
      const a = aggregate(policy, base(), round());
      const b = aggregate(policy, base(), copy(round()));
      expect(bytesOf(a).equals(bytesOf(b))).to.equal(true);
      expect(bytesOf(a).equals(bytesOf(base()))).to.equal(false);
      expect(a.map((t) => [t.name, t.shape])).to.deep.equal(base().map((t) => [t.name, t.shape]));
    });

    it(`${kind}: rejects empty rounds and mismatched tensors`, function () {
      const bad = (updates: Contribution[], msg: RegExp) => expect(() => aggregate(policy, base(), updates)).to.throw(AggregationError, msg);
      bad([], /no accepted updates/);
      const ok = round();
      bad([...ok, { delta: [base()[0]!], numSamples: 1 }], /update 7 has 1 tensors, the model has 2/);
      const renamed = copy(ok);
      renamed[2]!.delta[1]!.name = "bias";
      bad(renamed, /update 2, tensor 1: "bias" \(2\) does not match "b" \(2\)/);
      const short = copy(ok);
      short[0]!.delta[0] = { name: "w", shape: [3], data: new Float32Array(3) };
      bad(short, /update 0, tensor 0: "w" \(3\) does not match "w" \(4\)/);
      // Straight through the strategy too, not only the registry.
      expect(() => AGGREGATIONS[kind].aggregate(policy as never, base(), short)).to.throw(AggregationError, /does not match/);
    });
  }

  it("order statistics (median, trimmed mean, Krum) give the same bytes for permuted updates", function () {
    const ups = round();
    const perm = [4, 0, 6, 2, 5, 1, 3].map((i) => copy(ups)[i]!);
    for (const policy of [SAMPLE.median, SAMPLE.trimmed_mean, SAMPLE.krum, { kind: "trimmed_mean", trim: 0.3 } as const]) {
      expect(bytesOf(aggregate(policy, base(), perm)).equals(bytesOf(aggregate(policy, base(), ups))), policy.kind).to.equal(true);
    }
    // Multi-Krum selects the same set whatever the order.
    const ids = (sel: number[], order: number[]) => sel.map((i) => order[i]!).sort((a, b) => a - b);
    expect(ids(krumSelect(perm, undefined).selected, [4, 0, 6, 2, 5, 1, 3])).to.deep.equal(krumSelect(ups, undefined).selected);
  });
});
