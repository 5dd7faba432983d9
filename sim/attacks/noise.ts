/**
 * `noise`: submits Gaussian noise with the L2 norm of its honest update, so that a norm bound alone
 * cannot tell it apart. It trains (it needs its honest update's norm), then throws the update away.
 */
import { flatten, unflatten } from "../../worker/training/delta.ts";
import type { Attack } from "./attack.ts";

/** A standard normal sample by Box–Muller from uniform `rand` (one of the pair; deterministic). */
export function gaussian(rand: () => number): number {
  const u = 1 - rand(); // (0, 1]: log(u) is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

export const noise: Attack = {
  name: "noise",
  summary: "Gaussian noise with the norm of its honest update",
  skipsTraining: false,
  craft(r) {
    const own = flatten(r.own);
    const norm = Math.sqrt(own.reduce((s, v) => s + v * v, 0));
    const g = Float64Array.from(own, () => gaussian(r.rand));
    const gNorm = Math.sqrt(g.reduce((s, v) => s + v * v, 0));
    const k = gNorm > 0 ? norm / gNorm : 0;
    return unflatten(g.map((v) => v * k), r.own);
  },
};
