/**
 * Aggregation policies: how a round's accepted updates become the next model. One interface, one
 * function per policy (adding a policy touches this file only). Every policy is deterministic: the
 * updates are taken in their on-chain index order and accumulated in float64 in a fixed order, then
 * rounded to float32 once, so every honest validator computes the same bytes and hence the same CID.
 */
import type { Tensor } from "../artifacts/index.ts";

export interface Contribution {
  /** The update (local − base), tensor by tensor in the model's order. */
  delta: Tensor[];
  numSamples: number;
}

export type AggregationPolicy =
  | {
      kind: "fedavg";
      /** weight cap per update: wᵢ = min(numSamplesᵢ, cap) */
      sampleCap?: number;
      /**
       * A second cap, relative to the round: wᵢ ≤ medianMultiple × the median declared count of the
       * accepted updates (default 2). Sample counts are self-reported, so without it one worker that
       * claims a huge count holds the model wherever its update points.
       */
      medianMultiple?: number;
    }
  | { kind: "median" }
  | { kind: "trimmed_mean"; /** fraction trimmed from each end, per coordinate (0 ≤ f < 0.5) */ trim: number };

export class AggregationError extends Error {
  override readonly name = "AggregationError";
}

function check(base: Tensor[], updates: Contribution[]): void {
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

/** Applies a per-coordinate combiner of the deltas to the base. */
function combine(base: Tensor[], updates: Contribution[], f: (values: Float64Array, ws: Float64Array) => number, weights: Float64Array): Tensor[] {
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

const sorted = (v: Float64Array) => Float64Array.from(v).sort();

/** FedAvg's default cap on one update's weight, as a multiple of the round's median declared count. */
export const DEFAULT_MEDIAN_MULTIPLE = 2;

export function aggregate(policy: AggregationPolicy, base: Tensor[], updates: Contribution[]): Tensor[] {
  check(base, updates);
  switch (policy.kind) {
    case "fedavg": {
      const multiple = policy.medianMultiple ?? DEFAULT_MEDIAN_MULTIPLE;
      if (!(multiple >= 1)) throw new AggregationError(`medianMultiple must be at least 1, got ${multiple}`);
      const counts = sorted(Float64Array.from(updates, (c) => c.numSamples));
      const m = counts.length >> 1;
      const median = counts.length % 2 ? counts[m]! : (counts[m - 1]! + counts[m]!) / 2;
      const cap = Math.min(policy.sampleCap ?? Infinity, multiple * median);
      const ws = Float64Array.from(updates, (c) => Math.min(c.numSamples, cap));
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
    }
    case "median":
      return combine(
        base,
        updates,
        (v) => {
          const s = sorted(v);
          const m = s.length >> 1;
          return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
        },
        new Float64Array(0),
      );
    case "trimmed_mean": {
      if (!(policy.trim >= 0 && policy.trim < 0.5)) throw new AggregationError(`trim must be in [0, 0.5), got ${policy.trim}`);
      const k = Math.floor(updates.length * policy.trim);
      return combine(
        base,
        updates,
        (v) => {
          const s = sorted(v);
          let sum = 0;
          for (let u = k; u < s.length - k; u++) sum += s[u]!;
          return sum / (s.length - 2 * k);
        },
        new Float64Array(0),
      );
    }
  }
}

/** local − base, tensor by tensor. */
export function deltaOf(local: Tensor[], base: Tensor[]): Tensor[] {
  return local.map((t, i) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data, (v, j) => v - base[i]!.data[j]!) }));
}

/** base + delta, tensor by tensor. */
export function applyDelta(base: Tensor[], delta: Tensor[]): Tensor[] {
  return base.map((t, i) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data, (v, j) => v + delta[i]!.data[j]!) }));
}
