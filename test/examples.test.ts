/**
 * The examples in examples/ against a live local network, so that they cannot rot, on each local node
 * worker/chain/devnet.ts runs (127.0.0.1, a port the OS picks): `hardhat node`, and Anvil, whose blocks
 * batch transactions as public chains do; the sponsor serving the spec and the initial
 * model (`fedstake job create --serve`), and a 3-round MNIST job with
 * - three validators: the bash + jq example (`fedstake validator` with examples/jq-validator's config and
 *   its `decide` program, rule.sh), the TypeScript example (examples/ts-validator/validator.ts, whose
 *   `decide` goes through `runValidator`) and one with the built-in policy (`fedstake validator`);
 * - three workers: the example started from code (examples/worker/worker.ts, `runWorker` with a config
 *   object) and two `fedstake worker` daemons, one of which trains on only 200 samples, which the jq
 *   rule refuses (it wants 400).
 * Each round, both example validators must have committed and revealed exactly the bitmap their rule
 * answered (their events.jsonl `hook-decided` line against the chain's VoteRevealed), and that answer
 * must be their rule's: for the jq rule every revealed update with at least 400 samples, for the
 * TypeScript rule every revealed update (all honest). The example worker must have committed and
 * revealed in every round. The TypeScript examples import "fedstake" as an installed package would;
 * here the "fedstake-source" condition (package.json "exports") resolves it to worker/index.ts.
 * The jq validator needs `jq` (and bash) on PATH; without it, its test is pending. The TypeScript
 * examples are also type-checked (examples/tsconfig.json), since `npm test`'s tsc does not see them.
 */
import { expect } from "chai";
import { NodeProcesses, removeTree } from "./helpers/processes.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HDNodeWallet, Mnemonic, type Wallet } from "ethers";
import { queryEvents } from "../worker/chain/events.ts";
import { attach, deployProtocol, sendTx, type Deployment } from "../worker/chain/client.ts";
import { DEVNET_NODES, mintAndStake, startDevnet, type Devnet } from "../worker/chain/devnet.ts";
import { bitmapOf, Outcome, Phase } from "../worker/chain/protocol.ts";
import type { NodeConfig } from "../worker/node/config.ts";
import type { ModelSpec } from "../worker/training/spec.ts";

const ROOT = resolve(import.meta.dirname, "..");
const EXAMPLES = join(ROOT, "examples");
const MODEL: ModelSpec = { input: [784], classes: 10, seed: 3, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 10 }] };
const ONE = 10n ** 18n;
const ROUNDS = 3;
const HAVE_JQ = spawnSync("jq", ["--version"]).status === 0 && spawnSync("bash", ["--version"]).status === 0;

type Event = { event: string; round?: string; accepted?: number[]; [k: string]: unknown };

describe("examples/: the TypeScript examples", function () {
  it("type-check against the library's declared API (examples/tsconfig.json)", function () {
    const r = spawnSync(join(ROOT, "node_modules/.bin/tsc"), ["--noEmit", "-p", join(EXAMPLES, "tsconfig.json")], { cwd: ROOT, encoding: "utf8" });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
  });
});

for (const node of DEVNET_NODES) describe(`examples/: a bash + jq validator, a TypeScript validator and a worker started from code, on a live network (${node})`, function () {
  this.timeout(360_000);
  let devnet: Devnet;
  let dir: string;
  let dep: Deployment;
  let coord: ReturnType<typeof attach>["coord"];
  const jobId = 1n;
  let procs: NodeProcesses;
  /** Each node's name → its data directory (where its events.jsonl is) and address. */
  const nodes = new Map<string, { dataDir: string; address: string }>();

  const events = (name: string): Event[] => {
    const f = join(nodes.get(name)!.dataDir, "events.jsonl");
    return existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Event) : [];
  };
  const tail = (name: string) => procs.tail(name);
  /**
   * A TypeScript example, importing "fedstake" from this checkout's sources; with FEDSTAKE_EXAMPLES_DIST=1,
   * from the compiled package in dist/ as an installed one would (`npm run build:lib` first).
   */
  const example = (name: string, file: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir) =>
    procs.start(name, [...(process.env.FEDSTAKE_EXAMPLES_DIST ? [] : ["--conditions=fedstake-source"]), join(EXAMPLES, file), ...args], env, cwd);
  /** An example's own config file with this network's settings: what an operator edits before running it. */
  const fromExample = (file: string, name: string, w: Wallet, over: Partial<NodeConfig> = {}): NodeConfig => {
    const cfg = { ...(JSON.parse(readFileSync(join(EXAMPLES, file), "utf8")) as NodeConfig), name, privateKey: w.privateKey, rpc: devnet.url, deployment: dep, jobId: String(jobId), dataDir: join(dir, "nodes", name), fetchTimeoutMs: 5000, ...over };
    nodes.set(name, { dataDir: cfg.dataDir, address: w.address });
    return cfg;
  };
  const write = (name: string, cfg: unknown) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(cfg, null, 2));
    return file;
  };
  const revealed = async (round: bigint) =>
    (await queryEvents(coord, coord.filters.UpdateRevealed!(jobId, round), dep.deployBlock ?? 0))
      .map((e) => ({ index: Number(e.args.index), worker: e.args.worker as string, numSamples: BigInt(e.args.numSamples) }))
      .sort((a, b) => a.index - b.index);
  const votes = async (round: bigint) =>
    new Map((await queryEvents(coord, coord.filters.VoteRevealed!(jobId, round), dep.deployBlock ?? 0)).map((e) => [e.args.validator as string, BigInt(e.args.acceptBitmap)]));

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "fedstake-examples-"));
    devnet = await startDevnet({ node });
    procs = new NodeProcesses(dir, devnet.url);
    const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
    const wallets = Array.from({ length: 8 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(devnet.provider) as unknown as Wallet);
    const [admin, sponsor, w0, w1, wEx, vJq, vTs, vBuiltIn] = wallets as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet];
    dep = await deployProtocol(admin, { unbondingPeriod: 3600 });
    writeFileSync(join(dir, "deployment.json"), JSON.stringify(dep));
    ({ coord } = attach(dep, devnet.provider));
    const { token } = attach(dep, admin);
    await sendTx(admin, token, "mint", [sponsor.address, 1_000n * ONE]);
    await mintAndStake(admin, dep, ([[w0, 100n], [w1, 100n], [wEx, 100n], [vJq, 1_000n], [vTs, 1_000n], [vBuiltIn, 1_000n]] as const).map(([w, a]) => [w, a * ONE] as const));

    const jobFile = join(dir, "job.json");
    writeFileSync(
      jobFile,
      JSON.stringify({
        model: MODEL,
        aggregation: { kind: "fedavg" },
        // The built-in policy: copies and a loose norm bound (the example validators bring their own rules).
        validation: { rules: [{ rule: "duplicate" }, { rule: "norm", minRatio: 0, maxRatio: 10 }] },
        job: {
          // Room for the sponsor's node to start and the validators to join before round 1 on a busy machine.
          startIn: 75,
          numRounds: ROUNDS,
          rewardPerRound: "30",
          // Phases close once everyone has acted; these windows are the fallback.
          commitPeriod: 40,
          revealPeriod: 15,
          voteCommitPeriod: 30,
          voteRevealPeriod: 15,
          slashWindow: 120,
          attestPeriod: 30,
          maxUpdates: 8,
          // 3 × 10 ≥ the round's worker reward (30 less the validators' 20 %).
          minUpdates: 3,
          maxSamplesPerUpdate: "1000",
          maxValidators: 4,
          minValidatorStake: "100",
          minWorkerStake: "10",
          rejectSlashAmount: "10",
          missedRevealSlashAmount: "10",
          absenceSlashAmount: "10",
        },
      }),
    );
    procs.cli("sponsor", ["job", "create", "--spec", jobFile, "--ipfs-dir", join(dir, "sponsor-ipfs"), "--serve"], { FEDSTAKE_PRIVATE_KEY: sponsor.privateKey });
    await procs.until("the sponsor's job", async () => /serving/.test(readFileSync(join(dir, "sponsor.out"), "utf8")), 90_000);
    const committee = HAVE_JQ ? [vJq, vTs, vBuiltIn] : [vTs, vBuiltIn];
    for (const v of committee) await sendTx(v, attach(dep, v).coord, "joinCommittee", [jobId]);
    // A member that joins after round 1 opened votes from round 2 only (the contract's eligibility).
    const [, phaseAtJoin] = await coord.getFunction("phaseOf")(jobId);
    expect(Number(phaseAtJoin), "the committee joined before round 1 opened (a slower machine needs a later startIn)").to.equal(Phase.NotStarted);

    // a. The bash + jq validator: the example's config, its rule.sh named relative to the example's folder.
    if (HAVE_JQ) {
      const jq = fromExample("jq-validator/validator.json", "validator-jq", vJq);
      const command = jq.decide!.command;
      procs.cli("validator-jq", ["validator", write("validator-jq", { ...jq, decide: { ...jq.decide, command: [join(EXAMPLES, "jq-validator", command[0]!), ...command.slice(1)] } })]);
    }
    // b. The TypeScript validator, run as its file says: `node validator.ts CONFIG`.
    example("validator-ts", "ts-validator/validator.ts", [write("validator-ts", fromExample("ts-validator/validator.json", "validator-ts", vTs))]);
    // The built-in policy, for comparison.
    const builtIn = fromExample("ts-validator/validator.json", "validator-builtin", vBuiltIn, { data: { dataset: "mnist", split: "test", offset: 2000, limit: 500, partition: { kind: "iid" }, parties: 1, index: 0, seed: 5 } });
    procs.cli("validator-builtin", ["validator", write("validator-builtin", builtIn)]);

    // The workers start once the validators are up (fewer processes starting at once on a small machine).
    const validators = [...nodes.keys()];
    await procs.until("the validators' start", async () => validators.every((n) => events(n).some((e) => e.event === "started")), 90_000);

    // c. The worker started from code, in a folder of its own (its config names dataDir "worker-data").
    const exDir = join(dir, "worker-example");
    mkdirSync(exDir);
    nodes.set("worker-example", { dataDir: join(exDir, "worker-data"), address: wEx.address });
    example("worker-example", "worker/worker.ts", [String(jobId)], { FEDSTAKE_PRIVATE_KEY: wEx.privateKey }, exDir);
    // Two more workers; worker-small trains on 200 samples, fewer than the jq rule's 400.
    const worker = (name: string, w: Wallet, data: NodeConfig["data"]) => {
      const cfg: NodeConfig = { role: "worker", name, privateKey: w.privateKey, rpc: devnet.url, deployment: dep, jobId: String(jobId), dataDir: join(dir, "nodes", name), peers: [], data, train: { epochs: 1, batch: 32, lr: 0.05, momentum: 0.9, threads: 1 } };
      nodes.set(name, { dataDir: cfg.dataDir, address: w.address });
      procs.cli(name, ["worker", write(name, cfg)]);
    };
    worker("worker-0", w0, { dataset: "mnist", split: "train", limit: 1800, partition: { kind: "iid" }, parties: 3, index: 0, seed: 11 });
    worker("worker-small", w1, { dataset: "mnist", split: "train", offset: 2000, limit: 200, partition: { kind: "iid" }, parties: 1, index: 0, seed: 11 });

    await procs.until(
      `round ${ROUNDS} decided`,
      async () => {
        const [round] = await coord.getFunction("phaseOf")(jobId);
        return BigInt(round) >= BigInt(ROUNDS) && Number((await coord.getFunction("roundResult")(jobId, BigInt(ROUNDS))).outcome) !== Outcome.Pending;
      },
      240_000,
      500,
    );
  });

  after(async function () {
    this.timeout(30_000);
    await procs?.stop();
    devnet?.stop();
    if (dir) await removeTree(dir);
  });

  /** The rounds played: the hook's answer each round, what the chain has the validator reveal, and the round's updates. */
  const rounds = async (name: string) => {
    const out = [];
    for (let r = 1n; r <= BigInt(ROUNDS); r++) {
      const hook = events(name).filter((e) => e.event === "hook-decided" && e.round === String(r));
      out.push({ round: r, hook, failed: events(name).filter((e) => e.event === "hook-failed" && e.round === String(r)), vote: (await votes(r)).get(nodes.get(name)!.address), updates: await revealed(r) });
    }
    return out;
  };

  it("the bash + jq validator votes each round for exactly what rule.sh answered: every update of at least 400 samples", async function () {
    if (!HAVE_JQ) this.skip();
    for (const { round, hook, failed, vote, updates } of await rounds("validator-jq")) {
      expect(failed, `round ${round}: the hook failed\n${tail("validator-jq")}`).to.deep.equal([]);
      expect(hook, `round ${round}: one hook-decided event\n${tail("validator-jq")}`).to.have.length(1);
      const expected = updates.filter((u) => u.numSamples >= 400n).map((u) => u.index);
      expect(updates.length, `round ${round}: every worker revealed`).to.equal(3);
      expect(expected, "the 200-sample update is left out").to.have.length(2);
      expect(hook[0]!.accepted, `round ${round}: rule.sh's answer`).to.deep.equal(expected);
      expect(vote, `round ${round}: the revealed vote`).to.equal(bitmapOf(expected));
    }
  });

  it("the TypeScript validator votes each round for exactly what its decide() returned: every (honest) update", async function () {
    for (const { round, hook, failed, vote, updates } of await rounds("validator-ts")) {
      expect(failed, `round ${round}: the hook failed\n${tail("validator-ts")}`).to.deep.equal([]);
      expect(hook, `round ${round}: one hook-decided event\n${tail("validator-ts")}`).to.have.length(1);
      expect(hook[0]!.accepted, `round ${round}: decide()'s answer`).to.deep.equal(updates.map((u) => u.index));
      expect(vote, `round ${round}: the revealed vote`).to.equal(bitmapOf(hook[0]!.accepted!));
    }
    // The built-in validator voted too, without a hook.
    const builtIn = await rounds("validator-builtin");
    for (const { round, hook, vote } of builtIn) {
      expect(hook, `round ${round}`).to.deep.equal([]);
      // (A boolean: the bigint matchers cannot print an undefined.)
      expect(vote !== undefined, `round ${round}: the built-in validator revealed a vote\n${tail("validator-builtin")}\n${JSON.stringify(events("validator-builtin").filter((e) => e.round === String(round) && e.event !== "decision"))}`).to.equal(true);
    }
  });

  it("the worker started from code commits and reveals an update every round", async function () {
    const address = nodes.get("worker-example")!.address;
    for (let r = 1n; r <= BigInt(ROUNDS); r++) {
      expect((await revealed(r)).map((u) => u.worker), `round ${r}\n${tail("worker-example")}`).to.include(address);
      expect(events("worker-example").filter((e) => e.event === "committed" && e.round === String(r)), `round ${r}`).to.have.length(1);
    }
  });
});
