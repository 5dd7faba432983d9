/**
 * Contribution on the validator's own held-out data, per class. A non-IID update applied alone often
 * raises the total held-out loss (it forgets the classes its worker lacks) yet lowers the loss of the
 * classes it has, which is exactly its contribution to the average. So the test is per class: an update
 * must lower the held-out loss of at least one class by a fair share of what the round's updates
 * typically achieve there (best relative class gain ≥ minShare × the round's median best gain), and by
 * something at all. Noise, zero and label-flipped updates improve no class; honest updates improve the
 * classes of their data. Only the validator's data and the base enter the scale's anchor, and the
 * median is taken over the updates still in, so a minority cannot move it far. With fewer than three
 * updates there is no such median (of two, an attacker's inflated gain would set the bar for the honest
 * one): an update must then only lower some class's loss.
 */
import { mean, median, numberParams, round4, type AcceptanceRule } from "../rule.ts";

export interface HeldOutParams {
  /** Reject when the best relative class gain is below this share of the round's median best gain. */
  minShare: number;
}

export const heldout: AcceptanceRule<HeldOutParams> = {
  name: "heldout",
  summary: "rejects an update that lowers no class's held-out loss by at least minShare × what the round's median update achieves",
  ...numberParams<HeldOutParams>({ minShare: { default: 0.35, min: 0, max: 1 } }),
  async judge(view, p) {
    const base = await view.heldOut.baseLosses();
    const scored = [];
    for (const c of view.candidates) {
      const after = await view.heldOut.lossesOf(c);
      let best = -Infinity;
      let cls = 0;
      after.forEach((l, k) => {
        const g = base[k]! > 0 ? (base[k]! - l) / base[k]! : 0;
        if (g > best) [best, cls] = [g, view.heldOut.classes[k] ?? k];
      });
      scored.push({ best, cls, total: mean(after) });
    }
    const typical = median(scored.map((s) => s.best));
    const limit = scored.length < 3 ? 0 : Math.max(0, p.minShare * typical);
    const baseTotal = mean(base);
    return scored.map((s) => {
      const metrics = { bestClassGain: round4(s.best), heldOutLoss: round4(s.total), baseLoss: round4(baseTotal) };
      if (!Number.isFinite(s.total)) return { pass: false, code: "no-gain", reason: "held-out loss is not finite", metrics };
      if (s.best > 0 && s.best >= limit) return { pass: true, metrics };
      const what = base.length > 1 ? `no class's held-out loss by ${(limit * 100).toFixed(1)} % or more (best: class ${s.cls}, ${(s.best * 100).toFixed(1)} %)` : `the held-out loss by ${(limit * 100).toFixed(1)} % or more (${(s.best * 100).toFixed(1)} %)`;
      return { pass: false, code: "no-gain", reason: `no contribution: lowers ${what}; the round's median update: ${(typical * 100).toFixed(1)} %`, metrics };
    });
  },
};
