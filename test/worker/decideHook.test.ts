/**
 * A validator's vote decided by a hook instead of the built-in policy, on the real contracts (in-process
 * Hardhat network) with real training: 3 workers, 4 validators — the built-in policy, a TypeScript hook,
 * a hook program (node script reading the round's evaluation on stdin) and a hook program that fails
 * (so its validator abstains). Each hook's answer is the bitmap its validator commits and reveals; the
 * evaluation a hook sees scores every update, whatever the built-in policy decided. On the way, the
 * guards that keep a validator's vote from hurting it: nothing is recorded while the reveal phase is
 * open, a vote cannot be committed before its phase or twice, a bitmap naming an update the round does
 * not have is refused before anything is saved, and attesting before finalize or after the round moved
 * on says so. Also: one data directory serving two jobs keeps their state apart.
 */
import { expect } from "chai";
import { network } from "hardhat";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HDNodeWallet, Mnemonic, type EventLog, type Wallet } from "ethers";
import { DEFAULT_POPULATION, Population } from "../../sim/harness.ts";
import { MemoryStore } from "../../sim/memoryStore.ts";
import { Phase, voteCommitment } from "../../worker/chain/protocol.ts";
import type { NodeConfig } from "../../worker/node/config.ts";
import { modelArtifact, NodeContext } from "../../worker/node/context.ts";
import { TooLateError } from "../../worker/node/errors.ts";
import { lockDataDir } from "../../worker/node/lock.ts";
import { StateFile } from "../../worker/node/state.ts";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { WorkerRole } from "../../worker/node/workerRole.ts";
import { cidToChain } from "../../worker/storage/store.ts";
import { readConfig } from "../../worker/node/config.ts";
import { checkHookProgram, runHookProgram } from "../../worker/node/decide.ts";
import { acceptedIndices, type RoundEvaluation } from "../../worker/validation/roundEvaluation.ts";
import { DEFAULT_RULES } from "../../worker/validation/rules/index.ts";
import { createJob, deployProtocol, ONE, toPhase } from "../helpers/fixture.ts";
import { attackByName, hooksFor } from "../../sim/attacks/index.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
const TRAIN = { epochs: 1, batch: 32, lr: 0.03, momentum: 0.9, threads: 1 };

describe("decision hooks: a validator's vote decided by its own rule", function () {
  this.timeout(600_000);

  it("each hook's answer is its validator's vote; a failing hook abstains; the vote guards refuse before saving", async function () {
    const pop = await Population.create({ ...DEFAULT_POPULATION, workers: 4, validators: 5, rounds: 1, trainSamples: 2000, holdout: 300, testSamples: 100 });
    const wallets = Array.from({ length: 11 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${900 + i}`).connect(ethers.provider) as unknown as Wallet);
    for (const w of wallets) await helpers.setBalance(w.address, 10n ** 21n);
    const p = await deployProtocol(ethers, { workers: 4, validators: 5, signers: wallets as never });
    const store = new MemoryStore();
    const initCid = await store.add(modelArtifact(0n, 0, new Uint8Array(0), pop.initialModel(), 0n));
    const specCid = await store.add(new TextEncoder().encode(JSON.stringify(pop.job)));
    const jobId = await createJob(p, helpers, {
      initialModelDigest: cidToChain(initCid).digest, initialModelCodec: cidToChain(initCid).codec,
      specDigest: cidToChain(specCid).digest, specCodec: cidToChain(specCid).codec,
      numRounds: 2, rewardPerRound: 100n * ONE, maxUpdates: 8, maxValidators: 5, attestBps: 5001, rejectSlashAmount: 10n * ONE, missedRevealSlashAmount: 5n * ONE,
    });
    const deployment = { chainId: 31337, token: await p.token.getAddress(), stakeManager: await p.stake.getAddress(), coordinator: await p.coord.getAddress() };
    const dir = mkdtempSync(join(tmpdir(), "fedstake-decide-"));
    const cfg = (name: string, role: "worker" | "validator", extra: Partial<NodeConfig> = {}): NodeConfig => ({
      role, name, rpc: "", deployment, jobId: String(jobId), dataDir: join(dir, name), peers: [], data: { dataset: "idx", images: "", labels: "" }, train: TRAIN, ...extra,
    });
    const ctxOf = (i: number, c: NodeConfig, data = pop.shards[i]!) => NodeContext.inProcess({ cfg: c, wallet: wallets[2 + i]!, store: store.peer().asNodeStore(), job: pop.job, data });
    // Three honest workers and a sign-flipper, so that the built-in policy rejects one update and the
    // evaluation must still carry every rule's verdict on it.
    const noSources = { self: "", seed: 1, colluders: async () => [], previous: async () => [], copyCommitment: async () => undefined };
    const workers = [0, 1, 2, 3].map((i) => new WorkerRole(ctxOf(i, cfg(`worker-${i}`, "worker")), i === 3 ? hooksFor(attackByName("signflip"), noSources) : {}));

    // Hook programs: one answers every update but the first, from the evaluation on its stdin; one fails.
    const answering = join(dir, "rule.mjs");
    writeFileSync(answering, `let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => { const ev = JSON.parse(s); console.log(JSON.stringify(ev.updates.filter((u) => u.decodable && u.index !== 0).map((u) => u.index))); });\n`);
    const failing = join(dir, "broken.mjs");
    writeFileSync(failing, `process.stderr.write("no model for this round\\n"); process.exit(4);\n`);
    const seen: RoundEvaluation[] = [];
    const vctx = [
      ctxOf(4, cfg("builtin", "validator"), pop.holdouts[0]),
      ctxOf(5, cfg("ts-hook", "validator"), pop.holdouts[1]),
      ctxOf(6, cfg("program-hook", "validator", { decide: { command: [process.execPath, answering], timeoutMs: 60_000, onFailure: "abstain" } }), pop.holdouts[2]),
      ctxOf(7, cfg("failing-hook", "validator", { decide: { command: [process.execPath, failing], timeoutMs: 60_000, onFailure: "abstain" } }), pop.holdouts[3]),
      ctxOf(8, cfg("fallback-hook", "validator", { decide: { command: [process.execPath, failing], timeoutMs: 60_000, onFailure: "builtin" } }), pop.holdouts[4]),
    ];
    const validators = [
      new ValidatorRole(vctx[0]!),
      new ValidatorRole(vctx[1]!, { decide: (ev) => (seen.push(ev), [0]) }),
      new ValidatorRole(vctx[2]!),
      new ValidatorRole(vctx[3]!),
      new ValidatorRole(vctx[4]!),
    ];
    const builtin = validators[0]!;

    await toPhase(p, helpers, jobId, Phase.Commit);
    for (const w of workers) await w.tick(1n, Phase.Commit);
    await toPhase(p, helpers, jobId, Phase.Reveal);
    for (const w of workers.slice(0, 3)) await w.tick(1n, Phase.Reveal);

    // The reveal phase is open: evaluating records nothing, committing is refused, attesting too.
    const early = await builtin.evaluate(1n);
    expect(early.rows).to.have.length(3);
    expect(early.recorded).to.equal(undefined);
    expect(early.note).to.match(/reveal phase is still open/);
    expect(vctx[0]!.state.round(1).bitmap).to.equal(undefined);
    let err = await builtin.commitVote(1n).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/vote-commit phase has not opened yet .*phase Reveal/);
    err = await builtin.attest(1n).then(() => undefined, (e: Error) => e);
    expect(err?.message).to.match(/round 1 is not finalized yet: it is in phase Reveal/);
    expect(vctx[0]!.state.round(1)).to.deep.equal({});

    // The last reveal closes the phase early.
    await workers[3]!.tick(1n, Phase.Reveal);
    expect(Number((await p.coord.phaseOf(jobId))[1])).to.equal(Phase.VoteCommit);
    // An index the round does not have: refused before any salt is saved.
    err = await builtin.commitVote(1n, 0b100001n).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(RangeError);
    expect(err!.message).to.match(/4 revealed updates \(indices 0…3\): cannot accept 5/);
    expect(vctx[0]!.state.round(1)).to.deep.equal({});

    // A commitment mined before the node could record it (a lost receipt, a crash): recovered from the
    // chain's vote slot, so it is revealed rather than withheld.
    await builtin.evaluate(1n);
    const mine = vctx[0]!.state.round(1);
    await vctx[0]!.send("commitVote", [jobId, 1n, voteCommitment({ jobId, round: 1n, validator: wallets[6]!.address, bitmap: BigInt(mine.bitmap!), salt: mine.salt! })]);
    expect(vctx[0]!.state.round(1).committed).to.equal(undefined);
    // Every validator ticks twice: a failed hook is not asked again in the same round.
    for (let k = 0; k < 2; k++) for (const v of validators) await v.tick(1n, Phase.VoteCommit);
    expect(vctx[0]!.state.round(1).committed).to.equal(true);
    expect(readFileSync(join(dir, "builtin", "events.jsonl"), "utf8")).to.match(/"event":"vote-committed".*mined earlier, recorded now/);
    err = await builtin.commitVote(1n).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(TooLateError);
    // The failing hook's validator abstained (and says why); the others committed.
    expect(vctx[3]!.state.round(1).committed).to.equal(undefined);
    expect(vctx[3]!.state.round(1).abstained).to.match(/exited with status 4: no model for this round/);
    const log = readFileSync(join(dir, "failing-hook", "events.jsonl"), "utf8");
    expect(log).to.match(/"event":"hook-failed".*"fallback":"abstain"/);
    expect(log.match(/"event":"hook-failed"/g), "the failed hook ran once").to.have.length(1);
    expect(log).to.match(/"event":"progress".*NO VOTE — the decision hook failed/);
    // With "onFailure": "builtin" the same failure votes the built-in bitmap.
    expect(vctx[4]!.state.round(1).committed).to.equal(true);
    expect(readFileSync(join(dir, "fallback-hook", "events.jsonl"), "utf8")).to.match(/"event":"hook-failed".*"fallback":"builtin"/);

    // What the TypeScript hook saw: every update scored, every rule's verdict, whatever the built-in vote.
    expect(seen).to.have.length(1);
    const ev = seen[0]!;
    expect(ev).to.include({ version: 1, job: jobId.toString(), round: 1, phase: "VoteCommit", updateCount: 4 });
    expect(ev.heldOut?.samples).to.equal(300);
    expect(ev.heldOut?.accuracy).to.be.a("number");
    expect(ev.deadlines.voteCommit.at).to.be.above(ev.deadlines.reveal.at);
    expect(ev.deadlines.voteCommit.iso).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(ev.updates.map((u) => u.index)).to.deep.equal([0, 1, 2, 3]);
    // The sign-flipped update: rejected by the built-in policy, yet every rule's own verdict on it is there.
    const flipped = ev.updates[3]!;
    expect(flipped.builtIn.accept).to.equal(false);
    expect(Object.values(flipped.rules!).some((v) => !v.pass)).to.equal(true);
    for (const u of ev.updates) {
      expect(u.decodable).to.equal(true);
      for (const k of ["norm", "cosine", "loss", "accuracy"] as const) expect(u[k], k).to.be.a("number");
      expect(Object.keys(u.rules!)).to.deep.equal(DEFAULT_RULES.map((r) => r.rule));
      for (const v of Object.values(u.rules!)) expect(v.pass).to.be.a("boolean");
      expect(u.builtIn.accept).to.be.a("boolean");
    }
    expect(ev.builtIn.accepted).to.deep.equal(ev.updates.filter((u) => u.builtIn.accept).map((u) => u.index));

    await toPhase(p, helpers, jobId, Phase.VoteReveal);
    for (const v of validators) await v.tick(1n, Phase.VoteReveal);
    const revealed = new Map(
      ((await p.coord.queryFilter(p.coord.filters.VoteRevealed!(jobId, 1n), 0)) as EventLog[]).map((e) => [e.args.validator as string, BigInt(e.args.acceptBitmap)]),
    );
    expect(revealed.get(wallets[7]!.address), "the TypeScript hook's vote").to.equal(0b1n);
    expect(revealed.get(wallets[8]!.address), "the hook program's vote").to.equal(0b1110n);
    expect(revealed.has(wallets[9]!.address), "the failing hook's validator abstained").to.equal(false);
    expect(revealed.get(wallets[6]!.address), "the built-in vote (the recovered commitment, revealed)").to.equal(BigInt(vctx[0]!.state.round(1).bitmap!));
    expect(revealed.get(wallets[6]!.address)! & 0b1000n, "the built-in policy rejects the sign-flipped update").to.equal(0n);
    expect(revealed.get(wallets[10]!.address)! & 0b1000n, "so does the fallback").to.equal(0n);

    for (const phase of [Phase.Finalize, Phase.Attest]) {
      if (phase === Phase.Finalize) await toPhase(p, helpers, jobId, phase);
      for (const v of validators) await v.tick(1n, phase);
    }
    expect((await p.coord.phaseOf(jobId))[0]).to.equal(2n);
    // After the round moved on: too late (exit 3 from the CLI).
    err = await validators[3]!.attest(1n).then(() => undefined, (e: Error) => e);
    expect(err).to.be.instanceOf(TooLateError);
    expect(err!.message).to.match(/round 1's attestation is over \(the job is in round 2/);
  });

  it("a hook program that hangs, floods, forks or prints no JSON is named and killed; it never sees the node's secrets", async function () {
    const dir = mkdtempSync(join(tmpdir(), "fedstake-hook-"));
    const script = (name: string, body: string, mode = 0o755) => {
      const f = join(dir, name);
      writeFileSync(f, body, { mode });
      return f;
    };
    const ev = { version: 1, updates: [] } as unknown as RoundEvaluation;
    const run = (argv: string[], ms = 10_000): Promise<{ a?: unknown; e?: Error }> => runHookProgram(argv, ev, ms).then((a) => ({ a }), (e: Error) => ({ e }));
    const t0 = Date.now();
    const hang = script("hang.mjs", "setTimeout(() => {}, 60_000);\n");
    expect((await run([process.execPath, hang], 500)).e?.message).to.match(/decision hook .*node.*: gave no answer within 500 ms/);
    expect(Date.now() - t0).to.be.below(30_000);
    expect((await run([process.execPath, script("chatty.mjs", "console.log('accept 0 and 2');\n")])).e?.message).to.match(/its answer is not JSON: "accept 0 and 2"/);
    expect((await run([join(dir, "missing")])).e?.message).to.match(/cannot run: .*ENOENT/);
    // A shell wrapper whose child floods stdout: refused at 1 MiB, the whole process group killed, the validator unharmed.
    const flood = script("flood.sh", "#!/bin/sh\nyes '[0]'\n");
    expect((await run([flood])).e?.message).to.match(/printed more than 1048576 bytes/);
    // An answer, then a background child that keeps stdout open: the answer counts.
    const forks = script("forks.sh", "#!/bin/sh\necho '[0]'\n(sleep 30) &\nexit 0\n");
    expect((await run([forks], 5000)).a).to.deep.equal([0]);
    // The signing key and the keystore password are not in the hook's environment.
    process.env.FEDSTAKE_PRIVATE_KEY = "0xsecret";
    process.env.FEDSTAKE_KEYSTORE_PASSWORD = "hunter2";
    try {
      const env = script("env.mjs", "console.log(JSON.stringify([process.env.FEDSTAKE_PRIVATE_KEY ?? null, process.env.FEDSTAKE_KEYSTORE_PASSWORD ?? null, typeof process.env.PATH]));\n");
      expect((await run([process.execPath, env])).a).to.deep.equal([null, null, "string"]);
    } finally {
      delete process.env.FEDSTAKE_PRIVATE_KEY;
      delete process.env.FEDSTAKE_KEYSTORE_PASSWORD;
    }
    // Checked at start: a program that is not there or not executable, a name not on PATH.
    expect(() => checkHookProgram(join(dir, "nope.sh"))).to.throw(/no such executable file/);
    expect(() => checkHookProgram(script("plain.sh", "#!/bin/sh\n", 0o644))).to.throw(/no such executable file .*chmod \+x/);
    expect(() => checkHookProgram("no-such-program-fedstake")).to.throw(/not found on PATH/);
    expect(() => checkHookProgram(flood)).to.not.throw();
  });

  it("a node config's hook program is resolved against the config; a worker may not have one", function () {
    const dir = mkdtempSync(join(tmpdir(), "fedstake-hookcfg-"));
    const base = { name: "v", rpc: "http://127.0.0.1:8545", deployment: { chainId: 31337, token: "0x" + "1".repeat(40), stakeManager: "0x" + "2".repeat(40), coordinator: "0x" + "3".repeat(40) }, jobId: "1", dataDir: "data", data: { dataset: "idx", images: "i", labels: "l" } };
    writeFileSync(join(dir, "v.json"), JSON.stringify({ ...base, role: "validator", decide: { command: ["./rule.sh", "--strict"] } }));
    expect(readConfig(join(dir, "v.json")).decide).to.deep.equal({ command: [join(dir, "rule.sh"), "--strict"], timeoutMs: 30_000, onFailure: "abstain" });
    writeFileSync(join(dir, "w.json"), JSON.stringify({ ...base, role: "worker", train: TRAIN, decide: { command: "python3" } }));
    expect(() => readConfig(join(dir, "w.json"))).to.throw(/decide is a validator's setting, not a worker's/);
    writeFileSync(join(dir, "spaced.json"), JSON.stringify({ ...base, role: "validator", decide: { command: "python3 rule.py" } }));
    expect(() => readConfig(join(dir, "spaced.json"))).to.throw(/decide.command is one program \(no shell\): write its words as a list, like \["python3", "rule.py"\]/);
    writeFileSync(join(dir, "bad.json"), JSON.stringify({ ...base, role: "validator", decide: { command: [], onFailure: "retry" } }));
    expect(() => readConfig(join(dir, "bad.json"))).to.throw(/decide.command must name a program.*decide.onFailure must be "abstain" or "builtin"/);
  });

  it("a hook's answer is checked: indices in range, whole, listed once", function () {
    expect(acceptedIndices([2, 0], 3)).to.deep.equal([0, 2]);
    expect(acceptedIndices({ accept: [] }, 3)).to.deep.equal([]);
    expect(() => acceptedIndices([3], 3)).to.throw(/index 3 is out of range: the round has 3 revealed updates \(0…2\)/);
    expect(() => acceptedIndices([0], 0)).to.throw(/the round has no revealed updates/);
    expect(() => acceptedIndices([1, 1], 3)).to.throw(/index 1 is listed twice/);
    expect(() => acceptedIndices([0.5], 3)).to.throw(/not a whole number/);
    expect(() => acceptedIndices("0,1", 3)).to.throw(/must be a JSON array of update indices/);
  });

  it("one process per data directory: a second is refused naming the first; a dead holder's lock is taken over", async function () {
    const dir = mkdtempSync(join(tmpdir(), "fedstake-lock-"));
    const release = lockDataDir(dir, "the validator daemon");
    try {
      // Another process (a node command beside the daemon) is refused.
      const child = spawnSync(process.execPath, ["-e", `import(${JSON.stringify(join(import.meta.dirname, "../../worker/node/lock.ts"))}).then((m) => m.lockDataDir(${JSON.stringify(dir)}, "fedstake vote commit")).then(() => console.log("locked"), (e) => console.log(e.message))`], { encoding: "utf8" });
      expect(child.stdout).to.match(new RegExp(`is in use by process ${process.pid} \\(the validator daemon, since .*\\): one process per node data directory`));
    } finally {
      release();
    }
    // A lock left by a process that is gone (killed) is taken over.
    const gone = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" });
    writeFileSync(join(dir, "node.lock"), JSON.stringify({ pid: Number(gone.stdout.trim()), what: "a killed daemon" }));
    lockDataDir(dir, "the restarted daemon")();
  });

  it("one data directory serving two jobs keeps their state apart; an unkeyed state file is refused", function () {
    const dir = mkdtempSync(join(tmpdir(), "fedstake-state-"));
    const job1 = new StateFile(dir, "31337:0xabc:1");
    job1.save(1, { committed: true, salt: "0x01" });
    const job2 = new StateFile(dir, "31337:0xabc:2");
    expect(job2.round(1)).to.deep.equal({});
    job2.save(1, { cid: "bafy2" });
    // Interleaved saves of two instances (a node command beside a daemon) keep each other's records.
    job1.save(2, { bitmap: "0x1" });
    job2.save(2, { cid: "bafy3" });
    job1.save(3, { salt: "0x03" });
    expect(new StateFile(dir, "31337:0xabc:2").round(2)).to.deep.equal({ cid: "bafy3" });
    expect(job1.round(2)).to.deep.equal({ bitmap: "0x1" });
    const again = new StateFile(dir, "31337:0xabc:1");
    expect(again.round(1)).to.deep.equal({ committed: true, salt: "0x01" });
    expect(new StateFile(dir, "31337:0xabc:2").round(1)).to.deep.equal({ cid: "bafy2" });
    const old = mkdtempSync(join(tmpdir(), "fedstake-state-old-"));
    writeFileSync(join(old, "state.json"), JSON.stringify({ rounds: { 1: { committed: true } } }));
    expect(() => new StateFile(old, "31337:0xabc:1")).to.throw(/is from an earlier fedstake and does not say which job it belongs to.*jq '\{version: 2, jobs: \{"31337:0xabc:1": \.\}\}'/);
  });
});
