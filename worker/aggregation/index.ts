/**
 * Aggregation policies: how a round's accepted updates become the next model. Each policy is one
 * `AggregationStrategy` in its own file; this registry owns the job spec's "aggregation" object
 * (parsing, the list of kinds) and dispatches `aggregate` by kind. Adding a strategy: its file, plus
 * its entry in `STRATEGIES` below.
 *
 * Every strategy is deterministic: the updates are taken in their on-chain index order and accumulated
 * in float64 in a fixed order, then rounded to float32 once, so every honest validator computes the
 * same bytes and hence the same CID.
 */
import type { Tensor } from "../artifacts/index.ts";
import { SpecError } from "../training/spec.ts";
import { fedavg } from "./fedavg.ts";
import { krum, multiKrum } from "./krum.ts";
import { median } from "./median.ts";
import { AggregationError, type AggregationStrategy, type Contribution } from "./strategy.ts";
import { trimmedMean } from "./trimmedMean.ts";

export { AggregationError, type AggregationStrategy, type Contribution } from "./strategy.ts";
export { DEFAULT_MEDIAN_MULTIPLE, fedavgWeights, type FedAvgParams } from "./fedavg.ts";
export type { MedianParams } from "./median.ts";
export type { TrimmedMeanParams } from "./trimmedMean.ts";
export { defaultKrumF, krumSelect, type KrumParams, type KrumSelection, type MultiKrumParams } from "./krum.ts";

/** The strategies, in the order their kinds are listed in messages. One line per strategy. */
const STRATEGIES = [fedavg, median, trimmedMean, krum, multiKrum] as const;

type Strategy = (typeof STRATEGIES)[number];
type Flat<T> = { [K in keyof T]: T[K] } & {};
type PolicyOf<S> = S extends AggregationStrategy<infer P, infer K> ? Flat<{ kind: K } & P> : never;

/** An aggregation kind: "fedavg", "median", "trimmed_mean", "krum", "multi_krum". */
export type AggregationKind = Strategy["kind"];

/** The job spec's "aggregation" object: `{ kind, ...that strategy's parameters }`. */
export type AggregationPolicy = PolicyOf<Strategy>;

/** kind → strategy. */
export const AGGREGATIONS: { readonly [S in Strategy as S["kind"]]: S } = Object.freeze(Object.fromEntries(STRATEGIES.map((s) => [s.kind, s]))) as never;

/** The known kinds, in registry order. */
export const AGGREGATION_KINDS: readonly AggregationKind[] = Object.freeze(STRATEGIES.map((s) => s.kind));

/** The policy used when the job spec has no "aggregation". */
export const DEFAULT_AGGREGATION: AggregationPolicy = Object.freeze({ kind: "fedavg" });

const isKind = (k: unknown): k is AggregationKind => typeof k === "string" && Object.hasOwn(AGGREGATIONS, k);
const strategyOf = (kind: AggregationKind) => AGGREGATIONS[kind] as unknown as AggregationStrategy<object>;

/**
 * Checks the job spec's "aggregation" value and returns the policy (absent: `{ kind: "fedavg" }`).
 * Parameters are returned as given; defaults are applied at aggregation time. Throws `SpecError`
 * naming the field: an unknown kind, a parameter the kind does not take, a bad value.
 */
export function parseAggregation(raw: unknown): AggregationPolicy {
  if (raw === undefined) return { ...DEFAULT_AGGREGATION };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new SpecError(`job spec: aggregation must be an object like { "kind": "fedavg" }, got ${JSON.stringify(raw)}`);
  const a = raw as Record<string, unknown>;
  if (!isKind(a.kind)) {
    throw new SpecError(`job spec: aggregation.kind must be one of ${AGGREGATION_KINDS.map((k) => JSON.stringify(k)).join(", ")}, got ${JSON.stringify(a.kind) ?? "nothing"}`);
  }
  const s = strategyOf(a.kind);
  for (const field of Object.keys(a)) {
    if (field !== "kind" && !(s.fields as readonly string[]).includes(field)) {
      const takes = s.fields.length ? `takes ${s.fields.join(", ")}` : "takes no parameters";
      throw new SpecError(`job spec: aggregation.${field} is not a parameter of "${s.kind}" (it ${takes})`);
    }
  }
  return { kind: a.kind, ...s.parse(a) } as AggregationPolicy;
}

/** The next model: base + the policy's combination of the updates (in their on-chain index order). */
export function aggregate(policy: AggregationPolicy, base: Tensor[], updates: Contribution[]): Tensor[] {
  if (!isKind(policy.kind)) throw new AggregationError(`unknown aggregation kind ${JSON.stringify(policy.kind)}`);
  return strategyOf(policy.kind).aggregate(policy, base, updates);
}
