import { expect } from "chai";
import { network } from "hardhat";
import { ONE, accounting, as, createJob, deployProtocol, playRound, submission, vote } from "./helpers/fixture.ts";
import { Codec, JobStatus, Outcome, Phase } from "../worker/chain/protocol.ts";

const { ethers, networkHelpers: helpers } = await network.create();

describe("Lifecycle: 3 workers, 3 validators, 2 rounds", function () {
  it("rejects and slashes a bad update, attests models, pays rewards, and every token is accounted for", async function () {
    const p = await deployProtocol(ethers, { workers: 3, validators: 3 });
    const [w0, w1, bad] = p.workers;
    const supplyBefore = await p.token.totalSupply();
    const jobId = await createJob(p, helpers, { numRounds: 2, rewardPerRound: 100n * ONE, validatorShareBps: 2000 });
    const models = [ethers.id("model after round 1"), ethers.id("model after round 2")];

    for (let r = 0; r < 2; r++) {
      const round = await playRound(p, helpers, jobId, [submission(w0, `w0-${r}`), submission(w1, `w1-${r}`), submission(bad, `bad-${r}`)], () =>
        // Every validator accepts the two honest updates and rejects the bad one.
        p.validators.map((v) => vote(v, 0b011n)),
      );
      const res = await p.coord.roundResult(jobId, round);
      expect(res.outcome).to.equal(BigInt(Outcome.Quorum));
      expect(res.acceptedBitmap).to.equal(0b011n);
      expect(res.slashableBitmap).to.equal(0b100n);
      await p.coord.slashRejectedUpdate(jobId, round, 2n);
      for (const v of p.validators) {
        const [, phase] = await p.coord.phaseOf(jobId);
        if (phase === BigInt(Phase.Attest)) await as(p.coord, v).attestModel(jobId, round, models[r], Codec.raw);
      }
      expect((await p.coord.roundResult(jobId, round)).modelDigest).to.equal(models[r]);
      for (const [i, w] of [w0, w1].entries()) await as(p.coord, w).claimUpdateReward(jobId, round, BigInt(i));
      for (const v of p.validators) await as(p.coord, v).claimVoteReward(jobId);
      const { held, owed } = await accounting(p);
      expect(held).to.equal(owed);
    }

    const st = await p.coord.jobState(jobId);
    expect(st.status).to.equal(BigInt(JobStatus.Completed));
    expect(st.completedRounds).to.equal(2n);
    // Round 2 opened on round 1's model.
    expect((await p.coord.roundResult(jobId, 2n)).baseDigest).to.equal(models[0]);
    // Honest workers: 2 × 40; validators: 20 per round split equally; bad worker slashed 5 per round.
    for (const w of [w0, w1]) expect(await p.token.balanceOf(w.address)).to.equal(950n * ONE + 80n * ONE);
    for (const v of p.validators) {
      const bal = await p.token.balanceOf(v.address);
      expect(bal).to.be.closeTo(9_000n * ONE + (40n * ONE) / 3n, 2n);
    }
    expect(await p.stake.stakeOf(bad.address)).to.equal(40n * ONE);
    // The slashed 10 was burned, all of it (the admin that executed the slashes got nothing); nothing of it
    // reached the job's pool, which keeps only the rounding remainder of the validator split (< 1 wei per
    // validator per round) for the sponsor.
    expect(await p.token.balanceOf(await p.stake.BURN_ADDRESS())).to.equal(10n * ONE);
    expect(await p.token.balanceOf(p.admin.address)).to.equal(0n);
    const pool = await p.coord.rewardPool(jobId);
    expect(pool).to.be.within(0n, 4n);
    await as(p.coord, p.sponsor).withdrawRemainder(jobId);
    const { held, owed } = await accounting(p);
    expect(held).to.equal(owed);
    expect(await p.coord.totalOwed()).to.equal(0n);
    expect(await p.token.totalSupply()).to.equal(supplyBefore);
  });
});
