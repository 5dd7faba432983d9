/**
 * The aggregation strategy interface and what every strategy shares: the contribution type, the error
 * class, the input check and the per-coordinate combiner.
 *
 * Every strategy is deterministic: the updates are taken in their on-chain index order, accumulated in
 * float64 in a fixed order and rounded to float32 once, so every honest validator computes the same
 * bytes and hence the same CID.
 */
import type { Tensor } from "../artifacts/index.ts";
import { SpecError } from "../training/spec.ts";

/** One accepted update of a round. */
export interface Contribution {
  /** The update (local − base), tensor by tensor in the model's order. */
  delta: Tensor[];
  numSamples: number;
}

/** A round's updates cannot be aggregated with the given parameters (empty round, mismatched tensors, too few updates). */
export class AggregationError extends Error {
  override readonly name = "AggregationError";
}

/**
 * One aggregation strategy: how a round's accepted updates become the next model. `P` is its
 * parameters (the job spec's "aggregation" object without `kind`), `K` its kind.
 */
export interface AggregationStrategy<P extends object = object, K extends string = string> {
  /** The job spec's `aggregation.kind`. */
  readonly kind: K;
  /** One line: what the strategy computes. */
  readonly summary: string;
  /** The parameters it accepts (any other field in the spec is an error). */
  readonly fields: readonly (keyof P & string)[];
  /**
   * The values used for parameters absent from the spec. A parameter whose default depends on the
   * round (Krum's `f` and `m`, computed from the number of updates) is not listed; its TSDoc says how.
   */
  readonly defaults: Readonly<Partial<P>>;
  /**
   * Checks the job spec's "aggregation" object (its `kind` already matched) and returns the parameters
   * as given, without filling in the defaults; throws `SpecError` naming the field.
   */
  parse(raw: Readonly<Record<string, unknown>>): P;
  /** The next model: base + the combined updates. Throws `AggregationError`. */
  aggregate(params: P, base: Tensor[], updates: Contribution[]): Tensor[];
}

/** Checks that there is at least one update and that every update matches the model tensor by tensor. */
export function check(base: Tensor[], updates: Contribution[]): void {
  if (updates.length === 0) throw new AggregationError("no accepted updates to aggregate");
  for (const [u, c] of updates.entries()) {
    if (c.delta.length !== base.length) throw new AggregationError(`update ${u} has ${c.delta.length} tensors, the model has ${base.length}`);
    c.delta.forEach((t, i) => {
      if (t.name !== base[i]!.name || t.data.length !== base[i]!.data.length) {
        throw new AggregationError(`update ${u}, tensor ${i}: "${t.name}" (${t.data.length}) does not match "${base[i]!.name}" (${base[i]!.data.length})`);
      }
    });
  }
}

/**
 * base + f(the updates' values at each coordinate), computed in float64 and rounded to float32 once.
 * `f` gets the column of values in update order and the `weights` passed here.
 */
export function combine(base: Tensor[], updates: Contribution[], f: (values: Float64Array, weights: Float64Array) => number, weights: Float64Array = new Float64Array(0)): Tensor[] {
  const col = new Float64Array(updates.length);
  return base.map((t, i) => {
    const out = new Float32Array(t.data.length);
    for (let j = 0; j < out.length; j++) {
      for (let u = 0; u < updates.length; u++) col[u] = updates[u]!.delta[i]!.data[j]!;
      out[j] = t.data[j]! + f(col, weights);
    }
    return { name: t.name, shape: [...t.shape], data: out };
  });
}

/** The unweighted mean of a column, summed in index order. */
export function mean(values: Float64Array): number {
  let s = 0;
  for (let u = 0; u < values.length; u++) s += values[u]!;
  return s / values.length;
}

/** A sorted float64 copy (numeric order). */
export const sorted = (v: Float64Array): Float64Array => Float64Array.from(v).sort();

/** `SpecError` for the job spec's `aggregation.<field>`. */
export function specError(field: string, must: string, got: unknown): SpecError {
  return new SpecError(`job spec: aggregation.${field} must be ${must}, got ${JSON.stringify(got) ?? "nothing"}`);
}

/** Number checks the parsers share. */
export const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
export const isNonNegativeInt = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
