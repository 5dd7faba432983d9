/**
 * Differential privacy's one checkable promise: every update was clipped to the job's norm C and then
 * noised with σ per coordinate (worker/privacy/mechanism.ts). Its norm must then lie in
 * `noisedNormBound`'s range: above it, the update was not clipped (or was scaled up: an update
 * boosted to dominate the average is stopped here whatever the other rules say); below it, the noise
 * is missing, which would weaken every worker's guarantee in distributed mode. A job's `privacy`
 * section sets this rule's parameters (worker/node/jobSpec.ts puts it first); the bound's false
 * rejection rate is per update and side. Not checkable from outside: that the noise is really random.
 */
import { checkNoisedNorm, noisedNormBound } from "../../privacy/mechanism.ts";
import { numberParams, round4, type AcceptanceRule } from "../rule.ts";

export interface DpNormParams {
  /** C, the job's clip norm. */
  clipNorm: number;
  /** σ, the noise standard deviation per coordinate of one update (0: clipping without noise). */
  noiseStd: number;
  /** The chance that an honest update falls outside the range, per side. */
  falseRejection: number;
}

export const dpNorm: AcceptanceRule<DpNormParams> = {
  name: "dp-norm",
  summary: "rejects an update whose norm a clipped (to clipNorm) and noised (noiseStd per coordinate) update cannot have: not clipped, or its noise missing",
  ...numberParams<DpNormParams>({
    clipNorm: { default: 1, min: 1e-12, max: 1e12 },
    noiseStd: { default: 0, min: 0, max: 1e12 },
    falseRejection: { default: 1e-9, min: 1e-300, max: 0.01 },
  }),
  async judge(view, p) {
    return view.candidates.map((c) => {
      const bound = noisedNormBound({ clipNorm: p.clipNorm, sigma: p.noiseStd, dim: c.flat.length, falseRejection: p.falseRejection });
      const metrics = { norm: round4(c.norm), dpNormUpper: round4(bound.upper), dpNormLower: round4(bound.lower) };
      const v = checkNoisedNorm(c.norm, bound);
      return v.ok ? { pass: true, metrics } : { pass: false, code: c.norm > bound.upper ? "dp-norm-high" : "dp-norm-low", reason: v.reason, metrics };
    });
  },
};
