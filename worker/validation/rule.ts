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
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
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
