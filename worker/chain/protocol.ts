/**
 * The protocol's shared vocabulary on the TypeScript side: phases, outcomes, job parameters and the
 * exact commitment encodings the contracts check. Everything that talks to the coordinator (CLI,
 * daemons, tests, benchmarks) builds commitments here, so a reveal can never disagree with a commit.
 */
import { AbiCoder, hexlify, keccak256, randomBytes } from "ethers";

export const Phase = {
  NotStarted: 0,
  Commit: 1,
  Reveal: 2,
  VoteCommit: 3,
  VoteReveal: 4,
  Finalize: 5,
  Attest: 6,
  AttestExpired: 7,
  Completed: 8,
  Cancelled: 9,
  Expired: 10,
} as const;
export type PhaseName = keyof typeof Phase;
export const phaseName = (p: number | bigint): PhaseName =>
  (Object.keys(Phase) as PhaseName[]).find((k) => Phase[k] === Number(p)) ?? ("?" as PhaseName);

export const Outcome = { Pending: 0, NoQuorum: 1, Voided: 2, Quorum: 3, NoUpdates: 4 } as const;
/** How the CLI, the demo's report and the e2e tests name a round's outcome. */
export const outcomeName = (o: number | bigint): string =>
  ["pending", "no quorum", "voided", "decided", "no updates"][Number(o)] ?? `outcome ${o}`;
export const JobStatus = { None: 0, Active: 1, Completed: 2, Cancelled: 3, Expired: 4 } as const;
export const SlashReason = { RejectedUpdate: 0, MissedUpdateReveal: 1, MissedVoteReveal: 2, Absence: 3 } as const;

/** Multicodec codes of the CIDs the protocol stores (digest + codec). */
export const Codec = { raw: 0x55, dagPb: 0x70 } as const;

/** Mirrors `ITrainingCoordinator.JobParams`. Amounts in token base units. */
export interface JobParams {
  initialModelDigest: string;
  initialModelCodec: number;
  specDigest: string;
  specCodec: number;
  startTime: bigint;
  numRounds: number;
  rewardPerRound: bigint;
  commitPeriod: number;
  revealPeriod: number;
  voteCommitPeriod: number;
  voteRevealPeriod: number;
  attestPeriod: number;
  /** Seconds after vote reveal within which finalize and every decided slash must happen. */
  slashWindow: number;
  maxUpdates: number;
  /** The commit phase closes as soon as this many updates are committed (0: only at its deadline). */
  minUpdates: number;
  /** The largest sample count a worker may declare (reveal refuses more). */
  maxSamplesPerUpdate: bigint;
  maxValidators: number;
  quorumBps: number;
  acceptBps: number;
  attestBps: number;
  rejectSlashBps: number;
  validatorShareBps: number;
  /** Share of its round weight slashed from a validator that hid its committed vote. */
  missedVoteSlashBps: number;
  /** A member revealing no vote in this many rounds in a row is evicted (and its bond slashed). */
  maxMissedRounds: number;
  /** The job expires after this many undecided rounds in a row. */
  maxIdleRounds: number;
  minWorkerStake: bigint;
  minValidatorStake: bigint;
  rejectSlashAmount: bigint;
  missedRevealSlashAmount: bigint;
  /** Held from each committee member's stake while it sits; slashed when it is evicted. */
  absenceSlashAmount: bigint;
}

const ONE = 10n ** 18n;

/** Sensible defaults for a devnet job; `startTime` must still be set by the caller. */
export function defaultJobParams(overrides: Partial<JobParams> = {}): JobParams {
  return {
    initialModelDigest: keccak256(new TextEncoder().encode("initial model")),
    initialModelCodec: Codec.raw,
    specDigest: keccak256(new TextEncoder().encode("spec")),
    specCodec: Codec.raw,
    startTime: 0n,
    numRounds: 3,
    rewardPerRound: 100n * ONE,
    commitPeriod: 600,
    revealPeriod: 300,
    voteCommitPeriod: 300,
    voteRevealPeriod: 300,
    attestPeriod: 600,
    slashWindow: 3600,
    maxUpdates: 64,
    minUpdates: 0,
    maxSamplesPerUpdate: 1_000_000n,
    maxValidators: 32,
    quorumBps: 5000,
    acceptBps: 5000,
    attestBps: 6600,
    rejectSlashBps: 6600,
    validatorShareBps: 2000,
    missedVoteSlashBps: 1000,
    maxMissedRounds: 3,
    maxIdleRounds: 6,
    minWorkerStake: 10n * ONE,
    minValidatorStake: 100n * ONE,
    rejectSlashAmount: 5n * ONE,
    missedRevealSlashAmount: 2n * ONE,
    absenceSlashAmount: 10n * ONE,
    ...overrides,
  };
}

const abi = AbiCoder.defaultAbiCoder();

/** `TrainingCoordinator.updateCommitment`: keccak256(abi.encode(jobId, round, worker, digest, codec, numSamples, salt)). */
export function updateCommitment(a: {
  jobId: bigint;
  round: bigint;
  worker: string;
  cidDigest: string;
  cidCodec: number;
  numSamples: bigint;
  salt: string;
}): string {
  return keccak256(
    abi.encode(
      ["uint256", "uint256", "address", "bytes32", "uint16", "uint64", "bytes32"],
      [a.jobId, a.round, a.worker, a.cidDigest, a.cidCodec, a.numSamples, a.salt],
    ),
  );
}

/** `TrainingCoordinator.voteCommitment`: keccak256(abi.encode(jobId, round, validator, bitmap, salt)). */
export function voteCommitment(a: { jobId: bigint; round: bigint; validator: string; bitmap: bigint; salt: string }): string {
  return keccak256(
    abi.encode(["uint256", "uint256", "address", "uint256", "bytes32"], [a.jobId, a.round, a.validator, a.bitmap, a.salt]),
  );
}

/** A fresh 32-byte salt. Persist it before sending the commitment that depends on it. */
export const randomSalt = (): string => hexlify(randomBytes(32));

/** Whether update `index` is set in a vote/accept/slashable bitmap. */
export const hasBit = (bitmap: bigint | number | string, index: number): boolean => ((BigInt(bitmap) >> BigInt(index)) & 1n) === 1n;

/** Bitmap with the given update indices set. */
export function bitmapOf(indices: Iterable<number>): bigint {
  let b = 0n;
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i > 255) throw new RangeError(`update index ${i} is outside 0..255`);
    b |= 1n << BigInt(i);
  }
  return b;
}

/** A validator's held-out score of a model (reportModelScore / ModelScored); accuracy null for regression. */
export interface ModelScore {
  loss: number;
  accuracy: number | null;
  samples: number;
}

/** TrainingCoordinator.NO_ACCURACY: the accuracy a regression job's validators report. */
export const NO_ACCURACY = 0xffff;
const MAX_U64 = 2n ** 64n - 1n;
const MAX_U32 = 2 ** 32 - 1;

/** reportModelScore's (accuracyBps, lossMicro, samples): accuracy in basis points, loss × 1e6, both rounded. */
export function scoreOnChain(s: ModelScore): [number, bigint, number] {
  const acc = s.accuracy === null ? NO_ACCURACY : Math.round(Math.min(1, Math.max(0, s.accuracy)) * 10_000);
  // A diverged model's loss (infinite, NaN or beyond uint64 micro-units) is reported as the largest value.
  const micro = Number.isFinite(s.loss) && s.loss >= 0 ? BigInt(Math.round(s.loss * 1e6)) : MAX_U64;
  return [acc, micro > MAX_U64 ? MAX_U64 : micro, Math.min(s.samples, MAX_U32)];
}

/** A ModelScored event's score. */
export function scoreFromChain(accuracyBps: bigint | number, lossMicro: bigint | number, samples: bigint | number): ModelScore {
  const acc = Number(accuracyBps);
  return { accuracy: acc === NO_ACCURACY ? null : acc / 10_000, loss: Number(lossMicro) / 1e6, samples: Number(samples) };
}

/**
 * A phase as a user may type it: the PhaseName in any case, or kebab/snake/space separated
 * ("vote-commit", "VOTE_COMMIT", "attest expired"). Undefined for anything else.
 */
export function parsePhaseName(text: string): PhaseName | undefined {
  const key = text.trim().replace(/[-_\s]+/g, "").toLowerCase();
  return (Object.keys(Phase) as PhaseName[]).find((k) => k.toLowerCase() === key);
}

/** The phase lengths a round's deadlines are computed from (jobConfig / JobParams fields, seconds). */
export interface PhasePeriods {
  commitPeriod: number | bigint;
  revealPeriod: number | bigint;
  voteCommitPeriod: number | bigint;
  voteRevealPeriod: number | bigint;
  slashWindow: number | bigint;
  attestPeriod: number | bigint;
}

/**
 * A round's timetable in chain time (unix seconds), as the coordinator's `_phase` computes it: each
 * phase's deadline is the latest it can end, the commit, reveal and vote phases also close early
 * (minUpdates commitments; every commitment revealed; every eligible member committed; every committed
 * vote revealed), so `phaseOf` says which phase is current. `slash` is the slash deadline: finalize
 * and every slash of the round must happen before it (a later finalize voids the round). `attest` is
 * `finalizedAt + attestPeriod` once the round is finalized (`attestFinal`), before that the latest it can
 * be (finalize just before the slash deadline).
 */
export interface RoundDeadlines {
  start: number;
  commit: number;
  reveal: number;
  voteCommit: number;
  voteReveal: number;
  slash: number;
  attest: number;
  /** Whether `attest` is the real deadline (the round is finalized) rather than the latest possible. */
  attestFinal: boolean;
}

/** A round's deadlines from its start, the job's phase lengths and (once finalized) its finalize time (0: not finalized). */
export function roundDeadlines(start: number | bigint, p: PhasePeriods, finalizedAt: number | bigint = 0): RoundDeadlines {
  const s = Number(start);
  const commit = s + Number(p.commitPeriod);
  const reveal = commit + Number(p.revealPeriod);
  const voteCommit = reveal + Number(p.voteCommitPeriod);
  const voteReveal = voteCommit + Number(p.voteRevealPeriod);
  const slash = voteReveal + Number(p.slashWindow);
  const fin = Number(finalizedAt);
  return { start: s, commit, reveal, voteCommit, voteReveal, slash, attest: (fin > 0 ? fin : slash) + Number(p.attestPeriod), attestFinal: fin > 0 };
}

/** The phases a job ends in (its round stays the last one). */
export const isFinalPhase = (p: number | bigint): boolean => Number(p) >= Phase.Completed;
