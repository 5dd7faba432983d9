/**
 * Finalize fits one transaction whatever the committee does (review finding R1). The default network
 * runs Osaka, which enforces EIP-7825's per-transaction gas cap (2^24): a committee that commits votes and
 * withholds them once made finalize cost more than that inside the slash window, so the only finalize
 * that could be mined voided the round and nobody was slashed. Finalize now only records withheld votes
 * (slashed lazily by `slashWithheldVote`) and evicts nobody (`evictAbsentMember` is a call of its own).
 */
import { expect } from "chai";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import {
  ONE,
  as,
  commitUpdates,
  commitVotes,
  createJob,
  deployProtocol,
  revealUpdates,
  revealVotes,
  submission,
  toPhase,
  vote,
  type Protocol,
} from "./helpers/fixture.ts";
import { Outcome, Phase, SlashReason } from "../worker/chain/protocol.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const EIP7825_TX_GAS_CAP = 16_777_216n;

async function signers(n: number, base: number): Promise<HardhatEthersSigner[]> {
  const out: HardhatEthersSigner[] = [];
  for (let i = 0; i < n; i++) {
    const addr = ethers.getAddress(ethers.zeroPadValue(ethers.toBeHex(base + i), 20));
    await helpers.impersonateAccount(addr);
    await helpers.setBalance(addr, 10n ** 21n);
    out.push(await ethers.getSigner(addr));
  }
  return out;
}

/** One round: `honest` approve every update, `hiders` commit votes and withhold them; then finalize. */
async function round(p: Protocol, jobId: bigint, r: bigint, updates: HardhatEthersSigner[], hiders: HardhatEthersSigner[], honest: HardhatEthersSigner[]) {
  const subs = updates.map((w, i) => submission(w, `u${r}-${i}`));
  await toPhase(p, helpers, jobId, Phase.Commit);
  await commitUpdates(p, jobId, r, subs);
  await toPhase(p, helpers, jobId, Phase.Reveal);
  await revealUpdates(p, jobId, r, subs);
  const all = subs.length === 256 ? ethers.MaxUint256 : (1n << BigInt(subs.length)) - 1n;
  const votes = honest.map((v) => vote(v, all));
  await toPhase(p, helpers, jobId, Phase.VoteCommit);
  for (const [j, a] of hiders.entries()) await as(p.coord, a).commitVote(jobId, r, ethers.id(`withheld ${r} ${j}`));
  await commitVotes(p, jobId, r, votes);
  await toPhase(p, helpers, jobId, Phase.VoteReveal);
  await revealVotes(p, jobId, r, votes);
  await toPhase(p, helpers, jobId, Phase.Finalize);
  const rc = await (await p.coord.finalizeRound(jobId, r, { gasLimit: EIP7825_TX_GAS_CAP })).wait();
  return rc!.gasUsed;
}

describe("Security: finalize fits one transaction at the caps (review R1)", function () {
  it("256 members withholding their votes, twice: finalize fits, every withheld vote is slashed, every absent member evicted", async function () {
    const pool = await signers(2 + 256, 0x20000);
    const p = await deployProtocol(ethers, { workers: 0, validators: 256, signers: pool });
    const jobId = await createJob(p, helpers, { maxValidators: 256, maxMissedRounds: 2, maxIdleRounds: 3 }, p.validators, 3600);
    for (const r of [1n, 2n]) {
      const gas = await round(p, jobId, r, [], p.validators, []);
      expect(gas, `finalize of round ${r}`).to.be.below(EIP7825_TX_GAS_CAP);
      expect(Number((await p.coord.roundResult(jobId, r)).outcome)).to.equal(Outcome.NoUpdates);
      await expect(p.coord.slashWithheldVote(jobId, r, p.validators[255]!.address))
        .to.emit(p.coord, "SlashApplied")
        .withArgs(jobId, r, p.validators[255]!.address, SlashReason.MissedVoteReveal, 100n * ONE);
    }
    // Two rounds without a revealed vote: every member can now be evicted, each in a call of its own.
    await expect(p.coord.evictAbsentMember(jobId, p.validators[0]!.address)).to.emit(p.coord, "MemberEvicted");
    expect((await p.coord.committeeOf(jobId)).length).to.equal(255);
  });

  it("176 of 256 seats withholding next to 80 honest voters: finalize fits and the honest decision stands", async function () {
    const pool = await signers(2 + 1 + 256, 0xc0000);
    const p = await deployProtocol(ethers, { workers: 1, validators: 256, signers: pool });
    const jobId = await createJob(p, helpers, { maxValidators: 256, acceptBps: 3000, rejectSlashBps: 7001 }, p.validators, 3600);
    const gas = await round(p, jobId, 1n, p.workers, p.validators.slice(0, 176), p.validators.slice(176));
    expect(gas).to.be.below(EIP7825_TX_GAS_CAP);
    const res = await p.coord.roundResult(jobId, 1n);
    expect(Number(res.outcome)).to.equal(Outcome.Quorum);
    expect(res.acceptedBitmap).to.equal(1n); // 80 / 256 committed ≥ 30 %
  });

  it("an honest full-size round, 256 updates × 256 voters each approving a different half, fits", async function () {
    const pool = await signers(2 + 256 + 256, 0x80000);
    const p = await deployProtocol(ethers, { workers: 256, validators: 256, signers: pool, workerStake: 100n * ONE });
    const jobId = await createJob(p, helpers, { maxUpdates: 256, maxValidators: 256, rejectSlashAmount: ONE }, p.validators, 3600);
    const subs = p.workers.map((w, i) => submission(w, `u${i}`));
    await toPhase(p, helpers, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, subs);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    // Alternating halves: no zero byte for the tally's skip, 128 bits visited per voter.
    const half = (pattern: bigint) => (pattern * ethers.MaxUint256) / 0xffffn;
    const votes = p.validators.map((v, j) => vote(v, half(j % 2 === 0 ? 0x5555n : 0xaaaan)));
    await toPhase(p, helpers, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes);
    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes);
    await toPhase(p, helpers, jobId, Phase.Finalize);
    const rc = await (await p.coord.finalizeRound(jobId, 1n, { gasLimit: EIP7825_TX_GAS_CAP })).wait();
    console.log(`      finalize 256 × 256, split votes: ${rc!.gasUsed.toLocaleString("en")} gas`);
    expect(rc!.gasUsed).to.be.below(EIP7825_TX_GAS_CAP);
  });
});
