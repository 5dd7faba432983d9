/**
 * A job's `privacy` section: the DP-FedAvg mechanism every worker applies (mechanism.ts), the (ε, δ)
 * budget each worker may spend on the job, and what that budget means. One job, one set of numbers:
 * the noise multiplier is fixed in the pinned spec (`fedstake job create` derives it from ε, δ and
 * the job's rounds when the job file leaves it out), so every worker adds the same noise and every
 * validator checks the same norm bound.
 *
 * Accounting: a worker releases one update per round it takes part in, and which rounds it takes part
 * in is public (its commitments are on chain), so there is no amplification by subsampling: each
 * release is the Gaussian mechanism at sampling rate 1, composed over the rounds released (RDP,
 * accountant.ts). The guarantee is user-level (the worker's whole data set is the unit).
 * - `local`: every update carries noise z·C; the budget holds against everyone who sees it.
 * - `distributed`: every update carries z·C/√k; the budget holds for the aggregate (against the
 *   public, given k honest updates per round), while one update, as a validator sees it, is protected
 *   only at multiplier z/√k — `perUpdateEpsilon` says how much that is.
 */
import { SpecError } from "../training/spec.ts";
import { noiseForEpsilon, rdpEpsilon } from "./accountant.ts";
import { perUpdateNoiseMultiplier, type PrivacyMechanism } from "./mechanism.ts";

export interface PrivacyPolicy extends PrivacyMechanism {
  /** ε: what each worker may spend on this job; a worker refuses to release an update beyond it. */
  epsilon: number;
  /** δ of the (ε, δ) guarantee. */
  delta: number;
}

const FIELDS = ["mode", "clipNorm", "noiseMultiplier", "epsilon", "delta", "expectedUpdates"] as const;

/** Parses a job spec's "privacy" object (absent: no privacy); every error names the field. */
export function parsePrivacy(raw: unknown, field = "job spec: privacy"): PrivacyPolicy | undefined {
  if (raw === undefined) return undefined;
  const shape = '{ "mode": "local" | "distributed", "clipNorm", "epsilon", "delta", "noiseMultiplier", "expectedUpdates" (distributed) }';
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new SpecError(`${field} must be an object ${shape}`);
  const p = raw as Record<string, unknown>;
  for (const k of Object.keys(p)) if (!(FIELDS as readonly string[]).includes(k)) throw new SpecError(`${field}.${k} is not a field (it has: ${FIELDS.join(", ")})`);
  if (p.mode !== "local" && p.mode !== "distributed") throw new SpecError(`${field}.mode must be "local" or "distributed", got ${JSON.stringify(p.mode) ?? "nothing"}`);
  const positive = (k: string) => {
    const v = p[k];
    if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) throw new SpecError(`${field}.${k} must be a positive number, got ${JSON.stringify(v) ?? "nothing"}`);
    return v;
  };
  const delta = positive("delta");
  if (delta >= 1) throw new SpecError(`${field}.delta must be below 1 (it is a probability; 1e-5 is usual), got ${delta}`);
  if (p.noiseMultiplier === undefined) throw new SpecError(`${field}.noiseMultiplier is missing (\`fedstake job create\` derives it from epsilon, delta and the job's rounds)`);
  const policy: PrivacyPolicy = { mode: p.mode, clipNorm: positive("clipNorm"), noiseMultiplier: positive("noiseMultiplier"), epsilon: positive("epsilon"), delta };
  if (p.mode === "distributed") {
    if (!(Number.isInteger(p.expectedUpdates) && (p.expectedUpdates as number) >= 1)) {
      throw new SpecError(`${field}.expectedUpdates must be a positive integer for distributed noise (the updates aggregated per round), got ${JSON.stringify(p.expectedUpdates) ?? "nothing"}`);
    }
    policy.expectedUpdates = p.expectedUpdates as number;
  } else if (p.expectedUpdates !== undefined) throw new SpecError(`${field}.expectedUpdates is for distributed noise only`);
  return policy;
}

/** ε a worker has spent after releasing `rounds` updates, by the job's guarantee (module doc). */
export function epsilonSpent(p: PrivacyPolicy, rounds: number): number {
  if (rounds === 0) return 0;
  return rdpEpsilon({ noiseMultiplier: p.noiseMultiplier, sampleRate: 1, steps: rounds, delta: p.delta }).epsilon;
}

/** The weaker guarantee of one update as a validator sees it: equal to `epsilonSpent` for local noise. */
export function perUpdateEpsilon(p: PrivacyPolicy, rounds: number): number {
  if (rounds === 0) return 0;
  return rdpEpsilon({ noiseMultiplier: perUpdateNoiseMultiplier(p), sampleRate: 1, steps: rounds, delta: p.delta }).epsilon;
}

/**
 * A job file's privacy section completed for pinning (`fedstake job create`): the noise multiplier
 * that keeps a worker taking part in all `rounds` rounds within ε (when the file leaves it out), and
 * for distributed noise k from the job's `minUpdates` (when left out). A given multiplier that would
 * spend more than ε over the rounds is refused.
 */
export function completePrivacy(raw: Record<string, unknown>, job: { rounds: number; minUpdates: number }, field = "job spec: privacy"): Record<string, unknown> {
  const out = { ...raw };
  if (out.mode === "distributed" && out.expectedUpdates === undefined) {
    if (job.minUpdates < 1) throw new SpecError(`${field}.expectedUpdates is missing: give it, or set job.minUpdates (distributed noise is split among the updates of a round)`);
    out.expectedUpdates = job.minUpdates;
  }
  const target = out.epsilon;
  const delta = out.delta;
  if (out.noiseMultiplier === undefined && typeof target === "number" && typeof delta === "number" && target > 0 && delta > 0 && delta < 1) {
    out.noiseMultiplier = noiseForEpsilon({ targetEpsilon: target, delta, sampleRate: 1, steps: job.rounds }).noiseMultiplier;
  }
  const policy = parsePrivacy(out, field)!;
  const spent = epsilonSpent(policy, job.rounds);
  if (spent > policy.epsilon * (1 + 1e-9)) {
    throw new SpecError(`${field}: noise multiplier ${policy.noiseMultiplier} spends ε = ${spent.toFixed(3)} over the job's ${job.rounds} rounds, above its epsilon ${policy.epsilon} (leave noiseMultiplier out to have it derived)`);
  }
  return out;
}
