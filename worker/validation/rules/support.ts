/**
 * Changes where the data gives no reason to change: a coordinate is dead when the validator's reference
 * update leaves it exactly at zero and so do most of the round's updates (more than half), as the
 * weights fed by an input that is always zero do (an image's empty border: gradient = input × error = 0).
 * An honest update trained on data like everyone else's puts almost nothing there (measured: ≤ 0.07 % of
 * its squared norm on MNIST Dirichlet(0.5) shards); a backdoor that teaches the model a trigger in an
 * unused region (BadNets-style patches) puts 17–50 % there. The share of an update's squared norm on dead
 * coordinates must stay below maxShare. Needs only the validator's data and an honest majority of the
 * updates still in; it says nothing about triggers that live inside the data's support.
 */
import { numberParams, round4, type AcceptanceRule } from "../rule.ts";

export interface SupportParams {
  /** Reject when more than this share of the update's squared norm lies on dead coordinates. */
  maxShare: number;
}

export const support: AcceptanceRule<SupportParams> = {
  name: "support",
  summary: "rejects an update that puts more than maxShare of its squared norm on coordinates the validator's data and most updates leave at exactly zero (a trigger outside the data)",
  ...numberParams<SupportParams>({ maxShare: { default: 0.02, min: 0, max: 1 } }),
  async judge(view, p) {
    const cs = view.candidates;
    const ref = await view.heldOut.reference();
    const share = new Float64Array(cs.length);
    if (cs.length >= 3) {
      const energy = new Float64Array(cs.length);
      for (let j = 0; j < ref.length; j++) {
        if (ref[j] !== 0) continue;
        let zeros = 0;
        for (const c of cs) if (c.flat[j] === 0) zeros++;
        if (2 * zeros <= cs.length) continue;
        cs.forEach((c, i) => (energy[i]! += c.flat[j]! * c.flat[j]!));
      }
      cs.forEach((c, i) => (share[i] = c.norm > 0 ? energy[i]! / (c.norm * c.norm) : 0));
    }
    return cs.map((_, i) => {
      const metrics = { deadShare: round4(share[i]!) };
      if (share[i]! <= p.maxShare) return { pass: true, metrics };
      return { pass: false, code: "off-support", reason: `changes what the data never exercises: ${(share[i]! * 100).toFixed(1)} % of its squared norm is on coordinates the validator's data and most updates leave at zero (limit ${(p.maxShare * 100).toFixed(1)} %)`, metrics };
    });
  },
};
