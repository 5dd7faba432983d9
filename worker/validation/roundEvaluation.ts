/**
 * What a validator knows of one round, as one JSON document: the round header (job, round, phase, base
 * model, deadlines), the base model's score on the validator's held-out data, and for every revealed
 * update its structural check and, when it decodes, its norm, its cosine to the round's coordinate
 * median, the held-out loss and accuracy of base + update, every rule's verdict (each rule judging all
 * decodable updates alone) and the built-in policy's verdict. A decision hook (worker/node/decide.ts)
 * receives it and answers with the indices to accept; `fedstake vote evaluate --json` prints it. It does
 * not depend on what the built-in policy decided: a hook with its own rule sees every score.
 */
import { cosine, l2, round4, type Candidate, type Verdict } from "./rule.ts";
import type { Decision, Evaluation } from "./validate.ts";

/** A chain time (unix seconds) and the same instant as an ISO date. */
export interface ChainTime {
  at: number;
  iso: string;
}

export interface UpdateEvaluation {
  index: number;
  worker: string;
  /** Decimal, as on chain. */
  numSamples: string;
  cid: string;
  /** Passed the structural checks (decodes; header and tensors match the chain and the model). */
  decodable: boolean;
  /** The structural check's code ("accepted", or unavailable / malformed / header / shape) and sentence. */
  code: string;
  reason: string;
  /** The rest only for a decodable update. The L2 norm of its delta (every tensor, end to end, float64). */
  norm?: number;
  /** Cosine to the coordinate-wise median of the round's decodable updates. */
  cosine?: number;
  /** Held-out loss and accuracy of base + update (accuracy null for a regression task). */
  loss?: number;
  accuracy?: number | null;
  /** Every rule of the validator's policy, by name (a rule listed twice: "name#position"), judged alone. */
  rules?: Record<string, { pass: boolean; code?: string; reason?: string; metrics: Record<string, number> }>;
  /** The built-in policy's verdict (its rules in sequence). */
  builtIn: { accept: boolean; code: string; reason: string };
}

export interface RoundEvaluation {
  version: 1;
  /** Decimal job id. */
  job: string;
  round: number;
  /** The round's phase when it was evaluated (worker/chain/protocol.ts phaseName). */
  phase: string;
  /** Revealed updates: valid indices are 0 … updateCount − 1. */
  updateCount: number;
  baseModel: string;
  /** When each phase ends at the latest (a phase closes early once everybody acted). */
  deadlines: { commit: ChainTime; reveal: ChainTime; voteCommit: ChainTime; voteReveal: ChainTime };
  /**
   * The base model on this validator's held-out data: sample count, mean loss and accuracy (null for a
   * regression job). Always there from a validator node; absent only from an Evaluation built in code
   * without a `score` method.
   */
  heldOut?: { samples: number; loss: number; accuracy: number | null };
  updates: UpdateEvaluation[];
  builtIn: { accepted: number[] };
}

/** A decision hook: the indices of the updates to accept. */
export type DecideFn = (evaluation: RoundEvaluation) => number[] | Promise<number[]>;

export const chainTime = (at: bigint | number): ChainTime => ({ at: Number(at), iso: new Date(Number(at) * 1000).toISOString().replace(".000Z", "Z") });

/** The coordinate-wise median of equal-length vectors. */
export function coordinateMedian(vs: readonly Float64Array[]): Float64Array {
  const n = vs[0]?.length ?? 0;
  const out = new Float64Array(n);
  const col = new Float64Array(vs.length);
  const m = vs.length >> 1;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < vs.length; j++) col[j] = vs[j]![i]!;
    col.sort();
    out[i] = vs.length % 2 ? col[m]! : (col[m - 1]! + col[m]!) / 2;
  }
  return out;
}

export interface RoundEvaluationInput {
  job: bigint;
  round: number;
  phase: string;
  baseModel: string;
  deadlines: RoundEvaluation["deadlines"];
  /** Every revealed update, index order: what the chain says of it. */
  updates: { index: number; worker: string; numSamples: bigint; cid: string }[];
  decisions: Decision[];
  candidates: Candidate[];
  /** decideRound's `verdicts` (run with `independent`). */
  verdicts: Map<number, Record<string, Verdict>>;
  evaluation: Evaluation;
  heldOutSamples?: number;
}

export async function roundEvaluation(x: RoundEvaluationInput): Promise<RoundEvaluation> {
  const centre = x.candidates.length ? coordinateMedian(x.candidates.map((c) => c.flat)) : undefined;
  const centreNorm = centre ? l2(centre) : 0;
  const score = x.evaluation.score?.bind(x.evaluation);
  const base = score ? await score(null) : undefined;
  const updates: UpdateEvaluation[] = [];
  for (const u of x.updates) {
    const d = x.decisions.find((y) => y.index === u.index)!;
    const c = x.candidates.find((y) => y.index === u.index);
    const builtIn = { accept: d.accept, code: d.code, reason: d.reason };
    const head = { index: u.index, worker: u.worker, numSamples: u.numSamples.toString(), cid: u.cid };
    if (!c) {
      updates.push({ ...head, decodable: false, code: d.code, reason: d.reason, builtIn });
      continue;
    }
    const s = score ? await score(c.delta) : undefined;
    const rules = Object.fromEntries(
      Object.entries(x.verdicts.get(u.index) ?? {}).map(([name, v]) => [name, { pass: v.pass, ...(v.code ? { code: v.code } : {}), ...(v.reason ? { reason: v.reason } : {}), metrics: v.metrics }]),
    );
    updates.push({
      ...head,
      decodable: true,
      code: "accepted",
      reason: "passed the structural checks",
      norm: round4(c.norm),
      cosine: round4(cosine(c.flat, centre!, c.norm, centreNorm)),
      ...(s ? { loss: Number(s.loss.toFixed(6)), accuracy: s.accuracy === null ? null : Number(s.accuracy.toFixed(4)) } : {}),
      rules,
      builtIn,
    });
  }
  return {
    version: 1,
    job: x.job.toString(),
    round: x.round,
    phase: x.phase,
    updateCount: x.updates.length,
    baseModel: x.baseModel,
    deadlines: x.deadlines,
    ...(base ? { heldOut: { samples: x.heldOutSamples ?? 0, loss: Number(base.loss.toFixed(6)), accuracy: base.accuracy === null ? null : Number(base.accuracy.toFixed(4)) } } : {}),
    updates,
    builtIn: { accepted: x.decisions.filter((d) => d.accept).map((d) => d.index) },
  };
}

/**
 * A hook's answer, checked: a JSON array of update indices, or an object `{ "accept": [...] }`. Each must
 * be a whole number below `updateCount`; duplicates are refused too (a hook that repeats an index is
 * likely confused). Throws an Error naming the problem.
 */
export function acceptedIndices(answer: unknown, updateCount: number): number[] {
  const list = Array.isArray(answer) ? answer : answer && typeof answer === "object" && Array.isArray((answer as { accept?: unknown }).accept) ? (answer as { accept: unknown[] }).accept : undefined;
  if (!list) throw new Error(`the answer must be a JSON array of update indices or {"accept": [...]}, got ${JSON.stringify(answer)?.slice(0, 80)}`);
  const seen = new Set<number>();
  for (const i of list) {
    if (typeof i !== "number" || !Number.isInteger(i) || i < 0) throw new Error(`index ${JSON.stringify(i)} is not a whole number ≥ 0`);
    if (i >= updateCount) throw new Error(`index ${i} is out of range: ${updateCount === 0 ? "the round has no revealed updates" : `the round has ${updateCount} revealed update${updateCount === 1 ? "" : "s"} (0…${updateCount - 1})`}`);
    if (seen.has(i)) throw new Error(`index ${i} is listed twice`);
    seen.add(i);
  }
  return [...seen].sort((a, b) => a - b);
}
