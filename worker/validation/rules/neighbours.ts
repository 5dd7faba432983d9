/**
 * Agreement with the round and with the validator's own data. For each update, its neighbourhood is the
 * k updates most similar to it (cosine, only those pointing its way), k = ⌈n/2⌉ − 1: with an honest
 * majority an honest update's neighbourhood is honest, a colluder's is its colluders (Krum's and FLAME's
 * observation). Two tests:
 *  - similarity: the mean cosine to the neighbourhood. Honest updates share the task's common direction;
 *    noise, or any update unrelated to the others, has cosine ≈ 1/√d to everything.
 *  - alignment: the neighbourhood's mean direction against the validator's reference update (its own
 *    training from the same base on its held-out data: FLTrust's root update). One non-IID update may be
 *    near orthogonal to the reference, but the mean of a group of honest updates points the same way;
 *    a group of sign-flipped or label-flipped updates points against it, however many they are.
 */
import { cosine, l2, numberParams, round4, type AcceptanceRule } from "../rule.ts";

/** Fewest updates in a round for the similarity test (k = ⌈n/2⌉ − 1 ≥ 2 neighbours). */
const MIN_FOR_SIMILARITY = 5;

export interface NeighboursParams {
  /** Reject when the mean cosine to the neighbourhood is below this (needs ≥ 5 updates). */
  minSimilarity: number;
  /** Reject when the cosine of the neighbourhood's mean direction to the reference update is below this. */
  minAlignment: number;
}

export const neighbours: AcceptanceRule<NeighboursParams> = {
  name: "neighbours",
  summary: "rejects an update unrelated to every other one (mean cosine to its ⌈n/2⌉−1 nearest < minSimilarity) or whose neighbourhood points against the validator's reference update",
  ...numberParams<NeighboursParams>({ minSimilarity: { default: 0.02, min: -1, max: 1 }, minAlignment: { default: 0, min: -1, max: 1 } }),
  async judge(view, p) {
    const cs = view.candidates;
    const n = cs.length;
    const k = Math.max(1, Math.ceil(n / 2) - 1);
    const ref = await view.heldOut.reference();
    const refNorm = l2(ref);
    const sim = cs.map((a, i) => cs.map((b, j) => (i === j ? 1 : j < i ? NaN : cosine(a.flat, b.flat, a.norm, b.norm))));
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) sim[i]![j] = sim[j]![i]!;
    return cs.map((c, i) => {
      const others = cs.map((_, j) => j).filter((j) => j !== i).sort((a, b) => sim[i]![b]! - sim[i]![a]! || a - b).slice(0, k);
      const similarity = others.length ? others.reduce((s, j) => s + sim[i]![j]!, 0) / others.length : 1;
      // The neighbourhood's direction: the mean of unit vectors (no member dominates by its size).
      const centre = new Float64Array(c.flat.length);
      for (const j of [i, ...others.filter((j) => sim[i]![j]! > 0)]) {
        const u = cs[j]!;
        if (u.norm > 0) for (let x = 0; x < centre.length; x++) centre[x]! += u.flat[x]! / u.norm;
      }
      const alignment = cosine(centre, ref, l2(centre), refNorm);
      const metrics = { similarity: round4(similarity), alignment: round4(alignment) };
      // With fewer than 5 updates a neighbourhood is one or two updates, and on very skewed shards an
      // honest update may point away from both (measured: the demo's 4 Dirichlet(0.5) workers): no test.
      if (n >= MIN_FOR_SIMILARITY && similarity < p.minSimilarity) {
        return { pass: false, code: "unrelated", reason: `unrelated to the round: mean cosine ${similarity.toFixed(4)} to its ${others.length} nearest updates is below ${p.minSimilarity}`, metrics };
      }
      if (alignment < p.minAlignment) {
        return { pass: false, code: "misaligned", reason: `points against the validator's data: its neighbourhood's direction has cosine ${alignment.toFixed(3)} to the reference update (limit ${p.minAlignment})`, metrics };
      }
      return { pass: true, metrics };
    });
  },
};
