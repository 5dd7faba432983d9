/**
 * The job spec: the JSON a sponsor pins on IPFS and names on chain by CID (JobParams.specDigest): the
 * model, the aggregation policy and the validators' default acceptance policy. Nodes fetch it by the
 * CID on chain, so a worker needs only the job id; the CID check means nobody can swap it.
 *
 *   { "model": { ...ModelSpec },
 *     "aggregation": { "kind": "fedavg", "sampleCap"?: N, "medianMultiple"?: 2 } | { "kind": "median" } | { "kind": "trimmed_mean", "trim": 0.2 },
 *     "validation": { "maxNorm": 50, "lossTolerance": 2, "minCosineToMedian": 0 } }
 */
import type { Contract, EventLog } from "ethers";
import type { AggregationPolicy } from "../aggregation/strategies.ts";
import type { ArtifactStore } from "../storage/store.ts";
import { cidFromChain } from "../storage/store.ts";
import { SpecError, validateSpec, type ModelSpec } from "../training/spec.ts";

/** The validator's acceptance thresholds (see worker/validation/validate.ts). */
export interface ValidationPolicy {
  maxNorm: number;
  lossTolerance: number;
  minCosineToMedian: number;
}

export interface JobSpec {
  model: ModelSpec;
  aggregation: AggregationPolicy;
  validation: ValidationPolicy;
}

export const DEFAULT_VALIDATION: ValidationPolicy = { maxNorm: 50, lossTolerance: 2, minCosineToMedian: 0 };

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Checks a job spec (parsed JSON) and fills in the defaults; every error names the field. */
export function parseJobSpec(raw: unknown): JobSpec {
  if (typeof raw !== "object" || raw === null) throw new SpecError("job spec must be a JSON object");
  const s = raw as Record<string, unknown>;
  if (s.model === undefined) throw new SpecError('job spec: "model" is missing');
  const { spec: model } = validateSpec(s.model);
  const agg = (s.aggregation ?? { kind: "fedavg" }) as Record<string, unknown>;
  let aggregation: AggregationPolicy;
  if (agg.kind === "fedavg") {
    if (agg.sampleCap !== undefined && !(finite(agg.sampleCap) && agg.sampleCap > 0)) throw new SpecError("job spec: aggregation.sampleCap must be a positive number");
    if (agg.medianMultiple !== undefined && !(finite(agg.medianMultiple) && agg.medianMultiple >= 1)) {
      throw new SpecError("job spec: aggregation.medianMultiple must be a number ≥ 1");
    }
    aggregation = {
      kind: "fedavg",
      ...(agg.sampleCap === undefined ? {} : { sampleCap: agg.sampleCap as number }),
      ...(agg.medianMultiple === undefined ? {} : { medianMultiple: agg.medianMultiple as number }),
    };
  } else if (agg.kind === "median") {
    aggregation = { kind: "median" };
  } else if (agg.kind === "trimmed_mean") {
    if (!(finite(agg.trim) && agg.trim >= 0 && agg.trim < 0.5)) throw new SpecError("job spec: aggregation.trim must be in [0, 0.5)");
    aggregation = { kind: "trimmed_mean", trim: agg.trim };
  } else {
    throw new SpecError(`job spec: aggregation.kind must be "fedavg", "median" or "trimmed_mean", got ${JSON.stringify(agg.kind)}`);
  }
  const v = { ...DEFAULT_VALIDATION, ...((s.validation ?? {}) as object) } as Record<string, unknown>;
  for (const k of ["maxNorm", "lossTolerance"] as const) {
    if (!(finite(v[k]) && v[k] > 0)) throw new SpecError(`job spec: validation.${k} must be a positive number`);
  }
  if (!(finite(v.minCosineToMedian) && v.minCosineToMedian >= -1 && v.minCosineToMedian <= 1)) {
    throw new SpecError("job spec: validation.minCosineToMedian must be in [-1, 1]");
  }
  return { model, aggregation, validation: v as unknown as ValidationPolicy };
}

/** The job's spec CID, sponsor and initial model, from its JobCreated event. */
export async function jobCreated(coord: Contract, jobId: bigint) {
  const [e] = (await coord.queryFilter(coord.filters.JobCreated!(jobId), 0)) as EventLog[];
  if (!e) throw new Error(`job ${jobId} does not exist on this coordinator`);
  const p = e.args.params;
  return {
    sponsor: e.args.sponsor as string,
    specCid: await cidFromChain(p.specDigest, Number(p.specCodec)),
    initialModelCid: await cidFromChain(p.initialModelDigest, Number(p.initialModelCodec)),
  };
}

/** Fetches (CID-verified) and parses the job spec named on chain. */
export async function fetchJobSpec(coord: Contract, store: ArtifactStore, jobId: bigint): Promise<JobSpec> {
  const { specCid } = await jobCreated(coord, jobId);
  const bytes = await store.get(specCid, { timeoutMs: 30_000, maxBytes: 1024 * 1024 });
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new SpecError(`job ${jobId}: spec ${specCid} is not JSON: ${(e as Error).message}`);
  }
  return parseJobSpec(raw);
}
