/**
 * Timing without guessing, against a real `hardhat node` (127.0.0.1, a free port): `job show --json` and
 * `status --json` give the round's start and every phase deadline in chain time, as the job's parameters
 * make them (and the attestation deadline from finalize once the round is finalized); `wait` returns when a
 * phase opens — also a reveal phase that lasts one block (every commitment revealed in the next) — exits 3
 * for a phase the round is past and 1 on --timeout; `watch --json` streams the job's events as NDJSON
 * (phase changes, commitment, reveal, votes, finalize, claims, attestation, score, the job's end) and exits
 * once the job has ended, and a second `watch` over the finished job's history prints the same lines.
 * The round is played by this test with ethers; every phase closes early (minUpdates 1, one validator), so
 * nothing waits for a deadline but the job's start.
 * Also: a benchmark run writes its results to the ignored bench/results/local/ unless told --update or --out.
 */
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HDNodeWallet, hexlify, Mnemonic, randomBytes, ZeroAddress, type Wallet } from "ethers";
import { benchOutDir, COMMITTED_RESULTS, LOCAL_RESULTS, outFromArgv } from "../scripts/bench-out.ts";
import { attach, deployProtocol, sendTx, type Deployment } from "../worker/chain/client.ts";
import { startDevnet, type Devnet } from "../worker/chain/devnet.ts";
import { Codec, defaultJobParams, randomSalt, updateCommitment, voteCommitment } from "../worker/chain/protocol.ts";

const ROOT = resolve(import.meta.dirname, "..");
const CLI = join(ROOT, "scripts/fedstake.ts");
const ONE = 10n ** 18n;
const PERIODS = { commitPeriod: 60, revealPeriod: 60, voteCommitPeriod: 60, voteRevealPeriod: 60, slashWindow: 60, attestPeriod: 30 };

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe("fedstake CLI timing: deadlines, wait, watch", function () {
  this.timeout(180_000);
  let devnet: Devnet;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let dep: Deployment;
  let wallets: Wallet[];
  let start: number;
  const children: ChildProcess[] = [];

  /** Starts `fedstake ARGS`; `done` resolves when it exits. */
  const launch = (args: string[]) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d));
    child.stderr!.on("data", (d: Buffer) => (err += d));
    const done = new Promise<Run>((res) => child.on("exit", (code) => res({ code, out, err })));
    return { child, done };
  };
  const cli = (args: string[]) => launch(args).done;
  const ok = async (args: string[]) => {
    const r = await cli(args);
    expect(r.code, `fedstake ${args.join(" ")}\n${r.out}\n${r.err}`).to.equal(0);
    return r.out;
  };
  const json = async (args: string[]) => JSON.parse(await ok([...args, "--json"]));
  let liveWatch: Promise<Run>;
  let revealWait: Promise<Run>;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "fedstake-timing-"));
    devnet = await startDevnet();
    const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
    wallets = Array.from({ length: 4 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(devnet.provider) as unknown as Wallet);
    const [admin, sponsor, validator, worker] = wallets as [Wallet, Wallet, Wallet, Wallet];
    dep = await deployProtocol(admin, { unbondingPeriod: 600, guardian: ZeroAddress });
    writeFileSync(join(dir, "deployment.json"), JSON.stringify(dep, null, 2) + "\n");
    const { FEDSTAKE_PRIVATE_KEY: _k, FEDSTAKE_KEYSTORE_PASSWORD: _p, ...clean } = process.env;
    env = { ...clean, FEDSTAKE_RPC: devnet.url, FEDSTAKE_DEPLOYMENT: join(dir, "deployment.json"), FEDSTAKE_HOME: join(dir, "home") };
    const { token } = attach(dep, admin);
    for (const [w, amount] of [[sponsor, 100n], [validator, 200n], [worker, 20n]] as const) await sendTx(admin, token, "mint", [w.address, amount * ONE]);
    for (const [w, amount] of [[validator, 200n], [worker, 20n]] as const) {
      await sendTx(w, attach(dep, w).token, "approve", [dep.stakeManager, amount * ONE]);
      await sendTx(w, attach(dep, w).stake, "stake", [amount * ONE]);
    }
    // One round; minUpdates 1 closes the commit phase at the first commitment (10 ≥ the round's worker reward, 8).
    const now = (await devnet.provider.getBlock("latest"))!.timestamp;
    start = now + 15;
    const params = defaultJobParams({ ...PERIODS, startTime: BigInt(start), numRounds: 1, rewardPerRound: 10n * ONE, minUpdates: 1, rejectSlashAmount: 10n * ONE, missedRevealSlashAmount: 10n * ONE });
    const s = attach(dep, sponsor);
    await sendTx(sponsor, s.token, "approve", [dep.coordinator, 10n * ONE]);
    await sendTx(sponsor, s.coord, "createJob", [params]);
    await sendTx(validator, attach(dep, validator).coord, "joinCommittee", [1n]);
    // Started before round 1 opens: they must see everything that follows.
    liveWatch = launch(["watch", "--job", "1", "--json"]).done;
    revealWait = launch(["wait", "--job", "1", "--phase", "reveal", "--json"]).done;
  });

  after(function () {
    for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
    devnet?.stop();
  });

  it("job show and status give the round's start and every phase deadline in chain time, with the seconds left", async function () {
    const show = await json(["job", "show", "--job", "1"]);
    const t = show.timing;
    expect([show.round, show.phase, t.round, t.phase]).to.deep.equal([1, "NotStarted", 1, "NotStarted"]);
    const head = await devnet.provider.getBlock(t.block);
    expect(t.chainTime).to.equal(head!.timestamp);
    expect(t.chainTimeIso).to.equal(new Date(t.chainTime * 1000).toISOString());
    const p = PERIODS;
    const want = {
      commit: start + p.commitPeriod,
      reveal: start + p.commitPeriod + p.revealPeriod,
      voteCommit: start + p.commitPeriod + p.revealPeriod + p.voteCommitPeriod,
      voteReveal: start + 240,
      slash: start + 240 + p.slashWindow,
      attest: start + 240 + p.slashWindow + p.attestPeriod,
    };
    expect(t.roundStart.at).to.equal(start);
    expect(t.roundStart.secondsLeft).to.equal(start - t.chainTime).and.be.greaterThan(0);
    for (const [k, at] of Object.entries(want)) {
      const d = t.deadlines[k];
      expect([k, d.at, d.iso, d.secondsLeft, d.closed]).to.deep.equal([k, at, new Date(at * 1000).toISOString(), at - t.chainTime, false]);
    }
    // Before finalize the attestation deadline is the latest it can be.
    expect(t.deadlines.attest.final).to.equal(false);
    const status = await json(["status", "--job", "1"]);
    expect([status.phase, status.rewardPool]).to.deep.equal(["NotStarted", "10.0"]);
    for (const k of Object.keys(want)) expect(status.timing.deadlines[k].at, k).to.equal(t.deadlines[k].at);
    // Amounts for people: in tokens, never in base units shown as 0.000000000000000001.
    expect(await ok(["status", "--job", "1"])).to.match(/pool 10, /).and.match(/commit closes\s+\S+Z\s+in \d+ s/);
  });

  it("wait returns when a phase opens (a one-block reveal phase too), exits 3 for a phase the round is past and 1 on timeout", async function () {
    const worker = wallets[3]!;
    const w = attach(dep, worker);
    const commitOpen = await json(["wait", "--job", "1", "--phase", "COMMIT", "--timeout", "60"]);
    expect(commitOpen).to.include({ job: "1", round: 1, phase: "Commit" });
    expect(commitOpen.timestamp).to.be.at.least(start);
    // The commitment closes the commit phase (minUpdates 1); the reveal in the next block closes the reveal phase.
    const update = { jobId: 1n, round: 1n, worker: worker.address, cidDigest: hexlify(randomBytes(32)), cidCodec: Codec.raw, numSamples: 100n, salt: randomSalt() };
    const committed = await sendTx(worker, w.coord, "commitUpdate", [1n, 1n, updateCommitment(update)]);
    const revealed = await sendTx(worker, w.coord, "revealUpdate", [1n, 1n, update.cidDigest, update.cidCodec, update.numSamples, update.salt]);
    expect(revealed.blockNumber).to.equal(committed.blockNumber + 1);
    const r = await revealWait;
    expect(r.code, r.err).to.equal(0);
    const doc = JSON.parse(r.out);
    const block = await devnet.provider.getBlock(committed.blockNumber);
    expect(doc).to.deep.equal({ job: "1", round: 1, phase: "Reveal", block: committed.blockNumber, timestamp: block!.timestamp });

    const missed = await cli(["wait", "--job", "1", "--phase", "commit"]);
    expect([missed.code, missed.err]).to.satisfy(([c, e]: [number, string]) => c === 3 && /Commit missed: round 1 is past Commit/.test(e));
    const pastReveal = await cli(["wait", "--job", "1", "--phase", "reveal", "--round", "1"]);
    expect(pastReveal.code, pastReveal.err).to.equal(3);
    expect(await json(["wait", "--job", "1", "--phase", "vote-commit"])).to.include({ round: 1, phase: "VoteCommit" });
    const late = await cli(["wait", "--job", "1", "--phase", "completed", "--timeout", "2"]);
    expect([late.code, late.err]).to.satisfy(([c, e]: [number, string]) => c === 1 && /timed out after 2 s waiting for Completed/.test(e));
    const bad = await cli(["wait", "--job", "1", "--phase", "tallying"]);
    expect([bad.code, bad.err]).to.satisfy(([c, e]: [number, string]) => c === 2 && /--phase must be a phase/.test(e));
  });

  it("watch --json streams the job's events as NDJSON and exits when the job ends; its history reads the same", async function () {
    const [, , validator, worker] = wallets as [Wallet, Wallet, Wallet, Wallet];
    const v = attach(dep, validator);
    const salt = randomSalt();
    await sendTx(validator, v.coord, "commitVote", [1n, 1n, voteCommitment({ jobId: 1n, round: 1n, validator: validator.address, bitmap: 1n, salt })]);
    await sendTx(validator, v.coord, "revealVote", [1n, 1n, 1n, salt]);
    const finalized = await sendTx(validator, v.coord, "finalizeRound", [1n, 1n]);
    // Finalized: the attestation deadline is finalize's time + attestPeriod.
    const show = await json(["job", "show", "--job", "1"]);
    const finalizedAt = (await devnet.provider.getBlock(finalized.blockNumber))!.timestamp;
    const dl = show.timing.deadlines;
    expect([show.phase, dl.attest.at, dl.attest.final, dl.attest.closed]).to.deep.equal(["Attest", finalizedAt + PERIODS.attestPeriod, true, false]);
    // The vote phases closed early (before their deadlines); the slash deadline is still ahead.
    for (const k of ["commit", "reveal", "voteCommit", "voteReveal"]) expect([k, dl[k].closed, dl[k].secondsLeft > 0]).to.deep.equal([k, true, true]);
    expect(dl.slash.closed).to.equal(false);
    expect(await ok(["job", "show", "--job", "1"])).to.match(/vote reveal closes\s+\S+Z\s+closed early/).and.match(/attestation closes\s+\S+Z\s+in \d+ s\n/);
    await sendTx(worker, attach(dep, worker).coord, "claimUpdateReward", [1n, 1n, 0n]);
    const model = hexlify(randomBytes(32));
    await sendTx(validator, v.coord, "attestModel", [1n, 1n, model, Codec.raw]);
    await sendTx(validator, v.coord, "reportModelScore", [1n, 1n, 9000, 250_000n, 100]);

    const live = await Promise.race([liveWatch, new Promise<Run>((_, rej) => setTimeout(() => rej(new Error("watch did not exit once the job ended")), 30_000))]);
    expect(live.code, live.err).to.equal(0);
    const lines = live.out.trim().split("\n");
    const events = lines.map((l) => JSON.parse(l) as Record<string, unknown> & { event: string });
    const names = events.map((e) => (e.event === "Phase" ? `Phase:${e.phase as string}` : e.event));
    // In chain order: the job's creation, every phase of the round, each action, the end.
    const order = [
      "JobCreated",
      "RoundOpened",
      "Phase:NotStarted",
      "CommitteeJoined",
      "Phase:Commit",
      "UpdateCommitted",
      "Phase:Reveal",
      "UpdateRevealed",
      "Phase:VoteCommit",
      "VoteCommitted",
      "Phase:VoteReveal",
      "VoteRevealed",
      "Phase:Finalize",
      "ValidatorRewardCredited",
      "RoundFinalized",
      "Phase:Attest",
      "RewardClaimed",
      "ModelAttested",
      "ModelAccepted",
      "JobCompleted",
      "Phase:Completed",
    ];
    expect(names.filter((n) => order.includes(n))).to.deep.equal(order);
    const byName = (n: string) => events.find((e) => e.event === n)!;
    expect(byName("UpdateCommitted")).to.include({ job: "1", round: 1, worker: worker.address });
    expect(byName("UpdateRevealed")).to.include({ worker: worker.address, index: "0", numSamples: "100" });
    expect(byName("UpdateRevealed").cid).to.be.a("string");
    expect(byName("VoteRevealed")).to.include({ validator: validator.address, acceptBitmap: "0x1" });
    expect(byName("RoundFinalized")).to.include({ outcome: "Quorum", acceptedBitmap: "0x1", block: finalized.blockNumber, tx: finalized.hash });
    // Amounts in tokens, exact, as status --json prints them.
    expect(byName("RewardClaimed")).to.include({ account: worker.address, amount: "8.0" });
    expect(byName("JobCreated").params).to.include({ rewardPerRound: "10.0", numRounds: "1", startTime: String(start) });
    expect(byName("ModelAccepted")).to.include({ digest: model });
    expect(events.every((e) => typeof e.block === "number" && typeof e.timestamp === "number")).to.equal(true);
    // The score reported after the job ended is not in the live stream, which stopped at the end.
    expect(names).to.not.include("ModelScored");
    const history = await ok(["watch", "--job", "1", "--json"]);
    expect(history.trim().split("\n")).to.deep.equal(lines);
    // Readable lines: amounts in tokens.
    const text = await ok(["watch", "--job", "1"]);
    expect(text).to.match(/round 1 {2}RewardClaimed account=0x[0-9a-fA-F]{40} amount=8(\s|$)/).and.match(/phase Completed/);
  });
});

describe("benchmark results: a local run does not rewrite the committed ones", function () {
  it("writes to bench/results/local/ (ignored by git) unless --update or --out DIR", function () {
    const saved = { out: process.env.BENCH_OUT, update: process.env.BENCH_UPDATE, cwd: process.env.INIT_CWD };
    delete process.env.BENCH_OUT;
    delete process.env.BENCH_UPDATE;
    try {
      expect(benchOutDir(outFromArgv([]))).to.equal(LOCAL_RESULTS);
      expect(LOCAL_RESULTS).to.equal(join(ROOT, "bench/results/local"));
      const ignored = spawnSync("git", ["check-ignore", "-q", "bench/results/local/gas.json"], { cwd: ROOT });
      expect(ignored.status, "bench/results/local/ must be in .gitignore").to.equal(0);
      expect(spawnSync("git", ["check-ignore", "-q", "bench/results/gas.json"], { cwd: ROOT }).status).to.equal(1);
      expect(benchOutDir(outFromArgv(["--update"]))).to.equal(COMMITTED_RESULTS);
      const tmp = mkdtempSync(join(tmpdir(), "fedstake-bench-"));
      process.env.INIT_CWD = tmp;
      expect(benchOutDir(outFromArgv(["--out", "mine"]))).to.equal(join(tmp, "mine"));
      process.env.BENCH_UPDATE = "1";
      expect(benchOutDir()).to.equal(COMMITTED_RESULTS);
      expect(() => benchOutDir({ out: "x" })).to.throw(/exclusive/);
      expect(() => outFromArgv(["--outt"])).to.throw(/unknown argument "--outt"/);
    } finally {
      for (const [k, v] of [["BENCH_OUT", saved.out], ["BENCH_UPDATE", saved.update], ["INIT_CWD", saved.cwd]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
