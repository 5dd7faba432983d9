/**
 * Every round of a job as the chain recorded it: the coordinator's round results and its events
 * (commitments, reveals, votes, slashes, withheld votes, evictions, rewards, attestations, validators'
 * held-out scores of the models they attested), read once
 * per event kind for the whole job and grouped by round. `fedstake status` prints it; the dashboard
 * serves it.
 */
import type { Contract, EventLog } from "ethers";
import { queryEvents } from "../chain/events.ts";
import { hasBit, Outcome, scoreFromChain, type ModelScore } from "../chain/protocol.ts";
import { cidFromChain } from "../storage/store.ts";

const ZERO_DIGEST = "0x" + "0".repeat(64);

export interface ChainRound {
  round: number;
  /** The round's Outcome (protocol.ts), as a number. */
  outcome: number;
  start: bigint;
  acceptedBitmap: bigint;
  slashableBitmap: bigint;
  workerRewardEach: bigint;
  validatorPool: bigint;
  committeeStake: bigint;
  committedStake: bigint;
  revealedStake: bigint;
  base: string;
  /** The attested model's CID, null until one is attested. */
  model: string | null;
  committed: number;
  /** Revealed updates in reveal order; `accepted` is null unless the round was decided (Quorum). */
  updates: { index: number; worker: string; digest: string; codec: number; cid: string; numSamples: bigint; accepted: boolean | null }[];
  votes: { validator: string; bitmap: bigint }[];
  slashes: { account: string; reason: number; amount: bigint }[];
  withheld: string[];
  evicted: string[];
  /** ValidatorRewardCredited: each voter's share of the round's validator pool. */
  validatorRewards: { validator: string; amount: bigint }[];
  /** RewardClaimed (updates' rewards claimed by their workers). */
  claims: { account: string; amount: bigint }[];
  attestations: { validator: string; cid: string; stakeFor: bigint }[];
  /** ModelScored: each attester's own held-out score of the model it attested (its last report); see roundScore. */
  scores: ({ validator: string } & ModelScore)[];
}

/**
 * The round's model score: the stake-weighted median of the scores reported by the validators that
 * attested the round's model (each measured it on its own held-out data, which nobody can check). Only
 * the model's attesters count, each with the stake its attestation carried, so neither the attesters of
 * a losing CID nor a crowd of minimum-stake validators can move it: it takes half the attesting stake.
 */
export function roundScore(r: ChainRound): { accuracy: number | null; loss: number; reporters: number } | null {
  // ModelAttested carries the running stake behind its CID: each attester's stake is the step it added.
  const stakeOf = new Map<string, bigint>();
  let tally = 0n;
  for (const a of r.attestations) {
    if (a.cid !== r.model) continue;
    stakeOf.set(a.validator, a.stakeFor - tally);
    tally = a.stakeFor;
  }
  const scored = r.scores.filter((x) => stakeOf.has(x.validator));
  if (!scored.length) return null;
  const weighted = (pick: (x: (typeof scored)[number]) => number | null) => {
    const xs = scored.flatMap((x) => (pick(x) === null ? [] : [{ v: pick(x)!, w: stakeOf.get(x.validator)! }])).sort((a, b) => a.v - b.v);
    return xs.length ? weightedMedian(xs) : null;
  };
  return { accuracy: weighted((x) => x.accuracy), loss: weighted((x) => x.loss)!, reporters: scored.length };
}

/** The value at half the total weight (the mean of the two values either side when it falls between them); `xs` sorted. */
function weightedMedian(xs: { v: number; w: bigint }[]): number {
  const total = xs.reduce((s, x) => s + x.w, 0n);
  let below = 0n;
  for (const [i, x] of xs.entries()) {
    below += x.w;
    if (below * 2n > total) return x.v;
    if (below * 2n === total) return (x.v + (xs[i + 1]?.v ?? x.v)) / 2;
  }
  return xs[xs.length - 1]!.v;
}

/** The job's events of one kind (every round), grouped by round in log order. */
async function byRound(coord: Contract, event: string, jobId: bigint, fromBlock: number): Promise<Map<number, EventLog[]>> {
  const filter = coord.filters[event];
  if (!filter) throw new Error(`the coordinator's ABI has no ${event} event`);
  const events = await queryEvents(coord, filter(jobId), fromBlock);
  const out = new Map<number, EventLog[]>();
  for (const e of events) {
    const r = Number(e.args.round);
    const list = out.get(r) ?? [];
    list.push(e);
    out.set(r, list);
  }
  return out;
}

/** Rounds 1..`lastRound` of job `jobId`. */
export async function readRounds(coord: Contract, jobId: bigint, lastRound: bigint | number, fromBlock: number): Promise<ChainRound[]> {
  const kinds = ["UpdateRevealed", "VoteRevealed", "UpdateCommitted", "SlashApplied", "MemberEvicted", "VoteWithheld", "ValidatorRewardCredited", "RewardClaimed", "ModelAttested", "ModelScored"] as const;
  const all = await Promise.all(kinds.map((k) => byRound(coord, k, jobId, fromBlock)));
  const ev = Object.fromEntries(kinds.map((k, i) => [k, all[i]!])) as Record<(typeof kinds)[number], Map<number, EventLog[]>>;
  const rounds: ChainRound[] = [];
  for (let r = 1; r <= Number(lastRound); r++) {
    const of = (k: (typeof kinds)[number]) => ev[k].get(r) ?? [];
    const res = await coord.getFunction("roundResult")(jobId, r);
    const decided = Number(res.outcome) === Outcome.Quorum;
    const reveals = of("UpdateRevealed")
      .map((e) => ({ index: Number(e.args.index), worker: e.args.worker as string, digest: e.args.cidDigest as string, codec: Number(e.args.cidCodec), numSamples: BigInt(e.args.numSamples) }))
      .sort((a, b) => a.index - b.index);
    const updates = [];
    for (const u of reveals) updates.push({ ...u, cid: (await cidFromChain(u.digest, u.codec)).toString(), accepted: decided ? hasBit(res.acceptedBitmap, u.index) : null });
    const attestations = [];
    for (const e of of("ModelAttested")) {
      attestations.push({ validator: e.args.validator as string, cid: (await cidFromChain(e.args.digest as string, Number(e.args.codec))).toString(), stakeFor: BigInt(e.args.stakeFor) });
    }
    rounds.push({
      round: r,
      outcome: Number(res.outcome),
      start: BigInt(res.start),
      acceptedBitmap: BigInt(res.acceptedBitmap),
      slashableBitmap: BigInt(res.slashableBitmap),
      workerRewardEach: BigInt(res.workerRewardEach),
      validatorPool: BigInt(res.validatorPool),
      committeeStake: BigInt(res.committeeStake),
      committedStake: BigInt(res.committedStake),
      revealedStake: BigInt(res.revealedStake),
      base: (await cidFromChain(res.baseDigest, Number(res.baseCodec))).toString(),
      model: res.modelDigest === ZERO_DIGEST ? null : (await cidFromChain(res.modelDigest, Number(res.modelCodec))).toString(),
      committed: of("UpdateCommitted").length,
      updates,
      votes: of("VoteRevealed").map((e) => ({ validator: e.args.validator as string, bitmap: BigInt(e.args.acceptBitmap) })),
      slashes: of("SlashApplied").map((e) => ({ account: e.args.account as string, reason: Number(e.args.reason), amount: BigInt(e.args.amount) })),
      withheld: of("VoteWithheld").map((e) => e.args.validator as string),
      evicted: of("MemberEvicted").map((e) => e.args.validator as string),
      validatorRewards: of("ValidatorRewardCredited").map((e) => ({ validator: e.args.validator as string, amount: BigInt(e.args.amount) })),
      claims: of("RewardClaimed").map((e) => ({ account: e.args.account as string, amount: BigInt(e.args.amount) })),
      attestations,
      scores: [...new Map(of("ModelScored").map((e) => [e.args.validator as string, { validator: e.args.validator as string, ...scoreFromChain(e.args.accuracyBps, e.args.lossMicro, e.args.samples) }])).values()],
    });
  }
  return rounds;
}
