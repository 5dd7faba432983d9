/**
 * The reconstruction attack that motivates the privacy layer: recovering a worker's training inputs
 * from its published update, through the first dense layer (Phong et al. 2017, "Privacy-Preserving
 * Deep Learning via Additively Homomorphic Encryption", §3; Fowl et al. 2022, "Robbing the Fed").
 *
 * Why it works: for a dense layer h = xW + b (W stored [inputs, units], as worker/training does),
 * the gradient of the loss of one example at unit i is ∂L/∂W[:, i] = x·δᵢ and ∂L/∂bᵢ = δᵢ, so
 * their ratio is the example's input x, exactly. One SGD step (with or without momentum: the first
 * momentum step is the gradient itself) multiplies both by −lr, and the update ΔW[:, i] / Δbᵢ is
 * still x. On a minibatch the gradients are averaged over the examples, but a ReLU unit that fired
 * for one example only (δᵢ = 0 for the others) still gives that example's input exactly; with 128
 * units and a handful of examples, most examples own several such units. Nothing about the base
 * weights is needed: the ratio is read off the update alone — which is what anyone who fetches the
 * update from IPFS holds.
 *
 * What stops it: clipping alone does not (scaling ΔW and Δb together keeps their ratio); noise does,
 * once its σ is large against the per-unit signal — which is what an (ε, δ) budget enforces for every
 * possible attack, this one included. The privacy tests measure both.
 */
import type { Tensor } from "../artifacts/index.ts";
import type { ModelSpec } from "../training/spec.ts";
import { paramsOf } from "../training/model.ts";

/** One hidden unit's guess at an input: ΔW[:, unit] / Δb[unit]. */
export interface Candidate {
  unit: number;
  /** Δb[unit], the divisor (its magnitude says how strongly the unit was trained). */
  bias: number;
  x: Float32Array;
}

/**
 * Candidates from one dense layer's update: ΔW is [inputs, units] row-major (ΔW[j·units + i] is input
 * j to unit i), Δb is [units]. Units whose |Δbᵢ| is at most `threshold` × max|Δb| (default 1e−3)
 * are skipped: they were (nearly) not trained and their ratio is rounding error.
 */
export function invertDense(dW: Float32Array, dB: Float32Array, o: { threshold?: number } = {}): Candidate[] {
  const units = dB.length;
  if (units === 0 || dW.length % units !== 0) throw new RangeError(`weight update of ${dW.length} values does not fit ${units} units`);
  const inputs = dW.length / units;
  let max = 0;
  for (const b of dB) max = Math.max(max, Math.abs(b));
  const min = (o.threshold ?? 1e-3) * max;
  const out: Candidate[] = [];
  for (let i = 0; i < units; i++) {
    const b = dB[i]!;
    if (!(Math.abs(b) > min) || b === 0) continue;
    const x = new Float32Array(inputs);
    for (let j = 0; j < inputs; j++) x[j] = dW[j * units + i]! / b;
    out.push({ unit: i, bias: b, x });
  }
  return out;
}

/**
 * Candidates from a model update whose first layer is dense on the flat input (e.g. the MNIST MLP):
 * the tensors `l0.weight` and `l0.bias` of `delta`. Throws when the model starts with another layer
 * (a convolution needs a different attack).
 */
export function invertFirstDense(spec: ModelSpec, delta: Tensor[], o: { threshold?: number } = {}): Candidate[] {
  const first = spec.layers[0];
  if (first?.type !== "dense") throw new RangeError(`the first layer is ${first?.type ?? "missing"}, not dense: this attack reads a first dense layer`);
  const [w, b] = paramsOf(spec);
  const dW = delta.find((t) => t.name === w!.name);
  const dB = delta.find((t) => t.name === b!.name);
  if (!dW || !dB) throw new RangeError(`the update has no ${w!.name} / ${b!.name}`);
  if (dW.data.length !== w!.shape[0]! * w!.shape[1]! || dB.data.length !== b!.shape[0]) throw new RangeError(`the update's ${w!.name} / ${b!.name} do not have the spec's shapes`);
  return invertDense(dW.data, dB.data, o);
}

/** Pearson correlation of two equally long vectors (0 when either is constant). */
export function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`pearson: lengths differ (${a.length} and ${b.length})`);
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let j = 0; j < n; j++) {
    ma += a[j]!;
    mb += b[j]!;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let j = 0; j < n; j++) {
    const x = a[j]! - ma;
    const y = b[j]! - mb;
    sab += x * y;
    saa += x * x;
    sbb += y * y;
  }
  if (saa === 0 || sbb === 0 || !Number.isFinite(sab / Math.sqrt(saa * sbb))) return 0;
  return sab / Math.sqrt(saa * sbb);
}

const vectorOf = (c: Candidate | ArrayLike<number>): ArrayLike<number> => ("x" in (c as Candidate) ? (c as Candidate).x : (c as ArrayLike<number>));

/**
 * The attack's success on each image: the best Pearson correlation of any candidate with it
 * (−1 … 1; 1 is an exact copy up to scale and offset, 0 when there is no candidate).
 */
export function bestCorrelationPerImage(candidates: readonly (Candidate | ArrayLike<number>)[], images: readonly ArrayLike<number>[]): number[] {
  return images.map((img) => {
    let best = candidates.length ? -Infinity : 0;
    for (const c of candidates) best = Math.max(best, pearson(vectorOf(c), img));
    return best;
  });
}

/** The best Pearson correlation over all (candidate, image) pairs, and which pair. */
export function bestCorrelation(
  candidates: readonly (Candidate | ArrayLike<number>)[],
  images: readonly ArrayLike<number>[],
): { correlation: number; candidate: number; image: number } {
  let best = { correlation: candidates.length && images.length ? -Infinity : 0, candidate: -1, image: -1 };
  candidates.forEach((c, ci) =>
    images.forEach((img, ii) => {
      const r = pearson(vectorOf(c), img);
      if (r > best.correlation) best = { correlation: r, candidate: ci, image: ii };
    }),
  );
  return best;
}
