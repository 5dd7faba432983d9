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
 * it) and the usage errors of typed values; the second `init` (its configs pass readConfig), the
 * `chain start` log filter, revert texts with named arguments, and the contracts' build on first use
 * (its error path, in a copy without contracts). Along the round: `--json` output parsed as the whole of
 * stdout, exit code 3 for steps done already or too late (job join, round finalize, vote commit, model
 * attest).
 */
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { formatUnits, getBytes, HDNodeWallet, Mnemonic, type Wallet } from "ethers";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import * as ort from "onnxruntime-node";
import { decodeArtifact, encodeArtifact } from "../worker/artifacts/index.ts";
import { attach, sendTx } from "../worker/chain/client.ts";
import { mintAndStake, startDevnet, type Devnet } from "../worker/chain/devnet.ts";
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
    // Under `npm run fedstake -- …` (npm runs it in the package's folder) a relative path means the folder it was typed in.
    const elsewhere = mkdtempSync(join(tmpdir(), "fedstake-cwd-"));
    writeFileSync(join(elsewhere, "mine.json"), JSON.stringify({ role: "bogus" }));
    const viaNpm = spawnSync("npm", ["--prefix", ROOT, "run", "--silent", "fedstake", "--", "vote", "evaluate", "mine.json"], { cwd: elsewhere, env: { ...env, PATH: `${dirname(process.execPath)}:${env.PATH}` }, encoding: "utf8" });
    expect(viaNpm.stderr, viaNpm.stderr).to.match(/node config mine\.json: role must be "worker" or "validator" \(got "bogus"\)/);
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
      [["status", "--rpc", "localhost:8545"], /^fedstake status: --rpc must be an http\(s\) or ws\(s\) URL: "localhost:8545" lacks the scheme \(http:\/\/localhost:8545\?\)/],
      [["account", "--rpc", "127.0.0.1:8545", wallets[1]!.address], /^fedstake account: --rpc must be an http\(s\) or ws\(s\) URL: "127\.0\.0\.1:8545" lacks the scheme \(http:\/\/127\.0\.0\.1:8545\?\)/],
      [["mint", "--to", "0x1234", "--amount", "1", "--json"], /^fedstake mint: --to must be an address \(0x and 40 hex digits, checksummed if mixed-case\), got "0x1234"\nusage: /],
      [["init", "worker", "--job", "1", "--deployment", "nowhere.json", "--mnist", "train"], /^fedstake init: deployment .*nowhere\.json: ENOENT/],
      [["model", "get", "--job", "1", "--out", "m", "--peer", "nonsense"], /^fedstake model get: --peer must be a multiaddr/],
      [["model", "eval", "--job", "1", "--images", "x.idx3"], /^fedstake model eval: IDX data needs both --images and --labels/],
    ];
    for (const [args, message] of bad) {
      const r = await cli(args, keyOf(0));
      expect([r.code, r.err], args.join(" ")).to.satisfy(([code, err]: [number, string]) => code === 2 && message.test(err));
    }
    // The exit codes are documented with the commands.
    expect(await ok(["help"])).to.match(/^Exit codes:\n  0  done\n  1  failed\n  2  usage error.*\n  3  too late or already done/m);
  });

  it("init prints node configs the daemons accept; chain start's log filter; reverts with named arguments; contracts built on first use", async function () {
    // A deployment file (addresses only: nothing here talks to a chain).
    const depFile = join(dir, "init-deployment.json");
    writeFileSync(depFile, JSON.stringify({ chainId: 31337, token: wallets[7]!.address, stakeManager: wallets[8]!.address, coordinator: wallets[9]!.address }));
    const keystoreFile = join(dir, "init.keystore.json");
    writeFileSync(keystoreFile, "{}");
    writeFileSync(join(dir, "held.csv"), "a,label\n0.5,1\n");
    const worker = await cli(["init", "worker", "--job", "2", "--deployment", "init-deployment.json", "--mnist", "train", "--parties", "4", "--index", "3", "--partition", "dirichlet", "--keystore", "init.keystore.json", "--epochs", "2"]);
    expect(worker.code, worker.err).to.equal(0);
    const wcfg = JSON.parse(worker.out);
    expect(wcfg).to.deep.include({ role: "worker", name: "worker-2", jobId: "2", rpc: devnet.url, deployment: depFile, keystore: keystoreFile, storage: { kind: "helia" } });
    expect(wcfg.data).to.deep.equal({ dataset: "mnist", split: "train", limit: 60000, partition: { kind: "dirichlet", alpha: 0.5 }, parties: 4, index: 3, seed: 1 });
    expect(wcfg.train).to.deep.equal({ epochs: 2, batch: 32, lr: 0.03, momentum: 0.9 });
    const validator = JSON.parse(await ok(["init", "validator", "--job", "2", "--deployment", depFile, "--csv", "held.csv", "--label", "label", "--scale", "minmax", "--name", "auditor", "--data-dir", "auditor-data", "--kubo", "http://127.0.0.1:5001"]));
    expect(validator).to.deep.include({ role: "validator", name: "auditor", dataDir: join(dir, "auditor-data"), data: { dataset: "csv", file: join(dir, "held.csv"), label: "label", scale: "minmax" }, storage: { kind: "kubo", url: "http://127.0.0.1:5001" } });
    expect(validator).to.not.have.property("train");
    // --out writes the same document to a file (and says so on stdout).
    expect(await ok(["init", "validator", "--job", "2", "--deployment", depFile, "--csv", "held.csv", "--name", "auditor", "--data-dir", "auditor-data", "--kubo", "http://127.0.0.1:5001", "--scale", "minmax", "--out", "configs/auditor.json"])).to.match(/^validator config auditor for job 2 → configs\/auditor\.json\n$/);
    expect(JSON.parse(readFileSync(join(dir, "configs/auditor.json"), "utf8"))).to.deep.equal(validator);
    // Saved anywhere, each is read by the daemons' own reader.
    const { readConfig } = await import("../worker/node/config.ts");
    for (const [name, cfg] of [["w", wcfg], ["v", validator]] as const) {
      const saved = join(mkdtempSync(join(tmpdir(), "fedstake-init-test-")), `${name}.json`);
      writeFileSync(saved, JSON.stringify(cfg));
      const read = readConfig(saved);
      expect(read.deployment).to.deep.equal(JSON.parse(readFileSync(depFile, "utf8")));
      expect(read.dataDir).to.equal(cfg.dataDir);
    }
    const initBad: [string[], RegExp][] = [
      [["init", "worker", "--job", "2", "--deployment", depFile], /^fedstake init: give the node's training data once: --images FILE --labels FILE \(IDX\), --csv FILE/],
      [["init", "sponsor", "--job", "2", "--deployment", depFile, "--mnist", "train"], /^fedstake init: ROLE must be worker or validator, got "sponsor"/],
      [["init", "worker", "--job", "2", "--deployment", depFile, "--images", "missing.idx3", "--labels", "held.csv"], /^fedstake init: --images names no file: .*missing\.idx3 does not exist/],
      [["init", "validator", "--job", "2", "--deployment", depFile, "--mnist", "test", "--lr", "0.1"], /^fedstake init: --lr is a worker's setting/],
      [["init", "worker", "--job", "2", "--deployment", depFile, "--mnist", "train", "--parties", "2", "--index", "2"], /^fedstake init: --index must be below --parties \(2\), got 2/],
      [["init", "worker", "--job", "2", "--deployment", depFile, "--mnist", "train", "--momentum", "1"], /^fedstake init: --momentum must be a number in \[0, 1\), got "1"/],
    ];
    for (const [args, message] of initBad) {
      const r = await cli(args);
      expect([r.code, r.out, r.err], args.join(" ")).to.satisfy(([code, out, err]: [number, string, string]) => code === 2 && out === "" && message.test(err));
    }
    // A deployment file with a bad address is refused with the field named (not taken for an ENS name).
    writeFileSync(join(dir, "bad-deployment.json"), JSON.stringify({ chainId: 31337, token: "0x1234", stakeManager: wallets[8]!.address, coordinator: wallets[9]!.address }));
    const badDep = await cli(["account", wallets[1]!.address, "--deployment", "bad-deployment.json"]);
    expect([badDep.code, badDep.err]).to.satisfy(([c, e]: [number, string]) => c === 2 && /^fedstake account: deployment bad-deployment\.json: token must be an address \(got "0x1234"\)/.test(e));
    // A deployment for another chain is refused before anything is read or signed (the same deployer
    // and nonces give the same addresses on every chain).
    writeFileSync(join(dir, "other-chain.json"), JSON.stringify({ chainId: 5, token: wallets[7]!.address, stakeManager: wallets[8]!.address, coordinator: wallets[9]!.address, deployBlock: 0 }));
    for (const args of [["account", wallets[1]!.address], ["mint", "--to", wallets[1]!.address, "--amount", "1"]]) {
      const r = await cli([...args, "--deployment", "other-chain.json"], keyOf(0));
      expect([r.code, r.err], args[0]).to.satisfy(([c, e]: [number, string]) => c === 1 && /the chain at http:\/\/127\.0\.0\.1:\d+ has chain id 31337, the deployment is for chain 5: wrong --rpc or wrong deployment file\n$/.test(e));
    }

    // `chain start`'s log: the accounts, the listening URL and every transaction; not the calls or the empty blocks.
    const { chainLogFilter } = await import("../scripts/cli/chain.ts");
    const keep = chainLogFilter();
    const green = (m: string) => `\x1b[32m${m}\x1b[0m`;
    const lines = [
      "Started HTTP and WebSocket JSON-RPC server at http://127.0.0.1:8545/",
      "",
      "Account #0:  0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266 (10000 ETH)",
      "Private Key: 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
      "Mined empty block #1 with base fee 875000000",
      "Mined empty block range #1 to #2",
      green("eth_blockNumber"),
      green("eth_call"),
      "  Contract call:       StakeManager#stakeOf",
      "  From:                0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
      "",
      green("eth_getLogs (12)"),
      green("eth_sendRawTransaction"),
      "  Transaction:     0xb90af407fc37e65dc5375949fc0708796c96eab6f582734a2094c5d542742623",
      "  Gas used:        21000 of 21001",
      "",
      "Mined block #20",
      green("eth_estimateGas"),
      "  Contract call:       StakeManager#stake",
      "",
      "  Error: VM Exception while processing transaction: reverted with an unrecognized custom error",
      "",
      "WARNING: something the node says",
    ];
    const kept = lines.flatMap((l) => keep(l));
    expect(kept).to.deep.equal([lines[0], lines[1], lines[2], lines[3], lines[12], lines[13], lines[14], lines[15], lines[16], lines[22]]);

    // Reverts name their arguments: phases by name, times as ISO dates, amounts in tokens, roles by name.
    const { decodeRevert, coordinatorAbi, loadArtifact } = await import("../worker/chain/client.ts");
    const { Interface, id } = await import("ethers");
    const all = new Interface([...coordinatorAbi(), ...loadArtifact("StakeManager").abi, ...loadArtifact("StakeToken").abi].filter((f) => (f as { type: string }).type === "error") as never);
    const revert = (name: string, args: unknown[]) => decodeRevert({ data: all.encodeErrorResult(name, args) });
    const a = wallets[1]!.address;
    expect(revert("WrongPhase", [3, 2])).to.equal("WrongPhase(expected: VoteCommit, now: Reveal)");
    expect(revert("WrongRound", [2, 1])).to.equal("WrongRound(expected: 2, given: 1)");
    expect(revert("StillUnbonding", [1796112173])).to.equal("StillUnbonding(until: 2026-12-01T08:02:53Z)");
    expect(revert("SlashWindowOver", [1796112173])).to.equal("SlashWindowOver(deadline: 2026-12-01T08:02:53Z)");
    expect(revert("InsufficientStake", [100n * 10n ** 18n, 1n])).to.equal("InsufficientStake(required: 100.0, actual: 0.000000000000000001)");
    expect(revert("InsufficientFreeStake", [5n * 10n ** 17n, 10n ** 19n])).to.equal("InsufficientFreeStake(free: 0.5, required: 10.0)");
    expect(revert("ERC20InsufficientBalance", [a, 0n, 10n ** 18n])).to.equal(`ERC20InsufficientBalance(sender: ${a}, balance: 0.0, needed: 1.0)`);
    expect(revert("AccessControlUnauthorizedAccount", [a, id("MINTER_ROLE")])).to.equal(`AccessControlUnauthorizedAccount(account: ${a}, neededRole: MINTER_ROLE)`);
    expect(revert("InvalidBitmap", [2, 1])).to.equal("InvalidBitmap(bitmap: 0x2, updateCount: 1)");
    expect(revert("InvalidParams", ["numRounds"])).to.equal('InvalidParams(what: "numRounds")');
    expect(revert("FutureLookup", [1796112173, 1796112170])).to.equal("FutureLookup(timepoint: 2026-12-01T08:02:53Z, currentTime: 2026-12-01T08:02:50Z)");
    expect(revert("AlreadyAttested", [])).to.equal("AlreadyAttested()");

    // Contracts are compiled on first use: in a copy of the CLI without a build (and, here, without
    // contracts to build, so that the test stays quick), the command says it compiles, then what failed.
    const copy = mkdtempSync(join(tmpdir(), "fedstake-nobuild-"));
    for (const f of ["scripts", "worker", "sim", "package.json", "hardhat.config.ts", "tsconfig.json"]) cpSync(join(ROOT, f), join(copy, f), { recursive: true });
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    const nobuild = await new Promise<Run>((res) => {
      const child = spawn(process.execPath, [join(copy, "scripts/fedstake.ts"), "account", a, "--deployment", depFile, "--json"], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout!.on("data", (d: Buffer) => (out += d));
      child.stderr!.on("data", (d: Buffer) => (err += d));
      child.on("exit", (code) => res({ code, out, err }));
    });
    expect(nobuild.out).to.equal("");
    expect(nobuild.code, nobuild.err).to.equal(1);
    expect(nobuild.err).to.match(/^fedstake: compiling the contracts \(first use: artifacts\/ has no build of them yet\) …\n/).and.match(/artifacts\/contracts\/StakeToken\.sol\/StakeToken\.json is missing after `npx hardhat build`/);
    rmSync(copy, { recursive: true, force: true });
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

    for (const [w, amount] of [[sponsor, "1000"], [vDaemon, "500"]] as const) await ok(["mint", "--to", w.address, "--amount", amount], keyOf(0));
    // --json: the whole of stdout is one JSON document, amounts as exact decimal strings in tokens.
    expect(JSON.parse(await ok(["mint", "--to", vHand.address, "--amount", "500", "--json"], keyOf(0)))).to.deep.include({ to: vHand.address, amount: "500.0", balance: "500.0" });
    await ok(["stake", "--amount", "400"], keyOf(2));
    expect(await ok(["stake", "--amount", "401", "--keystore", ks], hand)).to.match(/stake now 401\.0/);
    // Unstake 1 and try to withdraw before the unbonding period is over: the revert is decoded, its release time a date.
    const unstaked = JSON.parse(await ok(["unstake", "--amount", "1", "--keystore", ks, "--json"], hand));
    expect(unstaked).to.include({ account: vHand.address, amount: "1.0", unbonding: "1.0" });
    expect(unstaked.tx).to.match(/^0x[0-9a-f]{64}$/);
    const early = await cli(["withdraw", "--keystore", ks, "--json"], hand);
    expect([early.code, early.out]).to.deep.equal([1, ""]);
    expect(early.err).to.match(/^fedstake withdraw: withdraw would revert: StillUnbonding\(until: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)\n$/);
    expect(early.err).to.contain(`StillUnbonding(until: ${unstaked.releaseTime.replace(/\.\d{3}Z$/, "Z")})`);
    // Minting without the minter role: the role is named, the amount in tokens.
    const notMinter = await cli(["mint", "--to", vHand.address, "--amount", "1"], keyOf(1));
    expect(notMinter.err).to.match(new RegExp(`mint would revert: AccessControlUnauthorizedAccount\\(account: ${sponsor.address}, neededRole: MINTER_ROLE\\)`));
    // Workers are played by this test (ethers), with stake of their own.
    await mintAndStake(admin, dep, [...workers, noShow].map((w) => [w, 10n ** 20n] as const));

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
    // Already done: exit code 3.
    const rejoin = await cli(["job", "join", "--job", "1", "--keystore", ks], hand);
    expect([rejoin.code, rejoin.err], rejoin.err).to.satisfy(([c, e]: [number, string]) => c === 3 && /AlreadyInCommittee\(\)/.test(e));
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
      expect(table).to.match(/^bitmap 0x1 (\(.*\) )?recorded in /m);
      const badAccept = await cli(["vote", "commit", handCfg, "--keystore", ks, "--accept", "zero"], hand);
      expect(badAccept.code).to.equal(2);
      expect(badAccept.err).to.match(/--accept takes update indices like 0,2,5; got "zero"/);
      // Too early: the revert names the phases, and the hint says when the expected one opens.
      const early = await cli(["round", "finalize", "--job", "1", "--round", "1", "--keystore", ks], hand);
      expect([early.code, early.err]).to.satisfy(
        ([c, e]: [number, string]) =>
          c === 1 &&
          /WrongPhase\(expected: Finalize, now: VoteCommit\)\nround 1's Finalize opens at \S+Z at the latest \(in \d+ s; sooner once every vote is revealed\); `fedstake wait --job 1 --phase Finalize` returns then\n$/.test(e),
      );
      await ok(["vote", "commit", handCfg, "--keystore", ks], hand);
      const again = await cli(["vote", "commit", handCfg, "--keystore", ks], hand);
      expect([again.code, again.out]).to.deep.equal([3, ""]);
      expect(again.err).to.match(/already committed its vote/);
      await waitPhase(coord, Phase.VoteReveal);
      await ok(["vote", "reveal", handCfg, "--keystore", ks], hand);

      // Finalize by hand; the daemon may have been first, and then the revert says why.
      await waitPhase(coord, Phase.Finalize);
      const fin = await cli(["round", "finalize", "--job", "1", "--round", "1", "--keystore", ks, "--json"], hand);
      if (fin.code === 0) expect(JSON.parse(fin.out)).to.deep.include({ job: "1", round: 1, outcome: "decided", acceptedBitmap: "0x1" });
      else expect([fin.code, fin.err]).to.satisfy(([c, e]: [number, string]) => c === 3 && /finalizeRound would revert: WrongPhase\(expected: Finalize, now: Attest\)/.test(e));
      // Finalized already: too late, exit code 3, the phases named.
      const refin = await cli(["round", "finalize", "--job", "1", "--round", "1", "--keystore", ks, "--json"], hand);
      expect([refin.code, refin.out, refin.err]).to.deep.equal([3, "", "fedstake round finalize: finalizeRound would revert: WrongPhase(expected: Finalize, now: Attest)\n"]);
      await waitPhase(coord, Phase.Attest);
      // attestBps 60%: the round completes only when both validators attest the same CID, so the
      // daemon's aggregate and the hand validator's (another process) must be the same bytes.
      const attested = JSON.parse(await ok(["model", "attest", handCfg, "--keystore", ks, "--json"], hand));
      expect(attested).to.include({ job: "1", round: 1, updates: 1 });
      expect(attested.model).to.match(/^bafk/);
      expect(attested.tx).to.match(/^0x[0-9a-f]{64}$/);
      await waitPhase(coord, Phase.Completed);
      // Attesting again once the round is over is too late: exit code 3 (the node's log on stderr).
      const reattest = await cli(["model", "attest", handCfg, "--keystore", ks, "--round", "1", "--json"], hand);
      expect([reattest.code, reattest.out], reattest.err).to.deep.equal([3, ""]);
      expect(reattest.err).to.match(/^fedstake model attest: round 1('s attestation is over|: .*too late)/m);
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
      const claimed = JSON.parse(await ok(["claim", handCfg, "--keystore", ks, "--json"], hand));
      expect(claimed).to.include({ role: "validator", address: vHand.address, job: "1", round: 1, balanceChange: `+${handOwed}`, stake: "400.0", stakeChange: "0.0" });
      expect(claimed.steps).to.deep.include({ event: "claimed", amount: handOwed, tx: claimed.steps.find((x: { event: string }) => x.event === "claimed").tx });
      expect(claimed.steps.map((x: { event: string }) => x.event)).to.include("left-committee");
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
    expect(await ok(["status", "--job", "1"])).to.match(/^job 1 \(Completed\): round 1, phase Completed, 1 paid rounds/).and.match(/^\s+1\s+decided\s+6\s+5\s+1\s+2\s+42(\.0)?\s+(-|\d+\.\d%)\s+bafk/m);
    expect(await ok(["job", "show", "--job", "1"])).to.match(/^periods\s+\{"commit":10,"reveal":8,"voteCommit":30,"voteReveal":10,"slashWindow":120,"attest":60\}$/m);
    const burned = (await token.getFunction("balanceOf")("0x000000000000000000000000000000000000dEaD")) as bigint;
    expect(burned).to.equal(42n * 10n ** 18n);
    // The sponsor winds the job up: a completed job cannot be cancelled; what it did not pay out comes back.
    const cancel = await cli(["job", "cancel", "--job", "1"], keyOf(1));
    expect(cancel.code).to.equal(1);
    expect(cancel.err).to.match(/cancelJob would revert: JobNotActive\(jobId: 1\)/);
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
