/**
 * The validator's acceptance policy for one round: each revealed update is decoded and checked against
 * the chain (job, round, base model CID, worker, sample count), against the model (tensor names and
 * shapes), against a norm bound, then evaluated on the validator's held-out data (base + update must not
 * be worse than base by more than a tolerance) and compared with the round's other updates (an update
 * pointing away from the round's coordinate-wise median direction is an outlier). The result is the
 * accept bitmap and a reason for every decision.
 */
import { ArtifactError, decodeArtifact, type DecodeLimits, type Tensor } from "../artifacts/index.ts";

export interface Revealed {
  /** Index in the round (reveal order). */
  index: number;
  /** What the chain says. */
  jobId: bigint;
  round: number;
  baseModelCid: Uint8Array;
  worker: Uint8Array;
  numSamples: bigint;
  /** The artifact's bytes, or why they could not be fetched. */
  bytes: Uint8Array | { error: string };
}

export interface Policy {
  /** The model's tensors in order (names and shapes an update must have). */
  model: { name: string; shape: number[] }[];
  /** Largest L2 norm of an update accepted. */
  maxNorm: number;
  /** Accept when held-out loss(base + update) ≤ loss(base) × (1 + tolerance). */
  lossTolerance: number;
  /** Reject when cosine(update, median of the round's updates) is below this (needs ≥ 3 updates). */
  minCosineToMedian: number;
  limits?: DecodeLimits;
}

export interface Decision {
  index: number;
  accept: boolean;
  reason: string;
  norm?: number;
  lossAfter?: number;
  cosine?: number;
  delta?: Tensor[];
}

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

/** Structural checks: decode, header vs chain, tensors vs model, norm. */
export function checkUpdate(r: Revealed, policy: Policy): Decision {
  const reject = (reason: string): Decision => ({ index: r.index, accept: false, reason });
  if (!(r.bytes instanceof Uint8Array)) return reject(`unavailable: ${r.bytes.error}`);
  let a;
  try {
    a = decodeArtifact(r.bytes, policy.limits);
  } catch (e) {
    if (e instanceof ArtifactError) return reject(`malformed artifact: ${e.message}`);
    throw e;
  }
  const h = a.header;
  if (h.kind !== "update") return reject("artifact is a model, not an update");
  if (h.jobId !== r.jobId) return reject(`header names job ${h.jobId}, the chain says ${r.jobId}`);
  if (h.round !== r.round) return reject(`header names round ${h.round}, the chain says ${r.round}`);
  if (!same(h.baseModelCid, r.baseModelCid)) return reject(`header names another base model (${hex(h.baseModelCid).slice(0, 16)}…)`);
  if (!same(h.worker, r.worker)) return reject(`header names worker 0x${hex(h.worker)}, the chain says 0x${hex(r.worker)}`);
  if (h.numSamples !== r.numSamples) return reject(`header claims ${h.numSamples} samples, the chain says ${r.numSamples}`);
  if (a.tensors.length !== policy.model.length) return reject(`${a.tensors.length} tensors, the model has ${policy.model.length}`);
  for (const [i, m] of policy.model.entries()) {
    const t = a.tensors[i]!;
    if (t.name !== m.name || t.shape.join(",") !== m.shape.join(",")) {
      return reject(`tensor ${i} is "${t.name}" [${t.shape}], the model has "${m.name}" [${m.shape}]`);
    }
  }
  let sq = 0;
  for (const t of a.tensors) for (const v of t.data) sq += v * v;
  const norm = Math.sqrt(sq);
  if (norm > policy.maxNorm) return { ...reject(`update norm ${norm.toFixed(3)} exceeds the bound ${policy.maxNorm}`), norm };
  return { index: r.index, accept: true, reason: "passed checks", norm, delta: a.tensors };
}

function flatten(delta: Tensor[]): Float64Array {
  const n = delta.reduce((s, t) => s + t.data.length, 0);
  const out = new Float64Array(n);
  let p = 0;
  for (const t of delta) for (const v of t.data) out[p++] = v;
  return out;
}

/**
 * Decides a round: structural checks, then the held-out evaluation (`lossOf(delta)` is the validator's
 * loss of base + delta; `baseLoss` the loss of the base), then the outlier test among the survivors.
 */
export async function decideRound(
  revealed: Revealed[],
  policy: Policy,
  evaluation: { baseLoss: number; lossOf: (delta: Tensor[]) => Promise<number> },
): Promise<{ bitmap: bigint; decisions: Decision[] }> {
  const decisions = revealed.map((r) => checkUpdate(r, policy));
  for (const d of decisions) {
    if (!d.accept) continue;
    d.lossAfter = await evaluation.lossOf(d.delta!);
    const limit = evaluation.baseLoss * (1 + policy.lossTolerance);
    if (!(d.lossAfter <= limit)) {
      d.accept = false;
      d.reason = `held-out loss ${d.lossAfter.toFixed(4)} is worse than the base model's ${evaluation.baseLoss.toFixed(4)} (limit ${limit.toFixed(4)})`;
    }
  }
  const alive = decisions.filter((d) => d.accept);
  if (alive.length >= 3) {
    const flat = alive.map((d) => flatten(d.delta!));
    const median = new Float64Array(flat[0]!.length);
    const col = new Float64Array(flat.length);
    for (let j = 0; j < median.length; j++) {
      for (let u = 0; u < flat.length; u++) col[u] = flat[u]![j]!;
      col.sort();
      const m = col.length >> 1;
      median[j] = col.length % 2 ? col[m]! : (col[m - 1]! + col[m]!) / 2;
    }
    const mNorm = Math.sqrt(median.reduce((s, v) => s + v * v, 0));
    alive.forEach((d, u) => {
      let dot = 0;
      let sq = 0;
      for (let j = 0; j < median.length; j++) {
        dot += flat[u]![j]! * median[j]!;
        sq += flat[u]![j]! ** 2;
      }
      d.cosine = mNorm > 0 && sq > 0 ? dot / (Math.sqrt(sq) * mNorm) : 1;
      if (d.cosine < policy.minCosineToMedian) {
        d.accept = false;
        d.reason = `outlier: cosine ${d.cosine.toFixed(3)} to the round's median update is below ${policy.minCosineToMedian}`;
      }
    });
  }
  let bitmap = 0n;
  for (const d of decisions) {
    if (d.accept) {
      d.reason = `accepted: held-out loss ${d.lossAfter!.toFixed(4)} vs base ${evaluation.baseLoss.toFixed(4)}`;
      bitmap |= 1n << BigInt(d.index);
    }
  }
  return { bitmap, decisions };
}
