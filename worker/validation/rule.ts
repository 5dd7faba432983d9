/**
 * The acceptance policy's building block: a rule judges every candidate update of a round (those that
 * passed the structural checks and every earlier rule) and returns, per candidate, pass or reject with a
 * reason code, a sentence, and the scores behind it. A round's decision is the conjunction of the job's
 * rules, in the order the job spec lists them (worker/validation/validate.ts). One file per rule under
 * rules/, one line each in the registry (rules/index.ts): a new rule touches nothing else.
 */
import type { Tensor } from "../artifacts/index.ts";
import { SpecError } from "../training/spec.ts";

/** An update that passed the structural checks, with what the rules compute on. */
export interface Candidate {
  /** Index in the round (reveal order). */
  index: number;
  /** The worker's address, 0x-hex. */
  worker: string;
  numSamples: bigint;
  delta: Tensor[];
  /** `delta` end to end in float64. */
  flat: Float64Array;
  norm: number;
}

/** A delta kept from an earlier round of the job (ReplayMemory). */
export interface PastDelta {
  round: number;
  /** What it was: an update of `worker`, or the aggregate step the round applied. */
  source: string;
  flat: Float64Array;
  norm: number;
}

/** The validator's held-out measurements, computed once per round and model (decideRound caches them). */
export interface HeldOut {
  /** The class label of each entry of `baseLosses` / `lossesOf` (empty for a regression task). */
  readonly classes: readonly number[];
  /** Held-out loss of the base model per class (one entry for a regression task). */
  baseLosses(): Promise<number[]>;
  /** Held-out loss of base + the candidate's delta, per class. */
  lossesOf(c: Candidate): Promise<number[]>;
  /** The validator's own update on its held-out data, from the base (FLTrust's "root" update), flattened. */
  reference(): Promise<Float64Array>;
}

export interface RoundView {
  round: number;
  /** The candidates still in (passed every earlier rule), in index order. */
  candidates: Candidate[];
  /** Every update that passed the structural checks, rejected by an earlier rule or not. */
  all: Candidate[];
  /**
   * The cosine of every pair of `all` (row-major, all.length²; computed once per round, for every rule
   * that compares updates with each other): `cosines()[i * n + j]` for `all[i]`, `all[j]`.
   */
  cosines(): Float64Array;
  /** Where each candidate index sits in `all` (for `cosines`). */
  positionOf(index: number): number;
  /** Deltas of the job's earlier rounds this validator saw. */
  history: readonly PastDelta[];
  heldOut: HeldOut;
}

export interface Verdict {
  pass: boolean;
  /** Machine-readable reason for a rejection, e.g. "zero-update", "replay". */
  code?: string;
  /** The sentence logged and shown: what failed, with the numbers. */
  reason?: string;
  /** Scores behind the verdict (shown by `fedstake vote evaluate` and the demo, whatever they are). */
  metrics: Record<string, number>;
}

export interface AcceptanceRule<P extends object = object> {
  /** Registry key, as the job spec names it ("rule": "norm"). */
  readonly name: string;
  /** One line: what the rule rejects and why. */
  readonly summary: string;
  readonly defaults: P;
  /** Checks the rule's parameters from the job spec (defaults filled in); errors name the field. */
  parse(raw: Record<string, unknown>, field: string): P;
  /** One verdict per candidate of `view.candidates`, in that order. */
  judge(view: RoundView, params: P): Promise<Verdict[]>;
}

export const dot = (a: Float64Array, b: Float64Array): number => {
  // Four accumulators: the loop is the validator's hot spot (every pair of a round's updates).
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = a.length - (a.length % 4);
  for (let i = 0; i < n; i += 4) {
    s0 += a[i]! * b[i]!;
    s1 += a[i + 1]! * b[i + 1]!;
    s2 += a[i + 2]! * b[i + 2]!;
    s3 += a[i + 3]! * b[i + 3]!;
  }
  for (let i = n; i < a.length; i++) s0 += a[i]! * b[i]!;
  return s0 + s1 + s2 + s3;
};

/** Buckets of the count sketch (sketchOf): the cosine of two sketches estimates theirs within ≈ 1/√1024. */
const SKETCH_SIZE = 1024;
const sketches = new WeakMap<Float64Array, Float64Array>();

/**
 * A count sketch of `v` (Charikar et al. 2002): every coordinate added, with a sign, to one of 1024
 * buckets chosen by a fixed hash of its position, so every validator computes the same sketch. The
 * cosine of two sketches estimates the cosine of the vectors (nearly exactly for near-identical ones);
 * a rule compares a round's updates with hundreds of earlier ones through their sketches and computes
 * the exact cosine only for the pairs the sketch puts near its bound. Cached per vector.
 */
export function sketchOf(v: Float64Array): Float64Array {
  let s = sketches.get(v);
  if (s) return s;
  s = new Float64Array(SKETCH_SIZE);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (x === 0) continue;
    // A multiplicative hash of the position (Knuth): low bits pick the bucket, a high bit the sign.
    const h = Math.imul(i + 1, 0x9e3779b1) >>> 0;
    s[h & (SKETCH_SIZE - 1)]! += h & 0x80000000 ? -x : x;
  }
  sketches.set(v, s);
  return s;
}

/** The cosine matrix of `vs` (row-major, symmetric, 1 on the diagonal; 0 for a zero vector), each pair's dot product computed once. */
export function cosineMatrix(vs: readonly { flat: Float64Array; norm: number }[]): Float64Array {
  const n = vs.length;
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    m[i * n + i] = vs[i]!.norm > 0 ? 1 : 0;
    for (let j = i + 1; j < n; j++) {
      const c = cosine(vs[i]!.flat, vs[j]!.flat, vs[i]!.norm, vs[j]!.norm);
      m[i * n + j] = c;
      m[j * n + i] = c;
    }
  }
  return m;
}
export const l2 = (a: Float64Array): number => Math.sqrt(dot(a, a));
/** Cosine similarity; 0 when either vector is zero. */
export const cosine = (a: Float64Array, b: Float64Array, na = l2(a), nb = l2(b)): number => (na > 0 && nb > 0 ? dot(a, b) / (na * nb) : 0);
export const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export const round4 = (v: number): number => Math.round(v * 1e4) / 1e4;
export const mean = (v: readonly number[]): number => v.reduce((a, b) => a + b, 0) / v.length;

/** The bounds and default of one numeric rule parameter. */
export interface NumberParam {
  default: number;
  min: number;
  max: number;
}

/**
 * A rule's `defaults` and `parse` from the declaration of its parameters, all numbers: each is a finite
 * number in [min, max] or takes its default, and a key the rule does not have is refused (a typo must not
 * silently fall back to a default). Errors name the field.
 */
export function numberParams<P extends { [K in keyof P]: number }>(decl: { [K in keyof P]: NumberParam }): Pick<AcceptanceRule<P>, "defaults" | "parse"> {
  const keys = Object.keys(decl) as (keyof P & string)[];
  return {
    defaults: Object.fromEntries(keys.map((k) => [k, decl[k].default])) as P,
    parse(raw, field) {
      for (const k of Object.keys(raw)) if (k !== "rule" && !(keys as string[]).includes(k)) throw new SpecError(`${field}.${k} is not a parameter of this rule (it has: ${keys.join(", ") || "none"})`);
      return Object.fromEntries(
        keys.map((k) => {
          const { default: dflt, min, max } = decl[k];
          const v = raw[k] ?? dflt;
          if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
            throw new SpecError(`${field}.${k} must be a number in [${min}, ${max}], got ${JSON.stringify(raw[k])}`);
          }
          return [k, v];
        }),
      ) as P;
    },
  };
}
