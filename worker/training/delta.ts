/**
 * Model updates as tensors: an update (delta) is local − base, tensor by tensor in the model's order.
 * The arithmetic every part shares (workers build deltas, validators apply and compare them, the
 * aggregation policies combine them), in one place.
 */
import type { Tensor } from "../artifacts/index.ts";

/** local − base, tensor by tensor. */
export function deltaOf(local: Tensor[], base: Tensor[]): Tensor[] {
  return local.map((t, i) => ({ name: t.name, shape: [...t.shape], data: combine(t.data, base[i]!.data, -1) }));
}

/** base + delta, tensor by tensor. */
export function applyDelta(base: Tensor[], delta: Tensor[]): Tensor[] {
  return base.map((t, i) => ({ name: t.name, shape: [...t.shape], data: combine(t.data, delta[i]!.data, 1) }));
}

/** a + sign × b, element by element (a plain loop: Float32Array.from with a callback is several times slower). */
function combine(a: Float32Array, b: Float32Array, sign: 1 | -1): Float32Array {
  const out = new Float32Array(a.length);
  if (sign === 1) for (let j = 0; j < a.length; j++) out[j] = a[j]! + b[j]!;
  else for (let j = 0; j < a.length; j++) out[j] = a[j]! - b[j]!;
  return out;
}

/** All zeros, shaped like `like`. */
export function zerosLike(like: Tensor[]): Tensor[] {
  return like.map((t) => ({ name: t.name, shape: [...t.shape], data: new Float32Array(t.data.length) }));
}

/** The tensors' values end to end, in float64 (what distances and statistics are computed on). */
export function flatten(delta: Tensor[]): Float64Array {
  const out = new Float64Array(delta.reduce((s, t) => s + t.data.length, 0));
  let p = 0;
  for (const t of delta) for (const v of t.data) out[p++] = v;
  return out;
}

/** The inverse of `flatten`: values cut into tensors shaped like `like` (rounded to float32). */
export function unflatten(values: ArrayLike<number>, like: Tensor[]): Tensor[] {
  let p = 0;
  return like.map((t) => {
    const data = new Float32Array(t.data.length);
    for (let j = 0; j < data.length; j++) data[j] = values[p++]!;
    return { name: t.name, shape: [...t.shape], data };
  });
}
