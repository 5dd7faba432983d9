/** Coordinate-wise median (Yin et al. 2018): at each coordinate, the median of the updates' values. */
import type { Tensor } from "../artifacts/index.ts";
import { check, combine, sorted, type AggregationStrategy, type Contribution } from "./strategy.ts";

/** The median takes no parameters. */
export type MedianParams = Record<never, never>;

export const median: AggregationStrategy<MedianParams, "median"> = {
  kind: "median",
  summary: "coordinate-wise median of the updates (the mean of the two middle values for an even count)",
  fields: [],
  defaults: {},

  parse() {
    return {};
  },

  aggregate(_params: MedianParams, base: Tensor[], updates: Contribution[]): Tensor[] {
    check(base, updates);
    return combine(base, updates, (v) => {
      const s = sorted(v);
      const m = s.length >> 1;
      return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
    });
  },
};
