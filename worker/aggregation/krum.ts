/**
 * Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer 2017, "Machine Learning with
 * Adversaries: Byzantine Tolerant Gradient Descent").
 *
 * With n updates of which at most f are Byzantine, the score of update i is the sum of the squared L2
 * distances from i to its n − f − 2 nearest other updates. Krum moves the model by the update with the
 * lowest score; Multi-Krum by the unweighted mean of the m lowest-scoring updates. Ties in score go to
 * the lower index (the on-chain order), so every validator selects the same updates.
 *
 * Rules, n being the round's number of accepted updates:
 * - Krum needs n > 2f + 2 (n − f − 2 ≥ 1 neighbours, and honest updates outnumber the rest). A spec'd
 *   f with n ≤ 2f + 2 is refused with `AggregationError` naming n and f; there is no silent fallback.
 * - `f` absent: the largest f the round allows, f = ⌊(n − 3) / 2⌋ (n = 3, 4 → 0; 5, 6 → 1; 7, 8 → 2;
 *   10 → 3), and 0 for n < 3.
 * - n ≤ 2 (then only f = 0 is possible): no update has a neighbour to be scored against, so nothing is
 *   selected out: Krum and Multi-Krum both return the unweighted mean of all n updates (n = 1: the
 *   update itself), whatever m says. With f ≥ 1 such a round is refused by the rule above.
 * - Multi-Krum's `m` absent: m = n − f (all but as many updates as may be Byzantine). A spec'd m must
 *   satisfy m ≤ n − f in the round, otherwise `AggregationError`: averaging more than n − f updates
 *   could take in a Byzantine one even when every honest update is selected.
 * - Multi-Krum averages the selected updates unweighted, as in the paper. Sample counts are
 *   self-reported and play no part in the selection, so weighting by them would hand an update that
 *   passes selection more pull than its neighbours vouch for.
 *
 * Cost: n²/2 distances over the flattened updates (float64), so O(n² · parameters) time and
 * O(n · parameters) memory.
 */
import type { Tensor } from "../artifacts/index.ts";
import { flatten } from "../training/delta.ts";
import { AggregationError, check, combine, isNonNegativeInt, mean, specError, type AggregationStrategy, type Contribution } from "./strategy.ts";

export interface KrumParams {
  /** Byzantine updates tolerated (a non-negative integer; default: the largest the round allows, ⌊(n − 3) / 2⌋, 0 for n < 3) */
  f?: number;
}

export interface MultiKrumParams extends KrumParams {
  /** how many of the lowest-scoring updates are averaged (a positive integer ≤ n − f; default n − f) */
  m?: number;
}

/** The largest f Krum tolerates with n updates (n > 2f + 2), 0 for n < 3. */
export const defaultKrumF = (n: number): number => (n < 3 ? 0 : Math.floor((n - 3) / 2));

export interface KrumSelection {
  /** the f used (spec'd or default) */
  f: number;
  /** the neighbours each score sums over, n − f − 2 (0 for n ≤ 2) */
  neighbours: number;
  /** each update's score, in update order (all 0 for n ≤ 2) */
  scores: Float64Array;
  /** the indices of the selected updates, ascending */
  selected: number[];
}

/**
 * Krum's scores and selection of `count` updates (Krum: 1; Multi-Krum: m, default n − f). Exported for
 * reports and tests; `aggregate` is this plus the mean of the selected updates.
 */
export function krumSelect(updates: Contribution[], f: number | undefined, count?: number): KrumSelection {
  const n = updates.length;
  if (n === 0) throw new AggregationError("no accepted updates to aggregate");
  const fUsed = f ?? defaultKrumF(n);
  if (!isNonNegativeInt(fUsed)) throw new AggregationError(`krum: f must be a non-negative integer, got ${fUsed}`);
  if (n <= 2 && fUsed === 0) return { f: 0, neighbours: 0, scores: new Float64Array(n), selected: [...Array(n).keys()] };
  if (n <= 2 * fUsed + 2) {
    throw new AggregationError(`krum needs more than 2f + 2 updates: n = ${n}, f = ${fUsed} (n = ${n} tolerates at most f = ${defaultKrumF(n)}${n < 3 ? ", and with n < 3 only f = 0 is defined" : ""})`);
  }
  const m = count ?? n - fUsed;
  if (!(Number.isSafeInteger(m) && m >= 1)) throw new AggregationError(`multi_krum: m must be a positive integer, got ${m}`);
  if (m > n - fUsed) throw new AggregationError(`multi_krum: m = ${m} exceeds n − f = ${n - fUsed} (n = ${n}, f = ${fUsed})`);

  const flat = updates.map((c) => flatten(c.delta));
  // d[i][j] = ‖δᵢ − δⱼ‖², summed in coordinate order, computed once per pair (so d[i][j] === d[j][i]).
  const d = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const a = flat[i]!;
      const b = flat[j]!;
      let s = 0;
      for (let p = 0; p < a.length; p++) {
        const x = a[p]! - b[p]!;
        s += x * x;
      }
      d[i]![j] = s;
      d[j]![i] = s;
    }
  }
  const neighbours = n - fUsed - 2;
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const others = new Float64Array(n - 1);
    for (let j = 0, k = 0; j < n; j++) if (j !== i) others[k++] = d[i]![j]!;
    others.sort(); // numeric, NaN last
    let s = 0;
    for (let k = 0; k < neighbours; k++) s += others[k]!;
    scores[i] = s;
  }
  // A total order: score ascending (NaN counts as +∞), then index.
  const key = (i: number) => (Number.isNaN(scores[i]!) ? Infinity : scores[i]!);
  const order = [...Array(n).keys()].sort((i, j) => key(i) - key(j) || i - j); // ∞ − ∞ is NaN, falsy: index decides
  const selected = order.slice(0, m).sort((i, j) => i - j);
  return { f: fUsed, neighbours, scores, selected };
}

/** base + the unweighted mean of the selected updates, summed in index order. */
function meanOf(base: Tensor[], updates: Contribution[], selected: number[]): Tensor[] {
  return combine(base, selected.map((i) => updates[i]!), mean);
}

function parseF(raw: Readonly<Record<string, unknown>>): KrumParams {
  const { f } = raw;
  if (f !== undefined && !isNonNegativeInt(f)) throw specError("f", "a non-negative integer (Byzantine updates tolerated)", f);
  return f === undefined ? {} : { f: f as number };
}

export const krum: AggregationStrategy<KrumParams, "krum"> = {
  kind: "krum",
  summary: "the update with the lowest Krum score (sum of squared distances to its n − f − 2 nearest updates); f defaults to ⌊(n − 3) / 2⌋",
  fields: ["f"],
  defaults: {},

  parse: parseF,

  aggregate(params: KrumParams, base: Tensor[], updates: Contribution[]): Tensor[] {
    check(base, updates);
    return meanOf(base, updates, krumSelect(updates, params.f, 1).selected);
  },
};

export const multiKrum: AggregationStrategy<MultiKrumParams, "multi_krum"> = {
  kind: "multi_krum",
  summary: "unweighted mean of the m updates with the lowest Krum scores; f defaults to ⌊(n − 3) / 2⌋, m to n − f",
  fields: ["f", "m"],
  defaults: {},

  parse(raw) {
    const { m } = raw;
    if (m !== undefined && !(Number.isSafeInteger(m) && (m as number) >= 1)) throw specError("m", "a positive integer (updates averaged)", m);
    return { ...parseF(raw), ...(m === undefined ? {} : { m: m as number }) };
  },

  aggregate(params: MultiKrumParams, base: Tensor[], updates: Contribution[]): Tensor[] {
    check(base, updates);
    return meanOf(base, updates, krumSelect(updates, params.f, params.m).selected);
  },
};
