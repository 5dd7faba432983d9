/**
 * Free riders who copy: an update (nearly) identical to another update of the same round, or to an update
 * or aggregate step of an earlier round of the job, is rejected. Commit-reveal keeps honest workers from
 * seeing each other's updates before committing, so two near-identical updates of one round come from
 * colluders (a sybil paid twice, identical "A Little Is Enough" updates) and both are rejected; a match
 * with an earlier round is a replay (re-wrapped in a new header, or the last aggregate step sent back).
 * Honest updates of consecutive rounds, even of one worker on the same data, are far from identical
 * (other base model, other shuffle): cosine ≥ 0.99 separates them with a wide margin.
 */
import { cosine, l2, numberParams, round4, sketchOf, type AcceptanceRule, type Verdict } from "../rule.ts";

/**
 * Earlier rounds' deltas are compared through their count sketches first (rule.ts: sketchOf), exactly
 * only when the sketch's cosine is within this of the bound: the sketch's error is ≈ 0.03, and for a
 * near-identical pair (a replay) it is far smaller. `maxSimilarity` reports the sketch's estimate for an
 * earlier-round pair below that.
 */
const SKETCH_MARGIN = 0.1;

export interface DuplicateParams {
  /** Cosine similarity at or above which two updates count as the same update. */
  maxSimilarity: number;
}

export const duplicate: AcceptanceRule<DuplicateParams> = {
  name: "duplicate",
  summary: "rejects a copy: cosine ≥ maxSimilarity with another update of the round, or with an update or aggregate step of an earlier round",
  ...numberParams<DuplicateParams>({ maxSimilarity: { default: 0.99, min: 0.5, max: 1 } }),
  async judge(view, p) {
    const n = view.all.length;
    const cos = view.cosines();
    const past = view.history.map((h) => ({ h, sketch: sketchOf(h.flat), sketchNorm: 0 }));
    for (const x of past) x.sketchNorm = l2(x.sketch);
    return view.candidates.map((c): Verdict => {
      let best = -1;
      let match = "";
      const at = view.positionOf(c.index);
      for (let j = 0; j < n; j++) {
        if (j === at) continue;
        const s = cos[at * n + j]!;
        if (s > best) [best, match] = [s, `update ${view.all[j]!.index} of this round (${view.all[j]!.worker})`];
      }
      let replay = false;
      const mine = sketchOf(c.flat);
      const mineNorm = l2(mine);
      for (const { h, sketch, sketchNorm } of past) {
        const estimate = cosine(mine, sketch, mineNorm, sketchNorm);
        const s = estimate >= p.maxSimilarity - SKETCH_MARGIN ? cosine(c.flat, h.flat, c.norm, h.norm) : estimate;
        if (s > best) [best, match, replay] = [s, `${h.source} of round ${h.round}`, true];
      }
      const metrics = { maxSimilarity: round4(Math.max(best, 0)) };
      if (best < p.maxSimilarity) return { pass: true, metrics };
      return {
        pass: false,
        code: replay ? "replay" : "duplicate",
        reason: `${replay ? "replay" : "duplicate"}: cosine ${best.toFixed(4)} to ${match} (limit ${p.maxSimilarity})`,
        metrics,
      };
    });
  },
};
