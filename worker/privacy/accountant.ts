/**
 * Rényi-DP accounting of the (Poisson-subsampled) Gaussian mechanism, composed over steps and
 * converted to (ε, δ)-DP: what a job states ("this model is (ε, δ)-DP with respect to one worker's
 * data") and what a worker checks before it trains another round.
 *
 * Why RDP: the Gaussian mechanism's privacy loss composes additively in Rényi divergence at every
 * order α (Mironov 2017, "Rényi Differential Privacy", Prop. 1), and the Gaussian mechanism of
 * noise multiplier z (noise standard deviation z × the L2 sensitivity) is (α, α / 2z²)-RDP for all
 * α > 1 (ibid., Prop. 7). When each release only sees a Poisson sample (each participant included
 * independently with probability q) the RDP at order α is log(A_α) / (α − 1), with A_α computed as
 * in Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism"
 * (arXiv:1908.10530, §3.3): an exact binomial sum for integer α, and for fractional α two convergent
 * series with erfc tails. The RDP curve is then converted to (ε, δ) at the best order with the
 * improved conversion of Balle et al. 2020, "Hypothesis testing interpretations and Rényi
 * differential privacy", Thm. 21 (also Canonne, Kamath and Steinke 2020, Prop. 12):
 *
 *     ε = rdp(α) + log((α − 1)/α) − (log δ + log α)/(α − 1).
 *
 * This is a line-by-line port of Opacus `opacus/accountants/analysis/rdp.py` (itself from TF-Privacy
 * `rdp_accountant.py`): the same log-space sums, the same termination rule for the fractional series,
 * the same default orders and the same conversion (with TF-Privacy's two safeguards: the KL bound
 * that gives ε = 0 when δ² ≥ 1 − e^{−rdp}, and no use of orders ≤ 1.01 where the conversion is
 * numerically unstable), so numbers agree with both to floating-point accuracy (the tests check it).
 *
 * Against whom: the guarantee is about the output of the mechanism (the noised update, or the noised
 * aggregate — see mechanism.ts for which one, depending on the noise mode) and holds against anyone
 * who sees it, with any side information, and any computing power. It is a statement about the
 * neighbouring relation the sensitivity was computed for: here, one worker's whole contribution
 * (user-level DP, as in DP-FedAvg, McMahan et al. 2018), not one example.
 */

/** Opacus' `RDPAccountant.DEFAULT_ALPHAS`: 1.1, 1.2, …, 10.9 and 12, 13, …, 63. */
export const DEFAULT_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10.0),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
]);

// ---------------------------------------------------------------------------------------------
// Log-space arithmetic
// ---------------------------------------------------------------------------------------------

/** log(eˣ + eʸ) without overflow. */
export function logAdd(logx: number, logy: number): number {
  const a = Math.min(logx, logy);
  const b = Math.max(logx, logy);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(eˣ − eʸ) for x ≥ y (−∞ is log 0). */
export function logSub(logx: number, logy: number): number {
  if (logx < logy) throw new RangeError("logSub: the result of subtraction must be non-negative");
  if (logy === -Infinity) return logx;
  if (logx === logy) return -Infinity;
  const d = Math.expm1(logx - logy);
  // Python raises OverflowError for exp of > ~709 and Opacus then returns logx; eʸ is negligible there.
  if (!Number.isFinite(d)) return logx;
  return Math.log(d) + logy;
}

const SQRT_PI = Math.sqrt(Math.PI);

/**
 * erf(x) for |x| ≤ 3 by the all-positive series erf(x) = 2/√π · e^{−x²} Σ 2ⁿ x^{2n+1} / (2n+1)!!
 * (Abramowitz & Stegun 7.1.6): no cancellation, full double precision.
 */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / SQRT_PI) * Math.exp(-x2) * sum;
}

/**
 * e^{x²} erfc(x) for x ≥ 2 by the continued fraction erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3⁄2/(x + …))))
 * (A&S 7.1.14), evaluated backwards from a fixed depth (converged to double precision for x ≥ 2).
 */
function erfcxFraction(x: number): number {
  let t = x;
  for (let n = 240; n >= 1; n--) t = x + n / 2 / t;
  return 1 / (SQRT_PI * t);
}

/**
 * log(erfc(x)), accurate for large positive x where erfc underflows (erfc(30) ≈ 1e−393). The role of
 * Opacus' `_log_erfc` (log 2 + scipy `log_ndtr(−x√2)`).
 */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return -Infinity;
  if (x === -Infinity) return Math.LN2;
  if (x >= 2) return -x * x + Math.log(erfcxFraction(x));
  if (x > -3) return Math.log(1 - erfSeries(x));
  // erfc(x) = 2 − erfc(−x), erfc(−x) ≤ 2.3e−5 here.
  return Math.log(2 - Math.exp(-x * x) * erfcxFraction(-x));
}

// ---------------------------------------------------------------------------------------------
// RDP of the sampled Gaussian mechanism
// ---------------------------------------------------------------------------------------------

/** log A_α for integer α: Σᵢ C(α,i) qⁱ (1−q)^{α−i} e^{(i²−i)/2σ²} in log space (MTZ 2019 §3.3). */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  let logBinom = 0; // log C(α, 0)
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logBinom += Math.log(alpha - i + 1) - Math.log(i);
    const s = logBinom + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/**
 * log A_α for fractional α: the two halves of the integral, split at z₀ = σ² log(1/q − 1) + ½, as
 * convergent series whose binomial coefficients C(α, i) change sign; summed until both terms fall
 * below e^{−30} (the rule of TF-Privacy and Opacus).
 */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  const s2 = Math.SQRT2 * sigma;
  // C(α, i) by the recurrence C(α, i) = C(α, i−1)(α − i + 1)/i, as log|C| and a sign.
  let logAbsCoef = 0;
  let sign = 1;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const f = alpha - i + 1;
      logAbsCoef += Math.log(Math.abs(f)) - Math.log(i);
      if (f < 0) sign = -sign;
    }
    const j = alpha - i;
    const logT0 = logAbsCoef + i * lq + j * l1q;
    const logT1 = logAbsCoef + j * lq + i * l1q;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / s2);
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / s2);
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (sign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
    if (i > 1_000_000) throw new RangeError(`RDP series did not converge (q=${q}, σ=${sigma}, α=${alpha})`);
  }
  return logAdd(logA0, logA1);
}

/** RDP at one order α of one application of the sampled Gaussian mechanism. */
function rdpOne(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  // No subsampling: the Gaussian mechanism itself, exactly α / 2σ² (Mironov 2017, Prop. 7).
  if (q === 1) return alpha / (2 * sigma * sigma);
  if (alpha === Infinity) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

function checkMechanism(q: number, z: number, steps: number): void {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`sample rate must be in [0, 1], got ${q}`);
  if (!(z >= 0) || !Number.isFinite(z)) throw new RangeError(`noise multiplier must be a finite number ≥ 0, got ${z}`);
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`steps must be a non-negative integer, got ${steps}`);
}

/**
 * RDP of the sampled Gaussian mechanism (sample rate q, noise multiplier z = noise σ / L2
 * sensitivity) applied `steps` times, at each of `orders` (Opacus / TF-Privacy `compute_rdp`).
 * Composition is additive in RDP, so this is steps × the one-step value.
 */
export function computeRdp(q: number, noiseMultiplier: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  checkMechanism(q, noiseMultiplier, steps);
  return orders.map((a) => {
    if (!(a > 1)) throw new RangeError(`RDP orders must be > 1, got ${a}`);
    return rdpOne(q, noiseMultiplier, a) * steps;
  });
}

/**
 * The smallest ε, over the orders, of the (ε, δ)-DP implied by an RDP curve (Balle et al. 2020,
 * Thm. 21; the conversion of Opacus' and TF-Privacy's `get_privacy_spent`). Returns the order that
 * attains it; an optimum at the first or last order means a wider list of orders may give a smaller ε.
 */
export function rdpToEpsilon(orders: readonly number[], rdp: readonly number[], delta: number): { epsilon: number; order: number } {
  if (orders.length !== rdp.length || orders.length === 0) throw new RangeError(`orders and rdp must be non-empty and of equal length (${orders.length} and ${rdp.length})`);
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta must be in (0, 1), got ${delta}`);
  let best = Infinity;
  let order = NaN;
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k]!;
    const r = rdp[k]!;
    if (!(a >= 1)) throw new RangeError(`RDP orders must be ≥ 1, got ${a}`);
    if (r < 0) throw new RangeError(`RDP values must be ≥ 0, got ${r} at order ${a}`);
    let eps: number;
    if (Number.isNaN(r)) eps = Infinity;
    else if (delta * delta + Math.expm1(-r) >= 0) eps = 0; // KL bound: δ ≤ √(1 − e^{−KL}) and KL ≤ rdp(α)
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best) {
      best = eps;
      order = a;
    }
  }
  return { epsilon: Math.max(0, best), order };
}

export interface MechanismParams {
  /** Noise standard deviation over the L2 sensitivity (clip norm): z. */
  noiseMultiplier: number;
  /** Probability that a given contribution is in one step's (Poisson) sample: q; 1 when every step uses it. */
  sampleRate: number;
  /** How many times the mechanism ran (rounds the contribution could be in). */
  steps: number;
}

/** (ε, δ) after `steps` runs of the sampled Gaussian mechanism: ε and the RDP order that gives it. */
export function rdpEpsilon(o: MechanismParams & { delta: number; orders?: readonly number[] }): { epsilon: number; order: number } {
  const orders = o.orders ?? DEFAULT_ORDERS;
  return rdpToEpsilon(orders, computeRdp(o.sampleRate, o.noiseMultiplier, o.steps, orders), o.delta);
}

/** Opacus' `MAX_SIGMA`: a budget that would need more noise than this is refused. */
export const MAX_NOISE_MULTIPLIER = 1e6;

/**
 * The noise multiplier z that makes `steps` runs of the sampled Gaussian mechanism (ε, δ)-DP with ε
 * at most `targetEpsilon` — what a job that states its budget as (ε, δ) needs, calibrated before any
 * training. Opacus' `get_noise_multiplier` search: double z from 20 until ε ≤ target, then bisect
 * until target − ε(z) ≤ `epsilonTolerance` (default 0.01); returns the upper end, so ε(z) ≤ target
 * always holds (the guarantee never exceeds the budget; the tolerance only costs some utility).
 */
export function noiseForEpsilon(o: {
  targetEpsilon: number;
  delta: number;
  sampleRate: number;
  steps: number;
  orders?: readonly number[];
  epsilonTolerance?: number;
}): { noiseMultiplier: number; epsilon: number; order: number } {
  if (!(o.targetEpsilon > 0) || !Number.isFinite(o.targetEpsilon)) throw new RangeError(`target epsilon must be a finite number > 0, got ${o.targetEpsilon}`);
  const tol = o.epsilonTolerance ?? 0.01;
  if (!(tol > 0)) throw new RangeError(`epsilon tolerance must be > 0, got ${tol}`);
  const at = (z: number) => rdpEpsilon({ noiseMultiplier: z, sampleRate: o.sampleRate, steps: o.steps, delta: o.delta, orders: o.orders });
  let low = 0;
  let high = 10;
  let hi = { epsilon: Infinity, order: NaN };
  while (hi.epsilon > o.targetEpsilon) {
    high *= 2;
    hi = at(high);
    if (high > MAX_NOISE_MULTIPLIER) throw new RangeError(`the privacy budget ε=${o.targetEpsilon}, δ=${o.delta} is too low: it would need a noise multiplier above ${MAX_NOISE_MULTIPLIER}`);
  }
  while (o.targetEpsilon - hi.epsilon > tol) {
    const mid = (low + high) / 2;
    const e = at(mid);
    if (e.epsilon < o.targetEpsilon) {
      high = mid;
      hi = e;
    } else low = mid;
  }
  return { noiseMultiplier: high, epsilon: hi.epsilon, order: hi.order };
}

/** One entry of an accountant's history: `steps` runs with the same noise multiplier and sample rate. */
export interface MechanismRun {
  noiseMultiplier: number;
  sampleRate: number;
  steps: number;
}

/**
 * The privacy spent so far by a sequence of (possibly different) sampled Gaussian mechanisms — e.g.
 * one worker's rounds of a job, each round one step. Keeps the history (as Opacus' RDPAccountant
 * does: consecutive runs with equal parameters merge) so that it can be saved in a node's state and
 * reloaded; the RDP of the composition is the sum of the runs' RDP at each order.
 */
export class RdpAccountant {
  readonly orders: readonly number[];
  readonly history: MechanismRun[] = [];

  constructor(orders: readonly number[] = DEFAULT_ORDERS, history: MechanismRun[] = []) {
    for (const a of orders) if (!(a > 1)) throw new RangeError(`RDP orders must be > 1, got ${a}`);
    this.orders = [...orders];
    for (const h of history) this.step(h.noiseMultiplier, h.sampleRate, h.steps);
  }

  /** Records `steps` more runs (default one). */
  step(noiseMultiplier: number, sampleRate: number, steps = 1): void {
    checkMechanism(sampleRate, noiseMultiplier, steps);
    if (steps === 0) return;
    const last = this.history[this.history.length - 1];
    if (last && last.noiseMultiplier === noiseMultiplier && last.sampleRate === sampleRate) last.steps += steps;
    else this.history.push({ noiseMultiplier, sampleRate, steps });
  }

  /** The composed RDP at each order. */
  rdp(): number[] {
    const total = this.orders.map(() => 0);
    for (const h of this.history) computeRdp(h.sampleRate, h.noiseMultiplier, h.steps, this.orders).forEach((r, k) => (total[k]! += r));
    return total;
  }

  /** (ε, δ) spent so far; ε = 0 before any step. */
  spent(delta: number): { epsilon: number; order: number } {
    if (this.history.length === 0) return { epsilon: 0, order: NaN };
    return rdpToEpsilon(this.orders, this.rdp(), delta);
  }

  /** ε after one more run of these parameters, without recording it: "would this round exceed the budget?". */
  spentAfter(delta: number, next: MechanismRun): { epsilon: number; order: number } {
    return new RdpAccountant(this.orders, [...this.history.map((h) => ({ ...h })), next]).spent(delta);
  }

  toJSON(): { orders: number[]; history: MechanismRun[] } {
    return { orders: [...this.orders], history: this.history.map((h) => ({ ...h })) };
  }

  static fromJSON(j: { orders?: number[]; history: MechanismRun[] }): RdpAccountant {
    return new RdpAccountant(j.orders ?? DEFAULT_ORDERS, j.history);
  }
}
