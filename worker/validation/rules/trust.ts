/**
 * FLTrust's test (Cao et al. 2021): the update's cosine to the validator's reference update (its own
 * training from the same base on its held-out data, the "root" update) must not be negative. A negative
 * cosine means the update points away from the direction that lowers the loss on the validator's data:
 * to first order it makes the model worse there. FLTrust weights such an update by ReLU(cos) = 0; here it
 * is rejected. Sign-flipped and label-flipped updates point away from the reference however their norm
 * is dressed up, alone or as a group, whatever their neighbours.
 *
 * The bound sits a little below zero (minTrust −0.02) because the reference is itself a noisy estimate:
 * in late rounds, when the model is good, an honest update of a very skewed shard is nearly orthogonal
 * to it, and its measured cosine scatters around zero from one validator's held-out slice to the next
 * (measured on the robustness grid, rounds 6–10: −0.11 to +0.06 for the same update across 5
 * validators). At 0, a stake majority rejected 2.8 % of honest updates; at −0.02, 0.5 %, while every
 * sign-flipped update stayed out (label-flipped ones: 2 of 309 attacker updates passed).
 */
import { cosine, l2, numberParams, round4, type AcceptanceRule } from "../rule.ts";

export interface TrustParams {
  /** Reject when the cosine of the update to the validator's reference update is below this. */
  minTrust: number;
}

export const trust: AcceptanceRule<TrustParams> = {
  name: "trust",
  summary: "rejects an update whose cosine to the validator's reference update (FLTrust's trust score) is below minTrust",
  ...numberParams<TrustParams>({ minTrust: { default: -0.02, min: -1, max: 1 } }),
  async judge(view, p) {
    const ref = await view.heldOut.reference();
    const refNorm = l2(ref);
    return view.candidates.map((c) => {
      const t = cosine(c.flat, ref, c.norm, refNorm);
      const metrics = { trust: round4(t) };
      if (t >= p.minTrust) return { pass: true, metrics };
      return { pass: false, code: "distrusted", reason: `points away from the validator's data: cosine ${t.toFixed(4)} to its reference update is below ${p.minTrust}`, metrics };
    });
  },
};
