/**
 * `alie`: "A Little Is Enough" (Baruch, Baruch and Goldberg, NeurIPS 2019). The colluding group
 * estimates, per coordinate, the mean μ and standard deviation σ of its members' honest updates and
 * every member submits μ − z·σ: a small, coordinated shift that stays within the honest spread, so that
 * distance- and median-based defences keep it.
 *
 * The paper picks z = Φ⁻¹((n − s)/n) with s = ⌊n/2 + 1⌋ − k for n workers of which k collude; an
 * attacker does not know n (the round's worker count), so z is fixed: ALIE_Z = 1.0 (Φ⁻¹(0.84) ≈ 1, the
 * rule's value when about a third of the workers collude, e.g. n = 30, k = 11; `alieAttack(z)` for others). σ is the population
 * standard deviation (divide by k). A lone attacker (k = 1) has σ = 0 and submits its honest update.
 */
import type { Tensor } from "../../worker/artifacts/index.ts";
import type { Attack } from "./attack.ts";

/** The default number of standard deviations ALIE shifts by. */
export const ALIE_Z = 1.0;

/** μ − z·σ per coordinate over `updates` (k ≥ 1 updates of equal shapes). */
export function alieUpdate(updates: Tensor[][], z: number): Tensor[] {
  const k = updates.length;
  if (k < 1) throw new Error("alie needs at least one colluder's update");
  return updates[0]!.map((t, ti) => {
    const data = new Float32Array(t.data.length);
    for (let j = 0; j < data.length; j++) {
      let mean = 0;
      for (const u of updates) mean += u[ti]!.data[j]!;
      mean /= k;
      let v = 0;
      for (const u of updates) v += (u[ti]!.data[j]! - mean) ** 2;
      data[j] = mean - z * Math.sqrt(v / k);
    }
    return { name: t.name, shape: [...t.shape], data };
  });
}

export function alieAttack(z = ALIE_Z): Attack {
  return {
    name: "alie",
    summary: `"A Little Is Enough": colluders' mean − ${z}·std per coordinate`,
    craft: (r) => alieUpdate(r.colluders.length ? r.colluders : [r.own], z),
  };
}

export const alie: Attack = alieAttack();
