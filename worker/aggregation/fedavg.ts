/**
 * FedAvg (McMahan et al. 2017): the mean of the updates weighted by their declared sample counts, each
 * weight capped twice — by `sampleCap` and by `medianMultiple` × the round's median declared count.
 */
import type { Tensor } from "../artifacts/index.ts";
import { AggregationError, check, combine, isFiniteNumber, sorted, specError, type AggregationStrategy, type Contribution } from "./strategy.ts";

/** FedAvg's default cap on one update's weight, as a multiple of the round's median declared count. */
export const DEFAULT_MEDIAN_MULTIPLE = 2;

export interface FedAvgParams {
  /** weight cap per update: wᵢ = min(numSamplesᵢ, cap) (default: none) */
  sampleCap?: number;
  /**
   * A second cap, relative to the round: wᵢ ≤ medianMultiple × the median declared count of the
   * accepted updates (default 2). Sample counts are self-reported, so without it one worker that
   * claims a huge count holds the model wherever its update points.
   */
  medianMultiple?: number;
}

/** The weights FedAvg gives the updates: min(numSamplesᵢ, sampleCap, medianMultiple × median count). */
export function fedavgWeights(params: FedAvgParams, updates: Contribution[]): Float64Array {
  const multiple = params.medianMultiple ?? DEFAULT_MEDIAN_MULTIPLE;
  if (!(multiple >= 1)) throw new AggregationError(`medianMultiple must be at least 1, got ${multiple}`);
  const counts = sorted(Float64Array.from(updates, (c) => c.numSamples));
  const m = counts.length >> 1;
  // Of two updates this median is their mean, which caps nothing: there only the chain's maxSamplesPerUpdate bounds a claim.
  const median = counts.length % 2 ? counts[m]! : (counts[m - 1]! + counts[m]!) / 2;
  const cap = Math.min(params.sampleCap ?? Infinity, multiple * median);
  return Float64Array.from(updates, (c) => Math.min(c.numSamples, cap));
}

export const fedavg: AggregationStrategy<FedAvgParams, "fedavg"> = {
  kind: "fedavg",
  summary: "mean of the updates weighted by declared sample counts, capped by sampleCap and medianMultiple × the round's median count",
  fields: ["sampleCap", "medianMultiple"],
  defaults: { medianMultiple: DEFAULT_MEDIAN_MULTIPLE },

  parse(raw) {
    const { sampleCap, medianMultiple } = raw;
    if (sampleCap !== undefined && !(isFiniteNumber(sampleCap) && sampleCap > 0)) throw specError("sampleCap", "a positive number", sampleCap);
    if (medianMultiple !== undefined && !(isFiniteNumber(medianMultiple) && medianMultiple >= 1)) throw specError("medianMultiple", "a number ≥ 1", medianMultiple);
    return { ...(sampleCap === undefined ? {} : { sampleCap }), ...(medianMultiple === undefined ? {} : { medianMultiple }) };
  },

  aggregate(params: FedAvgParams, base: Tensor[], updates: Contribution[]): Tensor[] {
    check(base, updates);
    const ws = fedavgWeights(params, updates);
    const total = ws.reduce((a, b) => a + b, 0);
    if (!(total > 0)) throw new AggregationError("total weight is zero");
    return combine(
      base,
      updates,
      (v, w) => {
        let s = 0;
        for (let u = 0; u < v.length; u++) s += w[u]! * v[u]!;
        return s / total;
      },
      ws,
    );
  },
};
