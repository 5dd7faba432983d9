/**
 * Agreement with the round and with the validator's own data. For each update, its neighbourhood is the
 * k updates most similar to it (cosine, only those pointing its way), k = ⌈n/2⌉ − 1: with an honest
 * majority an honest update's neighbourhood is honest, a colluder's is its colluders (Krum's and FLAME's
 * observation). Two tests:
 *  - similarity: the mean cosine to the neighbourhood. Honest updates share the task's common direction;
 *    noise, or any update unrelated to the others, has cosine ≈ 1/√d to everything. A sparse update
 *    (top-k compressed: most coordinates exactly 0) is compared with its neighbourhood's mean direction
 *    instead: each sparse update sends its own few coordinates, so two honest ones share few and their
 *    cosine shrinks with the sparsity, while noise stays at ≈ 1/√d. The mean direction of the neighbours
 *    covers the union of their coordinates, which the update's few are drawn from. Measured on the
 *    robustness grid's 20 MNIST Dirichlet(0.5) shards, top-1 % per tensor in 2 bits, rounds 7–10: mean
 *    pairwise cosine honest 0.013–0.047, noise 0.002–0.004; cosine to the mean direction honest
 *    0.041–0.127, noise 0.005–0.013. With the pairwise mean, top-1 % of the update had 3 of 200 honest
 *    updates rejected by the stake majority in 10 rounds (17 validator votes "unrelated"); with this, none.
 *    Dense updates keep the pairwise mean: for them the mean direction scores higher than the
 *    threshold was tuned for, and that would loosen the test.
 *  - alignment: the neighbourhood's mean direction against the validator's reference update (its own
 *    training from the same base on its held-out data: FLTrust's root update). One non-IID update may be
 *    near orthogonal to the reference, but the mean of a group of honest updates points the same way;
 *    a group of sign-flipped or label-flipped updates points against it, however many they are.
 */
import { dot, l2, numberParams, round4, type AcceptanceRule } from "../rule.ts";

/** Fewest updates in a round for the similarity test (k = ⌈n/2⌉ − 1 ≥ 2 neighbours). */
const MIN_FOR_SIMILARITY = 5;
/** An update with fewer non-zero coordinates than this share is sparse (dense ones have ≈ 90 %: only dead inputs give exact zeros). */
const SPARSE_BELOW = 0.5;

const nonZeroShare = (v: Float64Array) => {
  let n = 0;
  for (let i = 0; i < v.length; i++) if (v[i] !== 0) n++;
  return n / v.length;
};

export interface NeighboursParams {
  /** Reject when the mean cosine to the neighbourhood (a sparse update: the cosine to its mean direction) is below this (needs ≥ 5 updates). */
  minSimilarity: number;
  /** Reject when the cosine of the neighbourhood's mean direction to the reference update is below this. */
  minAlignment: number;
}

export const neighbours: AcceptanceRule<NeighboursParams> = {
  name: "neighbours",
  summary: "rejects an update unrelated to every other one (mean cosine to its ⌈n/2⌉−1 nearest, or for a sparse update cosine to their mean direction, < minSimilarity) or whose neighbourhood points against the validator's reference update",
  ...numberParams<NeighboursParams>({ minSimilarity: { default: 0.02, min: -1, max: 1 }, minAlignment: { default: 0, min: -1, max: 1 } }),
  async judge(view, p) {
    const cs = view.candidates;
    const n = cs.length;
    const k = Math.max(1, Math.ceil(n / 2) - 1);
    const ref = await view.heldOut.reference();
    const refNorm = l2(ref);
    // Every quantity below comes from the round's cosine matrix (computed once, shared with other
    // rules) and each update's dot product with the reference: the mean direction of a set of updates
    // (the sum of their unit vectors) has squared norm Σ cos(a, b) over its pairs and dot product
    // Σ (a · ref) / |a| with the reference, so no neighbourhood's centre is ever built.
    const N = view.all.length;
    const cos = view.cosines();
    const at = cs.map((c) => view.positionOf(c.index));
    const sim = (i: number, j: number) => cos[at[i]! * N + at[j]!]!;
    const towardsRef = cs.map((c) => (c.norm > 0 ? dot(c.flat, ref) / c.norm : 0));
    /** |Σ unit vectors of `members`| (indices into cs). */
    const normOfSum = (members: number[]) => {
      let s = 0;
      for (const a of members) for (const b of members) s += sim(a, b);
      return Math.sqrt(Math.max(s, 0));
    };
    return cs.map((c, i) => {
      const others = cs.map((_, j) => j).filter((j) => j !== i).sort((a, b) => sim(i, b) - sim(i, a) || a - b).slice(0, k);
      const pointingItsWay = others.filter((j) => sim(i, j) > 0);
      const sparse = others.length > 0 && nonZeroShare(c.flat) < SPARSE_BELOW;
      let similarity: number;
      if (sparse) {
        // The cosine of this update to the mean direction of its neighbours that point its way.
        const around = normOfSum(pointingItsWay);
        similarity = around > 0 && c.norm > 0 ? pointingItsWay.reduce((s, j) => s + sim(i, j), 0) / around : 0;
      } else similarity = others.length ? others.reduce((s, j) => s + sim(i, j), 0) / others.length : 1;
      // The neighbourhood's direction, the update's own included.
      const members = [i, ...pointingItsWay];
      const centre = normOfSum(members);
      const alignment = centre > 0 && refNorm > 0 ? members.reduce((s, j) => s + towardsRef[j]!, 0) / (centre * refNorm) : 0;
      const metrics = { similarity: round4(similarity), alignment: round4(alignment) };
      // With fewer than 5 updates a neighbourhood is one or two updates, and on very skewed shards an
      // honest update may point away from both (measured: the demo's 4 Dirichlet(0.5) workers): no test.
      if (n >= MIN_FOR_SIMILARITY && similarity < p.minSimilarity) {
        const measured = sparse ? `cosine ${similarity.toFixed(4)} of this sparse update to the mean direction of` : `mean cosine ${similarity.toFixed(4)} to`;
        return { pass: false, code: "unrelated", reason: `unrelated to the round: ${measured} its ${others.length} nearest updates is below ${p.minSimilarity}`, metrics };
      }
      if (alignment < p.minAlignment) {
        return { pass: false, code: "misaligned", reason: `points against the validator's data: its neighbourhood's direction has cosine ${alignment.toFixed(3)} to the reference update (limit ${p.minAlignment})`, metrics };
      }
      return { pass: true, metrics };
    });
  },
};
