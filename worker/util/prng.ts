/**
 * Seeded pseudo-random numbers shared by data partitioning, parameter initialisation, training and the
 * simulator. Kept apart from `data/` and `training/` so that neither has to import the other for it.
 */

/** mulberry32: small, fast, seeded; the same seed gives the same stream on every platform. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
