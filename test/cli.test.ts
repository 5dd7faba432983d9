/**
 * The `fedstake` CLI against a real `hardhat node` (127.0.0.1), one round played by hand and by a
 * daemon: deploy (with a guardian), keystore, mint, stake, unstake/withdraw (a decoded revert), job
 * create (serving its spec and initial model; a job file whose round outlasts unbonding is refused),
 * job join, job show; a validator daemon and a validator voting by hand (`vote evaluate`, `vote commit`,
 * `vote reveal`, `round finalize`, `model attest`, `claim`), with six submissions the test makes itself:
 * one good update, four bad ones — an artifact that does not decode, one built on another base model,
 * one whose header names another worker, and a CID nobody serves — and a commitment never revealed.
 * The daemon must reject each bad update with its reason in its log and keep running; the rejected
 * workers and the one that did not reveal are slashed; both validators leave the committee once the
 * job is over, so that all their stake is free again. Then `account` (what a round owes before the
 * claims; a slash with its job, round and reason afterwards) and `model show|get|eval` (the attested
 * model fetched from the validator that attested it, evaluated on an IDX pair and the same samples as CSV;
 * its ONNX export run in onnxruntime gives the same loss and accuracy).
 * The first test checks help, --version (also through the file's shebang, as package.json's "bin" runs
 * it) and the usage errors of typed values.
 */
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { formatUnits, getBytes, HDNodeWallet, Mnemonic, type Wallet } from "ethers";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import * as ort from "onnxruntime-node";
import { decodeArtifact, encodeArtifact } from "../worker/artifacts/index.ts";
import { attach, sendTx } from "../worker/chain/client.ts";
import { startDevnet, type Devnet } from "../worker/chain/devnet.ts";
import { Phase, randomSalt, updateCommitment } from "../worker/chain/protocol.ts";
import type { NodeConfig } from "../worker/node/config.ts";
import { HeliaStore } from "../worker/storage/heliaStore.ts";
import { cidToChain } from "../worker/storage/store.ts";
import { paramsOf } from "../worker/training/model.ts";
import { prng } from "../worker/util/prng.ts";
import type { ModelSpec } from "../worker/training/spec.ts";

const ROOT = resolve(import.meta.dirname, "..");
const MODEL: ModelSpec = { input: [784], classes: 10, seed: 3, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 10 }] };
const PASSWORD = "correct horse battery staple";

interface Run {
  code: number | null;
  out: string;
  err: string;
}

describe("fedstake CLI: one round by hand and by a daemon, with bad submissions", function () {
  this.timeout(600_000);
  let devnet: Devnet;
  let dir: string;
  const background: ChildProcess[] = [];
  const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
  let wallets: Wallet[];
  let env: NodeJS.ProcessEnv;

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<Run> =>
    new Promise((res) => {
      const child = spawn(process.execPath, [join(ROOT, "scripts/fedstake.ts"), ...args], { cwd: dir, env: { ...env, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout!.on("data", (d: Buffer) => (out += d));
      child.stderr!.on("data", (d: Buffer) => (err += d));
      child.on("exit", (code) => res({ code, out, err }));
    });
  const ok = async (args: string[], extra: NodeJS.ProcessEnv = {}) => {
    const r = await cli(args, extra);
    expect(r.code, `fedstake ${args.join(" ")}\n${r.out}\n${r.err}`).to.equal(0);
    return r.out;
  };
  const keyOf = (i: number) => ({ FEDSTAKE_PRIVATE_KEY: wallets[i]!.privateKey });
  const waitPhase = async (coord: ReturnType<typeof attach>["coord"], phase: number) => {
    for (let i = 0; i < 600; i++) {
      const [, p] = await coord.getFunction("phaseOf")(1n);
      if (Number(p) >= phase) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`phase ${phase} never came`);
  };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "fedstake-cli-"));
    devnet = await startDevnet();
    wallets = Array.from({ length: 10 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(devnet.provider) as unknown as Wallet);
    const { FEDSTAKE_PRIVATE_KEY: _k, FEDSTAKE_KEYSTORE_PASSWORD: _p, ...clean } = process.env;
    env = { ...clean, FEDSTAKE_RPC: devnet.url, FEDSTAKE_DEPLOYMENT: join(dir, "deployment.json") };
  });

  after(function () {
    for (const c of background) if (c.exitCode === null) c.kill("SIGTERM");
    devnet?.stop();
  });

  it("prints help and the version, and names the problem for a missing key, an unknown command, a bad option or a bad value", async function () {
    // The command list is generated from the commands' real arguments and options.
    expect(await ok(["help"])).to.match(/vote evaluate CONFIG\.json/).and.match(/round finalize --job ID \[--round R\]/).and.match(/model eval --job ID/).and.match(/account \[ADDRESS\]/);
    expect(await ok(["stake", "--help"])).to.match(/--amount TOKENS/).and.match(/env:\s+FEDSTAKE_RPC/).and.match(/env:\s+FEDSTAKE_DEPLOYMENT/).and.match(/default:\s+\$FEDSTAKE_HOME\/deployment\.json/);
    // The demo's help is generated from the demo's own option table: every option, with its default.
    expect(await ok(["demo", "--help"])).to.match(/--crash VALUE/).and.match(/--aggregation VALUE .*multi_krum \(default fedavg\)/).and.match(/--slash-window VALUE .*\(default 300\)/);
    const version = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version as string;
    expect(await ok(["--version"])).to.equal(`${version}\n`);
    // As package.json's "bin" runs it: the file itself, through its #!/usr/bin/env node line.
    const bin = spawnSync(join(ROOT, "scripts/fedstake.ts"), ["--version"], { env: { ...env, PATH: `${dirname(process.execPath)}:${env.PATH}` }, encoding: "utf8" });
    expect([bin.status, bin.stdout]).to.deep.equal([0, `${version}\n`]);
    const noKey = await cli(["stake", "--amount", "1"]);
    expect(noKey.code).to.equal(1);
    expect(noKey.err).to.match(/no signing key: pass --keystore FILE .* or set FEDSTAKE_PRIVATE_KEY/);
    const unknown = await cli(["vote", "tally"]);
    expect([unknown.code, unknown.err]).to.deep.equal([2, 'fedstake vote tally: unknown command "vote tally" (fedstake help lists them)\n']);
    const badOpt = await cli(["stake", "--amonut", "1"], keyOf(0));
    expect(badOpt.code).to.equal(2);
    expect(badOpt.err).to.match(/unknown option '--amonut'/).and.match(/usage: fedstake stake --amount TOKENS/);
    // Typed values: a bad number, address, amount, id or URL is a usage error that names the option.
    const bad: [string[], RegExp][] = [
      [["deploy", "--unbonding", "1e3"], /^fedstake deploy: --unbonding must be a whole number ≥ 1, got "1e3"\nusage: fedstake deploy /],
      [["mint", "--to", "0x123", "--amount", "1"], /^fedstake mint: --to must be an address .*got "0x123"/],
      [["mint", "--to", wallets[1]!.address, "--amount", "-2"], /^fedstake mint: --amount must be a token amount like 100 or 2\.5, got "-2"/],
      [["round", "finalize", "--job", "one"], /^fedstake round finalize: --job must be a positive whole number, got "one"/],
      [["account", "0xnope"], /^fedstake account: ADDRESS must be an address .*got "0xnope"/],
      [["status", "--rpc", "localhost:8545"], /^fedstake status: --rpc must be an http\(s\) or ws\(s\) URL, got "localhost:8545"/],
      [["model", "get", "--job", "1", "--out", "m", "--peer", "nonsense"], /^fedstake model get: --peer must be a multiaddr/],
      [["model", "eval", "--job", "1", "--images", "x.idx3"], /^fedstake model eval: IDX data needs both --images and --labels/],
    ];
    for (const [args, message] of bad) {
      const r = await cli(args, keyOf(0));
      expect([r.code, r.err], args.join(" ")).to.satisfy(([code, err]: [number, string]) => code === 2 && message.test(err));
    }
  });

  it("plays a round: bad submissions are rejected with their reasons, the daemon keeps running, the manual validator votes, attests and claims", async function () {
    const [admin, sponsor, vDaemon, vHand, ...rest] = wallets as [Wallet, Wallet, Wallet, Wallet, ...Wallet[]];
    // Five workers reveal; the last account commits and never reveals.
    const workers = rest.slice(0, 5);
    const noShow = rest[5]!;
    expect(await ok(["deploy", "--unbonding", "600", "--guardian", admin.address], keyOf(0))).to.match(new RegExp(`guardian ${admin.address}`));
    const dep = JSON.parse(readFileSync(join(dir, "deployment.json"), "utf8"));
    const { coord, stake, token } = attach(dep, admin);

    // The hand validator keeps its key in an encrypted keystore.
    const ks = join(dir, "hand.keystore.json");
    expect(await ok(["keystore", "create", "--out", ks], { ...keyOf(3), FEDSTAKE_KEYSTORE_PASSWORD: PASSWORD })).to.contain(vHand.address);
    const wrong = await cli(["stake", "--amount", "1", "--keystore", ks], { FEDSTAKE_KEYSTORE_PASSWORD: "nope" });
    expect(wrong.err).to.match(/keystore .*hand\.keystore\.json: wrong password/);
    const hand = { FEDSTAKE_KEYSTORE_PASSWORD: PASSWORD };

    for (const [w, amount] of [[sponsor, "1000"], [vDaemon, "500"], [vHand, "500"]] as const) await ok(["mint", "--to", w.address, "--amount", amount], keyOf(0));
    await ok(["stake", "--amount", "400"], keyOf(2));
    expect(await ok(["stake", "--amount", "401", "--keystore", ks], hand)).to.match(/stake now 401\.0/);
    // Unstake 1 and try to withdraw before the unbonding period is over: the revert is decoded.
    expect(await ok(["unstake", "--amount", "1", "--keystore", ks], hand)).to.match(/unbonding 1\.0/);
    const early = await cli(["withdraw", "--keystore", ks], hand);
    expect(early.code).to.equal(1);
    expect(early.err).to.match(/withdraw would revert: \w+\(/);
    // Workers are played by this test (ethers), with stake of their own.
    for (const w of [...workers, noShow]) {
      await sendTx(admin, token, "mint", [w.address, 10n ** 20n]);
      await sendTx(w, attach(dep, w).token, "approve", [dep.stakeManager, 10n ** 20n]);
      await sendTx(w, attach(dep, w).stake, "stake", [10n ** 20n]);
    }

    // The sponsor creates the job from a spec file and keeps serving its spec and initial model.
    const jobFile = join(dir, "job.json");
    writeFileSync(
      jobFile,
      JSON.stringify({
        model: MODEL,
        aggregation: { kind: "fedavg" },
        // The job's own rule list: the submissions here are synthetic (a tiny random delta), judged on structure,
        // copies and an upper size bound only (a lone update's norm is compared with the validator's reference update's).
        validation: { rules: [{ rule: "duplicate" }, { rule: "norm", minRatio: 0, maxRatio: 10 }] },
        job: {
          startIn: 30,
          numRounds: 1,
          rewardPerRound: "100",
          commitPeriod: 10,
          revealPeriod: 8,
          voteCommitPeriod: 30,
          voteRevealPeriod: 10,
          slashWindow: 120,
          attestPeriod: 60,
          maxUpdates: 8,
          maxSamplesPerUpdate: "1000",
          maxValidators: 4,
          attestBps: 6000,
          minValidatorStake: "100",
          minWorkerStake: "10",
          // 8 slots × 10 ≥ the round's worker reward (80): the contract's price of filling a round with junk.
          rejectSlashAmount: "10",
          absenceSlashAmount: "20",
        },
      }),
    );
    const badJob = join(dir, "bad-job.json");
    writeFileSync(badJob, JSON.stringify({ model: MODEL, aggregation: { kind: "mean" } }));
    expect((await cli(["job", "create", "--spec", badJob], keyOf(1))).err).to.match(/aggregation\.kind must be one of "fedavg", "median", "trimmed_mean", "krum", "multi_krum", got "mean"/);
    const longJob = join(dir, "long-job.json");
    writeFileSync(longJob, JSON.stringify({ model: MODEL, job: { slashWindow: 600 } }));
    const long = await cli(["job", "create", "--spec", longJob], keyOf(1));
    expect(long.code, long.err).to.equal(2);
    expect(long.err).to.match(/must be shorter than the stake manager's unbonding period \(600 s\)/);
    const wideJob = join(dir, "wide-job.json");
    writeFileSync(wideJob, JSON.stringify({ model: MODEL, job: { maxUpdates: 70000 } }));
    expect((await cli(["job", "create", "--spec", wideJob], keyOf(1))).err).to.match(/"job\.maxUpdates" must be an integer in \[0, 2\^16\)/);
    const sponsorProc = spawn(process.execPath, [join(ROOT, "scripts/fedstake.ts"), "job", "create", "--spec", jobFile, "--ipfs-dir", join(dir, "sponsor-ipfs"), "--serve"], {
      cwd: dir,
      env: { ...env, ...keyOf(1) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    background.push(sponsorProc);
    const created = await new Promise<string>((res, rej) => {
      let out = "";
      sponsorProc.stdout!.on("data", (d: Buffer) => {
        out += d;
        if (/serving/.test(out)) res(out);
      });
      sponsorProc.on("exit", (c) => rej(new Error(`job create exited ${c}: ${out}`)));
    });
    expect(created).to.match(/job 1 created: spec bafk\w+, initial model (bafk\w+)/);
    const initialModel = CID.parse(/initial model (bafk\w+)/.exec(created)![1]!);
    await ok(["job", "join", "--job", "1"], keyOf(2));
    await ok(["job", "join", "--job", "1", "--keystore", ks], hand);
    const show = JSON.parse(await ok(["job", "show", "--job", "1", "--json"]));
    expect(show).to.include({ sponsor: sponsor.address, initialModel: initialModel.toString(), status: "Active", phase: "NotStarted", numRounds: 1, rewardPerRound: "100.0", maxSamplesPerUpdate: "1000", guardian: admin.address, paused: false });
    expect(show.periods).to.include({ slashWindow: 120, attest: 60 });
    expect(show.slash).to.deep.equal({ rejected: "10.0", missedReveal: "2.0", absence: "20.0" });
    expect(show.liveness).to.deep.equal({ maxMissedRounds: 3, maxIdleRounds: 6 });
    expect(show.committee).to.deep.equal([vDaemon.address, vHand.address]);
    // Each seat holds the job's absence bond from the member's stake.
    expect((await stake.getFunction("freeStakeOf")(vDaemon.address)) as bigint).to.equal(380n * 10n ** 18n);

    // Validators: one daemon (key in its config), one by hand (keystore), each with a held-out slice.
    const nodeCfg = (name: string, index: number, extra: Partial<NodeConfig>): string => {
      const file = join(dir, `${name}.json`);
      const cfg: Omit<NodeConfig, "privateKey"> = {
        role: "validator",
        name,
        rpc: devnet.url,
        deployment: dep,
        jobId: "1",
        dataDir: `nodes/${name}`,
        peers: [],
        data: { dataset: "mnist", split: "test", limit: 1000, partition: { kind: "iid" }, parties: 2, index, seed: 5 },
        fetchTimeoutMs: 3000,
        ...extra,
      };
      writeFileSync(file, JSON.stringify(cfg));
      return file;
    };
    const daemonCfg = nodeCfg("validator-daemon", 0, { privateKey: vDaemon.privateKey });
    const handCfg = nodeCfg("validator-hand", 1, {});
    const daemon = spawn(process.execPath, [join(ROOT, "scripts/fedstake.ts"), "validator", daemonCfg], { cwd: dir, env, stdio: ["ignore", "ignore", "inherit"] });
    background.push(daemon);

    // Five submissions, served by this test's own IPFS node, whose address each worker publishes on chain.
    const store = await HeliaStore.create({ dataDir: join(dir, "workers-ipfs") });
    try {
      const header = (w: Wallet, over = {}) => ({ kind: "update" as const, jobId: 1n, round: 1, baseModelCid: initialModel.bytes, worker: getBytes(w.address), numSamples: 100n, ...over });
      const r = prng(1);
      const delta = paramsOf(MODEL).map((p) => ({ name: p.name, shape: p.shape, data: Float32Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => (r() - 0.5) * 1e-3) }));
      const unreachable = new TextEncoder().encode("bytes nobody pins");
      const cids = [
        await store.add(encodeArtifact(header(workers[0]!), delta)),
        await store.add(new TextEncoder().encode("this is not an artifact")),
        await store.add(encodeArtifact(header(workers[2]!, { baseModelCid: CID.createV1(0x55, await sha256.digest(new Uint8Array(1))).bytes }), delta)),
        // (Naming worker 1, not worker 0: a copy of worker 0's artifact would be refused as a duplicate digest.)
        await store.add(encodeArtifact(header(workers[3]!, { worker: getBytes(workers[1]!.address) }), delta)),
        CID.createV1(0x55, await sha256.digest(unreachable)),
      ];
      const salts = cids.map(() => randomSalt());
      for (const w of workers) await sendTx(w, attach(dep, w).stake, "setEndpoint", [Buffer.from(store.multiaddrs().join("\n"))]);
      await waitPhase(coord, Phase.Commit);
      for (const [i, w] of workers.entries()) {
        const { digest, codec } = cidToChain(cids[i]!);
        await sendTx(w, attach(dep, w).coord, "commitUpdate", [1n, 1n, updateCommitment({ jobId: 1n, round: 1n, worker: w.address, cidDigest: digest, cidCodec: codec, numSamples: 100n, salt: salts[i]! })]);
      }
      const hidden = cidToChain(CID.createV1(0x55, await sha256.digest(new TextEncoder().encode("never revealed"))));
      await sendTx(noShow, attach(dep, noShow).coord, "commitUpdate", [1n, 1n, updateCommitment({ jobId: 1n, round: 1n, worker: noShow.address, cidDigest: hidden.digest, cidCodec: hidden.codec, numSamples: 100n, salt: randomSalt() })]);
      await waitPhase(coord, Phase.Reveal);
      for (const [i, w] of workers.entries()) {
        const { digest, codec } = cidToChain(cids[i]!);
        await sendTx(w, attach(dep, w).coord, "revealUpdate", [1n, 1n, digest, codec, 100n, salts[i]!]);
      }

      // The hand validator: evaluate (a table with every reason), commit, reveal.
      await waitPhase(coord, Phase.VoteCommit);
      const table = await ok(["vote", "evaluate", handCfg, "--keystore", ks], hand);
    expect(table).to.match(/^\s+index\s+worker\s+maxSimilarity\s+norm\s+normRatio\s+vote\s+reason$/m);
    expect(table).to.match(/^\s+0\s+0x\w+\s.*\saccept\s+accepted by duplicate, norm$/m);
      expect(table).to.match(/^\s+1\s.*reject\s+malformed artifact: [A-Z_]+/m);
      expect(table).to.match(/^\s+2\s.*reject\s+header names another base model/m);
      expect(table).to.match(/^\s+3\s.*reject\s+header names worker 0x/m);
      expect(table).to.match(/^\s+4\s.*reject\s+unavailable: /m);
      expect(table).to.match(/bitmap 0x1 recorded/);
      const badAccept = await cli(["vote", "commit", handCfg, "--keystore", ks, "--accept", "zero"], hand);
      expect(badAccept.code).to.equal(2);
      expect(badAccept.err).to.match(/--accept takes update indices like 0,2,5; got "zero"/);
      await ok(["vote", "commit", handCfg, "--keystore", ks], hand);
      const again = await cli(["vote", "commit", handCfg, "--keystore", ks], hand);
      expect(again.err).to.match(/already committed its vote/);
      await waitPhase(coord, Phase.VoteReveal);
      await ok(["vote", "reveal", handCfg, "--keystore", ks], hand);

      // Finalize by hand; the daemon may have been first, and then the revert says why.
      await waitPhase(coord, Phase.Finalize);
      const fin = await cli(["round", "finalize", "--job", "1", "--round", "1", "--keystore", ks], hand);
      if (fin.code === 0) expect(fin.out).to.match(/round 1 finalized: decided, accepted bitmap 0x1/);
      else expect(fin.err).to.match(/finalizeRound would revert: WrongPhase\(/);
      await waitPhase(coord, Phase.Attest);
      // attestBps 60%: the round completes only when both validators attest the same CID, so the
      // daemon's aggregate and the hand validator's (another process) must be the same bytes.
      await ok(["model", "attest", handCfg, "--keystore", ks], hand);
      await waitPhase(coord, Phase.Completed);
      // Before anyone claims, `account` shows what the round owes: the good worker its update's reward, the hand validator its vote reward.
      const reward = formatUnits((await coord.getFunction("roundResult")(1n, 1n)).workerRewardEach, 18);
      const owed0 = JSON.parse(await ok(["account", workers[0]!.address, "--json"]));
      expect(owed0.jobs).to.deep.equal([{ job: "1", committeeMember: false, voteRewardsOwed: "0.0", unclaimedUpdates: [{ round: 1, index: 0, amount: reward }], updateRewardsOwed: reward, claimed: "0.0" }]);
      expect(owed0).to.include({ stake: "100.0", balance: "0.0" });
      // Without ADDRESS: the key's account (here its keystore's).
      const handAccount = JSON.parse(await ok(["account", "--keystore", ks, "--json"], hand));
      const handOwed = formatUnits((await coord.getFunction("memberOf")(1n, vHand.address)).owed, 18);
      expect(handOwed).to.not.equal("0.0");
      expect(handAccount).to.include({ address: vHand.address, stake: "400.0", held: "20.0" });
      expect(handAccount.unbonding).to.include({ amount: "1.0" });
      expect(handAccount.unbonding.releaseTime).to.match(/^\d{4}-\d\d-\d\dT/);
      expect(handAccount.jobs).to.deep.equal([{ job: "1", committeeMember: true, voteRewardsOwed: handOwed, unclaimedUpdates: [], updateRewardsOwed: "0.0", claimed: "0.0" }]);
      // The hand validator settles: slashes still open, its vote reward, and it leaves the committee.
      await ok(["claim", handCfg, "--keystore", ks], hand);
      expect((await coord.getFunction("memberOf")(1n, vHand.address)).position).to.equal(0n);
      // The good worker claims its reward, which releases the stake its commitment locked.
      await sendTx(workers[0]!, attach(dep, workers[0]!).coord, "claimUpdateReward", [1n, 1n, 0n]);
      expect((await stake.getFunction("freeStakeOf")(workers[0]!.address)) as bigint).to.equal(10n ** 20n);
    } finally {
      await store.stop();
    }

    const status = JSON.parse(await ok(["status", "--job", "1", "--json"]));
    expect(status).to.include({ phase: "Completed", status: "Completed" });
    expect(status.rounds[0].outcome).to.equal("decided");
    expect(status.rounds[0].committed).to.equal(6);
    expect(status.rounds[0].updates.map((u: { accepted: boolean }) => u.accepted)).to.deep.equal([true, false, false, false, false]);
    expect(status.rounds[0].votes.map((v: { bitmap: string }) => v.bitmap)).to.deep.equal(["0x1", "0x1"]);
    expect(status.rounds[0].model).to.match(/^bafk/);
    expect(((await token.getFunction("balanceOf")(vHand.address)) as bigint) > 0n, "hand validator paid").to.equal(true);

    // The daemon logged every decision with its reason, voted, attested, and is still running.
    const log = join(dir, "nodes/validator-daemon/events.jsonl");
    expect(existsSync(log)).to.equal(true);
    const events = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const reason = (i: number) => events.find((e) => e.event === "decision" && e.index === i)?.reason as string;
    expect(reason(0)).to.match(/^accepted by duplicate, norm$/);
    expect(reason(1)).to.match(/^malformed artifact: [A-Z_]+/);
    expect(reason(2)).to.match(/^header names another base model/);
    expect(reason(3)).to.match(/^header names worker 0x/);
    expect(reason(4)).to.match(/^unavailable: /);
    expect(events.map((e) => e.event)).to.include.members(["vote-committed", "vote-revealed", "attested"]);
    expect(daemon.exitCode, "validator daemon still running").to.equal(null);
    // Supermajority-rejected workers and the one that never revealed are slashed by the validators'
    // settle step; the daemon leaves the committee once the job is over.
    const stakeOf = async (a: string) => (await stake.getFunction("stakeOf")(a)) as bigint;
    let slashed: boolean[] = [];
    for (let i = 0; i < 60; i++) {
      slashed = await Promise.all([...workers, noShow].map(async (w) => (await stakeOf(w.address)) < 10n ** 20n));
      if (slashed.filter(Boolean).length === 5 && ((await coord.getFunction("committeeOf")(1n)) as string[]).length === 0) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(slashed).to.deep.equal([false, true, true, true, true, true]);
    expect(await stakeOf(workers[1]!.address)).to.equal(90n * 10n ** 18n); // rejectSlashAmount 10
    expect(await stakeOf(noShow.address)).to.equal(98n * 10n ** 18n); // missedRevealSlashAmount 2
    expect([...((await coord.getFunction("committeeOf")(1n)) as string[])]).to.deep.equal([]);
    for (const v of [vDaemon, vHand]) expect((await stake.getFunction("freeStakeOf")(v.address)) as bigint, v.address).to.equal(await stakeOf(v.address));
    const after = readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(after.some((e) => e.event === "left-committee"), "daemon left the committee").to.equal(true);
    // Slashes are burned, all of them; the status shows each with its reason.
    const final = JSON.parse(await ok(["status", "--job", "1", "--json"]));
    expect(final.rounds[0].slashes.map((x: { reason: string }) => x.reason).sort()).to.deep.equal([
      "missed update reveal",
      "rejected update",
      "rejected update",
      "rejected update",
      "rejected update",
    ]);
    // The same as text: one row per round, with its outcome and what was slashed.
    expect(await ok(["status", "--job", "1"])).to.match(/^job 1 \(Completed\): round 1, phase Completed, 1 paid rounds/).and.match(/^\s+1\s+decided\s+6\s+5\s+1\s+2\s+42\.0\s+(-|\d+\.\d%)\s+bafk/m);
    expect(await ok(["job", "show", "--job", "1"])).to.match(/^periods\s+\{"commit":10,"reveal":8,"voteCommit":30,"voteReveal":10,"slashWindow":120,"attest":60\}$/m);
    const burned = (await token.getFunction("balanceOf")("0x000000000000000000000000000000000000dEaD")) as bigint;
    expect(burned).to.equal(42n * 10n ** 18n);
    // The sponsor winds the job up: a completed job cannot be cancelled; what it did not pay out comes back.
    const cancel = await cli(["job", "cancel", "--job", "1"], keyOf(1));
    expect(cancel.code).to.equal(1);
    expect(cancel.err).to.match(/cancelJob would revert: JobNotActive\(1\)/);
    // (Unpayable shares and rounding stay in the pool; with nothing left the contract says so.)
    const left = JSON.parse(await ok(["job", "show", "--job", "1", "--json"])).rewardPool as string;
    if (left === "0.0") expect((await cli(["job", "withdraw", "--job", "1"], keyOf(1))).err).to.match(/withdrawRemainder would revert: NothingToClaim/);
    else expect(await ok(["job", "withdraw", "--job", "1"], keyOf(1))).to.match(new RegExp(`^withdrew ${left.replace(".", "\\.")} from job 1's pool: tx 0x`));
    expect(JSON.parse(await ok(["job", "show", "--job", "1", "--json"])).rewardPool).to.equal("0.0");

    // `account`: a rejected worker's slash (amount, job, round, reason), the good worker's claimed reward.
    const rejected = JSON.parse(await ok(["account", workers[1]!.address, "--json"]));
    expect(rejected).to.include({ stake: "90.0", freeStake: "90.0" });
    expect(rejected.slashes.map(({ tx: _, ...x }: { tx: string }) => x)).to.deep.equal([{ job: "1", round: 1, reason: "rejected update", amount: "10.0" }]);
    expect(await ok(["account", workers[1]!.address])).to.match(/^\s+slashed 10\.0 in job 1 round 1: rejected update \(tx 0x\w+\)$/m);
    const paid = JSON.parse(await ok(["account", workers[0]!.address, "--json"]));
    expect(paid.jobs[0]).to.include({ updateRewardsOwed: "0.0", claimed: paid.balance });
    expect(paid.slashes).to.deep.equal([]);

    // `model show|get|eval`: the attested model, fetched from the validator daemon that attested it (the
    // hand validator's node is gone), the spec from the sponsor, both dialled at the endpoints on chain.
    const shown = JSON.parse(await ok(["model", "show", "--job", "1", "--json"]));
    expect(shown).to.include({ job: "1", round: 1, outcome: "decided", attested: true, model: final.rounds[0].model, base: initialModel.toString() });
    expect(shown.attestations.map((a: { cid: string; validators: string[] }) => [a.cid, [...a.validators].sort()])).to.deep.equal([[final.rounds[0].model, [vDaemon.address, vHand.address].sort()]]);
    expect(await ok(["model", "show", "--job", "1", "--round", "1"])).to.match(new RegExp(`^job 1 round 1 \\(decided\\): model ${final.rounds[0].model} \\(attested\\); base ${initialModel}`));
    const tooFar = await cli(["model", "show", "--job", "1", "--round", "2"]);
    expect(tooFar.code).to.equal(2);
    expect(tooFar.err).to.match(/^fedstake model show: --round 2: job 1 has opened 1 round so far\n/);
    const modelFile = join(dir, "model.fstk");
    const onnxFile = join(dir, "model.onnx");
    expect(await ok(["model", "get", "--job", "1", "--out", modelFile, "--onnx", onnxFile]))
      .to.match(new RegExp(`^round 1 model ${final.rounds[0].model} \\(4 tensors, \\d+ bytes\\) → `))
      .and.match(/^ONNX inference graph \(input \[N,784\] → logits \[N,10\], \d+ bytes\) → .*model\.onnx$/m);
    const got = decodeArtifact(readFileSync(modelFile));
    expect(got.header.kind).to.equal("model");
    expect(got.tensors.map((t) => [t.name, t.shape])).to.deep.equal(paramsOf(MODEL).map((p) => [p.name, p.shape]));
    // Local data the model never saw: an IDX pair and the same samples as CSV (features, then the label column).
    const n = 50;
    const r = prng(9);
    const pixels = Uint8Array.from({ length: n * 784 }, () => Math.floor(r() * 256));
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    const idx = (magic: number, dims: number[], body: Uint8Array) => {
      const head = Buffer.alloc(4 + 4 * dims.length);
      head.writeUInt32BE(magic);
      dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
      return Buffer.concat([head, body]);
    };
    writeFileSync(join(dir, "images.idx3"), idx(0x803, [n, 28, 28], pixels));
    writeFileSync(join(dir, "labels.idx1"), idx(0x801, [n], labels));
    const header = [...Array.from({ length: 784 }, (_, i) => `p${i}`), "digit"].join(",");
    const rows = Array.from({ length: n }, (_, i) => [...Array.from(pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255), labels[i]].join(","));
    writeFileSync(join(dir, "samples.csv"), [header, ...rows].join("\n") + "\n");
    const onIdx = JSON.parse(await ok(["model", "eval", "--job", "1", "--images", join(dir, "images.idx3"), "--labels", join(dir, "labels.idx1"), "--json"]));
    expect(onIdx).to.include({ job: "1", round: 1, model: final.rounds[0].model, samples: n });
    expect(onIdx.loss).to.be.a("number").and.satisfy(Number.isFinite);
    expect(onIdx.accuracy).to.be.within(0, 1);
    // The ONNX export, in a stock onnxruntime, on the same samples: the same loss and accuracy.
    const session = await ort.InferenceSession.create(readFileSync(onnxFile));
    const input = new ort.Tensor("float32", Float32Array.from(pixels, (v) => v / 255), [n, 784]);
    const logits = (await session.run({ input })).logits!.data as Float32Array;
    let lossSum = 0;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * 10, (i + 1) * 10));
      const max = Math.max(...row);
      lossSum += Math.log(row.reduce((a, o) => a + Math.exp(o - max), 0)) + max - row[labels[i]!]!;
      if (row.indexOf(max) === labels[i]) correct++;
    }
    expect(Math.abs(lossSum / n - onIdx.loss)).to.be.below(1e-4);
    expect(correct / n).to.equal(onIdx.accuracy);
    const onCsv = await ok(["model", "eval", "--job", "1", "--csv", join(dir, "samples.csv"), "--label", "digit"]);
    const m = /^round 1 model \w+ on .*samples\.csv \(50 samples\): loss (\d+\.\d{4}), accuracy (\d+\.\d\d) %$/m.exec(onCsv);
    expect(m, onCsv).to.not.equal(null);
    // The same samples, the same model: the same loss and accuracy.
    expect([Number(m![1]), Number(m![2])]).to.deep.equal([Number(onIdx.loss.toFixed(4)), Number((onIdx.accuracy * 100).toFixed(2))]);
    writeFileSync(join(dir, "narrow.csv"), "a,b,c,label\n0,1,2,3\n");
    const narrow = await cli(["model", "eval", "--job", "1", "--csv", join(dir, "narrow.csv")]);
    expect(narrow.code, narrow.err).to.equal(2);
    expect(narrow.err).to.match(/narrow\.csv .*: 3 values per sample, the model takes 784 \(spec\.input \[784\]\)/);
  });
});
