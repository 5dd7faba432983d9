/** `scaled`: submits its honest update multiplied by +10 (a model-replacement style boost). */
import type { Tensor } from "../../worker/artifacts/index.ts";
import type { Attack } from "./attack.ts";

/** How much `scaled` multiplies its honest update by. */
export const SCALED_FACTOR = 10;

/** Every tensor of `delta` times `k` (new arrays). */
export function times(delta: Tensor[], k: number): Tensor[] {
  return delta.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.map((v) => v * k) }));
}

/** An attack that trains honestly and submits `k` × its update. */
export function scaledAttack(name: string, k: number, summary: string): Attack {
  return { name, summary, craft: (r) => times(r.own, k) };
}

export const scaled: Attack = scaledAttack("scaled", SCALED_FACTOR, `scaled ×${SCALED_FACTOR} updates`);
