/**
 * The validator's acceptance policy for one round. Each revealed update is first checked structurally
 * (it decodes; its header names this job, round, base model, worker and sample count, as the chain does;
 * its tensors have the model's names and shapes); the updates that pass are candidates, and the job's
 * acceptance rules (worker/validation/rules/, in the job spec's order) judge them one rule after the
 * other, each on the candidates every earlier rule kept. An update is accepted when every rule passes it.
 * Every decision carries its reason code, its sentence and the scores of every rule that judged it; the
 * result is deterministic for a given validator (its held-out data and reference update).
 */
import { ArtifactError, decodeArtifact, type DecodeLimits, type Tensor } from "../artifacts/index.ts";
import { flatten } from "../training/delta.ts";
import { cosineMatrix, l2, type Candidate, type HeldOut, type PastDelta, type Verdict } from "./rule.ts";
import { RULES, type RuleConfig } from "./rules/index.ts";

export interface Revealed {
  /** Index in the round (reveal order). */
  index: number;
  /** What the chain says. */
  jobId: bigint;
  round: number;
  baseModelCid: Uint8Array;
  worker: Uint8Array;
  numSamples: bigint;
  /**
   * The artifact's bytes, or why they could not be had: not fetched (`unavailable`), or — with a `code`
   * of its own — fetched but not readable by this validator (sealed to others, failing authentication).
   */
  bytes: Uint8Array | { error: string; code?: string };
}

export interface Policy {
  /** The model's tensors in order (names and shapes an update must have). */
  model: { name: string; shape: number[] }[];
  /** The acceptance rules, in order (rules/index.ts: parseRules, DEFAULT_RULES). */
  rules: readonly RuleConfig[];
  limits?: DecodeLimits;
}

export interface Decision {
  index: number;
  accept: boolean;
  /** "accepted", a structural code ("unavailable", "malformed", "header", "shape"), or the rejecting rule's code. */
  code: string;
  /** The rule that rejected it, if one did. */
  rule?: string;
  reason: string;
  /** Every score the rules computed for it, by name. */
  metrics: Record<string, number>;
  /** The decoded update (structurally valid updates only). */
  delta?: Tensor[];
}

/** What the validator measures with its own data (worker/node/validatorRole.ts builds it). */
export interface Evaluation {
  /** Held-out loss of base + delta (`null`: the base itself), per class; one entry for a regression task. */
  classLosses(delta: Tensor[] | null): Promise<number[]>;
  /** The validator's own update from the base on its held-out data. */
  reference(): Promise<Tensor[]>;
  /**
   * Mean loss and accuracy of base + delta (`null`: the base) on the whole held-out set (accuracy null for
   * a regression task): what a decision hook sees (roundEvaluation.ts). Absent: the hook sees no scores.
   */
  score?(delta: Tensor[] | null): Promise<{ loss: number; accuracy: number | null }>;
  /** The class label of each entry `classLosses` returns (absent or empty: a regression task). */
  classes?: readonly number[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Structural checks: decode, header vs chain, tensors vs model. */
export function checkStructure(r: Revealed, policy: Pick<Policy, "model" | "limits">): Decision {
  const reject = (code: string, reason: string): Decision => ({ index: r.index, accept: false, code, reason, metrics: {} });
  if (!(r.bytes instanceof Uint8Array)) return r.bytes.code ? reject(r.bytes.code, r.bytes.error) : reject("unavailable", `unavailable: ${r.bytes.error}`);
  let a;
  try {
    a = decodeArtifact(r.bytes, policy.limits);
  } catch (e) {
    if (e instanceof ArtifactError) return reject("malformed", `malformed artifact: ${e.message}`);
    throw e;
  }
  const h = a.header;
  if (h.kind !== "update") return reject("header", "artifact is a model, not an update");
  if (h.jobId !== r.jobId) return reject("header", `header names job ${h.jobId}, the chain says ${r.jobId}`);
  if (h.round !== r.round) return reject("header", `header names round ${h.round}, the chain says ${r.round}`);
  if (!same(h.baseModelCid, r.baseModelCid)) return reject("header", `header names another base model (${hex(h.baseModelCid).slice(0, 16)}…)`);
  if (!same(h.worker, r.worker)) return reject("header", `header names worker 0x${hex(h.worker)}, the chain says 0x${hex(r.worker)}`);
  if (h.numSamples !== r.numSamples) return reject("header", `header claims ${h.numSamples} samples, the chain says ${r.numSamples}`);
  if (a.tensors.length !== policy.model.length) return reject("shape", `${a.tensors.length} tensors, the model has ${policy.model.length}`);
  for (const [i, m] of policy.model.entries()) {
    const t = a.tensors[i]!;
    if (t.name !== m.name || t.shape.join(",") !== m.shape.join(",")) {
      return reject("shape", `tensor ${i} is "${t.name}" [${t.shape}], the model has "${m.name}" [${m.shape}]`);
    }
  }
  return { index: r.index, accept: true, code: "accepted", reason: "passed the structural checks", metrics: {}, delta: a.tensors };
}

/** Caches the held-out measurements of one round (each delta is evaluated once, whatever the rules ask). */
function heldOutOf(evaluation: Evaluation): HeldOut {
  let base: Promise<number[]> | undefined;
  let reference: Promise<Float64Array> | undefined;
  const byIndex = new Map<number, Promise<number[]>>();
  return {
    classes: evaluation.classes ?? [],
    baseLosses: () => (base ??= evaluation.classLosses(null)),
    lossesOf: (c) => {
      let p = byIndex.get(c.index);
      if (!p) byIndex.set(c.index, (p = evaluation.classLosses(c.delta)));
      return p;
    },
    reference: () => (reference ??= evaluation.reference().then(flatten)),
  };
}

/**
 * Decides a round: the structural checks, then the rules in order. `history`: deltas of the job's
 * earlier rounds (ReplayMemory). Returns the accept bitmap, every decision (index order) and the
 * candidates (structurally valid updates, with their flattened deltas) for the caller to remember.
 * With `independent`, also every rule's verdict on every candidate, each rule judging all of them as if
 * it were alone (`verdicts`: index → rule → verdict): what a decision hook sees, whatever the built-in
 * conjunction rejected first.
 */
export async function decideRound(
  revealed: Revealed[],
  policy: Policy,
  evaluation: Evaluation,
  opts: { round: number; history?: readonly PastDelta[]; independent?: boolean },
): Promise<{ bitmap: bigint; decisions: Decision[]; candidates: Candidate[]; verdicts?: Map<number, Record<string, Verdict>> }> {
  const decisions = revealed.map((r) => checkStructure(r, policy));
  const all: Candidate[] = [];
  for (const d of decisions) {
    if (!d.accept) continue;
    const flat = flatten(d.delta!);
    const r = revealed.find((x) => x.index === d.index)!;
    all.push({ index: d.index, worker: "0x" + hex(r.worker), numSamples: r.numSamples, delta: d.delta!, flat, norm: l2(flat) });
  }
  let cosines: Float64Array | undefined;
  const position = new Map(all.map((c, i) => [c.index, i]));
  const view = {
    round: opts.round,
    all,
    cosines: () => (cosines ??= cosineMatrix(all)),
    positionOf: (index: number) => position.get(index)!,
    history: opts.history ?? [],
    heldOut: heldOutOf(evaluation),
  };
  const judge = async (name: string, params: object, candidates: Candidate[]) => {
    const rule = RULES.get(name);
    if (!rule) throw new Error(`unknown acceptance rule "${name}"`);
    const verdicts = await rule.judge({ ...view, candidates }, params);
    if (verdicts.length !== candidates.length) throw new Error(`acceptance rule "${name}" returned ${verdicts.length} verdicts for ${candidates.length} candidates`);
    return verdicts;
  };
  const independent = opts.independent ? new Map<number, Record<string, Verdict>>(all.map((c) => [c.index, {}])) : undefined;
  const keyOf = (name: string, i: number) => (policy.rules.slice(0, i).some((r) => r.rule === name) ? `${name}#${i + 1}` : name);
  let alive = all;
  for (const [i, { rule: name, ...params }] of policy.rules.entries()) {
    if (alive.length === 0 && !independent) break;
    const verdicts = alive.length ? await judge(name, params, alive) : [];
    const kept: Candidate[] = [];
    alive.forEach((c, j) => {
      const v = verdicts[j]!;
      const d = decisions.find((x) => x.index === c.index)!;
      Object.assign(d.metrics, v.metrics);
      if (v.pass) kept.push(c);
      else Object.assign(d, { accept: false, code: v.code ?? name, rule: name, reason: v.reason ?? `rejected by rule "${name}"` });
    });
    if (independent && all.length) {
      // Judged alone, on every candidate: the sequential verdicts are these when no earlier rule rejected any.
      const alone = alive.length === all.length ? verdicts : await judge(name, params, all);
      all.forEach((c, j) => (independent.get(c.index)![keyOf(name, i)] = alone[j]!));
    }
    alive = kept;
  }
  let bitmap = 0n;
  for (const d of decisions) {
    if (!d.accept) continue;
    d.reason = `accepted by ${policy.rules.map((r) => r.rule).join(", ") || "the structural checks"}`;
    bitmap |= 1n << BigInt(d.index);
  }
  return { bitmap, decisions, candidates: all, ...(independent ? { verdicts: independent } : {}) };
}
