/**
 * What the dashboard shows, read from the chain: the job's phase with its deadline (from the job
 * config's periods and the chain's latest block time, never the local clock), every round with its
 * updates (accept/reject, the on-chain votes on each, rewards, slashes), the validators (stake,
 * agreement with the accepted sets, rewards, slashes), each round's base and model CIDs, and the
 * accuracy curve from the validators' held-out scores of the models they attested. Where
 * validators' decision logs (their `events.jsonl`) are given, each update also carries their
 * decisions with reasons and metrics.
 */
import { existsSync, readFileSync } from "node:fs";
import { formatUnits, type Contract, type Provider } from "ethers";
import { hasBit, JobStatus, Outcome, outcomeName, Phase, phaseName, SlashReason } from "../chain/protocol.ts";
import { readRounds, roundScore, type ChainRound } from "./rounds.ts";

const fmt = (x: bigint) => formatUnits(x, 18);
const nameIn = (o: Record<string, number>, v: number | bigint) => Object.keys(o).find((k) => o[k] === Number(v)) ?? String(v);
const REASONS: Record<string, string> = { RejectedUpdate: "rejected update", MissedUpdateReveal: "missed update reveal", MissedVoteReveal: "missed vote reveal", Absence: "absence" };
const reasonName = (r: number) => REASONS[nameIn(SlashReason, r)] ?? `reason ${r}`;

export interface Decision {
  node: string;
  accept: boolean;
  code: string;
  reason: string;
  metrics: Record<string, number>;
}

/** A validator's decisions per round and update index, from its events.jsonl ("decision" lines). */
export function readDecisionLog(file: string): Map<string, Decision[]> {
  const out = new Map<string, Decision[]>();
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let e: { event?: string; node?: string; round?: unknown; index?: unknown; accept?: unknown; code?: unknown; reason?: unknown; metrics?: unknown };
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.event !== "decision") continue;
    const key = `${e.round}:${e.index}`;
    const list = out.get(key) ?? [];
    list.push({ node: String(e.node ?? file), accept: e.accept === true, code: String(e.code ?? ""), reason: String(e.reason ?? ""), metrics: (e.metrics ?? {}) as Record<string, number> });
    out.set(key, list);
  }
  return out;
}

export interface SnapshotSource {
  coord: Contract;
  stake: Contract;
  provider: Provider;
  jobId: bigint;
  /** Where the protocol's events begin (`Protocol.fromBlock`, the deployment's block); default 0. */
  fromBlock?: number;
  /** Validators' events.jsonl files: their decisions and reasons per update. */
  decisionLogs?: string[];
  /** Test accuracy of rounds' models on a test set the caller holds (the demo's MNIST test set), if any. */
  testAccuracy?: () => Promise<{ round: number; accuracy: number }[]>;
}

/** When the current phase ends (chain seconds), or null for a phase without a deadline. */
function phaseEnd(phase: number, st: { roundStart: bigint; finalizedAt: bigint }, c: Record<string, bigint>): bigint | null {
  const commitEnd = st.roundStart + c.commitPeriod!;
  const revealEnd = commitEnd + c.revealPeriod!;
  const voteCommitEnd = revealEnd + c.voteCommitPeriod!;
  const voteRevealEnd = voteCommitEnd + c.voteRevealPeriod!;
  switch (phase) {
    case Phase.NotStarted:
      return st.roundStart;
    case Phase.Commit:
      return commitEnd;
    case Phase.Reveal:
      return revealEnd;
    case Phase.VoteCommit:
      return voteCommitEnd;
    case Phase.VoteReveal:
      return voteRevealEnd;
    case Phase.Finalize:
      // Finalize must come before the slash deadline, or the round is voided.
      return voteRevealEnd + c.slashWindow!;
    case Phase.Attest:
      return st.finalizedAt + c.attestPeriod!;
    default:
      return null;
  }
}

function roundView(r: ChainRound, decisions: Map<string, Decision[]>[]) {
  const decided = r.outcome === Outcome.Quorum;
  return {
    round: r.round,
    outcome: outcomeName(r.outcome),
    start: Number(r.start),
    base: r.base,
    model: r.model,
    committed: r.committed,
    updates: r.updates.map((u) => {
      const slashes = r.slashes.filter((s) => s.account === u.worker && (s.reason === SlashReason.RejectedUpdate || s.reason === SlashReason.MissedUpdateReveal));
      return {
        index: u.index,
        worker: u.worker,
        cid: u.cid,
        numSamples: Number(u.numSamples),
        accepted: u.accepted,
        status: u.accepted === null ? (r.outcome === Outcome.Pending ? "pending" : "undecided") : u.accepted ? "accepted" : "rejected",
        votesFor: r.votes.filter((v) => hasBit(v.bitmap, u.index)).map((v) => v.validator),
        votesAgainst: r.votes.filter((v) => !hasBit(v.bitmap, u.index)).map((v) => v.validator),
        reward: decided && u.accepted ? fmt(r.workerRewardEach) : null,
        slashable: decided ? hasBit(r.slashableBitmap, u.index) : null,
        slashed: slashes.length ? fmt(slashes.reduce((a, s) => a + s.amount, 0n)) : null,
        // One decision per log and update: the last one it logged (a restarted validator may have evaluated twice).
        decisions: decisions.flatMap((d) => d.get(`${r.round}:${u.index}`)?.slice(-1) ?? []),
      };
    }),
    votes: r.votes.map((v) => ({
      validator: v.validator,
      bitmap: "0x" + v.bitmap.toString(16),
      accepts: r.updates.filter((u) => hasBit(v.bitmap, u.index)).map((u) => u.index),
      agreesWithAccepted: decided ? r.updates.every((u) => hasBit(v.bitmap, u.index) === hasBit(r.acceptedBitmap, u.index)) : null,
    })),
    slashes: r.slashes.map((s) => ({ account: s.account, reason: reasonName(s.reason), amount: fmt(s.amount) })),
    withheld: r.withheld,
    evicted: r.evicted,
    rewards: {
      workerRewardEach: fmt(r.workerRewardEach),
      validatorPool: fmt(r.validatorPool),
      validators: r.validatorRewards.map((x) => ({ validator: x.validator, amount: fmt(x.amount) })),
      claimed: r.claims.map((x) => ({ account: x.account, amount: fmt(x.amount) })),
    },
    stake: { committee: fmt(r.committeeStake), committed: fmt(r.committedStake), revealed: fmt(r.revealedStake) },
    attestations: r.attestations.map((a) => ({ validator: a.validator, cid: a.cid, stakeFor: fmt(a.stakeFor) })),
    /** The round's score (roundScore: the stake-weighted median of its model's attesters; null: none reported), and each report. */
    score: roundScore(r),
    scores: r.scores,
  };
}

export type RoundView = ReturnType<typeof roundView>;

/** The dashboard's whole view of job `jobId` (what /api/job serves). */
export async function snapshot(src: SnapshotSource) {
  const { coord, stake, provider, jobId } = src;
  const block = await provider.getBlock("latest");
  if (!block) throw new Error("the chain has no latest block");
  const [round, phase] = (await coord.getFunction("phaseOf")(jobId)) as [bigint, bigint];
  const st = await coord.getFunction("jobState")(jobId);
  const cfg = await coord.getFunction("jobConfig")(jobId);
  const c: Record<string, bigint> = {};
  for (const k of ["commitPeriod", "revealPeriod", "voteCommitPeriod", "voteRevealPeriod", "slashWindow", "attestPeriod"]) c[k] = BigInt(cfg[k]);
  const ends = phaseEnd(Number(phase), { roundStart: BigInt(st.roundStart), finalizedAt: BigInt(st.finalizedAt) }, c);
  const chain = await readRounds(coord, jobId, round, src.fromBlock ?? 0);
  const logs = (src.decisionLogs ?? []).map(readDecisionLog);
  const rounds = chain.map((r) => roundView(r, logs));

  // Validators: the committee now and everyone that ever voted in this job.
  const committee = ((await coord.getFunction("committeeOf")(jobId)) as string[]).map(String);
  const addresses = [...new Set([...committee, ...chain.flatMap((r) => r.votes.map((v) => v.validator)), ...chain.flatMap((r) => r.withheld)])];
  const validators = [];
  for (const a of addresses) {
    let matched = 0;
    let judged = 0;
    let votes = 0;
    let reward = 0n;
    let slashed = 0n;
    for (const r of chain) {
      const v = r.votes.find((x) => x.validator === a);
      if (v) {
        votes++;
        if (r.outcome === Outcome.Quorum) {
          for (const u of r.updates) {
            judged++;
            if (hasBit(v.bitmap, u.index) === hasBit(r.acceptedBitmap, u.index)) matched++;
          }
        }
      }
      for (const x of r.validatorRewards) if (x.validator === a) reward += x.amount;
      for (const s of r.slashes) if (s.account === a) slashed += s.amount;
    }
    validators.push({
      address: a,
      inCommittee: committee.includes(a),
      stake: fmt(BigInt(await stake.getFunction("stakeOf")(a))),
      votes,
      withheld: chain.filter((r) => r.withheld.includes(a)).length,
      agreement: judged ? matched / judged : null,
      agreedUpdates: matched,
      judgedUpdates: judged,
      rewards: fmt(reward),
      slashed: fmt(slashed),
    });
  }

  const scored = rounds.flatMap((r) => (r.score?.accuracy == null ? [] : [{ round: r.round, accuracy: r.score.accuracy, loss: r.score.loss, reporters: r.score.reporters }]));
  const test = src.testAccuracy ? await src.testAccuracy() : [];
  return {
    job: jobId.toString(),
    chainTime: Number(block.timestamp),
    block: block.number,
    status: nameIn(JobStatus, st.status),
    round: Number(round),
    phase: phaseName(phase),
    phaseEndsAt: ends === null ? null : Number(ends),
    phaseEndsIn: ends === null ? null : Math.max(0, Number(ends) - block.timestamp),
    numRounds: Number(cfg.numRounds),
    completedRounds: Number(st.completedRounds),
    rewardPerRound: fmt(BigInt(cfg.rewardPerRound)),
    rewardPool: fmt(BigInt(await coord.getFunction("rewardPool")(jobId))),
    periods: Object.fromEntries(Object.entries(c).map(([k, v]) => [k, Number(v)])),
    decisionLogs: (src.decisionLogs ?? []).length,
    rounds,
    validators,
    accuracy: scored.length
      ? { available: true, note: "accuracy of each round's model on the validators' own held-out data, as they report it on chain (stake-weighted median of the model's attesters)", points: scored }
      : { available: false, note: "no validator has reported a held-out score yet (validators report one after attesting a round's model; evaluate a model yourself with `fedstake model eval`)", points: scored },
    testAccuracy: { note: "accuracy on the test set of whoever serves this page", points: test },
  };
}

export type Snapshot = Awaited<ReturnType<typeof snapshot>>;
