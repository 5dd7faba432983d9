/**
 * Coordinate-wise trimmed mean (Yin et al. 2018): at each coordinate, drop the ⌊n·trim⌋ smallest and
 * largest values and average the rest.
 */
import type { Tensor } from "../artifacts/index.ts";
import { AggregationError, check, combine, isFiniteNumber, sorted, specError, type AggregationStrategy, type Contribution } from "./strategy.ts";

export interface TrimmedMeanParams {
  /** fraction trimmed from each end, per coordinate (0 ≤ trim < 0.5); required */
  trim: number;
}

export const trimmedMean: AggregationStrategy<TrimmedMeanParams, "trimmed_mean"> = {
  kind: "trimmed_mean",
  summary: "coordinate-wise mean after dropping the ⌊n·trim⌋ smallest and largest values",
  fields: ["trim"],
  defaults: {},

  parse(raw) {
    const { trim } = raw;
    if (!(isFiniteNumber(trim) && trim >= 0 && trim < 0.5)) throw specError("trim", "in [0, 0.5)", trim);
    return { trim };
  },

  aggregate(params: TrimmedMeanParams, base: Tensor[], updates: Contribution[]): Tensor[] {
    check(base, updates);
    const { trim } = params;
    if (!(trim >= 0 && trim < 0.5)) throw new AggregationError(`trim must be in [0, 0.5), got ${trim}`);
    const k = Math.floor(updates.length * trim);
    return combine(base, updates, (v) => {
      const s = sorted(v);
      let sum = 0;
      for (let u = k; u < s.length - k; u++) sum += s[u]!;
      return sum / (s.length - 2 * k);
    });
  },
};
