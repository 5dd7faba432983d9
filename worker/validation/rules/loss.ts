/**
 * Harm on the validator's held-out data against the round's spread: an update whose held-out loss
 * (base + update alone) lies far above the round's is rejected. Non-IID honest updates applied alone
 * raise the loss too, and by amounts that vary a lot, so the bound is a robust z-score (median and MAD
 * of the updates still in) with a wide margin, not a fixed multiple of the base loss: the most skewed
 * honest shard of the robustness grid reaches z ≈ 9 in early rounds and z ≈ 18 in rounds 9–10, when the
 * model is good and the other updates' losses lie close together (at maxZ 10 it was slashed there),
 * hence the default 20. Run last: the earlier rules have removed most attackers, so the median and MAD
 * describe honest updates.
 */
import { mean, median, numberParams, round4, type AcceptanceRule } from "../rule.ts";

export interface LossParams {
  /** Reject above median + maxZ × 1.4826 × MAD of the round's held-out losses. */
  maxZ: number;
}

/** Fewest updates for a robust spread. */
const MIN_UPDATES = 5;

export const loss: AcceptanceRule<LossParams> = {
  name: "loss",
  summary: "rejects an update whose held-out loss is more than maxZ robust standard deviations above the round's median",
  ...numberParams<LossParams>({ maxZ: { default: 20, min: 1, max: 1e6 } }),
  async judge(view, p) {
    const losses: number[] = [];
    for (const c of view.candidates) losses.push(mean(await view.heldOut.lossesOf(c)));
    const m = median(losses);
    const sigma = 1.4826 * median(losses.map((l) => Math.abs(l - m)));
    // The MAD of fewer than five values is no measure of spread (measured: in the demo's rounds of three
    // honest updates a skewed one lay 13 "deviations" out): such rounds are not judged, only non-finite losses are.
    const judged = losses.length >= MIN_UPDATES && sigma > 0;
    return losses.map((l) => {
      const z = judged ? (l - m) / sigma : 0;
      const metrics = { lossZ: round4(z) };
      if (Number.isFinite(l) && z <= p.maxZ) return { pass: true, metrics };
      return { pass: false, code: "loss-outlier", reason: `harmful: held-out loss ${l.toFixed(4)} is ${z.toFixed(1)} robust deviations above the round's median ${m.toFixed(4)} (limit ${p.maxZ})`, metrics };
    });
  },
};
