/**
 * The daemons' settlement duties against the real contracts (in-process network, time moved by hand):
 * a worker claims accepted updates and releases the stake lock of updates that earned nothing and are
 * not slashable (a minority rejection, a round without quorum), and leaves slashable ones to the
 * validators; a validator slashes commitments never revealed and supermajority-rejected updates once the
 * round's vote reveal is over, and votes committed and withheld once it is decided; evicts members
 * absent for maxMissedRounds decided rounds; skips what the contract says cannot be slashed (a full
 * round, a passed deadline), claims its rewards, and leaves the committee when the job is over. The roles run with a
 * NodeContext whose chain is this network (no IPFS: settlement needs none).
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import { HDNodeWallet, Mnemonic, type Contract, type Wallet } from "ethers";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { ONE, as, commitUpdates, commitVotes, createJob, deployProtocol, revealUpdates, revealVotes, submission, toPhase, vote, type Protocol } from "../helpers/fixture.ts";
import { Codec, Outcome, Phase, randomSalt, updateCommitment } from "../../worker/chain/protocol.ts";
import { NodeContext } from "../../worker/node/context.ts";
import { StateFile } from "../../worker/node/state.ts";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { WorkerRole } from "../../worker/node/workerRole.ts";
import { cidToChain } from "../../worker/storage/store.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");

/** A node context for the signer at `index` of the network's accounts, on this network. */
function contextFor(p: Protocol, index: number, jobId: bigint, name: string, role: "worker" | "validator"): NodeContext {
  const wallet = HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${index}`).connect(ethers.provider) as unknown as Wallet;
  const dataDir = mkdtempSync(join(tmpdir(), `fedstake-settle-${name}-`));
  const ctx = Object.create(NodeContext.prototype) as NodeContext;
  Object.assign(ctx as unknown as Record<string, unknown>, {
    cfg: { role, name, dataDir, rpc: "", deployment: {}, jobId: String(jobId), peers: [], data: {} },
    wallet,
    chain: { token: p.token.connect(wallet) as Contract, stake: p.stake.connect(wallet) as Contract, coord: p.coord.connect(wallet) as Contract, fromBlock: p.fromBlock },
    jobId,
    jobBlock: p.fromBlock,
    state: new StateFile(dataDir, "test"),
    logFile: join(dataDir, "events.jsonl"),
  });
  return ctx;
}

const eventsOf = (ctx: NodeContext) => {
  const f = join(ctx.cfg.dataDir, "events.jsonl");
  return existsSync(f) ? readFileSync(f, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>) : [];
};
/** Mines a block at the start of `phase`, so that the roles' gas estimates see the same time as their transactions. */
const at = async (p: Protocol, jobId: bigint, phase: number) => {
  await toPhase(p, helpers, jobId, phase);
  await helpers.mine();
};
const free = async (p: Protocol, a: string) => (await p.stake.freeStakeOf(a)) as bigint;
const staked = async (p: Protocol, a: string) => (await p.stake.stakeOf(a)) as bigint;
const phaseOf = async (p: Protocol, jobId: bigint) => Number((await p.coord.phaseOf(jobId))[1]);

describe("settlement duties of the worker and validator daemons", function () {
  this.timeout(120_000);
  // The roles log every event to stdout as well as to their events.jsonl (which the tests read): keep the output quiet.
  const print = console.log;
  before(() => {
    console.log = (...a: unknown[]) => (typeof a[0] === "string" && /^\[(w|v)\d\] /.test(a[0]) ? undefined : print(...a));
  });
  after(() => {
    console.log = print;
  });

  it("claims, releases unslashable locks, slashes missed reveals and rejected updates, and leaves the committee at the end", async function () {
    // Accounts: 0 admin, 1 sponsor, 2–6 workers, 7–9 validators (fixture order).
    const p = await deployProtocol(ethers, { workers: 5, validators: 3 });
    const [w0, w1, w2, w3, w4] = p.workers as [typeof p.admin, typeof p.admin, typeof p.admin, typeof p.admin, typeof p.admin];
    // rejectSlashBps 90 %: two of three validators rejecting an update refuse it without making it slashable.
    const jobId = await createJob(p, helpers, { numRounds: 2, rewardPerRound: 100n * ONE, maxUpdates: 8, rejectSlashAmount: 10n * ONE, rejectSlashBps: 9000 });
    const workerCtx = (i: number, name: string) => contextFor(p, 2 + i, jobId, name, "worker");
    const [c0, c2, c3] = [workerCtx(0, "w0"), workerCtx(2, "w2"), workerCtx(3, "w3")];
    const [r0, r2, r3] = [c0, c2, c3].map((c) => new WorkerRole(c));
    const vCtx = p.validators.map((_, j) => contextFor(p, 7 + j, jobId, `v${j}`, "validator"));
    const vRoles = vCtx.map((c) => new ValidatorRole(c));
    const lock = 10n * ONE; // max(rejectSlashAmount, missedRevealSlashAmount)

    // Round 1: w0 and w1 accepted; w2 rejected by two of three (not slashable); w3 rejected by all
    // (slashable); w4 commits and never reveals.
    const subs = [w0, w1, w2, w3].map((w, i) => submission(w, `r1-update-${i}`));
    await at(p, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, [...subs, submission(w4, "r1-hidden")]);
    for (const w of [w0, w4]) expect(await free(p, w.address)).to.equal(50n * ONE - lock);
    await at(p, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    for (const c of [c0, c2, c3]) c.state.save(1, { committed: true, revealed: true });
    const votes = [vote(p.validators[0]!, 0b0111n), vote(p.validators[1]!, 0b0011n), vote(p.validators[2]!, 0b0011n)];
    await at(p, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes);
    await at(p, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes);
    await at(p, jobId, Phase.Finalize);
    // Vote reveal is over: the missed reveal can be slashed already, before anyone finalizes.
    await vRoles[0]!.settle(1n, Phase.Finalize);
    expect(await staked(p, w4.address)).to.equal(48n * ONE); // missedRevealSlashAmount 2
    expect(await free(p, w4.address)).to.equal(48n * ONE); // and its lock is gone with the slash
    expect(vCtx[0]!.state.round(1).slashed, "not done before the round is decided").to.not.equal(true);
    await p.coord.finalizeRound(jobId, 1n);
    const res = await p.coord.roundResult(jobId, 1n);
    expect([Number(res.outcome), res.acceptedBitmap, res.slashableBitmap]).to.deep.equal([Outcome.Quorum, 0b0011n, 0b1000n]);

    // Workers settle: w0 claims (lock released with it), w2 releases its lock, w3 waits for its slash.
    for (const r of [r0, r2, r3]) await r.settle(1n, Phase.Attest);
    expect(await free(p, w0.address)).to.equal(50n * ONE);
    expect(await free(p, w2.address)).to.equal(50n * ONE);
    expect(await free(p, w3.address)).to.equal(50n * ONE - lock);
    expect(eventsOf(c0).map((e) => e.event)).to.include("claimed");
    expect(eventsOf(c2).find((e) => e.event === "lock-released")).to.include({ round: "1", index: 2 });
    expect(eventsOf(c3).find((e) => e.event === "not-accepted")).to.include({ round: "1", index: 3, slashable: true });
    for (const c of [c0, c2, c3]) expect(c.state.round(1).claimed, c.cfg.name).to.equal(true);

    // Validators settle: v0 slashes the rejected update and claims; v1 finds nothing left to slash.
    await vRoles[0]!.settle(1n, Phase.Attest);
    expect(await staked(p, w3.address)).to.equal(40n * ONE);
    expect(await free(p, w3.address)).to.equal(40n * ONE);
    expect(vCtx[0]!.state.round(1).slashed).to.equal(true);
    const v0Slashes = eventsOf(vCtx[0]!).filter((e) => e.event === "slashed").map((e) => `${e.kind}:${e.worker ?? e.index}`);
    expect(v0Slashes).to.deep.equal([`missed-reveal:${w4.address}`, "rejected-update:3"]);
    await vRoles[1]!.settle(1n, Phase.Attest);
    expect(eventsOf(vCtx[1]!).filter((e) => e.event === "tx").map((e) => e.method)).to.deep.equal(["claimVoteReward"]);
    // Slashes are burned, all of them.
    expect(await p.token.balanceOf(await p.stake.BURN_ADDRESS())).to.equal(12n * ONE);
    for (const v of p.validators) if ((await phaseOf(p, jobId)) === Phase.Attest) await as(p.coord, v).attestModel(jobId, 1n, ethers.id("model 1"), Codec.raw);

    // Round 2: nobody votes, no quorum: w0's update is released, not left locked.
    const [round2] = await p.coord.phaseOf(jobId);
    expect(round2).to.equal(2n);
    const s2 = submission(w0, "r2-update");
    await at(p, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 2n, [s2]);
    await at(p, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 2n, [s2]);
    c0.state.save(2, { committed: true, revealed: true });
    await at(p, jobId, Phase.Finalize);
    await vRoles[2]!.settle(2n, Phase.Finalize); // a worker revealed: nothing to slash, but the round is not decided yet
    expect(vCtx[2]!.state.round(2).slashed).to.not.equal(true);
    await p.coord.finalizeRound(jobId, 2n);
    expect(Number((await p.coord.roundResult(jobId, 2n)).outcome)).to.equal(Outcome.NoQuorum);
    expect(await free(p, w0.address)).to.equal(50n * ONE - lock);
    await r0.settle(3n, await phaseOf(p, jobId));
    expect(await free(p, w0.address)).to.equal(50n * ONE);
    expect(eventsOf(c0).find((e) => e.event === "lock-released")).to.include({ round: "2", index: 0 });

    // Round 3 completes the job; then every validator leaves the committee and its bond is released.
    const s3 = submission(w0, "r3-update");
    const v3 = p.validators.map((v) => vote(v, 0b1n));
    await at(p, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 3n, [s3]);
    await at(p, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 3n, [s3]);
    c0.state.save(3, { committed: true, revealed: true });
    await at(p, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 3n, v3);
    await at(p, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 3n, v3);
    await at(p, jobId, Phase.Finalize);
    await p.coord.finalizeRound(jobId, 3n);
    for (const v of p.validators) if ((await phaseOf(p, jobId)) === Phase.Attest) await as(p.coord, v).attestModel(jobId, 3n, ethers.id("model 3"), Codec.raw);
    expect(await phaseOf(p, jobId)).to.equal(Phase.Completed);
    for (const v of p.validators) expect(await free(p, v.address), "bond held while seated").to.equal(1000n * ONE - 10n * ONE);
    for (const r of vRoles) {
      await r.settle(3n, Phase.Completed);
      expect(r.settled).to.equal(true);
    }
    expect([...((await p.coord.committeeOf(jobId)) as string[])]).to.deep.equal([]);
    for (const v of p.validators) expect(await free(p, v.address)).to.equal(await staked(p, v.address));
    for (const c of vCtx) expect(eventsOf(c).map((e) => e.event)).to.include("left-committee");
    await r0.settle(3n, Phase.Completed);
    expect(r0.settled).to.equal(true);
    expect(await free(p, w0.address)).to.equal(50n * ONE);
  });

  it("a worker whose reveal finds the round full records why; validators skip its slash (RoundWasFull) and rounds past their deadline", async function () {
    const p = await deployProtocol(ethers, { workers: 3, validators: 2 });
    const [w0, w1, w2] = p.workers as [typeof p.admin, typeof p.admin, typeof p.admin];
    // Two slots: 2 × 10 ≥ the worker reward of 16.
    const jobId = await createJob(p, helpers, { numRounds: 1, rewardPerRound: 20n * ONE, maxUpdates: 2, rejectSlashAmount: 10n * ONE });
    const c2 = contextFor(p, 4, jobId, "w2", "worker");
    const vCtx = p.validators.map((_, j) => contextFor(p, 5 + j, jobId, `v${j}`, "validator"));
    const [v0, v1] = vCtx.map((c) => new ValidatorRole(c)) as [ValidatorRole, ValidatorRole];

    const subs = [submission(w0, "full-0"), submission(w1, "full-1")];
    const late = { cid: CID.createV1(0x55, await sha256.digest(new TextEncoder().encode("late update"))), salt: randomSalt() };
    const { digest, codec } = cidToChain(late.cid);
    await at(p, jobId, Phase.Commit);
    await commitUpdates(p, jobId, 1n, subs);
    c2.state.save(1, { cid: late.cid.toString(), salt: late.salt, numSamples: "100", committed: true });
    await as(p.coord, w2).commitUpdate(jobId, 1n, updateCommitment({ jobId, round: 1n, worker: w2.address, cidDigest: digest, cidCodec: codec, numSamples: 100n, salt: late.salt }));
    await at(p, jobId, Phase.Reveal);
    await revealUpdates(p, jobId, 1n, subs);
    await new WorkerRole(c2).tick(1n, Phase.Reveal);
    expect(c2.state.round(1).revealRefused).to.equal("TooManyUpdates");
    expect(eventsOf(c2).map((e) => e.event)).to.include("reveal-refused");

    const votes = p.validators.map((v) => vote(v, 0b11n));
    await at(p, jobId, Phase.VoteCommit);
    await commitVotes(p, jobId, 1n, votes);
    await at(p, jobId, Phase.VoteReveal);
    await revealVotes(p, jobId, 1n, votes);
    await at(p, jobId, Phase.Finalize);
    await p.coord.finalizeRound(jobId, 1n);
    await v0.settle(1n, Phase.Attest);
    expect(eventsOf(vCtx[0]!).find((e) => e.event === "slash-skipped")).to.include({ kind: "missed-reveal", worker: w2.address, reason: "RoundWasFull" });
    expect(eventsOf(vCtx[0]!).some((e) => e.event === "slash-failed" || e.event === "error")).to.equal(false);
    expect(vCtx[0]!.state.round(1).slashed).to.equal(true);
    expect(await staked(p, w2.address)).to.equal(50n * ONE);

    // Past the slash deadline the round needs nothing more, and the unrevealed commitment's lock has expired.
    const deadline = (await p.coord.slashDeadlineOf(jobId, 1n)) as bigint;
    await helpers.time.increaseTo(deadline + 1n);
    await v1.settle(1n, await phaseOf(p, jobId));
    expect(vCtx[1]!.state.round(1).slashed).to.equal(true);
    expect(eventsOf(vCtx[1]!).filter((e) => e.event === "tx").map((e) => e.method)).to.not.include.members(["slashMissedReveal", "slashRejectedUpdate"]);
    expect(await free(p, w2.address)).to.equal(50n * ONE);
  });

  it("slashes a withheld vote once the round is decided, and evicts members absent for maxMissedRounds decided rounds", async function () {
    const p = await deployProtocol(ethers, { workers: 1, validators: 4 });
    const [w0] = p.workers as [typeof p.admin];
    const [v0, v1, v2, v3] = p.validators as [typeof p.admin, typeof p.admin, typeof p.admin, typeof p.admin];
    const jobId = await createJob(p, helpers, { numRounds: 5, maxMissedRounds: 2, maxIdleRounds: 4 });
    // Accounts: 0 admin, 1 sponsor, 2 worker, 3–6 validators.
    const vCtx = [0, 1].map((j) => contextFor(p, 3 + j, jobId, `v${j}`, "validator"));
    const [r0, r1] = vCtx.map((c) => new ValidatorRole(c)) as [ValidatorRole, ValidatorRole];
    const play = async (round: bigint, revealers: typeof p.validators, withholders: typeof p.validators) => {
      const sub = submission(w0, `update-${round}`);
      const votes = revealers.map((v) => vote(v, 0b1n));
      const hidden = withholders.map((v) => vote(v, 0b1n));
      await at(p, jobId, Phase.Commit);
      await commitUpdates(p, jobId, round, [sub]);
      await at(p, jobId, Phase.Reveal);
      await revealUpdates(p, jobId, round, [sub]);
      await at(p, jobId, Phase.VoteCommit);
      await commitVotes(p, jobId, round, [...votes, ...hidden]);
      await at(p, jobId, Phase.VoteReveal);
      await revealVotes(p, jobId, round, votes);
      await at(p, jobId, Phase.Finalize);
      await p.coord.finalizeRound(jobId, round);
      expect(Number((await p.coord.roundResult(jobId, round)).outcome), `round ${round}`).to.equal(Outcome.Quorum);
    };

    // Round 1: v2 commits and withholds its vote; v3 never votes.
    await play(1n, [v0, v1], [v2]);
    expect(await free(p, v2.address)).to.equal(1000n * ONE - 10n * ONE - 100n * ONE); // bond and the vote's lock
    await r0.settle(1n, Phase.Attest);
    expect(await staked(p, v2.address)).to.equal(900n * ONE); // missedVoteSlashBps 10 % of its round weight
    expect(await free(p, v2.address)).to.equal(890n * ONE); // the vote's lock is consumed by the slash
    expect(eventsOf(vCtx[0]!).find((e) => e.event === "slashed")).to.include({ kind: "withheld-vote", round: "1", validator: v2.address });
    expect(eventsOf(vCtx[0]!).some((e) => e.event === "evicted"), "one missed round is not absence").to.equal(false);
    await r1.settle(1n, Phase.Attest); // nothing left: v0 was first
    expect(eventsOf(vCtx[1]!).filter((e) => e.event === "tx").map((e) => e.method)).to.deep.equal(["claimVoteReward"]);
    for (const v of [v0, v1]) await as(p.coord, v).attestModel(jobId, 1n, ethers.id("model 1"), Codec.raw);

    // Round 2: v2 and v3 reveal nothing again: two decided rounds in a row, both are evicted (bond slashed).
    await play(2n, [v0, v1], []);
    await r1.settle(2n, Phase.Attest);
    const evicted = eventsOf(vCtx[1]!).filter((e) => e.event === "evicted").map((e) => e.validator);
    expect(evicted.sort()).to.deep.equal([v2.address, v3.address].sort());
    expect([...((await p.coord.committeeOf(jobId)) as string[])].sort()).to.deep.equal([v0.address, v1.address].sort());
    expect(await staked(p, v2.address)).to.equal(890n * ONE);
    expect(await staked(p, v3.address)).to.equal(990n * ONE);
    for (const v of [v2, v3]) expect(await free(p, v.address)).to.equal(await staked(p, v.address));
    await r0.settle(2n, Phase.Attest);
    expect(eventsOf(vCtx[0]!).some((e) => e.event === "evicted" || e.event === "evict-failed")).to.equal(false);
  });
});
