/**
 * The worker-side DP-FedAvg mechanism (McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially
 * Private Recurrent Language Models"): clip the whole update (all tensors together) to L2 norm ≤ C,
 * then add independent N(0, σ²) to every coordinate. Clipping bounds the sensitivity — how much one
 * worker's data can move what is released — to C; the Gaussian noise then makes the release
 * (α, α/2z²)-RDP with z = σ_total / C, which accountant.ts composes over rounds into (ε, δ).
 *
 * The unit of privacy is the worker: the neighbouring inputs are "this worker's contribution" and
 * "no contribution from it" (its update replaced by zero), whose clipped updates differ by at most C
 * (user-level DP). Replacing one worker's data by arbitrary other data moves a clipped update by up to
 * 2C: for that relation, account with noise multiplier z/2.
 *
 * Two noise modes, differing in whom the guarantee holds against:
 *
 * - `local`: σ = z·C on every update. Each update, as published (on IPFS, to every validator and
 *   anyone who fetches it), is itself DP for its worker: the guarantee holds against validators,
 *   other workers, and the public. This is the mode that fits fedstake as it is, where individual
 *   updates are public; it costs noise √k times larger in the aggregate than `distributed`.
 * - `distributed`: σ = z·C/√k per update, k the number of updates the job expects to be aggregated
 *   per round. The sum of k such updates carries N(0, z²C²) noise, so the aggregate (the new model)
 *   is DP with multiplier z — but only against those who see nothing but the aggregate. Each single
 *   update carries only multiplier z/√k (see `perUpdateNoiseMultiplier`) and is therefore much less
 *   protected against anyone who sees it individually: without secure aggregation, validators and the
 *   public do. And the aggregate guarantee needs k honest noised updates to be summed: with fewer, or
 *   some workers skipping their noise, the aggregate's multiplier is z·√(m/k) for the m honest ones
 *   (`aggregateNoiseMultiplier`).
 *
 * What a validator can check from the outside is only the norm (`noisedNormBound`): it cannot tell a
 * correctly clipped and noised update from a forged vector of the same norm, nor recover the clip.
 */
import type { Tensor } from "../artifacts/index.ts";
import { secureNormal, type NormalSource } from "./gaussian.ts";

export type NoiseMode = "local" | "distributed";

/** A job's DP-FedAvg parameters, as the worker applies them. */
export interface PrivacyMechanism {
  /** C: the L2 norm every update is clipped to (the sensitivity). */
  clipNorm: number;
  /** z: noise standard deviation over C, of each update (`local`) or of the round's aggregate (`distributed`). */
  noiseMultiplier: number;
  mode: NoiseMode;
  /** `distributed`: k, the number of updates the job expects to be aggregated per round. */
  expectedUpdates?: number;
}

function checkMechanism(m: PrivacyMechanism): void {
  if (!(m.clipNorm > 0) || !Number.isFinite(m.clipNorm)) throw new RangeError(`clip norm must be a finite number > 0, got ${m.clipNorm}`);
  if (!(m.noiseMultiplier >= 0) || !Number.isFinite(m.noiseMultiplier)) throw new RangeError(`noise multiplier must be a finite number ≥ 0, got ${m.noiseMultiplier}`);
  if (m.mode !== "local" && m.mode !== "distributed") throw new RangeError(`noise mode must be "local" or "distributed", got ${JSON.stringify(m.mode)}`);
  if (m.mode === "distributed" && !(Number.isInteger(m.expectedUpdates) && m.expectedUpdates! >= 1)) {
    throw new RangeError(`distributed noise needs expectedUpdates, a positive integer (got ${m.expectedUpdates})`);
  }
}

/** σ, the per-coordinate noise standard deviation one worker adds: z·C (local) or z·C/√k (distributed). */
export function noiseStd(m: PrivacyMechanism): number {
  checkMechanism(m);
  return m.mode === "local" ? m.noiseMultiplier * m.clipNorm : (m.noiseMultiplier * m.clipNorm) / Math.sqrt(m.expectedUpdates!);
}

/** The noise multiplier that protects one update seen on its own: z (local) or z/√k (distributed). */
export function perUpdateNoiseMultiplier(m: PrivacyMechanism): number {
  return noiseStd(m) / m.clipNorm;
}

/**
 * The noise multiplier of a round's aggregate (sum or uniform mean) of `honest` noised updates,
 * each with noise σ: σ√m / C. In `distributed` mode that is z exactly when m = k; with fewer honest
 * updates the aggregate is less private than the job stated, and the accountant should be told so.
 * (With non-uniform aggregation weights wᵢ the multiplier is σ√(Σwᵢ²) / (C·max wᵢ) instead.)
 */
export function aggregateNoiseMultiplier(m: PrivacyMechanism, honest: number): number {
  if (!(Number.isInteger(honest) && honest >= 1)) throw new RangeError(`honest updates must be a positive integer, got ${honest}`);
  return (noiseStd(m) * Math.sqrt(honest)) / m.clipNorm;
}

/** ‖v‖₂, accumulated in float64. */
export function l2Norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < v.length; j++) s += v[j]! * v[j]!;
  return Math.sqrt(s);
}

/** Slack below 1 in the clip factor so that rounding the scaled values to float32 (each by at most 2⁻²⁴ relative) cannot push the norm above C. */
const CLIP_MARGIN = 1 - 2 ** -22;

/**
 * `update` scaled by min(1, C/‖update‖) (a new array): the norm is then ≤ C, also after float32
 * rounding. Scaling (rather than per-coordinate clipping) keeps the direction: the update's utility
 * is kept where it can be, and its sensitivity is bounded whatever the data.
 */
export function clipL2(update: Float32Array, clipNorm: number): { update: Float32Array; norm: number; clipped: boolean; scale: number } {
  if (!(clipNorm > 0) || !Number.isFinite(clipNorm)) throw new RangeError(`clip norm must be a finite number > 0, got ${clipNorm}`);
  const norm = l2Norm(update);
  if (!Number.isFinite(norm)) throw new RangeError(`the update has a non-finite value (norm ${norm}): refusing to release it`);
  if (norm <= clipNorm) return { update: Float32Array.from(update), norm, clipped: false, scale: 1 };
  const scale = (clipNorm / norm) * CLIP_MARGIN;
  const out = new Float32Array(update.length);
  for (let j = 0; j < out.length; j++) out[j] = update[j]! * scale;
  return { update: out, norm, clipped: true, scale };
}

export interface PrivatizedUpdate {
  /** The clipped and noised update: what may leave the worker. */
  update: Float32Array;
  /** ‖update‖ before clipping (for the worker's own logs only: it is a function of the private data, not DP). */
  preClipNorm: number;
  clipped: boolean;
  /** The per-coordinate noise standard deviation added. */
  sigma: number;
}

export interface PrivatizeOptions {
  /** The noise; default a fresh CSPRNG source. An insecure (seeded) source is refused unless `insecureSourceForTests`. */
  source?: NormalSource;
  insecureSourceForTests?: boolean;
}

/**
 * Clip to C, then add N(0, σ²) to every coordinate, σ from the mode (see `noiseStd`). The result is
 * the only thing derived from the private data that may be published; `preClipNorm` must stay local.
 */
export function privatize(update: Float32Array, m: PrivacyMechanism, o: PrivatizeOptions = {}): PrivatizedUpdate {
  const sigma = noiseStd(m);
  const source = o.source ?? secureNormal();
  if (!source.secure && !o.insecureSourceForTests) throw new Error("privatize: refusing a predictable noise source (seeded); its noise can be subtracted and gives no privacy");
  const c = clipL2(update, m.clipNorm);
  const out = c.update;
  if (sigma > 0) for (let j = 0; j < out.length; j++) out[j] = out[j]! + sigma * source.next();
  return { update: out, preClipNorm: c.norm, clipped: c.clipped, sigma };
}

/**
 * `privatize` over a whole model update: the tensors are clipped together (the sensitivity is the
 * norm of everything the worker releases, not of each tensor) and each coordinate noised.
 */
export function privatizeTensors(delta: Tensor[], m: PrivacyMechanism, o: PrivatizeOptions = {}): Omit<PrivatizedUpdate, "update"> & { delta: Tensor[] } {
  const flat = new Float32Array(delta.reduce((s, t) => s + t.data.length, 0));
  let p = 0;
  for (const t of delta) {
    flat.set(t.data, p);
    p += t.data.length;
  }
  const r = privatize(flat, m, o);
  p = 0;
  const out = delta.map((t) => {
    const data = r.update.slice(p, p + t.data.length);
    p += t.data.length;
    return { name: t.name, shape: [...t.shape], data };
  });
  return { delta: out, preClipNorm: r.preClipNorm, clipped: r.clipped, sigma: r.sigma };
}

/** Default chance that an honest clipped-and-noised update falls outside `noisedNormBound` (per side). */
export const DEFAULT_FALSE_REJECTION = 1e-9;

export interface NormBound {
  /** No honest update has a norm above this, except with probability ≤ `falseRejection`. */
  upper: number;
  /** No honest update has a norm below this, except with probability ≤ `falseRejection` (0 when the noise is too small to tell). */
  lower: number;
  /** s = √(2 ln(1/p)): the bound's margin, in noise standard deviations. */
  margin: number;
  falseRejection: number;
  /**
   * The largest signal norm C′ whose noised update typically (at its expected norm √(C′² + σ²d))
   * still passes `upper`: an over-norm update below it is not detectable by the norm alone. When σ√d ≫ C
   * (local noise on a large model) it is far above C — the check then only stops gross cheating.
   */
  maxPassingSignalNorm: number;
}

/**
 * The norm range of an honest update: clipped to C, then σ-noised in d coordinates.
 *
 * Why: ‖c + n‖ ≤ ‖c‖ + ‖n‖ ≤ C + ‖n‖ and ≥ ‖n‖ − C. ‖n‖/σ is χ-distributed with d degrees of freedom,
 * and x ↦ ‖x‖ is 1-Lipschitz, so by Gaussian concentration (Tsirelson–Ibragimov–Sudakov)
 * P(‖n‖ ≥ E‖n‖ + sσ) ≤ e^{−s²/2} and P(‖n‖ ≤ E‖n‖ − sσ) ≤ e^{−s²/2}, with d/√(d+1) ≤ E‖n‖/σ ≤ √d.
 * Hence with s = √(2 ln(1/p)): upper = C + σ(√d + s), lower = σ(d/√(d+1) − s) − C, each violated by
 * an honest update with probability ≤ p (default 1e−9: a validator that rejects above `upper` wrongly
 * rejects one honest update in a billion). A margin such as s = 4/√2 ≈ 2.83 (σ√d(1 + 4/√(2d))) would
 * be tighter but wrongly reject about 1.8 % of honest updates.
 *
 * The lower bound catches a worker that skipped the noise (its update then has norm ≤ C), which in
 * `distributed` mode would silently weaken everybody's aggregate guarantee; it does not catch forged
 * noise. Both bounds hold for the dense, float32 update; after lossy encoding (int8 adds ≤ half a
 * quantisation step per value, top-k drops most of the noise, error feedback adds last rounds'
 * residual) a validator has to widen them by the encoding's error or skip the lower one.
 */
export function noisedNormBound(o: { clipNorm: number; sigma: number; dim: number; falseRejection?: number }): NormBound {
  const { clipNorm: C, sigma, dim: d } = o;
  const p = o.falseRejection ?? DEFAULT_FALSE_REJECTION;
  if (!(C > 0) || !Number.isFinite(C)) throw new RangeError(`clip norm must be a finite number > 0, got ${C}`);
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new RangeError(`sigma must be a finite number ≥ 0, got ${sigma}`);
  if (!(Number.isInteger(d) && d >= 1)) throw new RangeError(`dim must be a positive integer, got ${d}`);
  if (!(p > 0 && p < 1)) throw new RangeError(`falseRejection must be in (0, 1), got ${p}`);
  const s = Math.sqrt(2 * Math.log(1 / p));
  const upper = C + sigma * (Math.sqrt(d) + s);
  const lower = Math.max(0, sigma * (d / Math.sqrt(d + 1) - s) - C);
  const maxPassingSignalNorm = Math.sqrt(Math.max(0, upper * upper - sigma * sigma * d));
  return { upper, lower, margin: s, falseRejection: p, maxPassingSignalNorm };
}

/** A validator's verdict on an update's norm against `noisedNormBound`, with the reason when it fails. */
export function checkNoisedNorm(norm: number, b: NormBound): { ok: true } | { ok: false; reason: string } {
  if (!Number.isFinite(norm)) return { ok: false, reason: `update norm is not finite (${norm})` };
  if (norm > b.upper) {
    return { ok: false, reason: `update norm ${norm.toPrecision(6)} exceeds ${b.upper.toPrecision(6)}, the most a clipped and noised update reaches (false rejection ≤ ${b.falseRejection})` };
  }
  if (norm < b.lower) {
    return { ok: false, reason: `update norm ${norm.toPrecision(6)} is below ${b.lower.toPrecision(6)}, the least a noised update has: the privacy noise looks missing (false rejection ≤ ${b.falseRejection})` };
  }
  return { ok: true };
}
