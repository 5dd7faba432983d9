/**
 * The security review's scenarios, each written as the attack (ITrainingCoordinator / DESIGN.md
 * "Security properties"). Every test here passed for the attacker against the contracts before the
 * hardening; each now asserts that the attack fails, so it goes red if the weakness comes back.
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import {
  ONE,
  accounting,
  as,
  commitUpdates,
  commitVotes,
  createJob,
  deployProtocol,
  playRound,
  revealUpdates,
  revealVotes,
  submission,
  toPhase,
  vote,
  voteAndFinalize,
  type Protocol,
  type Submission,
} from "./helpers/fixture.ts";
import { Codec, JobStatus, Outcome, Phase, SlashReason, defaultJobParams } from "../worker/chain/protocol.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const { time } = helpers;
const MODEL = ethers.id("aggregate");
const DAY = 24 * 3600;

const outcomeOf = async (p: Protocol, jobId: bigint, round: bigint) => Number((await p.coord.roundResult(jobId, round)).outcome);
const tokensOf = async (p: Protocol, s: HardhatEthersSigner) => (await p.token.balanceOf(s.address)) + (await p.stake.stakeOf(s.address));

describe("Security: liveness (finding 1)", function () {
  it("absent stake cannot stall a job: after maxMissedRounds it stops counting, anyone evicts it (bond slashed), and the job completes", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const [v0, v1, absent] = p.validators as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    await as(p.stake, absent).stake(1001n * ONE); // 2,001 absent against 2,000 honest
    const jobId = await createJob(p, helpers, { numRounds: 1, maxMissedRounds: 2, maxIdleRounds: 4 });
    const outcomes: number[] = [];
    for (let r = 0; r < 3; r++) {
      const round = await playRound(p, helpers, jobId, [submission(p.workers[0]!, `u${r}`)], () => [vote(v0, 1n), vote(v1, 1n)]);
      outcomes.push(await outcomeOf(p, jobId, round));
      if (r === 0) {
        await expect(p.coord.evictAbsentMember(jobId, absent.address)).to.be.revertedWithCustomError(p.coord, "NotAbsent").withArgs(1n, 2n);
        await expect(p.coord.evictAbsentMember(jobId, v0.address)).to.be.revertedWithCustomError(p.coord, "NotAbsent").withArgs(0n, 2n);
      }
    }
    await expect(as(p.coord, p.others[0]!).evictAbsentMember(jobId, absent.address))
      .to.emit(p.coord, "MemberEvicted")
      .withArgs(jobId, 3n, absent.address)
      .and.to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 3n, absent.address, SlashReason.Absence, 10n * ONE);
    // Two rounds without quorum, then the absent stake no longer counts and the honest committee decides.
    expect(outcomes).to.deep.equal([Outcome.NoQuorum, Outcome.NoQuorum, Outcome.Quorum]);
    expect(await p.coord.committeeOf(jobId)).to.have.members([v0.address, v1.address]);
    expect(await p.stake.stakeOf(absent.address)).to.equal(2001n * ONE - 10n * ONE); // its absence bond
    for (const v of [v0, v1]) await as(p.coord, v).attestModel(jobId, 3n, MODEL, Codec.raw);
    expect((await p.coord.jobState(jobId)).status).to.equal(BigInt(JobStatus.Completed));
    const { held, owed } = await accounting(p);
    expect(held).to.equal(owed);
  });

  it("a member that comes back after its absence keeps its vote: it cannot be evicted once it committed", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const [back, v1, v2] = p.validators as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    const jobId = await createJob(p, helpers, { maxMissedRounds: 2, maxIdleRounds: 4 });
    for (const r of [1n, 2n]) {
      await playRound(p, helpers, jobId, [submission(p.workers[0]!, `u${r}`)], () => [vote(v1, 1n), vote(v2, 1n)]);
      for (const v of [v1, v2]) await as(p.coord, v).attestModel(jobId, r, ethers.id(`model ${r}`), Codec.raw);
    }
    const sub = submission(p.workers[0]!, "u3");
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 3n, [sub]);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 3n, [sub]);
    const votes = [vote(back, 1n), vote(v1, 0n), vote(v2, 0n)];
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 3n, votes);
    // Absent for two decided rounds, but it committed in this one: evicting it now would drop its vote.
    await expect(p.coord.evictAbsentMember(jobId, back.address)).to.be.revertedWithCustomError(p.coord, "VotePending");
    await voteAndFinalize(p, helpers, jobId, 3n, [], votes);
    expect((await p.coord.roundResult(jobId, 3n)).committedStake).to.equal(3000n * ONE);
  });

  it("leaving and rejoining to restart the absence count forfeits the bond", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const [v0, v1, squatter] = p.validators as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    await as(p.stake, squatter).stake(1001n * ONE);
    const jobId = await createJob(p, helpers, { maxMissedRounds: 2, maxIdleRounds: 4 });
    await playRound(p, helpers, jobId, [submission(p.workers[0]!, "u1")], () => [vote(v0, 1n), vote(v1, 1n)]);
    expect(await outcomeOf(p, jobId, 1n)).to.equal(Outcome.NoQuorum);
    // One round short of eviction it leaves (to rejoin with a fresh count): the bond is slashed, not released.
    await expect(as(p.coord, squatter).leaveCommittee(jobId))
      .to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 1n, squatter.address, SlashReason.Absence, 10n * ONE);
    expect(await p.stake.locksOf(squatter.address)).to.deep.equal([0n, 0n, 0n]);
    // A member in good standing (it revealed in the last decided round) leaves with its bond.
    await toPhase(p, helpers, jobId, Phase.Commit);
    await expect(as(p.coord, v0).leaveCommittee(jobId)).to.emit(p.coord, "CommitteeLeft").and.not.to.emit(p.coord, "SlashApplied");
  });

  it("a full committee cannot be squatted by minimum-stake accounts: a higher stake displaces the lowest", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 1 });
    const squatters = p.others.slice(0, 3);
    for (const s of squatters) await as(p.stake, s).stake(100n * ONE);
    const jobId = await createJob(p, helpers, { maxValidators: 3 }, squatters);
    const honest = p.validators[0]!;
    await expect(as(p.coord, honest).joinCommittee(jobId))
      .to.emit(p.coord, "CommitteeDisplaced")
      .withArgs(jobId, squatters[0]!.address, honest.address);
    expect(await p.coord.committeeOf(jobId)).to.include(honest.address);
    expect((await p.coord.memberOf(jobId, squatters[0]!.address)).position).to.equal(0n);
    expect((await p.stake.locksOf(squatters[0]!.address))[0]).to.equal(0n); // its bond released, not slashed
    // Another minimum-stake account cannot take a seat back: equal stake displaces nobody.
    await expect(as(p.coord, squatters[0]!).joinCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "CommitteeFull");
  });

  it("nobody can cut an eligible voter out of a round by displacing it once the round's updates are revealed", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 1 });
    const members = p.others.slice(0, 3);
    for (const s of members) await as(p.stake, s).stake(100n * ONE);
    const jobId = await createJob(p, helpers, { maxValidators: 3 }, members);
    const joiner = p.validators[0]!;
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await expect(as(p.coord, joiner).joinCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "CommitteeFull");
    // In the next round's commit phase the lowest seat is displaceable again.
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await p.coord.finalizeRound(jobId, 1n);
    await expect(as(p.coord, joiner).joinCommittee(jobId)).to.emit(p.coord, "CommitteeDisplaced");
  });

  it("the sponsor always recovers unspent escrow: a job nobody serves expires after maxIdleRounds rounds, even with commitments", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 0 });
    const jobId = await createJob(p, helpers, { numRounds: 3, maxMissedRounds: 2, maxIdleRounds: 3 }, []);
    const before = await p.token.balanceOf(p.sponsor.address);
    for (let round = 1n; round <= 3n; round++) {
      await toPhase(p, helpers, jobId, Phase.Commit);
      // A commitment every round: cancelJob is never available, which used to lock the escrow for good.
      await as(p.coord, p.workers[0]!).commitUpdate(jobId, round, ethers.id(`junk ${round}`));
      await expect(as(p.coord, p.sponsor).cancelJob(jobId)).to.be.revertedWithCustomError(p.coord, "JobHasCommitments");
      await toPhase(p, helpers, jobId, Phase.Finalize);
      await as(p.coord, p.sponsor).finalizeRound(jobId, round);
    }
    expect((await p.coord.jobState(jobId)).status).to.equal(BigInt(JobStatus.Expired));
    expect((await p.coord.phaseOf(jobId))[1]).to.equal(BigInt(Phase.Expired));
    await expect(as(p.coord, p.sponsor).withdrawRemainder(jobId)).to.emit(p.coord, "RemainderWithdrawn").withArgs(jobId, p.sponsor.address, 300n * ONE);
    expect(await p.token.balanceOf(p.sponsor.address)).to.equal(before + 300n * ONE);
  });
});

describe("Security: no profit from slashing (finding 2)", function () {
  it("a sponsor holding the committee majority gains nothing by rejecting honest work; the slashes are burned", async function () {
    const p = await deployProtocol(ethers, { workers: 2, validators: 1 });
    await as(p.token, p.sponsor).approve(await p.stake.getAddress(), 2500n * ONE);
    await as(p.stake, p.sponsor).stake(2500n * ONE);
    const jobId = await createJob(p, helpers, { numRounds: 1 }, [p.validators[0]!, p.sponsor]);
    const sponsorBefore = (await tokensOf(p, p.sponsor)) + 100n * ONE; // + the escrow it already paid
    const burnAddr = await p.stake.BURN_ADDRESS();
    const burnedBefore = await p.token.balanceOf(burnAddr);
    const subs = p.workers.map((w, i) => submission(w, `honest ${i}`));
    await playRound(p, helpers, jobId, subs, () => [vote(p.validators[0]!, 0b11n), vote(p.sponsor, 0n)]);
    const res = await p.coord.roundResult(jobId, 1n);
    expect([res.acceptedBitmap, res.slashableBitmap]).to.deep.equal([0n, 0b11n]);
    // It executes the slashes itself: no executor bounty comes back to it (review R3).
    for (const i of [0n, 1n]) await as(p.coord, p.sponsor).slashRejectedUpdate(jobId, 1n, i);
    await as(p.coord, p.sponsor).claimVoteReward(jobId);
    await as(p.coord, p.sponsor).withdrawRemainder(jobId);
    // The sponsor ends no richer than it started (it was 15 tokens richer before the fix) …
    expect(await tokensOf(p, p.sponsor)).to.be.at.most(sponsorBefore);
    // … and the honest workers' 10 slashed tokens were burned, all of them.
    expect((await p.token.balanceOf(burnAddr)) - burnedBefore).to.equal(10n * ONE);
    expect(await p.coord.rewardPool(jobId)).to.equal(0n);
  });
});

describe("Security: no advantage from withholding (finding 3)", function () {
  async function fourValidators(stakes: bigint[]) {
    const p = await deployProtocol(ethers, { workers: 1, validators: 4 });
    for (const [j, st] of stakes.entries()) if (st < 1000n * ONE) await as(p.stake, p.validators[j]!).requestUnstake(1000n * ONE - st);
    return p;
  }

  async function round(p: Protocol, jobId: bigint, bitmaps: bigint[], reveal: boolean[]) {
    const subs = [submission(p.workers[0]!, "u")];
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, subs);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    const votes = p.validators.map((v, j) => vote(v, bitmaps[j]!));
    return voteAndFinalize(p, helpers, jobId, 1n, votes, votes.filter((_, j) => reveal[j]));
  }

  it("hiding a committed reject vote does not raise acceptance, and costs its stake share", async function () {
    // Honest approve 1,000 and reject 1,000; two sybils of 500 committed approve and reject. Revealing
    // only the approving sybil used to give 1,500 / 2,500 = 60 % ≥ acceptBps.
    const p = await fourValidators([1000n * ONE, 1000n * ONE, 500n * ONE, 500n * ONE]);
    const jobId = await createJob(p, helpers, { acceptBps: 6000, rejectSlashBps: 6600 });
    await expect(round(p, jobId, [1n, 0n, 1n, 0n], [true, true, true, false]))
      .to.emit(p.coord, "VoteWithheld")
      .withArgs(jobId, 1n, p.validators[3]!.address, 500n * ONE);
    await expect(p.coord.slashWithheldVote(jobId, 1n, p.validators[3]!.address))
      .to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 1n, p.validators[3]!.address, SlashReason.MissedVoteReveal, 50n * ONE);
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.acceptedBitmap).to.equal(0n); // 1,500 / 3,000 committed = 50 % < 60 %, as if it had revealed
    expect([res.committedStake, res.revealedStake]).to.deep.equal([3000n * ONE, 2500n * ONE]);
  });

  it("hiding a committed approve vote does not create a slash", async function () {
    // 1,000 approve, 2,000 reject, a 500 approving sybil hides: 2,000 / 2,500 revealed = 80 % used to
    // slash the worker; against 3,500 committed it is 57 % < 66 %.
    const p = await fourValidators([1000n * ONE, 1000n * ONE, 1000n * ONE, 500n * ONE]);
    const jobId = await createJob(p, helpers, { acceptBps: 6000, rejectSlashBps: 6600 });
    await round(p, jobId, [1n, 0n, 0n, 1n], [true, true, true, false]);
    const res = await p.coord.roundResult(jobId, 1n);
    expect([res.acceptedBitmap, res.slashableBitmap]).to.deep.equal([0n, 0n]);
  });

  it("hiding votes cannot drop a round below quorum", async function () {
    // quorumBps 7,000; two of four equal members commit and hide: 2,000 / 4,000 revealed used to void the
    // honest decision as NoQuorum; 4,000 committed keeps quorum and the honest majority decides.
    const p = await fourValidators([1000n * ONE, 1000n * ONE, 1000n * ONE, 1000n * ONE]);
    const jobId = await createJob(p, helpers, { quorumBps: 7000 });
    await round(p, jobId, [1n, 1n, 0n, 0n], [true, true, false, false]);
    expect(await outcomeOf(p, jobId, 1n)).to.equal(Outcome.Quorum);
    expect((await p.coord.roundResult(jobId, 1n)).acceptedBitmap).to.equal(1n);
  });
});

describe("Security: sybil commitments (finding 4)", function () {
  it("commitments that are never revealed lock no honest worker out, and are slashed", async function () {
    const p = await deployProtocol(ethers, { workers: 5, validators: 3 });
    const sybils = p.workers.slice(0, 4);
    const honest = p.workers[4]!;
    const jobId = await createJob(p, helpers, { maxUpdates: 4, rejectSlashAmount: 20n * ONE });
    await toPhase(p, helpers, jobId, Phase.Commit);
    for (const [i, s] of sybils.entries()) await as(p.coord, s).commitUpdate(jobId, 1n, ethers.id(`junk ${i}`));
    const good = submission(honest, "honest");
    await commitUpdates(p, jobId, 1n, [good]); // used to revert TooManyUpdates
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, [good]);
    await voteAndFinalize(p, helpers, jobId, 1n, p.validators.map((v) => vote(v, 1n)));
    expect((await p.coord.roundResult(jobId, 1n)).acceptedBitmap).to.equal(1n);
    for (const s of sybils) await p.coord.slashMissedReveal(jobId, 1n, s.address);
    for (const s of sybils) expect(await p.stake.stakeOf(s.address)).to.equal(48n * ONE);
  });

  it("filling every slot with revealed junk costs at least the round's worker reward", async function () {
    const p = await deployProtocol(ethers, { workers: 5, validators: 3 });
    const sybils = p.workers.slice(0, 4);
    const honest = p.workers[4]!;
    const jobId = await createJob(p, helpers, { maxUpdates: 4, rejectSlashAmount: 20n * ONE });
    const junk = sybils.map((s, i) => submission(s, `junk ${i}`));
    const good = submission(honest, "honest");
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, [...junk, good]);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, junk);
    await expect(as(p.coord, honest).revealUpdate(jobId, 1n, good.digest, good.codec, good.numSamples, good.salt)).to.be.revertedWithCustomError(
      p.coord,
      "TooManyUpdates",
    );
    await voteAndFinalize(p, helpers, jobId, 1n, p.validators.map((v) => vote(v, 0n)));
    let slashed = 0n;
    for (let i = 0n; i < 4n; i++) {
      const rc = await (await p.coord.slashRejectedUpdate(jobId, 1n, i)).wait();
      slashed += p.coord.interface.parseLog(rc!.logs.find((l: { address: string }) => l.address === p.coord.target)!)!.args.amount as bigint;
    }
    const workerReward = 100n * ONE - (100n * ONE * 2000n) / 10000n;
    expect(slashed).to.be.at.least(workerReward);
    // The honest worker found the round full: it is not slashed for the reveal it could not make.
    await expect(p.coord.slashMissedReveal(jobId, 1n, honest.address)).to.be.revertedWithCustomError(p.coord, "RoundWasFull");
    expect(await p.stake.stakeOf(honest.address)).to.equal(50n * ONE);
  });
});

describe("Security: stake at risk (findings 5 and 6)", function () {
  it("one stake cannot back commitments in several jobs beyond what it can pay", async function () {
    const p = await deployProtocol(ethers, { workers: 2, validators: 3, workerStake: 10n * ONE });
    const [thin, w] = p.workers as [HardhatEthersSigner, HardhatEthersSigner];
    await as(p.stake, w).stake(5n * ONE); // 15
    const now = BigInt(await time.latest());
    const jobs: bigint[] = [];
    for (let j = 0; j < 3; j++) {
      await as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 60n }));
      jobs.push(await p.coord.jobCount());
      for (const v of p.validators) await as(p.coord, v).joinCommittee(jobs[j]!);
    }
    await toPhase(p, helpers, jobs[0]!, Phase.Commit);
    const subs = (worker: HardhatEthersSigner, j: number) => submission(worker, `${worker.address} in ${j}`);
    const s0 = subs(thin, 0);
    await commitUpdates(p, jobs[0]!, 1n, [s0]);
    // 10 staked, 5 locked by the first commitment: the same stake cannot stand behind another job's.
    await expect(commitUpdates(p, jobs[1]!, 1n, [subs(thin, 1)]))
      .to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake")
      .withArgs(5n * ONE, 10n * ONE);
    // 15 staked backs two jobs (10 free for the first, 10 for the second, then 5: not a third); both
    // rejections are then collectable in full.
    const ws = [subs(w, 0), subs(w, 1)];
    await commitUpdates(p, jobs[0]!, 1n, [ws[0]!]);
    await commitUpdates(p, jobs[1]!, 1n, [ws[1]!]);
    await expect(commitUpdates(p, jobs[2]!, 1n, [subs(w, 2)])).to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake");
    await toPhase(p, helpers, jobs[0]!, Phase.Reveal);
    await revealUpdates(p, jobs[0]!, 1n, [s0, ws[0]!]);
    await revealUpdates(p, jobs[1]!, 1n, [ws[1]!]);
    await toPhase(p, helpers, jobs[0]!, Phase.VoteCommit);
    const votes = (n: bigint) => p.validators.map((v) => vote(v, n));
    const v0 = votes(0b01n); // job 0: thin's update accepted, w's rejected
    const v1 = votes(0n);
    await commitVotes(p, jobs[0]!, 1n, v0);
    await commitVotes(p, jobs[1]!, 1n, v1);
    await toPhase(p, helpers, jobs[0]!, Phase.VoteReveal);
    await revealVotes(p, jobs[0]!, 1n, v0);
    await revealVotes(p, jobs[1]!, 1n, v1);
    await toPhase(p, helpers, jobs[0]!, Phase.Finalize);
    await p.coord.finalizeRound(jobs[0]!, 1n);
    await p.coord.finalizeRound(jobs[1]!, 1n);
    const taken = [];
    for (const [job, index] of [
      [jobs[0]!, 1n],
      [jobs[1]!, 0n],
    ] as const) {
      const rc = await (await p.coord.slashRejectedUpdate(job, 1n, index)).wait();
      taken.push(p.coord.interface.parseLog(rc!.logs.find((l: { address: string }) => l.address === p.coord.target)!)!.args.amount as bigint);
    }
    expect(taken).to.deep.equal([5n * ONE, 5n * ONE]); // was 5, 5 and 0
  });

  it("a round may not outlast the unbonding period, and committed stake cannot leave before its slash", async function () {
    const p = await deployProtocol(ethers, { workers: 2, validators: 3 });
    const now = BigInt(await time.latest());
    await expect(as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 60n, revealPeriod: 8 * DAY })))
      .to.be.revertedWithCustomError(p.coord, "InvalidParams")
      .withArgs("roundLongerThanUnbonding");
    const jobId = await createJob(p, helpers, { revealPeriod: 6 * DAY });
    const [w0, cheat] = p.workers as [HardhatEthersSigner, HardhatEthersSigner];
    const subs = [submission(w0, "good"), submission(cheat, "bad")];
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, subs);
    // It commits, then tries to leave with everything within the long reveal phase.
    await expect(as(p.stake, cheat).requestUnstake(50n * ONE)).to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake");
    await as(p.stake, cheat).requestUnstake(45n * ONE);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    const votes = p.validators.map((v) => vote(v, 0b01n));
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes);
    // A validator votes and unstakes everything it may: its round weight stays in the stake manager,
    // unbonding, until after the round's slash window and attestation.
    const v = p.validators[0]!;
    await as(p.stake, v).requestUnstake(await p.stake.freeStakeOf(v.address));
    const [, release] = await p.stake.unbondingOf(v.address);
    const cfg = await p.coord.jobConfig(jobId);
    expect(release).to.be.greaterThan((await p.coord.slashDeadlineOf(jobId, 1n)) + cfg.attestPeriod);
    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes);
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await p.coord.finalizeRound(jobId, 1n);
    await expect(as(p.stake, cheat).withdraw()).to.be.revertedWithCustomError(p.stake, "StillUnbonding");
    await expect(p.coord.slashRejectedUpdate(jobId, 1n, 1n))
      .to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 1n, cheat.address, SlashReason.RejectedUpdate, 5n * ONE); // was 0
  });
});

describe("Security: attestation (finding 7)", function () {
  it("with 43 % of committee stake absent, a round with quorum is attested and the model advances", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const [v0, v1, absent] = p.validators as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    await as(p.stake, absent).stake(500n * ONE);
    const jobId = await createJob(p, helpers, { numRounds: 2 });
    await playRound(p, helpers, jobId, [submission(p.workers[0]!, "u")], () => [vote(v0, 1n), vote(v1, 1n)]);
    await as(p.coord, v0).attestModel(jobId, 1n, MODEL, Codec.raw);
    await expect(as(p.coord, absent).attestModel(jobId, 1n, MODEL, Codec.raw)).to.be.revertedWithCustomError(p.coord, "NotVoted");
    // 2,000 of 2,000 revealed ≥ 66 %; it used to need 66 % of 3,500 committee stake, which never came.
    await expect(as(p.coord, v1).attestModel(jobId, 1n, MODEL, Codec.raw)).to.emit(p.coord, "ModelAccepted");
    expect((await p.coord.roundResult(jobId, 2n)).baseDigest).to.equal(MODEL);
  });
});

describe("Security: no admin key over stake (finding 8)", function () {
  it("nobody but the coordinator's rules can move stake, and no role change can block finalize", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    for (const name of ["grantRole", "revokeRole", "renounceRole", "hasRole", "slash"]) {
      expect(p.stake.interface.getFunction(name), `StakeManager.${name}`).to.equal(null);
      expect(p.coord.interface.getFunction(name), `TrainingCoordinator.${name}`).to.equal(null);
    }
    const until = BigInt(await time.latest()) + 100n;
    await expect(as(p.stake, p.admin).slashLocked(p.workers[0]!.address, 0n, 50n * ONE, until))
      .to.be.revertedWithCustomError(p.stake, "NotCoordinator")
      .withArgs(p.admin.address);
    await expect(as(p.stake, p.admin).setCoordinator(p.admin.address)).to.be.revertedWithCustomError(p.stake, "CoordinatorAlreadySet");
    // A withheld vote is recorded by finalize, which needs no role of anybody's.
    const jobId = await createJob(p, helpers);
    await playRound(p, helpers, jobId, [submission(p.workers[0]!, "u")], () => p.validators.map((v) => vote(v, 1n)).slice(0, 3));
    expect(await outcomeOf(p, jobId, 1n)).to.equal(Outcome.Quorum);
  });
});

describe("Security: lower-severity findings (9) and declared sample counts (10)", function () {
  it("every pause window voids the rounds it overlapped, and only those", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const jobId = await createJob(p, helpers, { numRounds: 4 });
    const play = async (tag: string, pauseInside: boolean) => {
      const [round] = await p.coord.phaseOf(jobId);
      const subs = [submission(p.workers[0]!, tag)];
      await toPhase(p, helpers, jobId, Phase.Commit);
      await commitUpdates(p, jobId, round, subs);
      if (pauseInside) {
        await as(p.coord, p.admin).pause();
        await time.increase(1); // even a one-second pause
        await as(p.coord, p.admin).unpause();
      }
      await toPhase(p, helpers, jobId, Phase.Reveal);
      await revealUpdates(p, jobId, round, subs);
      await voteAndFinalize(p, helpers, jobId, round, p.validators.map((v) => vote(v, 1n)));
      const outcome = await outcomeOf(p, jobId, round);
      if (outcome === Outcome.Quorum) for (const v of p.validators.slice(0, 2)) await as(p.coord, v).attestModel(jobId, round, ethers.id(tag), Codec.raw);
      return outcome;
    };
    const outcomes = [await play("a", true), await play("b", false)];
    await time.increase(await p.coord.PAUSE_COOLDOWN());
    // The round that sat out the cooldown ends without votes; the next opens at once.
    await p.coord.finalizeRound(jobId, 3n);
    outcomes.push(await play("c", true), await play("d", false));
    expect(outcomes).to.deep.equal([Outcome.Voided, Outcome.Quorum, Outcome.Voided, Outcome.Quorum]);
  });

  it("a job whose round lasts PAUSE_COOLDOWN is refused while a guardian could void every round; without one it is accepted", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3, unbonding: 60 * DAY });
    const now = BigInt(await time.latest());
    const long = defaultJobParams({ startTime: now + 60n, voteRevealPeriod: 7 * DAY });
    await expect(as(p.coord, p.sponsor).createJob(long)).to.be.revertedWithCustomError(p.coord, "InvalidParams").withArgs("roundLongerThanPauseCooldown");
    const unguarded = p.coord.attach(await (await ethers.deployContract("TrainingCoordinator", [await p.stake.getAddress(), ethers.ZeroAddress])).getAddress()) as typeof p.coord;
    expect(await unguarded.guardian()).to.equal(ethers.ZeroAddress);
    await as(p.token, p.sponsor).approve(await unguarded.getAddress(), 300n * ONE);
    await expect(as(unguarded as typeof p.coord, p.sponsor).createJob(long)).to.emit(unguarded, "JobCreated");
  });

  it("a pause ends by itself after MAX_PAUSE, and the next waits for PAUSE_COOLDOWN", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const max = await p.coord.MAX_PAUSE();
    const jobId = await createJob(p, helpers, {}, p.validators, Number(max) + 100);
    await as(p.coord, p.admin).pause();
    await time.increase(max);
    expect(await p.coord.paused()).to.equal(false);
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, [submission(p.workers[0]!, "u")]); // steps work again without anybody
    // Anyone may record the end of a pause that ran out.
    await expect(as(p.coord, p.others[0]!).unpause()).to.emit(p.coord, "Unpaused");
    await expect(as(p.coord, p.admin).pause()).to.be.revertedWithCustomError(p.coord, "PauseCooldown");
    await time.increase(await p.coord.PAUSE_COOLDOWN());
    await expect(as(p.coord, p.admin).pause()).to.emit(p.coord, "Paused");
  });

  it("the coordinator pays in its stake manager's token and refuses a fee-on-transfer one", async function () {
    const [deployer] = await ethers.getSigners();
    const fee = await ethers.deployContract("FeeOnTransferToken");
    const stake = await ethers.deployContract("StakeManager", [await fee.getAddress(), 7 * DAY]);
    const coordAddr = await (await ethers.deployContract("TrainingCoordinator", [await stake.getAddress(), deployer!.address])).getAddress();
    const p = await deployProtocol(ethers, { workers: 0, validators: 0 });
    const coord = p.coord.attach(coordAddr).connect(deployer!) as typeof p.coord;
    expect(await coord.token()).to.equal(await fee.getAddress());
    await fee.mint(deployer!.address, 1000n * ONE);
    await fee.approve(coordAddr, 1000n * ONE);
    const now = BigInt(await time.latest());
    await expect(coord.createJob(defaultJobParams({ startTime: now + 60n }))).to.be.revertedWithCustomError(coord, "UnsupportedToken");
  });

  it("the same update content is never revealed twice in a job, and digest 0 is neither revealed nor attested", async function () {
    const p = await deployProtocol(ethers, { workers: 3, validators: 3 });
    const jobId = await createJob(p, helpers, { numRounds: 2 });
    const [w0, w1, w2] = p.workers as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    const a = submission(w0, "update A");
    const copy: Submission = { ...submission(w1, "x"), digest: a.digest }; // the same content, from another worker
    const zero: Submission = { ...submission(w2, "x"), digest: ethers.ZeroHash };
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, [a, copy, zero]);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, [a]);
    await expect(revealUpdates(p, jobId, 1n, [copy])).to.be.revertedWithCustomError(p.coord, "DuplicateUpdate").withArgs(a.digest);
    await expect(revealUpdates(p, jobId, 1n, [zero])).to.be.revertedWithCustomError(p.coord, "InvalidDigest");
    await voteAndFinalize(p, helpers, jobId, 1n, p.validators.map((v) => vote(v, 1n)));
    await expect(as(p.coord, p.validators[0]!).attestModel(jobId, 1n, ethers.ZeroHash, Codec.raw)).to.be.revertedWithCustomError(
      p.coord,
      "InvalidDigest",
    );
    for (const v of p.validators.slice(0, 2)) await as(p.coord, v).attestModel(jobId, 1n, MODEL, Codec.raw);
    // Round 2: a re-submission of round 1's update is refused too.
    const replay: Submission = { ...submission(w1, "y"), digest: a.digest };
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 2n, [replay]);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await expect(revealUpdates(p, jobId, 2n, [replay])).to.be.revertedWithCustomError(p.coord, "DuplicateUpdate");
    expect(await p.coord.digestRevealed(jobId, a.digest)).to.equal(true);
  });

  it("a round with quorum but no update is repeated unpaid, and does not consume a paid round", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const jobId = await createJob(p, helpers, { numRounds: 1 });
    await playRound(p, helpers, jobId, [], () => p.validators.map((v) => vote(v, 0n)));
    expect(await outcomeOf(p, jobId, 1n)).to.equal(Outcome.NoUpdates);
    const st = await p.coord.jobState(jobId);
    expect([st.round, st.completedRounds, st.status]).to.deep.equal([2n, 0n, BigInt(JobStatus.Active)]);
    expect(await p.coord.totalOwed()).to.equal(0n);
  });

  it("a member cannot leave between its vote and the attestation, and a former member cannot attest", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 3 });
    const jobId = await createJob(p, helpers, { numRounds: 2 });
    await playRound(p, helpers, jobId, [submission(p.workers[0]!, "u")], () => p.validators.map((v) => vote(v, 1n)));
    await expect(as(p.coord, p.validators[2]!).leaveCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "VotePending");
    for (const v of p.validators.slice(0, 2)) await as(p.coord, v).attestModel(jobId, 1n, MODEL, Codec.raw);
    // Round 2: v2 leaves before voting and is no longer entitled to anything of round 2.
    await as(p.coord, p.validators[2]!).leaveCommittee(jobId);
    await playRound(p, helpers, jobId, [submission(p.workers[0]!, "v")], () => p.validators.slice(0, 2).map((v) => vote(v, 1n)));
    await expect(as(p.coord, p.validators[2]!).attestModel(jobId, 2n, MODEL, Codec.raw)).to.be.revertedWithCustomError(p.coord, "NotVoted");
  });

  it("a declared sample count is bounded by the job, and an accepted update's reward does not grow with it", async function () {
    const p = await deployProtocol(ethers, { workers: 3, validators: 3 });
    const jobId = await createJob(p, helpers, { maxSamplesPerUpdate: 60_000n });
    const [w0, w1, w2] = p.workers as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    const liar = submission(w2, "zero update", 60_000n * 1_000_000n);
    const subs = [submission(w0, "small", 1n), submission(w1, "large", 60_000n)];
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, [...subs, liar]);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    await expect(revealUpdates(p, jobId, 1n, [liar]))
      .to.be.revertedWithCustomError(p.coord, "TooManySamples")
      .withArgs(60_000n, 60_000n * 1_000_000n);
    await voteAndFinalize(p, helpers, jobId, 1n, p.validators.map((v) => vote(v, 0b11n)));
    await expect(as(p.coord, w0).claimUpdateReward(jobId, 1n, 0n)).to.changeTokenBalances(ethers, p.token, [w0], [40n * ONE]);
    await expect(as(p.coord, w1).claimUpdateReward(jobId, 1n, 1n)).to.changeTokenBalances(ethers, p.token, [w1], [40n * ONE]);
  });
});

describe("Security: stake locks are released", function () {
  it("a claim, a lock release or the slash deadline frees a worker's locked stake; a slashable update's lock stays until slashed", async function () {
    const p = await deployProtocol(ethers, { workers: 3, validators: 3 });
    const jobId = await createJob(p, helpers, { validatorShareBps: 10000 - 1 });
    const [good, rejected, bad] = p.workers as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    const [v0, v1, v2] = p.validators as [HardhatEthersSigner, HardhatEthersSigner, HardhatEthersSigner];
    // update 0 accepted by all; update 1 rejected by one (not slashable); update 2 rejected by all.
    await playRound(p, helpers, jobId, [submission(good, "g"), submission(rejected, "r"), submission(bad, "b")], () => [
      vote(v0, 0b011n),
      vote(v1, 0b011n),
      vote(v2, 0b001n),
    ]);
    const res = await p.coord.roundResult(jobId, 1n);
    expect([res.acceptedBitmap, res.slashableBitmap]).to.deep.equal([0b011n, 0b100n]);
    await expect(p.coord.releaseUpdateLock(jobId, 1n, 2n)).to.be.revertedWithCustomError(p.coord, "SlashPending").withArgs(2n);
    await expect(p.coord.releaseUpdateLock(jobId, 1n, 3n)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
    await expect(p.coord.releaseUpdateLock(jobId, 2n, 0n)).to.be.revertedWithCustomError(p.coord, "RoundNotDecided");
    for (const [i, w] of [good, rejected].entries()) {
      expect(await p.stake.freeStakeOf(w.address)).to.equal(45n * ONE);
      await expect(p.coord.releaseUpdateLock(jobId, 1n, BigInt(i))).to.emit(p.coord, "UpdateLockReleased").withArgs(jobId, 1n, i, w.address);
      expect(await p.stake.freeStakeOf(w.address)).to.equal(50n * ONE);
    }
    await expect(p.coord.releaseUpdateLock(jobId, 1n, 0n)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
    // Past the deadline nothing is slashable any more and the lock has expired by itself.
    await time.increaseTo(await p.coord.slashDeadlineOf(jobId, 1n));
    await expect(p.coord.slashRejectedUpdate(jobId, 1n, 2n)).to.be.revertedWithCustomError(p.coord, "SlashWindowOver");
    expect(await p.stake.freeStakeOf(bad.address)).to.equal(50n * ONE);
    await p.coord.releaseUpdateLock(jobId, 1n, 2n);
  });
});
