/**
 * Privacy (issue 19): the RDP accountant against the reference implementations' own numbers, the
 * CSPRNG Gaussian's moments, the clip-and-noise mechanism and its norm bound, and the
 * first-dense-layer reconstruction attack on a real local training step, without and with noise.
 */
import { expect } from "chai";
import {
  DEFAULT_ORDERS,
  RdpAccountant,
  computeRdp,
  logErfc,
  noiseForEpsilon,
  rdpEpsilon,
  rdpToEpsilon,
} from "../../worker/privacy/accountant.ts";
import { addGaussian, secureNormal, seededNormalForTestsOnly, type NormalSource } from "../../worker/privacy/gaussian.ts";
import {
  aggregateNoiseMultiplier,
  checkNoisedNorm,
  clipL2,
  l2Norm,
  noiseStd,
  noisedNormBound,
  perUpdateNoiseMultiplier,
  privatize,
  privatizeTensors,
  type PrivacyMechanism,
} from "../../worker/privacy/mechanism.ts";
import { bestCorrelation, bestCorrelationPerImage, invertDense, invertFirstDense, pearson } from "../../worker/privacy/reconstruction.ts";
import { loadMnist } from "../../worker/data/mnist.ts";
import { initParams, paramsOf } from "../../worker/training/model.ts";
import { MNIST_MLP } from "../../worker/training/presets.ts";
import { localUpdate, Trainer } from "../../worker/training/trainer.ts";
import type { Tensor } from "../../worker/artifacts/index.ts";
import { prng } from "../../worker/util/prng.ts";
import { completePrivacy, epsilonSpent, parsePrivacy, perUpdateEpsilon } from "../../worker/privacy/policy.ts";
import { parseJobSpec } from "../../worker/node/jobSpec.ts";
import { dpNorm } from "../../worker/validation/rules/dpNorm.ts";
import { isSealed, recipientsOf, seal, SealError, sealKeysOf, unseal } from "../../worker/privacy/sealed.ts";
import type { RoundView } from "../../worker/validation/rule.ts";

/** |actual − expected| ≤ rel × |expected|. */
const within = (actual: number, expected: number, rel: number, what = "") =>
  expect(Math.abs(actual - expected), `${what}: ${actual} vs ${expected}`).to.be.at.most(rel * Math.abs(expected));

/** Standard normal CDF from our own logErfc: Φ(x) = ½ erfc(−x/√2). */
const Phi = (x: number) => 0.5 * Math.exp(logErfc(-x / Math.SQRT2));

/**
 * |actual − expected| ≤ tol, with `what` named on failure (chai's closeTo is replaced by a bigint matcher
 * when the Hardhat chai plugin is loaded, as in the full suite).
 */
function near(actual: number, ...rest: unknown[]): void {
  const [what, expected, tol] = typeof rest[0] === "string" ? (rest as [string, number, number]) : ([undefined, ...rest] as [undefined, number, number]);
  expect(Math.abs(actual - expected), `${what ? `${what}: ` : ""}${actual} is not within ${tol} of ${expected}`).to.be.at.most(tol);
}

describe("privacy: RDP accountant", () => {
  it("uses Opacus' default orders", () => {
    // opacus/accountants/rdp.py: DEFAULT_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
    expect(DEFAULT_ORDERS.length).to.equal(99 + 52);
    expect(DEFAULT_ORDERS[0]).to.equal(1.1);
    expect(DEFAULT_ORDERS[98]).to.equal(10.9);
    expect(DEFAULT_ORDERS[99]).to.equal(12);
    expect(DEFAULT_ORDERS.at(-1)).to.equal(63);
  });

  it("matches Opacus' published accountant and noise-multiplier tests", () => {
    // pytorch/opacus opacus/tests/accountants_test.py (commit 4d0ebc8), AccountingTest:
    //   test_rdp_accountant: z = 1.5, q = 0.04, steps = int(90 / 0.04), δ = 1e−5 → ε = 7.32911117143
    const acc = new RdpAccountant();
    for (let s = 0; s < Math.trunc(90 / 0.04); s++) acc.step(1.5, 0.04);
    expect(acc.history).to.have.length(1); // consecutive equal steps merge, as Opacus' history does
    within(acc.spent(1e-5).epsilon, 7.32911117143, 1e-6, "accountant");
    within(rdpEpsilon({ noiseMultiplier: 1.5, sampleRate: 0.04, steps: 2250, delta: 1e-5 }).epsilon, 7.32911117143, 1e-6, "rdpEpsilon");
    //   test_get_noise_multiplier_rdp_epochs: ε = 8, δ = 1e−5, q = 0.04, 90 epochs → z = 1.416 (places=4)
    const e90 = noiseForEpsilon({ targetEpsilon: 8, delta: 1e-5, sampleRate: 0.04, steps: Math.trunc(90 / 0.04) });
    near(e90.noiseMultiplier, 1.416, 5e-5);
    expect(e90.epsilon).to.be.at.most(8).and.at.least(8 - 0.01);
    //   test_get_noise_multiplier_rdp_steps: ε = 8, δ = 1e−5, q = 0.04, 2000 steps → z = 1.3562 (places=4)
    near(noiseForEpsilon({ targetEpsilon: 8, delta: 1e-5, sampleRate: 0.04, steps: 2000 }).noiseMultiplier, 1.3562, 5e-5);
  });

  it("matches TF-Privacy's published compute_rdp and get_privacy_spent tests", () => {
    // tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py (the last version before
    // it moved to dp_accounting, parent of commit 868cf54):
    //   test_compute_rdp_no_sampling: compute_rdp(1, 10, 1, 20) == 0.1;  test_compute_rdp_no_data: q = 0 → 0
    expect(computeRdp(1, 10, 1, [20])[0]).to.equal(0.1);
    expect(computeRdp(0, 10, 1, [20])[0]).to.equal(0);
    //   test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) ≈ 0.07737 (places=5)
    near(computeRdp(0.1, 2, 10, [5])[0], 0.07737, 5e-6);
    //   test_compute_rdp_sequence: compute_rdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100]), rtol 1e−4 — fractional
    //   orders (the erfc series) and integer ones (the binomial sum), up to a large order
    const expected = [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2];
    computeRdp(0.01, 2.5, 50, [1.5, 2.5, 5, 50, 100]).forEach((r, k) => within(r, expected[k]!, 1e-4, `order ${[1.5, 2.5, 5, 50, 100][k]}`));
    expect(computeRdp(0.01, 2.5, 50, [Infinity])[0]).to.equal(Infinity);
    //   test_get_privacy_spent_check_target_delta: constant rdp 1.1 over orders 2..32, δ = 1e−5 → ε = 1.32783806176 at order 32
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const c = rdpToEpsilon(orders, orders.map(() => 1.1), 1e-5);
    within(c.epsilon, 1.32783806176, 1e-9, "constant rdp");
    expect(c.order).to.equal(32);
    //   …second part: q = 1, z = 4.530877117, orders 0.001·i (i < 100000), δ = 1e−6 → ε = 1 (places=7)
    //   (order 1.000 itself is left out: the conversion is undefined there and TF-Privacy skips it)
    const fine = Array.from({ length: 100000 - 1001 }, (_, i) => 0.001 * (i + 1001));
    near(rdpEpsilon({ noiseMultiplier: 4.530877117, sampleRate: 1, steps: 1, delta: 1e-6, orders: fine }).epsilon, 1, 1e-7);
  });

  it("composes heterogeneous mechanisms as Opacus' docstring example", () => {
    // opacus/accountants/analysis/rdp.py module docstring: [(1e−5, 1.0, 10), (1e−4, 3.0, 4)], orders 2..32,
    // δ = 1e−5 → (ε, order) = (0.336, 23)
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const acc = new RdpAccountant(orders);
    acc.step(1.0, 1e-5, 10);
    acc.step(3.0, 1e-4, 4);
    const s = acc.spent(1e-5);
    within(s.epsilon, 0.336, 2e-3, "docstring");
    expect(s.order).to.equal(23);
    // The saved form restores the same accountant; spentAfter does not record.
    const back = RdpAccountant.fromJSON(JSON.parse(JSON.stringify(acc)));
    expect(back.spent(1e-5)).to.deep.equal(s);
    const after = acc.spentAfter(1e-5, { noiseMultiplier: 3.0, sampleRate: 1e-4, steps: 1 });
    expect(after.epsilon).to.be.greaterThan(s.epsilon);
    expect(acc.spent(1e-5)).to.deep.equal(s);
  });

  it("matches Opacus' rdp.py run on a grid of (q, z, steps, δ)", () => {
    // Reference values: opacus/accountants/analysis/rdp.py (commit 4d0ebc8) run unmodified with numpy and
    // scipy on this machine: get_privacy_spent(orders=DEFAULT_ALPHAS, rdp=compute_rdp(q, z, steps, DEFAULT_ALPHAS), delta).
    const grid: [q: number, z: number, steps: number, delta: number, eps: number, order: number][] = [
      [0.01, 1.1, 10000, 1e-5, 5.63199236854841, 4.7],
      [0.001, 0.8, 50000, 1e-6, 2.4074682890738974, 7.8],
      [0.2, 3.0, 100, 1e-5, 3.2539369166573517, 6.7],
      [0.5, 0.7, 20, 1e-3, 22.766495820863234, 1.7],
      [0.01, 4, 10000, 1e-5, 1.0354900660362476, 17],
      [1, 1.0, 1, 1e-5, 4.728507067217623, 5.4],
      [1, 5.0, 10, 1e-5, 2.8136532471298397, 7.9],
    ];
    for (const [q, z, steps, delta, eps, order] of grid) {
      const r = rdpEpsilon({ noiseMultiplier: z, sampleRate: q, steps, delta });
      within(r.epsilon, eps, 1e-9, `q=${q} z=${z} T=${steps}`);
      expect(r.order).to.equal(order);
    }
  });

  it("is exact without subsampling (q = 1): RDP = T·α/2z², and ε lies between the optimal Gaussian ε and the classic bound", () => {
    for (const [z, T] of [
      [0.64, 1],
      [1.0, 1],
      [2.0, 50],
      [10, 1000],
    ] as const) {
      computeRdp(1, z, T).forEach((r, k) => within(r, (T * DEFAULT_ORDERS[k]!) / (2 * z * z), 1e-14, `α=${DEFAULT_ORDERS[k]}`));
      const delta = 1e-5;
      const { epsilon } = rdpEpsilon({ noiseMultiplier: z, sampleRate: 1, steps: T, delta });
      // T Gaussian steps of multiplier z are one Gaussian of μ = √T / z; its exact δ(ε) (Balle & Wang 2018,
      // Thm. 8) at our ε must be ≤ δ — our ε is a valid (ε, δ) guarantee — and not far below (RDP is near-tight for the Gaussian).
      const mu = Math.sqrt(T) / z;
      const exactDelta = (e: number) => Phi(mu / 2 - e / mu) - Math.exp(e) * Phi(-mu / 2 - e / mu);
      expect(exactDelta(epsilon)).to.be.at.most(delta);
      expect(exactDelta(epsilon * 0.8)).to.be.greaterThan(delta);
      // The classic conversion (Mironov 2017, Prop. 3) at its continuous optimum: ρ + 2√(ρ log 1/δ), ρ = T / 2z².
      const rho = T / (2 * z * z);
      expect(epsilon).to.be.below(rho + 2 * Math.sqrt(rho * Math.log(1 / delta)));
    }
  });

  it("ε grows with steps and sample rate and shrinks with noise", () => {
    const e = (z: number, q: number, T: number) => rdpEpsilon({ noiseMultiplier: z, sampleRate: q, steps: T, delta: 1e-5 }).epsilon;
    expect(e(1, 0.01, 2000)).to.be.above(e(1, 0.01, 1000));
    expect(e(1, 0.02, 1000)).to.be.above(e(1, 0.01, 1000));
    expect(e(1.2, 0.01, 1000)).to.be.below(e(1, 0.01, 1000));
    // Subsampling amplifies privacy: q < 1 is never worse than q = 1.
    expect(e(1, 0.5, 10)).to.be.below(e(1, 1, 10));
    // And noiseForEpsilon inverts it for the no-subsampling case a job with per-round updates uses.
    const z = noiseForEpsilon({ targetEpsilon: 8, delta: 1e-5, sampleRate: 1, steps: 1 });
    expect(z.epsilon).to.be.at.most(8).and.at.least(7.99);
    expect(e(z.noiseMultiplier, 1, 1)).to.equal(z.epsilon);
  });

  it("computes log erfc where erfc underflows", () => {
    // scipy: 0.6931471805599453 + scipy.special.log_ndtr(−x·√2) (Opacus' _log_erfc), run on this machine.
    const ref: [number, number][] = [
      [-5, 0.6931471805591766],
      [-1, 0.6112323176780705],
      [0, 0],
      [0.3, -0.39843005144008525],
      [1, -1.849605509933249],
      [2, -5.36494126461664],
      [3, -10.720363041981116],
      [10, -102.87988902484493],
      [30, -903.9741171106442],
      [100, -10005.177585122668],
    ];
    for (const [x, v] of ref) near(logErfc(x), `x=${x}`, v, 1e-12 * Math.max(1, Math.abs(v)));
  });

  it("refuses malformed parameters", () => {
    expect(() => computeRdp(1.5, 1, 1)).to.throw(RangeError, /sample rate/);
    expect(() => computeRdp(0.1, -1, 1)).to.throw(RangeError, /noise multiplier/);
    expect(() => computeRdp(0.1, 1, 1.5)).to.throw(RangeError, /steps/);
    expect(() => rdpEpsilon({ noiseMultiplier: 1, sampleRate: 0.1, steps: 1, delta: 0 })).to.throw(RangeError, /delta/);
    expect(() => noiseForEpsilon({ targetEpsilon: 1e-9, delta: 1e-12, sampleRate: 1, steps: 1000 })).to.throw(RangeError, /too low/);
    expect(rdpEpsilon({ noiseMultiplier: 0, sampleRate: 0.1, steps: 1, delta: 1e-5 }).epsilon).to.equal(Infinity);
  });
});

/** Mean, variance and fourth standardised moment of n draws; throws on a non-finite one. */
function moments(source: NormalSource, n: number) {
  let s1 = 0;
  let s2 = 0;
  let s4 = 0;
  let tail = 0;
  for (let i = 0; i < n; i++) {
    const x = source.next();
    if (!Number.isFinite(x)) throw new Error(`draw ${i} is ${x}`);
    s1 += x;
    s2 += x * x;
    s4 += x ** 4;
    if (Math.abs(x) > 2) tail++;
  }
  const mean = s1 / n;
  const variance = s2 / n - mean * mean;
  return { mean, variance, kurtosis: s4 / n / (variance * variance), tail: tail / n };
}

describe("privacy: Gaussian sampler", () => {
  it("draws N(0, 1) from the CSPRNG: mean, variance, kurtosis and tail over 10⁶ draws", () => {
    const n = 1_000_000;
    const m = moments(secureNormal(), n);
    near(m.mean, 0, 5 / Math.sqrt(n)); // 5 standard errors
    near(m.variance, 1, 0.01); // standard error √(2/n) ≈ 0.0014
    near(m.kurtosis, 3, 0.05); // standard error √(24/n) ≈ 0.005
    near(m.tail, 0.0455, 0.002); // P(|Z| > 2) = 0.0455
  });

  it("two secure sources are independent; a seeded one is reproducible and says it is insecure", () => {
    const a = secureNormal();
    const b = secureNormal();
    const xa = Array.from({ length: 20_000 }, () => a.next());
    const xb = Array.from({ length: 20_000 }, () => b.next());
    expect(a.secure).to.equal(true);
    expect(Math.abs(pearson(xa, xb))).to.be.below(0.05);
    const s1 = seededNormalForTestsOnly(42);
    const s2 = seededNormalForTestsOnly(42);
    expect(s1.secure).to.equal(false);
    const v1 = Array.from({ length: 100 }, () => s1.next());
    expect(Array.from({ length: 100 }, () => s2.next())).to.deep.equal(v1);
    expect(Array.from({ length: 100 }, () => seededNormalForTestsOnly(43).next())).to.not.deep.equal(v1);
    const m = moments(seededNormalForTestsOnly(7), 200_000);
    near(m.mean, 0, 0.012);
    near(m.variance, 1, 0.02);
    // privatize will not take it for real.
    expect(() => privatize(new Float32Array(4), { clipNorm: 1, noiseMultiplier: 1, mode: "local" }, { source: s1 })).to.throw(/predictable/);
  });

  it("addGaussian scales by σ and refuses a bad σ", () => {
    const v = new Float64Array(200_000);
    addGaussian(v, 3);
    near(l2Norm(v) ** 2 / v.length, 9, 9 * 0.02);
    expect(() => addGaussian(v, NaN)).to.throw(RangeError);
  });
});

describe("privacy: DP-FedAvg mechanism", () => {
  const rand = prng(5);
  const randomVector = (d: number, scale: number) => Float32Array.from({ length: d }, () => (rand() * 2 - 1) * scale);

  it("clips to L2 ≤ C, reporting the norm before and whether it clipped", () => {
    for (const [d, scale, C] of [
      [1000, 1, 0.5],
      [101_770, 0.01, 1],
      [10, 1e6, 3.3],
      [7, 1e-30, 1e-31],
    ] as const) {
      const u = randomVector(d, scale);
      const before = l2Norm(u);
      const c = clipL2(u, C);
      expect(c.norm).to.equal(before);
      expect(c.clipped).to.equal(before > C);
      expect(l2Norm(c.update)).to.be.at.most(C);
      if (c.clipped) within(l2Norm(c.update), C, 1e-6, "clipped norm ≈ C");
      // Clipping keeps the direction.
      near(pearson(c.update, u), 1, 1e-6);
    }
    const small = randomVector(100, 0.001);
    const c = clipL2(small, 10);
    expect(c.clipped).to.equal(false);
    expect(c.update).to.deep.equal(small);
    expect(c.update).to.not.equal(small); // a copy: the caller's array is never modified
    const bad = randomVector(10, 1);
    bad[3] = NaN;
    expect(() => clipL2(bad, 1)).to.throw(RangeError, /non-finite/);
  });

  it("adds N(0, σ²) per coordinate with σ = z·C (local) or z·C/√k (distributed)", () => {
    const d = 1_000_000;
    const local: PrivacyMechanism = { clipNorm: 0.5, noiseMultiplier: 1.3, mode: "local" };
    const dist: PrivacyMechanism = { clipNorm: 0.5, noiseMultiplier: 1.3, mode: "distributed", expectedUpdates: 16 };
    near(noiseStd(local), 0.65, 1e-15);
    near(noiseStd(dist), 0.65 / 4, 1e-15);
    near(perUpdateNoiseMultiplier(dist), 1.3 / 4, 1e-15);
    near(aggregateNoiseMultiplier(dist, 16), 1.3, 1e-12);
    near(aggregateNoiseMultiplier(dist, 4), 1.3 / 2, 1e-12);
    const u = randomVector(d, 1);
    for (const m of [local, dist]) {
      const c = clipL2(u, m.clipNorm).update;
      const r = privatize(u, m);
      expect(r.clipped).to.equal(true);
      expect(r.preClipNorm).to.equal(l2Norm(u));
      expect(r.sigma).to.equal(noiseStd(m));
      let s = 0;
      let s2 = 0;
      for (let j = 0; j < d; j++) {
        const e = r.update[j]! - c[j]!;
        s += e;
        s2 += e * e;
      }
      const variance = s2 / d - (s / d) ** 2;
      within(variance, r.sigma ** 2, 0.02, `${m.mode} noise variance`);
      expect(Math.abs(s / d)).to.be.below((5 * r.sigma) / Math.sqrt(d));
    }
    // k distributed updates sum to the aggregate noise of multiplier z: variance z²C² per coordinate.
    const k = 16;
    const dd = 250_000; // standard error of the variance √(2/dd) ≈ 0.3 %: the 2 % tolerance is 7 of them
    const sum = new Float64Array(dd);
    for (let i = 0; i < k; i++) {
      const r = privatize(new Float32Array(dd), dist);
      for (let j = 0; j < dd; j++) sum[j]! += r.update[j]!;
    }
    within(l2Norm(sum) ** 2 / dd, (1.3 * 0.5) ** 2, 0.02, "aggregate noise variance");
    expect(() => noiseStd({ clipNorm: 1, noiseMultiplier: 1, mode: "distributed" })).to.throw(RangeError, /expectedUpdates/);
  });

  it("privatizeTensors clips all tensors together and keeps their shapes", () => {
    const delta: Tensor[] = [
      { name: "a", shape: [3, 4], data: randomVector(12, 5) },
      { name: "b", shape: [4], data: randomVector(4, 5) },
    ];
    const r = privatizeTensors(delta, { clipNorm: 1, noiseMultiplier: 0, mode: "local" });
    expect(r.delta.map((t) => [t.name, t.shape, t.data.length])).to.deep.equal([
      ["a", [3, 4], 12],
      ["b", [4], 4],
    ]);
    within(r.preClipNorm, Math.hypot(l2Norm(delta[0]!.data), l2Norm(delta[1]!.data)), 1e-12, "joint norm");
    expect(Math.hypot(l2Norm(r.delta[0]!.data), l2Norm(r.delta[1]!.data))).to.be.at.most(1);
    near(pearson([...r.delta[0]!.data, ...r.delta[1]!.data], [...delta[0]!.data, ...delta[1]!.data]), 1, 1e-6);
  });

  it("the norm bound holds for 1000 honest updates and rejects an update clipped to 2C or left without noise", () => {
    const d = 10_000;
    const honest = (m: PrivacyMechanism, clip = m.clipNorm) => {
      const u = randomVector(d, 1); // norm ≈ 58: always clipped
      const c = clipL2(u, clip).update;
      addGaussian(c, noiseStd(m));
      return l2Norm(c);
    };
    // Low noise against the clip (σ√d = 0.1 C: e.g. distributed noise over many workers): the bound is tight.
    const low: PrivacyMechanism = { clipNorm: 1, noiseMultiplier: 0.032, mode: "distributed", expectedUpdates: 1024 };
    // Local noise at ε = 8 (z ≈ 0.64) on a 10k-parameter update: σ√d = 64 C, the noise dominates.
    const high: PrivacyMechanism = { clipNorm: 1, noiseMultiplier: 0.64, mode: "local" };
    for (const m of [low, high]) {
      const b = noisedNormBound({ clipNorm: m.clipNorm, sigma: noiseStd(m), dim: d });
      for (let i = 0; i < 1000; i++) expect(checkNoisedNorm(honest(m), b)).to.deep.equal({ ok: true });
      expect(b.upper).to.be.below(m.clipNorm + noiseStd(m) * Math.sqrt(d) * 1.07);
    }
    const b = noisedNormBound({ clipNorm: 1, sigma: noiseStd(low), dim: d });
    const cheat = checkNoisedNorm(honest(low, 2), b);
    expect(cheat.ok).to.equal(false);
    expect(!cheat.ok && cheat.reason).to.match(/exceeds/);
    expect(b.maxPassingSignalNorm).to.be.below(1.2);
    // Under high noise the norm cannot see a 2C clip (the limit of what a validator can check), but does see missing noise.
    const bh = noisedNormBound({ clipNorm: 1, sigma: noiseStd(high), dim: d });
    expect(bh.maxPassingSignalNorm).to.be.above(2);
    const noNoise = checkNoisedNorm(l2Norm(clipL2(randomVector(d, 1), 1).update), bh);
    expect(noNoise.ok).to.equal(false);
    expect(!noNoise.ok && noNoise.reason).to.match(/noise looks missing/);
    expect(checkNoisedNorm(NaN, bh).ok).to.equal(false);
  });
});

describe("privacy: reconstruction from the first dense layer", function () {
  this.timeout(60_000);

  it("recovers an input exactly from a synthetic one-example gradient", () => {
    const inputs = 50;
    const units = 8;
    const x = Float32Array.from({ length: inputs }, (_, j) => Math.sin(j));
    const delta = Float32Array.from({ length: units }, (_, i) => (i % 3 === 0 ? 0 : 0.1 * (i + 1)));
    const dW = new Float32Array(inputs * units);
    for (let j = 0; j < inputs; j++) for (let i = 0; i < units; i++) dW[j * units + i] = -0.03 * x[j]! * delta[i]!;
    const dB = delta.map((v) => -0.03 * v);
    const c = invertDense(dW, dB);
    expect(c.map((k) => k.unit)).to.deep.equal([1, 2, 4, 5, 7]);
    for (const k of c) for (let j = 0; j < inputs; j++) near(k.x[j], x[j]!, 1e-5);
    near(bestCorrelation(c, [x]).correlation, 1, 1e-9);
  });

  it("reads 4 MNIST images out of one local step; clipping alone does not help, ε = 8 local noise does", async () => {
    const started = performance.now();
    const spec = MNIST_MLP;
    const data = await loadMnist("train", 4);
    const images = Array.from({ length: 4 }, (_, i) => data.x.subarray(i * 784, (i + 1) * 784));
    const init = initParams(spec);
    const base: Tensor[] = paramsOf(spec).map((p) => ({ name: p.name, shape: p.shape, data: init.get(p.name)! }));
    // The demo's local training recipe (SGD, lr 0.03, momentum 0.9), one epoch of one batch of 4: one step.
    const trainer = await Trainer.create(spec, { batch: 4, steps: 1, optimizer: { kind: "sgd", lr: 0.03, momentum: 0.9 }, threads: 1 });
    const { delta, losses } = await localUpdate(trainer, base, data, { epochs: 1, seed: 1 });
    expect(losses).to.have.length(1);

    // Privacy off: every image is recovered (correlation ≈ 1) by some hidden unit that fired for it alone.
    const off = bestCorrelationPerImage(invertFirstDense(spec, delta), images);
    for (const r of off) expect(r).to.be.above(0.9);

    // Clipping only (to a tenth of the update's norm): the ratio ΔW/Δb is unchanged, so is the attack.
    const norm = l2Norm(delta.flatMap((t) => [...t.data]));
    const clippedOnly = privatizeTensors(delta, { clipNorm: norm / 10, noiseMultiplier: 0, mode: "local" });
    expect(clippedOnly.clipped).to.equal(true);
    for (const r of bestCorrelationPerImage(invertFirstDense(spec, clippedOnly.delta), images)) expect(r).to.be.above(0.9);

    // Local DP at (ε, δ) = (8, 1e−5) for this one release (q = 1: the update is published; steps = 1: one round),
    // C = the update's own norm (nothing clipped away: the noise alone does the work).
    const { noiseMultiplier } = noiseForEpsilon({ targetEpsilon: 8, delta: 1e-5, sampleRate: 1, steps: 1 });
    const noised = privatizeTensors(delta, { clipNorm: norm, noiseMultiplier, mode: "local" });
    const on = bestCorrelation(invertFirstDense(spec, noised.delta), images);
    expect(on.correlation).to.be.below(0.5);
    expect(performance.now() - started).to.be.below(20_000);
  });
});

describe("privacy: the job spec's privacy section and the validators' dp-norm rule", () => {
  const base = { mode: "local", clipNorm: 1, epsilon: 8, delta: 1e-5 } as const;

  it("job create derives the noise multiplier for the job's rounds; a given one that overspends, or a missing k, is refused", () => {
    const done = completePrivacy({ ...base }, { rounds: 10, minUpdates: 0 });
    const z = done.noiseMultiplier as number;
    // The smallest multiplier (to the search's tolerance) that keeps 10 releases within ε = 8.
    expect(epsilonSpent(parsePrivacy(done)!, 10)).to.be.at.most(8).and.above(7.9);
    expect(rdpEpsilon({ noiseMultiplier: z, sampleRate: 1, steps: 10, delta: 1e-5 }).epsilon).to.equal(epsilonSpent(parsePrivacy(done)!, 10));
    expect(() => completePrivacy({ ...base, noiseMultiplier: z / 2 }, { rounds: 10, minUpdates: 0 })).to.throw(/noise multiplier [\d.]+ spends ε = [\d.]+ over the job's 10 rounds, above its epsilon 8/);
    expect(completePrivacy({ ...base, mode: "distributed" }, { rounds: 10, minUpdates: 4 })).to.include({ expectedUpdates: 4 });
    expect(() => completePrivacy({ ...base, mode: "distributed" }, { rounds: 10, minUpdates: 0 })).to.throw(/expectedUpdates is missing: give it, or set job.minUpdates/);
  });

  it("parsePrivacy names each bad field; distributed noise protects one update less than the aggregate", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ ...base, noiseMultiplier: 1, mode: "central" }, /privacy.mode must be "local" or "distributed", got "central"/],
      [{ ...base, noiseMultiplier: 1, clipNorm: 0 }, /privacy.clipNorm must be a positive number, got 0/],
      [{ ...base, noiseMultiplier: 1, delta: 1 }, /privacy.delta must be below 1/],
      [{ ...base }, /privacy.noiseMultiplier is missing/],
      [{ ...base, noiseMultiplier: 1, epsilonn: 3 }, /privacy.epsilonn is not a field/],
      [{ ...base, noiseMultiplier: 1, expectedUpdates: 3 }, /expectedUpdates is for distributed noise only/],
      [{ ...base, noiseMultiplier: 1, mode: "distributed" }, /expectedUpdates must be a positive integer for distributed noise/],
    ];
    for (const [raw, re] of bad) expect(() => parsePrivacy(raw), JSON.stringify(raw)).to.throw(re);
    const d = parsePrivacy({ ...base, mode: "distributed", noiseMultiplier: 2, expectedUpdates: 16 })!;
    expect(perUpdateEpsilon(d, 5)).to.be.above(epsilonSpent(d, 5) * 5);
    const l = parsePrivacy({ ...base, noiseMultiplier: 2 })!;
    expect(perUpdateEpsilon(l, 5)).to.equal(epsilonSpent(l, 5));
  });

  it("a private job spec puts dp-norm first with the section's bound, defaults to duplicate only, and refuses top-k and a different dp-norm", () => {
    const model = { input: [4], classes: 2, seed: 1, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 2 }] };
    const spec = parseJobSpec({ model, privacy: { ...base, noiseMultiplier: 2 } });
    expect(spec.validation.rules).to.deep.equal([{ rule: "dp-norm", clipNorm: 1, noiseStd: 2, falseRejection: 1e-9 }, { rule: "duplicate", maxSimilarity: 0.99 }]);
    expect(parseJobSpec({ model, privacy: { ...base, noiseMultiplier: 2 }, validation: { rules: [{ rule: "norm" }] } }).validation.rules.map((r) => r.rule)).to.deep.equal(["dp-norm", "norm"]);
    expect(() => parseJobSpec({ model, privacy: { ...base, noiseMultiplier: 2 }, compression: { kind: "topk" } })).to.throw(/privacy needs a dense compression/);
    expect(() => parseJobSpec({ model, privacy: { ...base, noiseMultiplier: 2 }, validation: { rules: [{ rule: "dp-norm", clipNorm: 9 }] } })).to.throw(/"dp-norm" is set by the privacy section/);
    expect(parseJobSpec({ model }).privacy).to.equal(undefined);
  });

  it("dp-norm passes clipped and noised updates and rejects an unclipped one and one without its noise, with the reason", async () => {
    const d = 2000;
    const C = 1;
    const sigma = 0.05;
    const src = seededNormalForTestsOnly(7);
    const candidate = (index: number, flat: Float64Array) => ({ index, worker: "0x", numSamples: 1n, delta: [], flat, norm: Math.hypot(...flat) });
    const honest = (i: number) => {
      const u = new Float32Array(d).fill(10);
      const r = privatize(u, { mode: "local", clipNorm: C, noiseMultiplier: sigma / C }, { source: src, insecureSourceForTests: true });
      return candidate(i, Float64Array.from(r.update));
    };
    const unclipped = candidate(3, Float64Array.from({ length: d }, (_, j) => (j % 2 ? 0.1 : -0.1) + sigma * src.next()));
    const noNoise = candidate(4, Float64Array.from({ length: d }, () => C / Math.sqrt(d) / 10));
    const view = { candidates: [honest(0), honest(1), honest(2), unclipped, noNoise] } as unknown as RoundView;
    const verdicts = await dpNorm.judge(view, { clipNorm: C, noiseStd: sigma, falseRejection: 1e-9 });
    expect(verdicts.slice(0, 3).map((v) => v.pass)).to.deep.equal([true, true, true]);
    expect(verdicts[3]).to.deep.include({ pass: false, code: "dp-norm-high" });
    expect(verdicts[3]!.reason).to.match(/exceeds [\d.]+, the most a clipped and noised update reaches/);
    expect(verdicts[4]).to.deep.include({ pass: false, code: "dp-norm-low" });
    expect(verdicts[4]!.reason).to.match(/the privacy noise looks missing/);
  });
});

describe("privacy: updates sealed to the committee", () => {
  it("seals to each recipient, refuses an empty recipient list, and names malformed bytes", async () => {
    const a = await sealKeysOf("0x" + "11".repeat(32));
    const b = await sealKeysOf("0x" + "22".repeat(32));
    // The same staking key always gives the same sealing key; another key another.
    expect(Buffer.from((await sealKeysOf("0x" + "11".repeat(32))).publicKey).equals(Buffer.from(a.publicKey))).to.equal(true);
    expect(Buffer.from(b.publicKey).equals(Buffer.from(a.publicKey))).to.equal(false);
    const plain = new TextEncoder().encode("an update artifact");
    const sealed = await seal(plain, [{ address: "0x" + "aa".repeat(20), publicKey: a.publicKey }, { address: "0x" + "BB".repeat(20), publicKey: b.publicKey }]);
    expect(isSealed(sealed) && !isSealed(plain)).to.equal(true);
    expect(recipientsOf(sealed)).to.deep.equal(["0x" + "aa".repeat(20), "0x" + "bb".repeat(20)]);
    expect(new TextDecoder().decode(await unseal(sealed, { address: "0x" + "bb".repeat(20), keys: b }))).to.equal("an update artifact");
    // A slot opened with the wrong key: authentication fails, it is not taken for another's.
    const wrong = await unseal(sealed, { address: "0x" + "aa".repeat(20), keys: b }).then(() => undefined, (e: SealError) => e);
    expect(wrong?.code).to.equal("authentication");
    await seal(plain, []).then(() => expect.fail("sealed to nobody"), (e: Error) => expect(e.message).to.match(/at least one recipient/));
    for (const [bytes, re] of [
      [plain, /no FSSEAL1 magic/],
      [sealed.subarray(0, 10), /truncated before its header length|cannot hold/],
      [sealed.subarray(0, 40), /cannot hold a \d+-byte header and a tag/],
    ] as const) {
      const e = await unseal(bytes, { address: "0x" + "aa".repeat(20), keys: a }).then(() => undefined, (x: SealError) => x);
      expect(e?.code, String(re)).to.equal("malformed");
      expect(e?.message).to.match(re);
    }
  });

  it("a job spec's encryption part: public or committee, every error named", () => {
    const model = { input: [4], classes: 2, seed: 1, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 2 }] };
    expect(parseJobSpec({ model, encryption: { updates: "committee" } }).encryption).to.deep.equal({ updates: "committee" });
    expect(parseJobSpec({ model }).encryption).to.equal(undefined);
    expect(() => parseJobSpec({ model, encryption: { updates: "secret" } })).to.throw(/encryption.updates must be "public" or "committee", got "secret"/);
    expect(() => parseJobSpec({ model, encryption: { models: "committee" } })).to.throw(/encryption.models is not a field/);
  });
});
