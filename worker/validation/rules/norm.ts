/**
 * Update size against the round: an update far smaller than the round's median norm does no work (a zero
 * or scaled-down free rider); one far larger would dominate an average (a scaled or boosted update). The
 * bound is relative to the round, not a constant, so it holds for any model and learning rate. Two
 * passes: the near-zero updates are set aside before the median that bounds the large ones is taken, so a
 * crowd of zero updates cannot drag that median down onto the smallest honest updates. With fewer than
 * three updates a median is no robust scale (of two, it is their mean: an attacker scaling its update
 * 100 × would make the honest one look near zero), so the validator's reference update's norm is the scale.
 */
import { l2, median, numberParams, round4, type AcceptanceRule } from "../rule.ts";

export interface NormParams {
  /** Reject below this fraction of the round's median norm. */
  minRatio: number;
  /** Reject above this multiple of the median norm of the updates that are not near zero. */
  maxRatio: number;
}

export const norm: AcceptanceRule<NormParams> = {
  name: "norm",
  summary: "rejects an update whose L2 norm is below minRatio × or above maxRatio × the round's median norm",
  ...numberParams<NormParams>({ minRatio: { default: 0.1, min: 0, max: 1 }, maxRatio: { default: 4, min: 1, max: 1e6 } }),
  async judge(view, p) {
    const norms = view.candidates.map((c) => c.norm);
    const small = norms.length < 3;
    const m1 = small ? l2(await view.heldOut.reference()) : median(norms);
    const working = norms.filter((n) => n > 0 && n >= p.minRatio * m1);
    const m = small || working.length === 0 ? m1 : median(working);
    const scale = small ? "the validator's reference update's norm" : "the round's median";
    return view.candidates.map((c) => {
      const ratio = m > 0 ? c.norm / m : c.norm > 0 ? Infinity : 0;
      const metrics = { norm: round4(c.norm), normRatio: round4(ratio) };
      if (c.norm === 0) return { pass: false, code: "zero-update", reason: "zero update: every value is 0", metrics };
      if (c.norm < p.minRatio * m1) {
        return { pass: false, code: "near-zero", reason: `near-zero update: norm ${c.norm.toPrecision(3)} is below ${p.minRatio} × ${scale} ${m1.toPrecision(3)}`, metrics };
      }
      if (c.norm > p.maxRatio * m) {
        return { pass: false, code: "norm-outlier", reason: `norm ${c.norm.toPrecision(3)} is ${ratio.toFixed(1)} × ${scale} ${m.toPrecision(3)} (limit ${p.maxRatio} ×)`, metrics };
      }
      return { pass: true, metrics };
    });
  },
};
