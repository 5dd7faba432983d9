/**
 * Gaussian noise for differential privacy, drawn from the operating system's CSPRNG.
 *
 * Why not Math.random: the DP guarantee assumes the noise is unknown to the observer. V8's
 * Math.random is xorshift128+, whose state can be recovered from a few dozen outputs; anyone who
 * learned it (from other values the process draws and publishes, e.g. a shuffle order, or from the
 * noise of one coordinate) could subtract the noise from every other coordinate and recover the
 * clipped update exactly. The same holds for any seeded PRNG whose seed is guessable. Here every
 * uniform comes from `crypto.randomFillSync` (the kernel CSPRNG), so the noise of one coordinate
 * says nothing about another's.
 *
 * Sampling: Box–Muller on 53-bit uniforms (two 32-bit CSPRNG words → one double with all 53 bits
 * random). u₁ ∈ (0, 1] so log u₁ is finite; the largest |draw| is √(2·53·ln 2) ≈ 8.57, i.e. the
 * tail beyond 8.57σ (probability ≈ 1e−17) is cut off. The draws are then rounded to float32 when they
 * are added to an update. Known limitation (Mironov 2012 for Laplace; Jin et al. 2022 for the
 * Gaussian): floating-point noise is not exactly the continuous Gaussian the analysis assumes, and the
 * gaps in the set of representable values can in principle leak; a discrete Gaussian (Canonne, Kamath,
 * Steinke 2020) on an integer lattice would remove that, at the cost of changing the update format.
 */
import { randomFillSync } from "node:crypto";

/** A stream of N(0, 1) draws. `secure` says whether an observer can predict it. */
export interface NormalSource {
  readonly secure: boolean;
  /** One N(0, 1) draw. */
  next(): number;
}

/** One double in [0, 1) with 53 random bits from two 32-bit words. */
const toUnit = (a: number, b: number) => ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992;

/** A Box–Muller normal source over any stream of 32-bit words (two normals per four words). */
class BoxMuller implements NormalSource {
  readonly secure: boolean;
  private readonly word: () => number;
  private spare = NaN;

  constructor(secure: boolean, word: () => number) {
    this.secure = secure;
    this.word = word;
  }

  next(): number {
    if (!Number.isNaN(this.spare)) {
      const s = this.spare;
      this.spare = NaN;
      return s;
    }
    const u1 = 1 - toUnit(this.word(), this.word()); // (0, 1]
    const u2 = toUnit(this.word(), this.word()); // [0, 1)
    const r = Math.sqrt(-2 * Math.log(u1));
    const t = 2 * Math.PI * u2;
    this.spare = r * Math.sin(t);
    return r * Math.cos(t);
  }
}

/**
 * N(0, 1) from the kernel CSPRNG: what every privacy noise uses. Buffers 16 KiB of random words at a
 * time (one `randomFillSync` per 2,048 normals).
 */
export function secureNormal(): NormalSource {
  const pool = new Uint32Array(4096);
  let at = pool.length;
  return new BoxMuller(true, () => {
    if (at === pool.length) {
      randomFillSync(pool);
      at = 0;
    }
    return pool[at++]!;
  });
}

/**
 * A deterministic N(0, 1) stream from a seed (sfc32 words), FOR TESTS ONLY: anyone who knows or
 * guesses the seed knows the noise, so it gives no privacy. It says so (`secure: false`), and
 * `privatize` refuses it unless told it is a test.
 */
export function seededNormalForTestsOnly(seed: number): NormalSource {
  // splitmix32 to spread the seed, then sfc32 (Chris Doty-Humphrey's small fast counting PRNG).
  let s = seed >>> 0;
  const mix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = mix();
  let b = mix();
  let c = mix();
  let d = 1;
  const word = () => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let i = 0; i < 12; i++) word();
  return new BoxMuller(false, word);
}

/** Adds σ·N(0, 1) to every value of `out` in place (float64 arithmetic, one rounding per value). */
export function addGaussian(out: Float32Array | Float64Array, sigma: number, source: NormalSource = secureNormal()): void {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new RangeError(`noise standard deviation must be a finite number ≥ 0, got ${sigma}`);
  if (sigma === 0) return;
  for (let j = 0; j < out.length; j++) out[j] = out[j]! + sigma * source.next();
}
