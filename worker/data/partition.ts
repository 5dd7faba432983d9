/**
 * Splits a data set across N parties for simulations: IID (a seeded shuffle cut into equal parts) or
 * non-IID by Dirichlet(α) class proportions (small α: each party sees few classes).
 */
import { prng } from "../util/prng.ts";
import { DataError, subset, type Dataset } from "./dataset.ts";

function shuffle(a: number[], rand: () => number): number[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

export function iidSplit(d: Dataset, parties: number, seed: number): Dataset[] {
  if (!Number.isInteger(parties) || parties < 1 || parties > d.n) throw new DataError(`cannot split ${d.n} samples across ${parties} parties`);
  const order = shuffle(Array.from({ length: d.n }, (_, i) => i), prng(seed));
  const per = Math.floor(d.n / parties);
  return Array.from({ length: parties }, (_, p) => subset(d, order.slice(p * per, (p + 1) * per)));
}

/** Marsaglia–Tsang gamma sampler (α < 1 via the boost α+1 and U^(1/α)). */
function gamma(alpha: number, rand: () => number): number {
  if (alpha < 1) return gamma(alpha + 1, rand) * Math.pow(rand(), 1 / alpha);
  const d = alpha - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      const u1 = rand() || 1e-12;
      const u2 = rand();
      x = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function dirichletSplit(d: Dataset, parties: number, alpha: number, seed: number): Dataset[] {
  if (!d.labels) throw new DataError("a Dirichlet split needs class labels");
  if (!(alpha > 0)) throw new DataError(`Dirichlet α must be positive, got ${alpha}`);
  if (!Number.isInteger(parties) || parties < 1) throw new DataError(`parties must be a positive integer, got ${parties}`);
  const rand = prng(seed);
  const byClass = new Map<number, number[]>();
  d.labels.forEach((l, i) => byClass.set(l, [...(byClass.get(l) ?? []), i]));
  const shards: number[][] = Array.from({ length: parties }, () => []);
  for (const cls of [...byClass.keys()].sort((a, b) => a - b)) {
    const idx = shuffle(byClass.get(cls)!, rand);
    const g = Array.from({ length: parties }, () => gamma(alpha, rand));
    const sum = g.reduce((a, b) => a + b, 0);
    let start = 0;
    g.forEach((w, p) => {
      const end = p === parties - 1 ? idx.length : start + Math.round((w / sum) * idx.length);
      shards[p]!.push(...idx.slice(start, Math.min(end, idx.length)));
      start = Math.min(end, idx.length);
    });
  }
  return shards.map((s) => subset(d, shuffle(s, rand)));
}
