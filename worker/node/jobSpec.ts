/**
 * The job spec: the JSON a sponsor pins on IPFS and names on chain by CID (JobParams.specDigest): the
 * model, the aggregation policy and the validators' default acceptance policy. Nodes fetch it by the
 * CID on chain, so a worker needs only the job id; the CID check means nobody can swap it.
 *
 *   { "model": { ...ModelSpec },
 *     "aggregation": { "kind": "fedavg" | "median" | "trimmed_mean" | "krum" | "multi_krum", ...params },
 *     "validation": { "rules": [ { "rule": "duplicate" }, { "rule": "norm", "maxRatio": 4 }, … ],
 *                     "reference": { "epochs": 1, "batch": 32, "lr": 0.03, "momentum": 0.9 } },
 *     "compression": { "kind": "int8" } | { "kind": "topk", "fraction": 0.01, "bits": 2 | 4 | 8 }
 *                    | { "kind": "f16" } | { "kind": "none" },
 *     "privacy": { "mode": "local" | "distributed", "clipNorm", "noiseMultiplier", "epsilon", "delta", … },
 *     "encryption": { "updates": "public" | "committee" } }
 *
 * Absent parts take the defaults (worker/aggregation/index.ts, worker/validation/rules/index.ts); no
 * "privacy": updates are not clipped or noised. With it (worker/privacy/policy.ts), the validators'
 * first rule is `dp-norm` with the section's bound, the default rules are `duplicate` only (the content
 * rules compare updates whose noise hides most of their signal), and FedAvg weighs updates equally
 * (declared sample counts are not protected).
 */
import type { Contract } from "ethers";
import type { CID } from "multiformats/cid";
import { queryEvents } from "../chain/events.ts";
import type { EncodeOptions } from "../artifacts/index.ts";
import { topkEncoding } from "../artifacts/encodings.ts";
import { parseAggregation, type AggregationPolicy } from "../aggregation/index.ts";
import type { ArtifactStore } from "../storage/store.ts";
import { cidFromChain } from "../storage/store.ts";
import { SpecError, validateSpec, type ModelSpec } from "../training/spec.ts";
import { parseRules, type RuleConfig } from "../validation/rules/index.ts";
import { noiseStd } from "../privacy/mechanism.ts";
import { parsePrivacy, type PrivacyPolicy } from "../privacy/policy.ts";

/**
 * How a validator trains its reference update (its own training from the round's base on its held-out
 * data, which the "neighbours" rule compares groups of updates with): only its direction is used.
 */
export interface ReferenceRecipe {
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
}

/** The validators' acceptance policy (see worker/validation/validate.ts). */
export interface ValidationPolicy {
  rules: RuleConfig[];
  reference: ReferenceRecipe;
}

/**
 * How workers compress their updates (validators and aggregation decode every encoding to dense deltas,
 * so this binds only the workers). Lossy kinds carry what they drop into the next round (error feedback).
 */
export type Compression =
  | { kind: "none" }
  | { kind: "f16" }
  | { kind: "int8" }
  /** The `fraction` of the update's entries largest in magnitude (across all tensors), their values in `bits` bits. */
  | { kind: "topk"; fraction: number; bits: 2 | 4 | 8 };

export interface JobSpec {
  model: ModelSpec;
  aggregation: AggregationPolicy;
  validation: ValidationPolicy;
  /** Absent (a spec built in code before compression existed): DEFAULT_COMPRESSION. */
  compression?: Compression;
  /** Differentially private updates (worker/privacy/policy.ts); absent: none. */
  privacy?: PrivacyPolicy;
  /** Who can read the update artifacts: anyone (absent, "public") or only the committee (worker/privacy/sealed.ts). */
  encryption?: Encryption;
}

export interface Encryption {
  updates: "public" | "committee";
}

/** Parses an "encryption" object (absent: updates are public); every error names the field. */
export function parseEncryption(raw: unknown, field = "job spec: encryption"): Encryption | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new SpecError(`${field} must be an object { "updates": "public" | "committee" }`);
  const e = raw as Record<string, unknown>;
  for (const k of Object.keys(e)) if (k !== "updates") throw new SpecError(`${field}.${k} is not a field (it has "updates"; models are public)`);
  if (e.updates !== "public" && e.updates !== "committee") throw new SpecError(`${field}.updates must be "public" or "committee", got ${JSON.stringify(e.updates) ?? "nothing"}`);
  return { updates: e.updates };
}

/** Dense int8 with per-chunk scales: what workers sent before the job spec could choose. */
export const DEFAULT_COMPRESSION: Compression = Object.freeze({ kind: "int8" });
const TOPK_DEFAULTS = { fraction: 0.01, bits: 8 } as const;

export const DEFAULT_REFERENCE: ReferenceRecipe = { epochs: 1, batch: 32, lr: 0.03, momentum: 0.9 };

const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Parses a "validation" object (a job spec's, or a validator's override); every error names the field. */
export function parseValidation(raw: unknown, field = "job spec: validation"): ValidationPolicy {
  if (raw === undefined) raw = {};
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new SpecError(`${field} must be an object { "rules": [...], "reference": {...} }`);
  const v = raw as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (k !== "rules" && k !== "reference") throw new SpecError(`${field}.${k} is not a field (it has "rules" and "reference"; the acceptance thresholds are the rules' parameters)`);
  }
  if (v.reference !== undefined && (typeof v.reference !== "object" || v.reference === null || Array.isArray(v.reference))) {
    throw new SpecError(`${field}.reference must be an object { "epochs", "batch", "lr", "momentum" }`);
  }
  for (const k of Object.keys((v.reference ?? {}) as object)) {
    if (!(k in DEFAULT_REFERENCE)) throw new SpecError(`${field}.reference.${k} is not a field (it has: ${Object.keys(DEFAULT_REFERENCE).join(", ")})`);
  }
  const r = { ...DEFAULT_REFERENCE, ...((v.reference ?? {}) as object) } as Record<string, unknown>;
  if (!(Number.isInteger(r.epochs) && (r.epochs as number) >= 1)) throw new SpecError(`${field}.reference.epochs must be a positive integer`);
  if (!(Number.isInteger(r.batch) && (r.batch as number) >= 1)) throw new SpecError(`${field}.reference.batch must be a positive integer`);
  if (!(finite(r.lr) && r.lr > 0)) throw new SpecError(`${field}.reference.lr must be a positive number`);
  if (!(finite(r.momentum) && r.momentum >= 0 && r.momentum < 1)) throw new SpecError(`${field}.reference.momentum must be in [0, 1)`);
  return { rules: parseRules(v.rules, `${field}.rules`), reference: { epochs: r.epochs as number, batch: r.batch as number, lr: r.lr, momentum: r.momentum } };
}

/** Parses a "compression" object (absent: int8); every error names the field. */
export function parseCompression(raw: unknown, field = "job spec: compression"): Compression {
  if (raw === undefined) return { ...DEFAULT_COMPRESSION };
  const shape = '{ "kind": "none" | "f16" | "int8" } or { "kind": "topk", "fraction": 0.01, "bits": 2 | 4 | 8 }';
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new SpecError(`${field} must be an object ${shape}, got ${JSON.stringify(raw)}`);
  const c = raw as Record<string, unknown>;
  const fields = c.kind === "topk" ? ["kind", ...Object.keys(TOPK_DEFAULTS)] : ["kind"];
  if (c.kind !== "none" && c.kind !== "f16" && c.kind !== "int8" && c.kind !== "topk") {
    throw new SpecError(`${field}.kind must be one of "none", "f16", "int8", "topk", got ${JSON.stringify(c.kind) ?? "nothing"}`);
  }
  for (const k of Object.keys(c)) {
    if (!fields.includes(k)) throw new SpecError(`${field}.${k} is not a parameter of "${c.kind}" (${c.kind === "topk" ? "it takes fraction, bits" : "it takes none"})`);
  }
  if (c.kind !== "topk") return { kind: c.kind };
  const { fraction, bits } = { ...TOPK_DEFAULTS, ...c } as Record<string, unknown>;
  if (!(finite(fraction) && fraction > 0 && fraction <= 1)) throw new SpecError(`${field}.fraction must be a number in (0, 1], got ${JSON.stringify(c.fraction)}`);
  if (bits !== 2 && bits !== 4 && bits !== 8) throw new SpecError(`${field}.bits must be 2, 4 or 8, got ${JSON.stringify(c.bits)}`);
  return { kind: "topk", fraction, bits };
}

/** The artifact encoding of a compression, and whether it loses anything (then the worker feeds the error back). */
export function encodingOf(c: Compression): { options: EncodeOptions; lossy: boolean } {
  switch (c.kind) {
    case "none":
      return { options: { encoding: "f32" }, lossy: false };
    case "f16":
    case "int8":
      return { options: { encoding: c.kind }, lossy: true };
    case "topk":
      return { options: { encoding: topkEncoding(c.bits), fraction: c.fraction, across: "update" }, lossy: true };
  }
}

/** Checks a job spec (parsed JSON) and fills in the defaults; every error names the field. */
export function parseJobSpec(raw: unknown): JobSpec {
  if (typeof raw !== "object" || raw === null) throw new SpecError("job spec must be a JSON object");
  const s = raw as Record<string, unknown>;
  // A misspelt part ("aggregaton") would silently take the defaults: refuse it.
  const parts = ["model", "aggregation", "validation", "compression", "privacy", "encryption"];
  for (const k of Object.keys(s)) if (!parts.includes(k) && s[k] !== undefined) throw new SpecError(`job spec: "${k}" is not a part of a job spec (it has: ${parts.join(", ")})`);
  if (s.model === undefined) throw new SpecError('job spec: "model" is missing');
  const { spec: model } = validateSpec(s.model);
  const compression = parseCompression(s.compression);
  const privacy = parsePrivacy(s.privacy);
  const encryption = parseEncryption(s.encryption);
  const sealed = encryption ? { encryption } : {};
  if (!privacy) return { model, aggregation: parseAggregation(s.aggregation), validation: parseValidation(s.validation), compression, ...sealed };
  // Top-k drops most of the noise, so a validator could not tell a noised update from one without it.
  if (compression.kind === "topk") throw new SpecError('job spec: privacy needs a dense compression ("none", "f16" or "int8"): top-k drops most of the noise');
  const given = (s.validation as { rules?: unknown } | undefined)?.rules;
  const validation = parseValidation({ ...((s.validation as object | undefined) ?? {}), rules: given ?? [{ rule: "duplicate" }] });
  // The privacy section sets dp-norm; a listed one (a parsed spec written back, as `job create` pins it) must be that very rule.
  const dp: RuleConfig = { rule: "dp-norm", clipNorm: privacy.clipNorm, noiseStd: noiseStd(privacy), falseRejection: 1e-9 };
  const listed = validation.rules.find((r) => r.rule === "dp-norm");
  if (listed && JSON.stringify(listed) !== JSON.stringify(dp)) throw new SpecError(`job spec: validation.rules: "dp-norm" is set by the privacy section (${JSON.stringify(dp)}), not listed with other parameters (got ${JSON.stringify(listed)})`);
  validation.rules = [dp, ...validation.rules.filter((r) => r.rule !== "dp-norm")];
  return { model, aggregation: parseAggregation(s.aggregation), validation, compression, privacy, ...sealed };
}

/**
 * The job's spec CID, sponsor and initial model, and the block it was created in (where its events
 * begin), from its JobCreated event, searched from `fromBlock` (the deployment's block).
 */
export async function jobCreated(coord: Contract, jobId: bigint, fromBlock: number) {
  const [e] = await queryEvents(coord, coord.filters.JobCreated!(jobId), fromBlock);
  if (!e) throw new Error(`job ${jobId} does not exist on this coordinator`);
  const p = e.args.params;
  return {
    block: e.blockNumber,
    sponsor: e.args.sponsor as string,
    specCid: await cidFromChain(p.specDigest, Number(p.specCodec)),
    initialModelCid: await cidFromChain(p.initialModelDigest, Number(p.initialModelCodec)),
  };
}

/** Fetches (CID-verified) and parses the job spec named on chain (`specCid` from jobCreated). */
export async function fetchJobSpec(store: ArtifactStore, jobId: bigint, specCid: CID): Promise<JobSpec> {
  const bytes = await store.get(specCid, { timeoutMs: 30_000, maxBytes: 1024 * 1024 });
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new SpecError(`job ${jobId}: spec ${specCid} is not JSON: ${(e as Error).message}`);
  }
  return parseJobSpec(raw);
}
