/**
 * Shared setup for the contract tests: deploys token, stake manager and coordinator on the in-process
 * network, funds and stakes a cast of workers and validators, and moves time to a given phase.
 */
import type { HardhatEthers, HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkHelpers } from "@nomicfoundation/hardhat-network-helpers/types";
import { Contract, type ContractTransactionResponse } from "ethers";
import { attach, deployProtocol as deployChain } from "../../worker/chain/client.ts";
import { PARAMETER_DEFAULTS } from "../../worker/chain/deployment.ts";
import { defaultJobParams, Phase, randomSalt, updateCommitment, voteCommitment, type JobParams } from "../../worker/chain/protocol.ts";

export const ONE = 10n ** 18n;
/** The deployment's default unbonding period (7 days). */
export const UNBONDING = PARAMETER_DEFAULTS.unbondingPeriod;

export interface Protocol {
  token: Contract;
  stake: Contract;
  coord: Contract;
  /** Where the protocol's events begin (the deployment's block). */
  fromBlock: number;
  admin: HardhatEthersSigner;
  sponsor: HardhatEthersSigner;
  workers: HardhatEthersSigner[];
  validators: HardhatEthersSigner[];
  others: HardhatEthersSigner[];
}

export async function deployProtocol(
  ethers: HardhatEthers,
  opts: {
    workers?: number;
    validators?: number;
    workerStake?: bigint;
    validatorStake?: bigint;
    /** Defaults to the network's configured accounts. */
    signers?: HardhatEthersSigner[];
    /** The stake manager's unbonding period in seconds (default UNBONDING, 7 days). */
    unbonding?: number;
  } = {},
): Promise<Protocol> {
  const signers = opts.signers ?? (await ethers.getSigners());
  const [admin, sponsor] = signers;
  const nW = opts.workers ?? 3;
  const nV = opts.validators ?? 3;
  const workers = signers.slice(2, 2 + nW);
  const validators = signers.slice(2 + nW, 2 + nW + nV);
  const others = signers.slice(2 + nW + nV);
  // The deployment every other path runs (CLI, demo, devnet, Ignition); the coordinator's handle speaks
  // its extension's ABI too.
  const { token, stake, coord, fromBlock } = attach(await deployChain(admin, { unbondingPeriod: opts.unbonding }), admin);

  const fund = async (s: HardhatEthersSigner, amount: bigint, staked: bigint) => {
    await token.mint(s.address, amount);
    await (token.connect(s) as Contract).approve(await stake.getAddress(), amount);
    if (staked > 0n) await (stake.connect(s) as Contract).stake(staked);
  };
  await token.mint(sponsor.address, 1_000_000n * ONE);
  await (token.connect(sponsor) as Contract).approve(await coord.getAddress(), 1_000_000n * ONE);
  for (const w of workers) await fund(w, 1_000n * ONE, opts.workerStake ?? 50n * ONE);
  for (const v of validators) await fund(v, 10_000n * ONE, opts.validatorStake ?? 1_000n * ONE);
  for (const o of others) await fund(o, 1_000n * ONE, 0n);
  return { token, stake, coord, fromBlock, admin, sponsor, workers, validators, others };
}

export const as = (c: Contract, s: HardhatEthersSigner): Contract => c.connect(s) as Contract;

/** Creates a job starting `delay` seconds from now and has `committee` join it. Returns the job id. */
export async function createJob(
  p: Protocol,
  helpers: NetworkHelpers,
  overrides: Partial<JobParams> = {},
  committee: HardhatEthersSigner[] = p.validators,
  delay = 60,
): Promise<bigint> {
  const now = BigInt(await helpers.time.latest());
  const params = defaultJobParams({ startTime: now + BigInt(delay), ...overrides });
  await as(p.coord, p.sponsor).createJob(params);
  const jobId = await p.coord.jobCount();
  for (const v of committee) await as(p.coord, v).joinCommittee(jobId);
  return jobId;
}

/** Moves the chain clock to the start of `phase` in the job's current round (no-op if already there). */
export async function toPhase(p: Protocol, helpers: NetworkHelpers, jobId: bigint, phase: number): Promise<void> {
  const s = await p.coord.jobState(jobId);
  const c = await p.coord.jobConfig(jobId);
  const offsets: Record<number, bigint> = {
    [Phase.Commit]: 0n,
    [Phase.Reveal]: c.commitPeriod,
    [Phase.VoteCommit]: c.commitPeriod + c.revealPeriod,
    [Phase.VoteReveal]: c.commitPeriod + c.revealPeriod + c.voteCommitPeriod,
    [Phase.Finalize]: c.commitPeriod + c.revealPeriod + c.voteCommitPeriod + c.voteRevealPeriod,
  };
  let target: bigint;
  if (phase === Phase.AttestExpired) target = s.finalizedAt + c.attestPeriod;
  else target = s.roundStart + offsets[phase]!;
  const now = BigInt(await helpers.time.latest());
  // The next transaction is mined one second after the latest block.
  if (now + 1n < target) await helpers.time.setNextBlockTimestamp(target);
}

export interface Submission {
  worker: HardhatEthersSigner;
  digest: string;
  codec: number;
  numSamples: bigint;
  salt: string;
}

export function submission(worker: HardhatEthersSigner, tag: string, numSamples = 100n): Submission {
  const digest = "0x" + Buffer.from(tag.padEnd(32, "\0").slice(0, 32)).toString("hex");
  return { worker, digest, codec: 0x55, numSamples, salt: randomSalt() };
}

export async function commitUpdates(p: Protocol, jobId: bigint, round: bigint, subs: Submission[]): Promise<void> {
  for (const s of subs) {
    const c = updateCommitment({
      jobId,
      round,
      worker: s.worker.address,
      cidDigest: s.digest,
      cidCodec: s.codec,
      numSamples: s.numSamples,
      salt: s.salt,
    });
    await as(p.coord, s.worker).commitUpdate(jobId, round, c);
  }
}

export async function revealUpdates(p: Protocol, jobId: bigint, round: bigint, subs: Submission[]): Promise<void> {
  for (const s of subs) await as(p.coord, s.worker).revealUpdate(jobId, round, s.digest, s.codec, s.numSamples, s.salt);
}

export interface Vote {
  validator: HardhatEthersSigner;
  bitmap: bigint;
  salt: string;
}

export const vote = (validator: HardhatEthersSigner, bitmap: bigint): Vote => ({ validator, bitmap, salt: randomSalt() });

export async function commitVotes(p: Protocol, jobId: bigint, round: bigint, votes: Vote[]): Promise<void> {
  for (const v of votes) {
    const c = voteCommitment({ jobId, round, validator: v.validator.address, bitmap: v.bitmap, salt: v.salt });
    await as(p.coord, v.validator).commitVote(jobId, round, c);
  }
}

export async function revealVotes(p: Protocol, jobId: bigint, round: bigint, votes: Vote[]): Promise<void> {
  for (const v of votes) await as(p.coord, v.validator).revealVote(jobId, round, v.bitmap, v.salt);
}

/** Commits `votes`, reveals `revealed` (default: all of them) and finalizes the round. */
export async function voteAndFinalize(
  p: Protocol,
  helpers: NetworkHelpers,
  jobId: bigint,
  round: bigint,
  votes: Vote[],
  revealed: Vote[] = votes,
): Promise<ContractTransactionResponse> {
  await toPhase(p, helpers, jobId, Phase.VoteCommit);
  await commitVotes(p, jobId, round, votes);
  await toPhase(p, helpers, jobId, Phase.VoteReveal);
  await revealVotes(p, jobId, round, revealed);
  await toPhase(p, helpers, jobId, Phase.Finalize);
  return p.coord.finalizeRound(jobId, round);
}

/** Runs a round from commit through finalize with the given submissions and votes. */
export async function playRound(
  p: Protocol,
  helpers: NetworkHelpers,
  jobId: bigint,
  subs: Submission[],
  votes: (n: number) => Vote[],
): Promise<bigint> {
  const [round] = await p.coord.phaseOf(jobId);
  await toPhase(p, helpers, jobId, Phase.Commit);
  await commitUpdates(p, jobId, round, subs);
  await toPhase(p, helpers, jobId, Phase.Reveal);
  await revealUpdates(p, jobId, round, subs);
  await voteAndFinalize(p, helpers, jobId, round, votes(subs.length));
  return round;
}

/** Sum of the token balances held by the protocol contracts, and what they should hold. */
export async function accounting(p: Protocol): Promise<{ held: bigint; owed: bigint }> {
  const held = (await p.token.balanceOf(await p.stake.getAddress())) + (await p.token.balanceOf(await p.coord.getAddress()));
  let pools = 0n;
  const jobs = await p.coord.jobCount();
  for (let j = 1n; j <= jobs; j++) pools += await p.coord.rewardPool(j);
  const owed = (await p.stake.totalStake()) + (await p.stake.totalUnbonding()) + pools + (await p.coord.totalOwed());
  return { held, owed };
}
