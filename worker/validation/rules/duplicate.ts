/**
 * Free riders who copy: an update (nearly) identical to another update of the same round, or to an update
 * or aggregate step of an earlier round of the job, is rejected. Commit-reveal keeps honest workers from
 * seeing each other's updates before committing, so two near-identical updates of one round come from
 * colluders (a sybil paid twice, identical "A Little Is Enough" updates) and both are rejected; a match
 * with an earlier round is a replay (re-wrapped in a new header, or the last aggregate step sent back).
 * Honest updates of consecutive rounds, even of one worker on the same data, are far from identical
 * (other base model, other shuffle): cosine ≥ 0.99 separates them with a wide margin.
 */
import { cosine, numberParams, round4, type AcceptanceRule, type Verdict } from "../rule.ts";

export interface DuplicateParams {
  /** Cosine similarity at or above which two updates count as the same update. */
  maxSimilarity: number;
}

export const duplicate: AcceptanceRule<DuplicateParams> = {
  name: "duplicate",
  summary: "rejects a copy: cosine ≥ maxSimilarity with another update of the round, or with an update or aggregate step of an earlier round",
  ...numberParams<DuplicateParams>({ maxSimilarity: { default: 0.99, min: 0.5, max: 1 } }),
  async judge(view, p) {
    return view.candidates.map((c): Verdict => {
      let best = -1;
      let match = "";
      for (const o of view.all) {
        if (o.index === c.index) continue;
        const s = cosine(c.flat, o.flat, c.norm, o.norm);
        if (s > best) [best, match] = [s, `update ${o.index} of this round (${o.worker})`];
      }
      let replay = false;
      for (const h of view.history) {
        const s = cosine(c.flat, h.flat, c.norm, h.norm);
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
