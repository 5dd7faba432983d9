import { expect } from "chai";
import { network } from "hardhat";
import { anyValue } from "@nomicfoundation/hardhat-ethers-chai-matchers/withArgs";
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
  type Protocol,
} from "./helpers/fixture.ts";
import {
  Codec,
  JobStatus,
  Outcome,
  Phase,
  SlashReason,
  bitmapOf,
  defaultJobParams,
  randomSalt,
  updateCommitment,
  voteCommitment,
} from "../worker/chain/protocol.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const { loadFixture, time } = helpers;

const base = () => deployProtocol(ethers);
const twoUnequalValidators = () => deployProtocol(ethers, { workers: 2, validators: 2, validatorStake: 500n * ONE });
const twoValidators = () => deployProtocol(ethers, { workers: 1, validators: 2 });
const MODEL = ethers.keccak256(ethers.toUtf8Bytes("aggregate"));
const OTHER_MODEL = ethers.keccak256(ethers.toUtf8Bytes("other aggregate"));

async function withJob(overrides = {}) {
  const p = await loadFixture(base);
  const jobId = await createJob(p, helpers, overrides);
  return { p, jobId };
}

async function toCommit(p: Protocol, jobId: bigint) {
  await toPhase(p, helpers, jobId, Phase.Commit);
}

const all = (n: number) => bitmapOf(Array.from({ length: n }, (_, i) => i));

describe("TrainingCoordinator: jobs", function () {
  it("creates a job, escrows its rewards and opens round 1 at startTime on the initial model", async function () {
    const p = await loadFixture(base);
    const now = BigInt(await time.latest());
    const params = defaultJobParams({ startTime: now + 100n, numRounds: 4, rewardPerRound: 10n * ONE });
    const before = await p.token.balanceOf(p.sponsor.address);
    await expect(as(p.coord, p.sponsor).createJob(params))
      .to.emit(p.coord, "JobCreated")
      .and.to.emit(p.coord, "RoundOpened")
      .withArgs(1n, 1n, now + 100n, params.initialModelDigest, params.initialModelCodec);
    expect(await p.token.balanceOf(p.sponsor.address)).to.equal(before - 40n * ONE);
    expect(await p.coord.rewardPool(1n)).to.equal(40n * ONE);
    const [round, phase] = await p.coord.phaseOf(1n);
    expect(round).to.equal(1n);
    expect(phase).to.equal(BigInt(Phase.NotStarted));
    const cfg = await p.coord.jobConfig(1n);
    expect(cfg.sponsor).to.equal(p.sponsor.address);
    expect(cfg.numRounds).to.equal(4n);
    const r1 = await p.coord.roundResult(1n, 1n);
    expect(r1.baseDigest).to.equal(params.initialModelDigest);
    expect(r1.outcome).to.equal(BigInt(Outcome.Pending));
  });

  it("rejects every invalid parameter by name", async function () {
    const p = await loadFixture(base);
    const now = BigInt(await time.latest());
    const cases: [string, object][] = [
      ["initialModelDigest", { initialModelDigest: ethers.ZeroHash }],
      ["startTime", { startTime: now - 10n }],
      // The next block is mined one second after the latest: a job starting in it could not be voted on.
      ["startTime", { startTime: now + 1n }],
      ["numRounds", { numRounds: 0 }],
      ["rewardPerRound", { rewardPerRound: 2n ** 95n, numRounds: 2 }],
      ["period", { commitPeriod: 0 }],
      ["period", { revealPeriod: 0 }],
      ["period", { voteCommitPeriod: 0 }],
      ["period", { voteRevealPeriod: 0 }],
      ["attestPeriod", { attestPeriod: 0 }],
      ["slashWindow", { slashWindow: 0 }],
      // 7-day unbonding: a round (vote reveal + slash window + attestation) must end before it.
      ["roundLongerThanUnbonding", { slashWindow: 7 * 24 * 3600 }],
      // commit + 3 × 300 + slash window 3600 + attest 600 = 7 days exactly.
      ["roundLongerThanUnbonding", { commitPeriod: 7 * 24 * 3600 - 5100 }],
      ["maxSamplesPerUpdate", { maxSamplesPerUpdate: 0n }],
      ["maxUpdates", { maxUpdates: 0 }],
      ["maxUpdates", { maxUpdates: 257 }],
      ["minUpdates", { maxUpdates: 16, minUpdates: 17, missedRevealSlashAmount: 5n * ONE }],
      // 4 commitments closing the commit phase, then left unrevealed, would cost 4 × 2 < the 80-token worker reward.
      ["minUpdates", { minUpdates: 4 }],
      ["maxValidators", { maxValidators: 0 }],
      ["maxValidators", { maxValidators: 257 }],
      ["quorumBps", { quorumBps: 0 }],
      ["quorumBps", { quorumBps: 4999 }],
      ["quorumBps", { quorumBps: 10001 }],
      ["acceptBps", { acceptBps: 0 }],
      ["acceptBps", { acceptBps: 10001 }],
      ["attestBps", { attestBps: 5000 }],
      ["attestBps", { attestBps: 10001 }],
      ["rejectSlashBps", { rejectSlashBps: 10001 }],
      ["rejectSlashBps", { rejectSlashBps: 0 }],
      ["rejectSlashBps", { acceptBps: 5000, rejectSlashBps: 5000 }],
      ["validatorShareBps", { validatorShareBps: 10001 }],
      ["missedVoteSlashBps", { missedVoteSlashBps: 0 }],
      ["missedVoteSlashBps", { missedVoteSlashBps: 10001 }],
      ["maxMissedRounds", { maxMissedRounds: 0 }],
      ["maxMissedRounds", { maxMissedRounds: 1, maxIdleRounds: 2 }],
      ["maxIdleRounds", { maxMissedRounds: 3, maxIdleRounds: 3 }],
      ["minWorkerStake", { minWorkerStake: 0n }],
      ["minValidatorStake", { minValidatorStake: 0n }],
      ["missedRevealSlashAmount", { missedRevealSlashAmount: 0n }],
      ["absenceSlashAmount", { absenceSlashAmount: 0n }],
      // 64 slots × 1 token < the 80-token worker reward: filling a round with junk would be cheap.
      ["rejectSlashAmount", { rejectSlashAmount: ONE }],
    ];
    for (const [what, o] of cases) {
      await expect(as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 100n, ...o })))
        .to.be.revertedWithCustomError(p.coord, "InvalidParams")
        .withArgs(what);
    }
    // At the bounds: exactly the worker reward in slashes across all slots, a round just inside unbonding.
    await as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 100n, maxUpdates: 16, rejectSlashAmount: 5n * ONE }));
    await as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 100n, commitPeriod: 7 * 24 * 3600 - 5101 }));
    // minUpdates at its bounds: every slot, and exactly the worker reward (40 × 2 = 80) to close the phase.
    await as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 100n, maxUpdates: 16, minUpdates: 16, missedRevealSlashAmount: 5n * ONE }));
    await as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: now + 100n, minUpdates: 2, missedRevealSlashAmount: 40n * ONE, rejectSlashAmount: 40n * ONE }));
  });

  it("views revert for unknown jobs", async function () {
    const p = await loadFixture(base);
    await expect(p.coord.phaseOf(9n)).to.be.revertedWithCustomError(p.coord, "UnknownJob").withArgs(9n);
    await expect(p.coord.jobConfig(9n)).to.be.revertedWithCustomError(p.coord, "UnknownJob");
    await expect(p.coord.jobState(9n)).to.be.revertedWithCustomError(p.coord, "UnknownJob");
  });

  it("lets only the sponsor cancel, only before any commitment, and refund the escrow once", async function () {
    const { p, jobId } = await withJob();
    await expect(as(p.coord, p.workers[0]).cancelJob(jobId)).to.be.revertedWithCustomError(p.coord, "NotSponsor");
    await expect(as(p.coord, p.sponsor).withdrawRemainder(jobId)).to.be.revertedWithCustomError(p.coord, "JobStillActive");
    await expect(as(p.coord, p.sponsor).cancelJob(9n)).to.be.revertedWithCustomError(p.coord, "UnknownJob");
    await expect(as(p.coord, p.sponsor).cancelJob(jobId)).to.emit(p.coord, "JobCancelled").withArgs(jobId);
    await expect(as(p.coord, p.sponsor).cancelJob(jobId)).to.be.revertedWithCustomError(p.coord, "JobNotActive");
    const [, phase] = await p.coord.phaseOf(jobId);
    expect(phase).to.equal(BigInt(Phase.Cancelled));
    await expect(as(p.coord, p.workers[0]).withdrawRemainder(jobId)).to.be.revertedWithCustomError(p.coord, "NotSponsor");
    const pool = await p.coord.rewardPool(jobId);
    await expect(as(p.coord, p.sponsor).withdrawRemainder(jobId))
      .to.emit(p.coord, "RemainderWithdrawn")
      .withArgs(jobId, p.sponsor.address, pool);
    await expect(as(p.coord, p.sponsor).withdrawRemainder(jobId)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
    await expect(as(p.coord, p.validators[0]).joinCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "JobNotActive");
  });

  it("refuses to cancel once a worker committed, or after the commit phase", async function () {
    const { p, jobId } = await withJob();
    await toCommit(p, jobId);
    await commitUpdates(p, jobId, 1n, [submission(p.workers[0], "a")]);
    await expect(as(p.coord, p.sponsor).cancelJob(jobId)).to.be.revertedWithCustomError(p.coord, "JobHasCommitments");
    const { p: p2, jobId: j2 } = await withJob();
    await toPhase(p2, helpers, j2, Phase.Reveal);
    // Nothing was committed, so there is nothing to reveal either: the reveal phase closed with the commit phase.
    await expect(as(p2.coord, p2.sponsor).cancelJob(j2))
      .to.be.revertedWithCustomError(p2.coord, "WrongPhase")
      .withArgs(Phase.Commit, Phase.VoteCommit);
  });
});

describe("TrainingCoordinator: committee", function () {
  it("joins with enough stake, up to the cap, once", async function () {
    const p = await loadFixture(base);
    const jobId = await createJob(p, helpers, { maxValidators: 2 }, []);
    await expect(as(p.coord, p.validators[0]).joinCommittee(jobId))
      .to.emit(p.coord, "CommitteeJoined")
      .withArgs(jobId, p.validators[0].address);
    await expect(as(p.coord, p.validators[0]).joinCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "AlreadyInCommittee");
    // Joining needs minValidatorStake of free stake, and holds the absence bond out of it.
    await expect(as(p.coord, p.workers[0]).joinCommittee(jobId))
      .to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake")
      .withArgs(50n * ONE, 100n * ONE);
    expect(await p.stake.locksOf(p.validators[0].address)).to.deep.equal([10n * ONE, 0n, 0n]);
    await as(p.coord, p.validators[1]).joinCommittee(jobId);
    // Full: an equal stake does not displace anybody.
    await expect(as(p.coord, p.validators[2]).joinCommittee(jobId))
      .to.be.revertedWithCustomError(p.coord, "CommitteeFull")
      .withArgs(2n);
    expect(await p.coord.committeeOf(jobId)).to.deep.equal([p.validators[0].address, p.validators[1].address]);
    const m = await p.coord.memberOf(jobId, p.validators[0].address);
    expect([m.position, m.eligibleFrom]).to.deep.equal([1n, 1n]);
  });

  it("leaves (swap and pop), but not with a vote pending in the current round", async function () {
    const { p, jobId } = await withJob();
    const [v0, v1, v2] = p.validators;
    await expect(as(p.coord, p.workers[0]).leaveCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "NotInCommittee");
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, [vote(v1, 0n)]);
    await expect(as(p.coord, v1).leaveCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "VotePending");
    await expect(as(p.coord, v0).leaveCommittee(jobId)).to.emit(p.coord, "CommitteeLeft").withArgs(jobId, v0.address);
    expect(await p.coord.committeeOf(jobId)).to.deep.equal([v2.address, v1.address]);
    // Leaving releases the absence bond.
    expect((await p.stake.locksOf(v0.address))[0]).to.equal(0n);
    await expect(as(p.coord, v2).leaveCommittee(jobId)).to.emit(p.coord, "CommitteeLeft");
    expect(await p.coord.committeeOf(jobId)).to.deep.equal([v1.address]);
  });
});

describe("TrainingCoordinator: worker commit and reveal", function () {
  it("accepts a staked worker's commitment in the commit phase and its reveal in the reveal phase", async function () {
    const { p, jobId } = await withJob();
    const s = submission(p.workers[0], "cid-a", 321n);
    await expect(as(p.coord, s.worker).commitUpdate(jobId, 1n, ethers.id("x"))).to.be.revertedWithCustomError(
      p.coord,
      "WrongPhase",
    );
    await toCommit(p, jobId);
    const c = updateCommitment({
      jobId,
      round: 1n,
      worker: s.worker.address,
      cidDigest: s.digest,
      cidCodec: s.codec,
      numSamples: s.numSamples,
      salt: s.salt,
    });
    expect(await p.coord.updateCommitment(jobId, 1n, s.worker.address, s.digest, s.codec, s.numSamples, s.salt)).to.equal(c);
    await expect(as(p.coord, s.worker).commitUpdate(jobId, 1n, c))
      .to.emit(p.coord, "UpdateCommitted")
      .withArgs(jobId, 1n, s.worker.address, c);
    expect(await p.coord.updateCommitmentOf(jobId, 1n, s.worker.address)).to.equal(c);
    await expect(as(p.coord, s.worker).revealUpdate(jobId, 1n, s.digest, s.codec, s.numSamples, s.salt))
      .to.be.revertedWithCustomError(p.coord, "WrongPhase")
      .withArgs(Phase.Reveal, Phase.Commit);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await expect(as(p.coord, s.worker).revealUpdate(jobId, 1n, s.digest, s.codec, s.numSamples, s.salt))
      .to.emit(p.coord, "UpdateRevealed")
      .withArgs(jobId, 1n, s.worker.address, 0n, s.digest, s.codec, s.numSamples);
    const u = await p.coord.updateAt(jobId, 1n, 0n);
    expect(u.worker).to.equal(s.worker.address);
    expect(u.numSamples).to.equal(321n);
    expect((await p.coord.jobState(jobId)).revealCount).to.equal(1n);
  });

  it("rejects wrong round, unknown job, bad commitments, double commits, validators and full rounds", async function () {
    // 2 slots × 40 slashed ≥ the 80-token worker reward.
    const { p, jobId } = await withJob({ maxUpdates: 2, rejectSlashAmount: 40n * ONE });
    await toCommit(p, jobId);
    const [w0, w1, w2] = p.workers;
    await expect(as(p.coord, w0).commitUpdate(jobId, 2n, ethers.id("x")))
      .to.be.revertedWithCustomError(p.coord, "WrongRound")
      .withArgs(1n, 2n);
    await expect(as(p.coord, w0).commitUpdate(7n, 1n, ethers.id("x"))).to.be.revertedWithCustomError(p.coord, "UnknownJob");
    await expect(as(p.coord, w0).commitUpdate(jobId, 1n, ethers.ZeroHash)).to.be.revertedWithCustomError(
      p.coord,
      "InvalidCommitment",
    );
    await expect(as(p.coord, w0).commitUpdate(jobId, 1n, ethers.toBeHex(15, 32))).to.be.revertedWithCustomError(
      p.coord,
      "InvalidCommitment",
    );
    await expect(as(p.coord, p.validators[0]).commitUpdate(jobId, 1n, ethers.id("v"))).to.be.revertedWithCustomError(
      p.coord,
      "ValidatorCannotSubmit",
    );
    // Free stake must cover the minimum and the lock (here the 40-token reject slash).
    await expect(as(p.coord, p.others[0]).commitUpdate(jobId, 1n, ethers.id("u")))
      .to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake")
      .withArgs(0n, 40n * ONE);
    const subs = [submission(w0, "a"), submission(w1, "b"), submission(w2, "c")];
    await commitUpdates(p, jobId, 1n, [subs[0]!]);
    await expect(as(p.coord, w0).commitUpdate(jobId, 1n, ethers.id("b"))).to.be.revertedWithCustomError(
      p.coord,
      "AlreadyCommitted",
    );
    // Slots are taken at reveal: a third commitment in a 2-slot round is accepted (so commitments that
    // are never revealed can never lock honest workers out), and the third reveal is refused.
    await commitUpdates(p, jobId, 1n, subs.slice(1));
    expect((await p.coord.jobState(jobId)).commitCount).to.equal(3n);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs.slice(0, 2));
    const late = subs[2]!;
    await expect(as(p.coord, w2).revealUpdate(jobId, 1n, late.digest, late.codec, late.numSamples, late.salt))
      .to.be.revertedWithCustomError(p.coord, "TooManyUpdates")
      .withArgs(2n);
    // The worker that found the round full is not slashed for its missing reveal.
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await expect(p.coord.slashMissedReveal(jobId, 1n, w2.address)).to.be.revertedWithCustomError(p.coord, "RoundWasFull").withArgs(1n);
  });

  it("counts an under-staked worker by its current free stake, and locks its exposure", async function () {
    const { p, jobId } = await withJob();
    const [w, w1] = p.workers;
    await as(p.stake, w).requestUnstake(45n * ONE); // 5 left < 10 minimum
    await toCommit(p, jobId);
    await expect(as(p.coord, w).commitUpdate(jobId, 1n, ethers.id("a")))
      .to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake")
      .withArgs(5n * ONE, 10n * ONE);
    // max(rejectSlashAmount 5, missedRevealSlashAmount 2) is locked until the round's slash deadline.
    await as(p.coord, w1).commitUpdate(jobId, 1n, ethers.id("b"));
    const deadline = await p.coord.slashDeadlineOf(jobId, 1n);
    expect(await p.stake.locksOf(w1.address)).to.deep.equal([0n, 5n * ONE, deadline]);
    expect(await p.stake.freeStakeOf(w1.address)).to.equal(45n * ONE);
    await expect(as(p.stake, w1).requestUnstake(46n * ONE))
      .to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake")
      .withArgs(45n * ONE, 46n * ONE);
  });

  it("rejects reveals without a commitment, twice, with a mismatch or with zero samples", async function () {
    const { p, jobId } = await withJob();
    const [w0, w1, w2] = p.workers;
    const good = submission(w0, "good");
    const zero = submission(w1, "zero", 0n);
    await toCommit(p, jobId);
    await commitUpdates(p, jobId, 1n, [good, zero]);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await expect(as(p.coord, w2).revealUpdate(jobId, 1n, good.digest, good.codec, 1n, good.salt)).to.be.revertedWithCustomError(
      p.coord,
      "NotCommitted",
    );
    await expect(
      as(p.coord, w0).revealUpdate(jobId, 1n, good.digest, good.codec, good.numSamples + 1n, good.salt),
    ).to.be.revertedWithCustomError(p.coord, "RevealMismatch");
    await expect(as(p.coord, w0).revealUpdate(jobId, 1n, good.digest, Codec.dagPb, good.numSamples, good.salt)).to.be.revertedWithCustomError(
      p.coord,
      "RevealMismatch",
    );
    await expect(as(p.coord, w0).revealUpdate(jobId, 1n, good.digest, good.codec, good.numSamples, randomSalt())).to.be.revertedWithCustomError(
      p.coord,
      "RevealMismatch",
    );
    await revealUpdates(p, jobId, 1n, [good]);
    await expect(as(p.coord, w0).revealUpdate(jobId, 1n, good.digest, good.codec, good.numSamples, good.salt)).to.be.revertedWithCustomError(
      p.coord,
      "AlreadyRevealed",
    );
    await expect(as(p.coord, w1).revealUpdate(jobId, 1n, zero.digest, zero.codec, 0n, zero.salt)).to.be.revertedWithCustomError(
      p.coord,
      "ZeroSamples",
    );
  });

  it("a copied commitment cannot be revealed by the copier", async function () {
    const { p, jobId } = await withJob();
    const [w0, w1] = p.workers;
    const honest = submission(w0, "honest");
    await toCommit(p, jobId);
    await commitUpdates(p, jobId, 1n, [honest]);
    const copied = await p.coord.updateCommitmentOf(jobId, 1n, w0.address);
    await as(p.coord, w1).commitUpdate(jobId, 1n, copied);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, [honest]);
    await expect(
      as(p.coord, w1).revealUpdate(jobId, 1n, honest.digest, honest.codec, honest.numSamples, honest.salt),
    ).to.be.revertedWithCustomError(p.coord, "RevealMismatch");
  });
});

/**
 * Round 1 of a job (`overrides`) in which `n` updates are revealed and `unrevealed` more were committed
 * (keeping the reveal phase open); `subs` are the revealed ones, `all` every commitment.
 */
async function revealed(n = 2, unrevealed = 0, overrides = {}) {
  const { p, jobId } = await withJob(overrides);
  const all = p.workers.slice(0, n + unrevealed).map((w, i) => submission(w, `u${i}`));
  await toCommit(p, jobId);
  await commitUpdates(p, jobId, 1n, all);
  await toPhase(p, helpers, jobId, Phase.Reveal);
  await revealUpdates(p, jobId, 1n, all.slice(0, n));
  return { p, jobId, subs: all.slice(0, n), all };
}

describe("TrainingCoordinator: votes", function () {
  it("commits and reveals a committee member's bitmap", async function () {
    const { p, jobId } = await revealed(2, 1);
    const v = vote(p.validators[0], 0b11n);
    await expect(commitVotes(p, jobId, 1n, [v])).to.be.revertedWithCustomError(p.coord, "WrongPhase");
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    const c = voteCommitment({ jobId, round: 1n, validator: v.validator.address, bitmap: v.bitmap, salt: v.salt });
    expect(await p.coord.voteCommitment(jobId, 1n, v.validator.address, v.bitmap, v.salt)).to.equal(c);
    await expect(as(p.coord, v.validator).commitVote(jobId, 1n, c))
      .to.emit(p.coord, "VoteCommitted")
      .withArgs(jobId, 1n, v.validator.address, c);
    await expect(revealVotes(p, jobId, 1n, [v])).to.be.revertedWithCustomError(p.coord, "WrongPhase");
    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    await expect(as(p.coord, v.validator).revealVote(jobId, 1n, v.bitmap, v.salt))
      .to.emit(p.coord, "VoteRevealed")
      .withArgs(jobId, 1n, v.validator.address, 0b11n);
    expect(await p.coord.voteSlotOf(jobId, v.validator.address)).to.equal(ethers.toBeHex(0b11n, 32));
    const m = await p.coord.memberOf(jobId, v.validator.address);
    expect([m.commitRound, m.revealRound]).to.deep.equal([1n, 1n]);
  });

  it("rejects non-members, late joiners, bad and double commitments", async function () {
    const { p, jobId } = await revealed();
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    const [v0] = p.validators;
    await expect(as(p.coord, p.workers[0]).commitVote(jobId, 1n, ethers.id("x"))).to.be.revertedWithCustomError(
      p.coord,
      "NotInCommittee",
    );
    // Joined after the round opened: counts from the next round only.
    await as(p.stake, p.others[0]).stake(500n * ONE);
    await as(p.coord, p.others[0]).joinCommittee(jobId);
    await expect(as(p.coord, p.others[0]).commitVote(jobId, 1n, ethers.id("x"))).to.be.revertedWithCustomError(
      p.coord,
      "NotInCommittee",
    );
    await expect(as(p.coord, v0).commitVote(jobId, 1n, ethers.ZeroHash)).to.be.revertedWithCustomError(
      p.coord,
      "InvalidCommitment",
    );
    await as(p.coord, v0).commitVote(jobId, 1n, ethers.id("x"));
    await expect(as(p.coord, v0).commitVote(jobId, 1n, ethers.id("y"))).to.be.revertedWithCustomError(
      p.coord,
      "AlreadyCommitted",
    );
  });

  it("weighs stake at round start: stake added after the round opened buys nothing", async function () {
    const p = await loadFixture(base);
    const [v0] = p.validators;
    const latecomer = p.others[0];
    await as(p.stake, latecomer).stake(100n * ONE); // exactly the minimum
    const jobId = await createJob(p, helpers, {}, [...p.validators, latecomer]);
    await as(p.stake, v0).requestUnstake(950n * ONE); // 50 left at round start < 100
    await toCommit(p, jobId);
    await as(p.stake, v0).stake(900n * ONE); // restaked after the round opened: too late
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await expect(as(p.coord, v0).commitVote(jobId, 1n, ethers.id("x")))
      .to.be.revertedWithCustomError(p.coord, "InsufficientStake")
      .withArgs(100n * ONE, 50n * ONE);
    await as(p.coord, latecomer).commitVote(jobId, 1n, ethers.id("y"));
  });

  it("rejects reveals without a commitment, twice, with a mismatch, or naming updates that do not exist", async function () {
    const { p, jobId } = await revealed(2);
    const [v0, v1, v2] = p.validators;
    const good = vote(v0, 0b01n);
    const tooWide = vote(v1, 0b100n);
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, [good, tooWide]);
    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    await expect(as(p.coord, v2).revealVote(jobId, 1n, 0n, good.salt)).to.be.revertedWithCustomError(p.coord, "NotCommitted");
    await expect(as(p.coord, v0).revealVote(jobId, 1n, 0b11n, good.salt)).to.be.revertedWithCustomError(p.coord, "RevealMismatch");
    await expect(as(p.coord, v1).revealVote(jobId, 1n, tooWide.bitmap, tooWide.salt))
      .to.be.revertedWithCustomError(p.coord, "InvalidBitmap")
      .withArgs(0b100n, 2n);
    await revealVotes(p, jobId, 1n, [good]);
    await expect(as(p.coord, v0).revealVote(jobId, 1n, good.bitmap, good.salt)).to.be.revertedWithCustomError(
      p.coord,
      "AlreadyRevealed",
    );
  });
});

describe("TrainingCoordinator: finalize", function () {
  it("accepts by stake-weighted majority, credits rewards and waits for attestation", async function () {
    const { p, jobId } = await withJob();
    const subs = p.workers.map((w, i) => submission(w, `u${i}`));
    await toCommit(p, jobId);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.be.revertedWithCustomError(p.coord, "WrongPhase");
    await commitUpdates(p, jobId, 1n, subs);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    const [v0, v1, v2] = p.validators;
    const votes = [vote(v0, 0b011n), vote(v1, 0b011n), vote(v2, 0b111n)];
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes);
    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes);
    await toPhase(p, helpers, jobId, Phase.Finalize);
    const poolBefore = await p.coord.rewardPool(jobId);
    // 100 reward: 20 to validators, 80 split between 2 accepted updates; update 2 rejected by 2/3 ≥ 66%.
    await expect(p.coord.finalizeRound(jobId, 1n))
      .to.emit(p.coord, "RoundFinalized")
      .withArgs(jobId, 1n, Outcome.Quorum, 0b011n, 0b100n, 3000n * ONE, 3000n * ONE, 3000n * ONE, 40n * ONE, 20n * ONE);
    expect(await p.coord.rewardPool(jobId)).to.equal(poolBefore - 100n * ONE);
    expect(await p.coord.totalOwed()).to.equal(100n * ONE);
    const [round, phase] = await p.coord.phaseOf(jobId);
    expect([round, phase]).to.deep.equal([1n, BigInt(Phase.Attest)]);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.be.revertedWithCustomError(p.coord, "WrongPhase");
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.updateCount).to.equal(3n);
    // Validator pool 20 by stake × agreement: v0, v1 agree on all 3 (weight 3000 each), v2 on 2 (2000).
    expect((await p.coord.memberOf(jobId, v0.address)).owed).to.equal(7_500_000_000_000_000_000n);
    expect((await p.coord.memberOf(jobId, v2.address)).owed).to.equal(5n * ONE);
  });

  it("misses quorum: nothing accepted, nobody paid, round repeated at once on the same base", async function () {
    const { p, jobId } = await withJob({ quorumBps: 7000 });
    const subs = [submission(p.workers[0], "u0")];
    const base1 = (await p.coord.roundResult(jobId, 1n)).baseDigest;
    await playRound(p, helpers, jobId, subs, (n) => [vote(p.validators[0], all(n)), vote(p.validators[1], all(n))]);
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.outcome).to.equal(BigInt(Outcome.NoQuorum));
    expect(res.acceptedBitmap).to.equal(0n);
    const [round, phase] = await p.coord.phaseOf(jobId);
    expect([round, phase]).to.deep.equal([2n, BigInt(Phase.Commit)]);
    expect((await p.coord.roundResult(jobId, 2n)).baseDigest).to.equal(base1);
    expect(await p.coord.totalOwed()).to.equal(0n);
    expect((await p.coord.jobState(jobId)).completedRounds).to.equal(0n);
    await expect(as(p.coord, p.workers[0]).claimUpdateReward(jobId, 1n, 0n))
      .to.be.revertedWithCustomError(p.coord, "RoundNotDecided")
      .withArgs(1n);
  });

  it("without any committee stake there is no quorum", async function () {
    const p = await loadFixture(base);
    const jobId = await createJob(p, helpers, {}, []);
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await p.coord.finalizeRound(jobId, 1n);
    expect((await p.coord.roundResult(jobId, 1n)).outcome).to.equal(BigInt(Outcome.NoQuorum));
  });

  it("decides exactly at the thresholds: approving = acceptBps is accepted, one unit less is not", async function () {
    const p = await loadFixture(twoUnequalValidators);
    const [v0, v1] = p.validators;
    await as(p.stake, v1).stake(500n * ONE); // v0: 500, v1: 1000
    // acceptBps 3334 of 1500 revealed = 500.1 → v0 alone (500) is one short; quorum exactly 100%.
    let jobId = await createJob(p, helpers, { acceptBps: 3334, quorumBps: 10000, rejectSlashBps: 6667 });
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a"), submission(p.workers[1], "b")], () => [
      vote(v0, 0b01n),
      vote(v1, 0b10n),
    ]);
    let res = await p.coord.roundResult(jobId, 1n);
    expect(res.outcome).to.equal(BigInt(Outcome.Quorum));
    expect(res.acceptedBitmap).to.equal(0b10n);
    // Rejecting stake 1000 of 1500 is 66.666…%, one hair under rejectSlashBps 6667: not slashable.
    expect(res.slashableBitmap).to.equal(0n);
    // acceptBps 3333 → 499.95 ≤ 500: accepted. A tie (1:1) with acceptBps 5000 is accepted too.
    jobId = await createJob(p, helpers, { acceptBps: 3333, rejectSlashBps: 6668 });
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a"), submission(p.workers[1], "b")], () => [
      vote(v0, 0b01n),
      vote(v1, 0b10n),
    ]);
    res = await p.coord.roundResult(jobId, 1n);
    expect(res.acceptedBitmap).to.equal(0b11n);
    expect(res.slashableBitmap).to.equal(0n);
  });

  it("a tie of equal stakes meets acceptBps = 5000", async function () {
    const p = await loadFixture(twoValidators);
    const [v0, v1] = p.validators;
    const jobId = await createJob(p, helpers, { acceptBps: 5000, rejectSlashBps: 10000 });
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], () => [vote(v0, 1n), vote(v1, 0n)]);
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.acceptedBitmap).to.equal(1n);
    expect(res.slashableBitmap).to.equal(0n);
  });

  it("quorum exactly at quorumBps counts; revealed stake below it does not", async function () {
    const { p, jobId } = await withJob({ quorumBps: 6667 });
    // 2 of 3 equal stakes = 66.67% > 66.67%? 2000*10000 = 2e7 ≥ 6667*3000 = 2.0001e7? no → no quorum
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], (n) => [
      vote(p.validators[0], all(n)),
      vote(p.validators[1], all(n)),
    ]);
    expect((await p.coord.roundResult(jobId, 1n)).outcome).to.equal(BigInt(Outcome.NoQuorum));
    const { p: p2, jobId: j2 } = await withJob({ quorumBps: 6666 });
    await playRound(p2, helpers, j2, [submission(p2.workers[0], "a")], (n) => [
      vote(p2.validators[0], all(n)),
      vote(p2.validators[1], all(n)),
    ]);
    expect((await p2.coord.roundResult(j2, 1n)).outcome).to.equal(BigInt(Outcome.Quorum));
  });

  it("with quorum but nothing accepted, pays validators and opens the next round on the same base", async function () {
    const { p, jobId } = await withJob();
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], () => p.validators.map((v) => vote(v, 0n)));
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.outcome).to.equal(BigInt(Outcome.Quorum));
    expect(res.acceptedBitmap).to.equal(0n);
    expect(res.workerRewardEach).to.equal(0n);
    expect(res.validatorPool).to.be.within(20n * ONE - 2n, 20n * ONE); // split 3 ways, floors
    const [round, phase] = await p.coord.phaseOf(jobId);
    expect([round, phase]).to.deep.equal([2n, BigInt(Phase.Commit)]);
    expect((await p.coord.roundResult(jobId, 2n)).baseDigest).to.equal(res.baseDigest);
  });

  it("a round with no updates at all still finalizes", async function () {
    const { p, jobId } = await withJob();
    await playRound(p, helpers, jobId, [], () => p.validators.map((v) => vote(v, 0n)));
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.updateCount).to.equal(0n);
    expect(res.validatorPool).to.equal(0n); // nothing to agree on: unpayable, stays in the pool
    await expect(as(p.coord, p.validators[0]).claimVoteReward(jobId)).to.be.revertedWithCustomError(
      p.coord,
      "NothingToClaim",
    );
  });

  it("ignores committee members under the minimum stake at round start", async function () {
    const p = await loadFixture(base);
    const [v0, v1, v2] = p.validators;
    const jobId = await createJob(p, helpers);
    await as(p.stake, v2).requestUnstake(950n * ONE); // below the minimum before round 1 opens
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], (n) => [vote(v0, all(n)), vote(v1, all(n))]);
    const res = await p.coord.roundResult(jobId, 1n);
    expect(res.committeeStake).to.equal(2000n * ONE);
    expect(res.outcome).to.equal(BigInt(Outcome.Quorum));
  });
});

describe("TrainingCoordinator: attestation", function () {
  async function decided(overrides = {}) {
    const { p, jobId } = await withJob(overrides);
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a"), submission(p.workers[1], "b")], (n) =>
      p.validators.map((v) => vote(v, all(n))),
    );
    return { p, jobId };
  }

  it("opens the next round on the first CID to reach the threshold (race between two CIDs)", async function () {
    const { p, jobId } = await decided();
    const [v0, v1, v2] = p.validators;
    await expect(as(p.coord, v0).attestModel(jobId, 1n, MODEL, Codec.raw))
      .to.emit(p.coord, "ModelAttested")
      .withArgs(jobId, 1n, v0.address, MODEL, Codec.raw, 1000n * ONE);
    await expect(as(p.coord, v0).attestModel(jobId, 1n, MODEL, Codec.raw)).to.be.revertedWithCustomError(
      p.coord,
      "AlreadyAttested",
    );
    await as(p.coord, v1).attestModel(jobId, 1n, OTHER_MODEL, Codec.raw);
    expect(await p.coord.attestedStakeOf(jobId, 1n, OTHER_MODEL, Codec.raw)).to.equal(1000n * ONE);
    // 2000 of 3000 ≥ 66%: MODEL wins, round 2 opens on it.
    await expect(as(p.coord, v2).attestModel(jobId, 1n, MODEL, Codec.raw))
      .to.emit(p.coord, "ModelAccepted")
      .withArgs(jobId, 1n, MODEL, Codec.raw)
      .and.to.emit(p.coord, "RoundOpened")
      .withArgs(jobId, 2n, anyValue, MODEL, Codec.raw);
    expect((await p.coord.roundResult(jobId, 1n)).modelDigest).to.equal(MODEL);
    // The race is over: the losing CID cannot win later.
    await expect(as(p.coord, v1).attestModel(jobId, 1n, MODEL, Codec.raw))
      .to.be.revertedWithCustomError(p.coord, "WrongRound")
      .withArgs(2n, 1n);
  });

  it("a CID with the same digest but another codec is a different CID", async function () {
    const { p, jobId } = await decided();
    const [v0, v1] = p.validators;
    await as(p.coord, v0).attestModel(jobId, 1n, MODEL, Codec.raw);
    await as(p.coord, v1).attestModel(jobId, 1n, MODEL, Codec.dagPb);
    expect((await p.coord.phaseOf(jobId))[0]).to.equal(1n);
  });

  it("only validators who revealed a vote attest", async function () {
    const { p, jobId } = await withJob();
    const [v0, v1] = p.validators;
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], (n) => [vote(v0, all(n)), vote(v1, all(n))]);
    await expect(as(p.coord, p.validators[2]).attestModel(jobId, 1n, MODEL, Codec.raw)).to.be.revertedWithCustomError(
      p.coord,
      "NotVoted",
    );
    await expect(as(p.coord, p.workers[0]).attestModel(jobId, 1n, MODEL, Codec.raw)).to.be.revertedWithCustomError(
      p.coord,
      "NotVoted",
    );
  });

  it("moves on without a model when attestation expires", async function () {
    const { p, jobId } = await decided();
    await expect(p.coord.skipAttestation(jobId, 1n))
      .to.be.revertedWithCustomError(p.coord, "WrongPhase")
      .withArgs(Phase.AttestExpired, Phase.Attest);
    await toPhase(p, helpers, jobId, Phase.AttestExpired);
    await expect(as(p.coord, p.validators[0]).attestModel(jobId, 1n, MODEL, Codec.raw)).to.be.revertedWithCustomError(
      p.coord,
      "WrongPhase",
    );
    const base1 = (await p.coord.roundResult(jobId, 1n)).baseDigest;
    await expect(p.coord.skipAttestation(jobId, 1n)).to.emit(p.coord, "AttestationExpired").withArgs(jobId, 1n);
    expect((await p.coord.roundResult(jobId, 2n)).baseDigest).to.equal(base1);
  });

  it("completes the job after its last paid round and refunds the rest to the sponsor", async function () {
    const { p, jobId } = await decided({ numRounds: 1 });
    await as(p.coord, p.validators[0]).attestModel(jobId, 1n, MODEL, Codec.raw);
    await expect(as(p.coord, p.validators[1]).attestModel(jobId, 1n, MODEL, Codec.raw))
      .to.emit(p.coord, "JobCompleted")
      .withArgs(jobId, 1n);
    const st = await p.coord.jobState(jobId);
    expect(st.status).to.equal(BigInt(JobStatus.Completed));
    expect((await p.coord.phaseOf(jobId))[1]).to.equal(BigInt(Phase.Completed));
    // (workers[2] did not commit in round 1: workers[0] would be told AlreadyCommitted, which comes first.)
    await expect(as(p.coord, p.workers[2]).commitUpdate(jobId, 1n, ethers.id("x"))).to.be.revertedWithCustomError(
      p.coord,
      "JobNotActive",
    );
    // 100 escrowed, 20 validators + 2 × 40 workers credited: only the validator split's rounding is left.
    expect(await p.coord.rewardPool(jobId)).to.be.lessThanOrEqual(2n);
    await as(p.coord, p.sponsor).withdrawRemainder(jobId);
    await expect(as(p.coord, p.sponsor).withdrawRemainder(jobId)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
  });

  it("lets each attester publish its held-out score of the model it attested, after the job ends too", async function () {
    const { p, jobId } = await decided({ numRounds: 1 });
    const [v0, v1, v2] = p.validators;
    // Before attesting: nothing to score (nor round 0, which no member's attestRound can match).
    await expect(as(p.coord, v0).reportModelScore(jobId, 1n, 9000, 250_000n, 1000)).to.be.revertedWithCustomError(p.coord, "NotAttested");
    await expect(as(p.coord, v0).reportModelScore(jobId, 0n, 9000, 250_000n, 1000)).to.be.revertedWithCustomError(p.coord, "NotAttested");
    await as(p.coord, v0).attestModel(jobId, 1n, MODEL, Codec.raw);
    await expect(as(p.coord, v0).reportModelScore(jobId, 1n, 9012, 250_000n, 1000))
      .to.emit(p.coord, "ModelScored")
      .withArgs(jobId, 1n, v0.address, 9012, 250_000n, 1000);
    // A regression job's validators report no accuracy; anything else above 100 % is refused.
    const none = await p.coord.NO_ACCURACY();
    await expect(as(p.coord, v0).reportModelScore(jobId, 1n, none, 1n, 1)).to.emit(p.coord, "ModelScored");
    await expect(as(p.coord, v0).reportModelScore(jobId, 1n, 10_001, 1n, 1))
      .to.be.revertedWithCustomError(p.coord, "InvalidScore")
      .withArgs(10_001);
    await expect(as(p.coord, v0).reportModelScore(jobId, 1n, 10_000, 1n, 1)).to.emit(p.coord, "ModelScored");
    await expect(as(p.coord, v0).reportModelScore(jobId, 1n, Number(none) - 1, 1n, 1))
      .to.be.revertedWithCustomError(p.coord, "InvalidScore")
      .withArgs(Number(none) - 1);
    // Neither a member that attested nothing, nor a worker, nor a score for another round or job.
    await expect(as(p.coord, v2).reportModelScore(jobId, 1n, 9000, 1n, 1)).to.be.revertedWithCustomError(p.coord, "NotAttested");
    await expect(as(p.coord, p.workers[0]).reportModelScore(jobId, 1n, 9000, 1n, 1)).to.be.revertedWithCustomError(p.coord, "NotAttested");
    await expect(as(p.coord, v0).reportModelScore(jobId, 2n, 9000, 1n, 1)).to.be.revertedWithCustomError(p.coord, "NotAttested");
    await expect(as(p.coord, v0).reportModelScore(jobId + 1n, 1n, 9000, 1n, 1)).to.be.revertedWithCustomError(p.coord, "NotAttested");
    // The attestation that completes the job; its attester scores the final model.
    await as(p.coord, v1).attestModel(jobId, 1n, MODEL, Codec.raw);
    expect((await p.coord.phaseOf(jobId))[1]).to.equal(BigInt(Phase.Completed));
    await expect(as(p.coord, v1).reportModelScore(jobId, 1n, 8800, 300_000n, 500)).to.emit(p.coord, "ModelScored");
  });

  it("completes on expiry of the last round's attestation too", async function () {
    const { p, jobId } = await decided({ numRounds: 1 });
    await toPhase(p, helpers, jobId, Phase.AttestExpired);
    await expect(p.coord.skipAttestation(jobId, 1n)).to.emit(p.coord, "JobCompleted");
  });
});

describe("TrainingCoordinator: claims", function () {
  async function decided() {
    const { p, jobId } = await withJob();
    const [v0, v1, v2] = p.validators;
    await playRound(p, helpers, jobId, p.workers.map((w, i) => submission(w, `u${i}`)), () => [
      vote(v0, 0b011n),
      vote(v1, 0b011n),
      vote(v2, 0b111n),
    ]);
    return { p, jobId };
  }

  it("pays each accepted worker once", async function () {
    const { p, jobId } = await decided();
    const [w0, w1, w2] = p.workers;
    await expect(as(p.coord, w0).claimUpdateReward(jobId, 1n, 0n)).to.changeTokenBalances(ethers, p.token, [w0], [40n * ONE]);
    await expect(as(p.coord, w0).claimUpdateReward(jobId, 1n, 0n)).to.be.revertedWithCustomError(p.coord, "AlreadyClaimed");
    await expect(as(p.coord, w0).claimUpdateReward(jobId, 1n, 1n))
      .to.be.revertedWithCustomError(p.coord, "NotYourUpdate")
      .withArgs(1n);
    await expect(as(p.coord, w2).claimUpdateReward(jobId, 1n, 2n))
      .to.be.revertedWithCustomError(p.coord, "NotAccepted")
      .withArgs(2n);
    await expect(as(p.coord, w1).claimUpdateReward(jobId, 1n, 1n))
      .to.emit(p.coord, "RewardClaimed")
      .withArgs(jobId, 1n, w1.address, 40n * ONE);
  });

  it("credits validators by stake × agreement at finalize and pays what accrued, once", async function () {
    const { p, jobId } = await decided();
    const [v0, v1, v2] = p.validators;
    // pool 20: weights 3000, 3000, 2000 (of 8000)
    expect((await p.coord.memberOf(jobId, v0.address)).owed).to.equal(7_500_000_000_000_000_000n);
    await expect(as(p.coord, v2).claimVoteReward(jobId)).to.changeTokenBalances(ethers, p.token, [v2], [5n * ONE]);
    await expect(as(p.coord, v2).claimVoteReward(jobId)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
    expect((await p.coord.memberOf(jobId, v2.address)).owed).to.equal(0n);
    await expect(as(p.coord, v0).claimVoteReward(jobId)).to.emit(p.coord, "RewardClaimed").withArgs(jobId, 0n, v0.address, 7_500_000_000_000_000_000n);
    await as(p.coord, v1).claimVoteReward(jobId);
    await expect(as(p.coord, p.workers[0]).claimVoteReward(jobId)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
    expect(await p.coord.totalOwed()).to.equal(80n * ONE); // the two workers' shares
  });

  it("credited rewards survive leaving the committee (once the voted round has moved on)", async function () {
    const { p, jobId } = await decided();
    const [v0] = p.validators;
    await expect(as(p.coord, v0).leaveCommittee(jobId)).to.be.revertedWithCustomError(p.coord, "VotePending");
    for (const v of p.validators.slice(0, 2)) await as(p.coord, v).attestModel(jobId, 1n, MODEL, Codec.raw);
    await as(p.coord, v0).leaveCommittee(jobId);
    await expect(as(p.coord, v0).claimVoteReward(jobId)).to.changeTokenBalances(ethers, p.token, [v0], [7_500_000_000_000_000_000n]);
  });

  it("a worker share of zero is nothing to claim", async function () {
    const { p, jobId } = await withJob({ validatorShareBps: 10000 });
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], (n) => p.validators.map((v) => vote(v, all(n))));
    await expect(as(p.coord, p.workers[0]).claimUpdateReward(jobId, 1n, 0n)).to.be.revertedWithCustomError(
      p.coord,
      "NothingToClaim",
    );
  });
});

describe("TrainingCoordinator: slashing", function () {
  it("slashes a supermajority-rejected worker once from its locked stake, burned, not pooled", async function () {
    const { p, jobId } = await withJob();
    const [w0, w1] = p.workers;
    await playRound(p, helpers, jobId, [submission(w0, "good"), submission(w1, "bad")], () =>
      p.validators.map((v) => vote(v, 0b01n)),
    );
    await expect(p.coord.slashRejectedUpdate(jobId, 1n, 0n)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    // It tries to leave with everything: the locked exposure cannot leave before its slash.
    await expect(as(p.stake, w1).requestUnstake(50n * ONE))
      .to.be.revertedWithCustomError(p.stake, "InsufficientFreeStake")
      .withArgs(45n * ONE, 50n * ONE);
    await as(p.stake, w1).requestUnstake(45n * ONE);
    const pool = await p.coord.rewardPool(jobId);
    const burn = await p.stake.BURN_ADDRESS();
    const slash = as(p.coord, p.others[0]!).slashRejectedUpdate(jobId, 1n, 1n);
    await expect(slash).to.emit(p.coord, "SlashApplied").withArgs(jobId, 1n, w1.address, SlashReason.RejectedUpdate, 5n * ONE);
    await expect(slash).to.changeTokenBalances(ethers, p.token, [burn, p.others[0]!.address], [5n * ONE, 0n]);
    expect(await p.coord.rewardPool(jobId)).to.equal(pool);
    expect(await p.stake.stakeOf(w1.address)).to.equal(0n);
    expect((await p.stake.unbondingOf(w1.address))[0]).to.equal(45n * ONE);
    expect(await p.stake.locksOf(w1.address)).to.deep.equal([0n, 0n, await p.coord.slashDeadlineOf(jobId, 1n)]);
    await expect(p.coord.slashRejectedUpdate(jobId, 1n, 1n)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    await expect(p.coord.slashRejectedUpdate(jobId, 2n, 0n)).to.be.revertedWithCustomError(p.coord, "RoundNotDecided");
  });

  it("slashes workers and validators who committed and never revealed, after their reveal phase", async function () {
    const { p, jobId } = await withJob();
    const [w0, w1] = p.workers;
    const [v0, v1, v2] = p.validators;
    const subs = [submission(w0, "a"), submission(w1, "b")];
    await toCommit(p, jobId);
    await commitUpdates(p, jobId, 1n, subs);
    await expect(p.coord.slashMissedReveal(jobId, 1n, w1.address)).to.be.revertedWithCustomError(p.coord, "RevealNotOver");
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, [subs[0]]);
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    // Not before the round's votes are in: a pause later in the round voids it, and nobody is slashed then.
    await expect(p.coord.slashMissedReveal(jobId, 1n, w1.address)).to.be.revertedWithCustomError(p.coord, "RevealNotOver");
    const votes = [vote(v0, 1n), vote(v1, 1n), vote(v2, 1n)];
    await commitVotes(p, jobId, 1n, votes);
    // A hidden vote's exposure, 10 % of its 1,000 round-start stake, is locked at commit.
    expect((await p.stake.locksOf(v2.address))[1]).to.equal(100n * ONE);
    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes.slice(0, 2));
    expect((await p.stake.locksOf(v0.address))[1]).to.equal(0n); // released by the reveal
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await expect(p.coord.slashMissedReveal(jobId, 1n, w0.address)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    await expect(p.coord.slashMissedReveal(jobId, 1n, p.others[0].address)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    await expect(p.coord.slashMissedReveal(jobId, 0n, w1.address)).to.be.revertedWithCustomError(p.coord, "WrongRound");
    await expect(p.coord.slashMissedReveal(jobId, 2n, w1.address)).to.be.revertedWithCustomError(p.coord, "WrongRound");
    await expect(p.coord.slashMissedReveal(jobId, 1n, w1.address))
      .to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 1n, w1.address, SlashReason.MissedUpdateReveal, 2n * ONE);
    await expect(p.coord.slashMissedReveal(jobId, 1n, w1.address)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    // Finalize records the withheld vote; its stake still counts as committed (so hiding raised nothing),
    // it earns nothing, and anyone then slashes it in proportion to its weight.
    await expect(p.coord.finalizeRound(jobId, 1n)).to.emit(p.coord, "VoteWithheld").withArgs(jobId, 1n, v2.address, 1000n * ONE);
    await expect(p.coord.slashWithheldVote(jobId, 1n, v0.address)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    await expect(p.coord.slashWithheldVote(jobId, 1n, v2.address))
      .to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 1n, v2.address, SlashReason.MissedVoteReveal, 100n * ONE);
    await expect(p.coord.slashWithheldVote(jobId, 1n, v2.address)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    const res = await p.coord.roundResult(jobId, 1n);
    expect([res.committeeStake, res.committedStake, res.revealedStake]).to.deep.equal([3000n * ONE, 3000n * ONE, 2000n * ONE]);
    await expect(as(p.coord, v2).claimVoteReward(jobId)).to.be.revertedWithCustomError(p.coord, "NothingToClaim");
    expect(await p.stake.stakeOf(v2.address)).to.equal(900n * ONE);
    // After the slash deadline nothing more can be slashed; the worker's lock has expired by then.
    await time.increaseTo(await p.coord.slashDeadlineOf(jobId, 1n));
    await expect(p.coord.slashMissedReveal(jobId, 1n, w0.address)).to.be.revertedWithCustomError(p.coord, "SlashWindowOver");
  });
});

describe("TrainingCoordinator: pause", function () {
  it("only the guardian pauses; protocol steps stop; settlement, claims and refunds continue; overlapping rounds are voided", async function () {
    const { p, jobId } = await withJob();
    await playRound(p, helpers, jobId, [submission(p.workers[0], "a")], (n) => p.validators.map((v) => vote(v, all(n))));
    for (const v of p.validators.slice(0, 2)) await as(p.coord, v).attestModel(jobId, 1n, MODEL, Codec.raw);
    // Round 2 is open; a worker commits, then an emergency.
    const s = submission(p.workers[0], "r2");
    await commitUpdates(p, jobId, 2n, [s]);
    expect(await p.coord.guardian()).to.equal(p.admin.address);
    await expect(as(p.coord, p.workers[0]).pause()).to.be.revertedWithCustomError(p.coord, "NotGuardian").withArgs(p.workers[0]!.address);
    await expect(as(p.coord, p.workers[0]).unpause()).to.be.revertedWithCustomError(p.coord, "NotPaused");
    await expect(as(p.coord, p.admin).pause()).to.emit(p.coord, "Paused");
    expect(await p.coord.paused()).to.equal(true);
    await expect(as(p.coord, p.admin).pause()).to.be.revertedWithCustomError(p.coord, "EnforcedPause");
    await expect(as(p.coord, p.workers[0]).unpause()).to.be.revertedWithCustomError(p.coord, "NotGuardian");
    const paused = "EnforcedPause";
    await expect(as(p.coord, p.workers[1]).commitUpdate(jobId, 2n, ethers.id("x"))).to.be.revertedWithCustomError(p.coord, paused);
    await expect(as(p.coord, p.sponsor).createJob(defaultJobParams({ startTime: 2n ** 40n }))).to.be.revertedWithCustomError(
      p.coord,
      paused,
    );
    await expect(as(p.coord, p.others[0]).joinCommittee(jobId)).to.be.revertedWithCustomError(p.coord, paused);
    await expect(p.coord.finalizeRound(jobId, 2n)).to.be.revertedWithCustomError(p.coord, paused);
    await expect(p.coord.skipAttestation(jobId, 2n)).to.be.revertedWithCustomError(p.coord, paused);
    await expect(as(p.coord, p.validators[0]).attestModel(jobId, 2n, MODEL, 0)).to.be.revertedWithCustomError(p.coord, paused);
    await expect(as(p.coord, p.validators[0]).commitVote(jobId, 2n, ethers.id("x"))).to.be.revertedWithCustomError(p.coord, paused);
    await expect(as(p.coord, p.validators[0]).revealVote(jobId, 2n, 0n, ethers.ZeroHash)).to.be.revertedWithCustomError(p.coord, paused);
    await expect(as(p.coord, p.workers[0]).revealUpdate(jobId, 2n, s.digest, s.codec, s.numSamples, s.salt)).to.be.revertedWithCustomError(
      p.coord,
      paused,
    );
    // Decided slashes, pull payments, lock releases, leaving and stake exits stay open during a pause (a
    // pause must not run a slash window out, nor keep anybody's tokens).
    await expect(p.coord.slashRejectedUpdate(jobId, 1n, 0n)).to.be.revertedWithCustomError(p.coord, "NothingToSlash");
    await expect(p.coord.slashMissedReveal(jobId, 2n, p.workers[0].address)).to.be.revertedWithCustomError(p.coord, "RevealNotOver");
    await as(p.coord, p.workers[0]).claimUpdateReward(jobId, 1n, 0n);
    await as(p.coord, p.validators[0]).claimVoteReward(jobId);
    await as(p.stake, p.workers[1]).requestUnstake(1n);
    await time.increase(3600);
    await expect(as(p.coord, p.admin).unpause()).to.emit(p.coord, "Unpaused");
    // The worker missed its reveal because of the pause: it is not slashable, and the round is voided.
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await expect(p.coord.slashMissedReveal(jobId, 2n, p.workers[0].address))
      .to.be.revertedWithCustomError(p.coord, "RoundVoided")
      .withArgs(2n);
    await p.coord.finalizeRound(jobId, 2n);
    expect((await p.coord.roundResult(jobId, 2n)).outcome).to.equal(BigInt(Outcome.Voided));
    await expect(p.coord.slashMissedReveal(jobId, 2n, p.workers[0].address)).to.be.revertedWithCustomError(p.coord, "RoundVoided");
    expect((await p.coord.roundResult(jobId, 3n)).baseDigest).to.equal(MODEL);
    // The guardian cannot pause again within the cooldown.
    await expect(as(p.coord, p.admin).pause()).to.be.revertedWithCustomError(p.coord, "PauseCooldown");
    const { held, owed } = await accounting(p);
    expect(held).to.equal(owed);
  });
});

describe("TrainingCoordinator: phases close early once everyone has acted", function () {
  const phase = async (p: Protocol, jobId: bigint) => Number((await p.coord.phaseOf(jobId))[1]);
  const timeline = async (p: Protocol, jobId: bigint) => {
    const s = await p.coord.jobState(jobId);
    const c = await p.coord.jobConfig(jobId);
    const revealEnd = s.roundStart + c.commitPeriod + c.revealPeriod;
    return { s, c, commitEnd: s.roundStart + c.commitPeriod, revealEnd, voteCommitEnd: revealEnd + c.voteCommitPeriod };
  };

  it("commit closes at minUpdates; a late committer gets the phase error; the reveal deadline does not move", async function () {
    // Closing the commit phase with 2 commitments costs at least 2 × 40 = the 80-token worker reward.
    const { p, jobId } = await withJob({ minUpdates: 2, missedRevealSlashAmount: 40n * ONE, rejectSlashAmount: 40n * ONE });
    await toCommit(p, jobId);
    const subs = p.workers.map((w, i) => submission(w, `u${i}`));
    await commitUpdates(p, jobId, 1n, subs.slice(0, 1));
    expect(await phase(p, jobId)).to.equal(Phase.Commit);
    await commitUpdates(p, jobId, 1n, subs.slice(1, 2));
    expect(await phase(p, jobId)).to.equal(Phase.Reveal);
    const { commitEnd, revealEnd } = await timeline(p, jobId);
    expect(BigInt(await time.latest())).to.be.lessThan(commitEnd);
    await expect(commitUpdates(p, jobId, 1n, subs.slice(2)))
      .to.be.revertedWithCustomError(p.coord, "WrongPhase")
      .withArgs(Phase.Commit, Phase.Reveal);
    // One reveal missing: the reveal phase lasts to its own deadline, as if commit had not closed early.
    await revealUpdates(p, jobId, 1n, subs.slice(0, 1));
    await time.increaseTo(revealEnd - 1n);
    expect(await phase(p, jobId)).to.equal(Phase.Reveal);
    await time.increaseTo(revealEnd);
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
  });

  it("without minUpdates, commit lasts to its deadline however many commit", async function () {
    const { p, jobId } = await withJob();
    await toCommit(p, jobId);
    await commitUpdates(p, jobId, 1n, p.workers.map((w, i) => submission(w, `u${i}`)));
    expect(await phase(p, jobId)).to.equal(Phase.Commit);
  });

  it("reveal closes when every committed update is revealed, vote commit when every eligible member committed, vote reveal when every vote is revealed", async function () {
    const { p, jobId, all: subs } = await revealed(1, 1);
    expect(await phase(p, jobId)).to.equal(Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs.slice(1));
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
    const { revealEnd, voteCommitEnd, s: st } = await timeline(p, jobId);
    expect(BigInt(await time.latest())).to.be.lessThan(revealEnd);
    // A joiner during the round votes from the next one: it neither blocks nor counts here.
    await as(p.stake, p.others[0]).stake(500n * ONE);
    await as(p.coord, p.others[0]).joinCommittee(jobId);
    const votes = p.validators.map((v) => vote(v, 0b11n));
    await commitVotes(p, jobId, 1n, votes.slice(0, 2));
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes.slice(2));
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
    expect(BigInt(await time.latest())).to.be.lessThan(voteCommitEnd);
    // Joining now cannot reopen the closed phase.
    await as(p.stake, p.others[1]).stake(500n * ONE);
    await as(p.coord, p.others[1]).joinCommittee(jobId);
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
    await expect(as(p.coord, p.others[0]).commitVote(jobId, 1n, ethers.id("late")))
      .to.be.revertedWithCustomError(p.coord, "WrongPhase")
      .withArgs(Phase.VoteCommit, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes.slice(0, 2));
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes.slice(2));
    expect(await phase(p, jobId)).to.equal(Phase.Finalize);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.emit(p.coord, "RoundFinalized");
    expect((await p.coord.roundResult(jobId, 1n)).acceptedBitmap).to.equal(0b11n);
    // The round's stake locks and slash deadline still follow the configured periods, not the early close.
    const c = await p.coord.jobConfig(jobId);
    const [, , lockedUntil] = await p.stake.locksOf(p.workers[0]!.address);
    expect(lockedUntil).to.equal(st.roundStart + c.commitPeriod + c.revealPeriod + c.voteCommitPeriod + c.voteRevealPeriod + c.slashWindow);
  });

  it("an eligible member that has not committed holds vote commit open to its deadline, until it leaves", async function () {
    const { p, jobId } = await revealed(1);
    const votes = p.validators.slice(0, 2).map((v) => vote(v, 1n));
    await commitVotes(p, jobId, 1n, votes);
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
    await expect(revealVotes(p, jobId, 1n, votes)).to.be.revertedWithCustomError(p.coord, "WrongPhase");
    // The third member leaves without voting: nobody is left to wait for.
    await as(p.coord, p.validators[2]).leaveCommittee(jobId);
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
  });

  it("a seat freed during the round (displaced or left before it counted) keeps the count of eligible members right", async function () {
    // A full committee of 4: the 3 members seated before the start and one seated in round 1, which
    // counts from round 2. A richer joiner displaces that lowest seat, then leaves again.
    const p = await loadFixture(base);
    const jobId = await createJob(p, helpers, { maxValidators: 4 });
    await toCommit(p, jobId);
    await as(p.stake, p.others[0]).stake(200n * ONE);
    await as(p.coord, p.others[0]).joinCommittee(jobId);
    await as(p.stake, p.others[1]).stake(900n * ONE);
    await expect(as(p.coord, p.others[1]).joinCommittee(jobId)).to.emit(p.coord, "CommitteeDisplaced").withArgs(jobId, p.others[0]!.address, p.others[1]!.address);
    await as(p.coord, p.others[1]).leaveCommittee(jobId);
    const subs = [submission(p.workers[0], "u0")];
    await commitUpdates(p, jobId, 1n, subs);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    const votes = p.validators.map((v) => vote(v, 1n));
    await commitVotes(p, jobId, 1n, votes.slice(0, 2));
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes.slice(2));
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
  });

  it("a member that committed and withholds its vote holds vote reveal open to its deadline, then is recorded", async function () {
    const { p, jobId } = await revealed(1);
    const votes = p.validators.map((v) => vote(v, 1n));
    await commitVotes(p, jobId, 1n, votes);
    await revealVotes(p, jobId, 1n, votes.slice(0, 2));
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.be.revertedWithCustomError(p.coord, "WrongPhase").withArgs(Phase.Finalize, Phase.VoteReveal);
    await toPhase(p, helpers, jobId, Phase.Finalize);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.emit(p.coord, "VoteWithheld");
  });
  it("the last actor of a phase that closed early is told it already acted when it retries, not that the phase is over", async function () {
    const { p, jobId } = await withJob({ minUpdates: 2, missedRevealSlashAmount: 40n * ONE, rejectSlashAmount: 40n * ONE });
    await toCommit(p, jobId);
    const subs = p.workers.slice(0, 2).map((w, i) => submission(w, `u${i}`));
    await commitUpdates(p, jobId, 1n, subs);
    await expect(commitUpdates(p, jobId, 1n, subs.slice(1))).to.be.revertedWithCustomError(p.coord, "AlreadyCommitted");
    await revealUpdates(p, jobId, 1n, subs);
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
    await expect(revealUpdates(p, jobId, 1n, subs.slice(1))).to.be.revertedWithCustomError(p.coord, "AlreadyRevealed");
    const votes = p.validators.map((v) => vote(v, 0b11n));
    await commitVotes(p, jobId, 1n, votes);
    await expect(commitVotes(p, jobId, 1n, votes.slice(2))).to.be.revertedWithCustomError(p.coord, "AlreadyCommitted");
    await revealVotes(p, jobId, 1n, votes);
    expect(await phase(p, jobId)).to.equal(Phase.Finalize);
    await expect(revealVotes(p, jobId, 1n, votes.slice(2))).to.be.revertedWithCustomError(p.coord, "AlreadyRevealed");
    // Round 0 is nobody's: the markers' zero value does not make it "already" anything.
    await expect(as(p.coord, p.others[0]).commitVote(jobId, 0n, ethers.id("x"))).to.be.revertedWithCustomError(p.coord, "WrongRound");
    await expect(as(p.coord, p.others[0]).revealVote(jobId, 0n, 0n, ethers.ZeroHash)).to.be.revertedWithCustomError(p.coord, "WrongRound");
  });

  it("with nobody to vote, the vote phases run to their deadlines: a committee-less job cannot be cycled to expiry at once", async function () {
    const p = await loadFixture(base);
    // No committee: nobody joined before the start.
    const jobId = await createJob(p, helpers, { minUpdates: 2, missedRevealSlashAmount: 40n * ONE, rejectSlashAmount: 40n * ONE }, []);
    await toCommit(p, jobId);
    const subs = p.workers.slice(0, 2).map((w, i) => submission(w, `u${i}`));
    await commitUpdates(p, jobId, 1n, subs);
    await revealUpdates(p, jobId, 1n, subs);
    const { voteCommitEnd } = await timeline(p, jobId);
    expect(await phase(p, jobId)).to.equal(Phase.VoteCommit);
    await time.increaseTo(voteCommitEnd);
    expect(await phase(p, jobId)).to.equal(Phase.VoteReveal);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.be.revertedWithCustomError(p.coord, "WrongPhase");
    const c = await p.coord.jobConfig(jobId);
    await time.increaseTo(voteCommitEnd + c.voteRevealPeriod);
    expect(await phase(p, jobId)).to.equal(Phase.Finalize);
  });

  it("a worker that missed its reveal in a round finalized early is still slashed, even if a pause follows the finalize", async function () {
    const { p, jobId, all: subs } = await revealed(1, 1);
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    const votes = p.validators.map((v) => vote(v, 1n));
    await commitVotes(p, jobId, 1n, votes);
    await revealVotes(p, jobId, 1n, votes);
    await expect(p.coord.finalizeRound(jobId, 1n)).to.emit(p.coord, "RoundFinalized");
    // The guardian pauses after the finalize, before the round's vote-reveal deadline.
    await p.coord.pause();
    await p.coord.unpause();
    const [missed] = subs.slice(1);
    await expect(p.coord.slashMissedReveal(jobId, 1n, missed!.worker.address)).to.be.revertedWithCustomError(p.coord, "RevealNotOver");
    const st = await p.coord.roundResult(jobId, 1n);
    const c = await p.coord.jobConfig(jobId);
    await time.increaseTo(st.start + c.commitPeriod + c.revealPeriod + c.voteCommitPeriod + c.voteRevealPeriod);
    await expect(p.coord.slashMissedReveal(jobId, 1n, missed!.worker.address))
      .to.emit(p.coord, "SlashApplied")
      .withArgs(jobId, 1n, missed!.worker.address, SlashReason.MissedUpdateReveal, 2n * ONE);
  });
});
