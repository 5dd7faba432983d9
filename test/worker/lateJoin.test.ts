/**
 * A late joiner on a real network (loopback only): a `hardhat node` (worker/chain/devnet.ts, as the demo
 * and test/cli.test.ts start it), the sponsor serving the spec and the initial model (`fedstake job create
 * --serve`), 2 validator and 2 worker daemons (`fedstake validator|worker CONFIG.json`, one process each,
 * each with its own key and IPFS node) playing rounds 1 and 2 of a tiny MNIST job; then a third worker
 * daemon, whose config names no `peers`, starts once round 2's commit phase is over and joins at round 3.
 * Round 3's base is round 2's aggregate, which only the validators that attested it hold: the late
 * worker can find it only through the chain (worker/node/providers.ts: the attesting validators' published
 * endpoints). It must commit and reveal an update in round 3 built on that base (the artifact header's
 * baseModelCid equals roundResult(job, 3).baseDigest), have it accepted, and never time out fetching it.
 */
import { expect } from "chai";
import { NodeProcesses, removeTree } from "../helpers/processes.ts";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HDNodeWallet, Mnemonic, type Wallet, type EventLog } from "ethers";
import { CID } from "multiformats/cid";
import { decodeArtifact } from "../../worker/artifacts/index.ts";
import { attach, deployProtocol, revealedUpdates, sendTx, type Deployment } from "../../worker/chain/client.ts";
import { mintAndStake, startDevnet, type Devnet } from "../../worker/chain/devnet.ts";
import { hasBit, Outcome, Phase } from "../../worker/chain/protocol.ts";
import type { NodeConfig } from "../../worker/node/config.ts";
import { dialPublished } from "../../worker/node/providers.ts";
import { stateKey } from "../../worker/node/state.ts";
import { HeliaStore } from "../../worker/storage/heliaStore.ts";
import { cidFromChain } from "../../worker/storage/store.ts";
import type { ModelSpec } from "../../worker/training/spec.ts";

const MODEL: ModelSpec = { input: [784], classes: 10, seed: 3, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 10 }] };
const ONE = 10n ** 18n;
const ZERO32 = "0x" + "0".repeat(64);

type Event = { event: string; round?: string; message?: string; [k: string]: unknown };

describe("a worker joining at round 3 trains on round 3's base, found through the chain", function () {
  this.timeout(300_000);
  let devnet: Devnet;
  let dir: string;
  let dep: Deployment;
  let coord: ReturnType<typeof attach>["coord"];
  let stake: ReturnType<typeof attach>["stake"];
  let wallets: Wallet[];
  let procs: NodeProcesses;
  const jobId = 1n;
  let late: Wallet;
  let lateCfg: NodeConfig;
  let lateStartedIn: { round: bigint; phase: number };

  const events = (name: string): Event[] => {
    const f = join(dir, "nodes", name, "events.jsonl");
    return existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Event) : [];
  };
  const phaseOf = async () => {
    const [round, phase] = await coord.getFunction("phaseOf")(jobId);
    return { round: BigInt(round), phase: Number(phase) };
  };
  const nodeConfig = (name: string, role: NodeConfig["role"], w: Wallet, data: NodeConfig["data"]): NodeConfig => {
    const cfg: NodeConfig = {
      role,
      name,
      privateKey: w.privateKey,
      rpc: devnet.url,
      deployment: dep,
      jobId: jobId.toString(),
      dataDir: join(dir, "nodes", name),
      // No configured peers, for any node: each finds the spec, the base models and the updates through the chain.
      peers: [],
      data,
      ...(role === "worker" ? { train: { epochs: 1, batch: 32, lr: 0.05, momentum: 0.9, threads: 1 } } : { fetchTimeoutMs: 5000 }),
    };
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(cfg));
    return cfg;
  };
  /** One third of 1,800 MNIST training samples (IID): a tiny shard, so that a round trains in well under a second. */
  const workerData = (index: number): NodeConfig["data"] => ({ dataset: "mnist", split: "train", limit: 1800, partition: { kind: "iid" }, parties: 3, index, seed: 11 });

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "fedstake-late-"));
    devnet = await startDevnet();
    procs = new NodeProcesses(dir, devnet.url);
    const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
    wallets = Array.from({ length: 8 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(devnet.provider) as unknown as Wallet);
    const [admin, sponsor, w0, w1, w2, v0, v1] = wallets as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet, Wallet];
    late = w2;
    dep = await deployProtocol(admin, { unbondingPeriod: 3600 });
    writeFileSync(join(dir, "deployment.json"), JSON.stringify(dep));
    ({ coord, stake } = attach(dep, devnet.provider));
    const { token } = attach(dep, admin);
    await sendTx(admin, token, "mint", [sponsor.address, 1_000n * ONE]);
    // Every worker, the late one included, stakes now: joining later needs no one's help.
    await mintAndStake(admin, dep, ([[w0, 100n], [w1, 100n], [w2, 100n], [v0, 1_000n], [v1, 1_000n]] as const).map(([w, a]) => [w, a * ONE] as const));

    // The sponsor creates the job and keeps serving the spec and the initial model (its endpoint is on chain).
    const jobFile = join(dir, "job.json");
    writeFileSync(
      jobFile,
      JSON.stringify({
        model: MODEL,
        aggregation: { kind: "fedavg" },
        // Structure (the header's base model and worker are checked against the chain), copies and a loose norm bound.
        validation: { rules: [{ rule: "duplicate" }, { rule: "norm", minRatio: 0, maxRatio: 10 }] },
        job: {
          startIn: 25,
          numRounds: 3,
          rewardPerRound: "100",
          commitPeriod: 15,
          revealPeriod: 6,
          voteCommitPeriod: 10,
          voteRevealPeriod: 6,
          slashWindow: 120,
          attestPeriod: 20,
          maxUpdates: 8,
          maxSamplesPerUpdate: "1000",
          maxValidators: 4,
          attestBps: 5001,
          minValidatorStake: "100",
          minWorkerStake: "10",
          rejectSlashAmount: "10",
          absenceSlashAmount: "10",
        },
      }),
    );
    const sponsorProc = procs.cli("sponsor", ["job", "create", "--spec", jobFile, "--ipfs-dir", join(dir, "sponsor-ipfs"), "--serve"], { FEDSTAKE_PRIVATE_KEY: sponsor.privateKey });
    await procs.until("the sponsor's job", async () => /serving/.test(readFileSync(join(dir, "sponsor.out"), "utf8")), 60_000);
    expect(readFileSync(join(dir, "sponsor.out"), "utf8")).to.match(/^job 1 created/m);
    expect(sponsorProc.exitCode).to.equal(null);
    for (const v of [v0, v1]) await sendTx(v, attach(dep, v).coord, "joinCommittee", [jobId]);

    nodeConfig("validator-0", "validator", v0, { dataset: "mnist", split: "train", offset: 50_000, limit: 600, partition: { kind: "iid" }, parties: 2, index: 0, seed: 13 });
    nodeConfig("validator-1", "validator", v1, { dataset: "mnist", split: "train", offset: 50_000, limit: 600, partition: { kind: "iid" }, parties: 2, index: 1, seed: 13 });
    nodeConfig("worker-0", "worker", w0, workerData(0));
    nodeConfig("worker-1", "worker", w1, workerData(1));
    for (const name of ["validator-0", "validator-1", "worker-0", "worker-1"]) procs.cli(name, [name.split("-")[0]!, join(dir, `${name}.json`)]);
    lateCfg = nodeConfig("worker-late", "worker", late, workerData(2));

    // Rounds 1 and 2 without the late worker. It starts once round 2's commit phase is over, so that
    // round 3 is the first it can commit in; its start-up (IPFS, data, training session) overlaps round 2's end.
    await procs.until("round 2's reveal phase", async () => {
      const p = await phaseOf();
      return p.round > 2n || (p.round === 2n && p.phase >= Phase.Reveal);
    }, 150_000);
    lateStartedIn = await phaseOf();
    procs.cli("worker-late", ["worker", join(dir, "worker-late.json")]);
    await procs.until("round 3 finalized", async () => (await phaseOf()).round >= 3n && Number((await coord.getFunction("roundResult")(jobId, 3n)).outcome) !== Outcome.Pending, 150_000);
  });

  after(async function () {
    this.timeout(30_000);
    await procs?.stop();
    devnet?.stop();
    if (dir) await removeTree(dir);
  });

  it("round 3's base is round 2's aggregate, held by the validators that attested it, not the sponsor's initial model", async function () {
    expect(lateCfg.peers).to.deep.equal([]);
    expect(lateStartedIn.round, "the late worker started in round 2, after its commit phase").to.equal(2n);
    expect(lateStartedIn.phase).to.be.at.least(Phase.Reveal);
    const r1 = await coord.getFunction("roundResult")(jobId, 1n);
    const r2 = await coord.getFunction("roundResult")(jobId, 2n);
    const r3 = await coord.getFunction("roundResult")(jobId, 3n);
    expect(Number(r2.outcome), "round 2 decided").to.equal(Outcome.Quorum);
    expect(r2.modelDigest).to.not.equal(ZERO32);
    expect(r3.baseDigest, "round 3 opens on round 2's model").to.equal(r2.modelDigest);
    expect(r3.baseDigest, "round 3's base is not the initial model").to.not.equal(r1.baseDigest);
    const attested = (await coord.queryFilter(coord.filters.ModelAttested!(jobId, 2n), 0)) as EventLog[];
    expect(attested.filter((e) => e.args.digest === r3.baseDigest).map((e) => e.args.validator as string)).to.include.members([wallets[5]!.address, wallets[6]!.address]);
    // The late worker took no part before round 3.
    for (const r of [1n, 2n]) expect((await revealedUpdates(coord, jobId, r, 0)).map((u) => u.worker), `round ${r}`).to.not.include(late.address);
  });

  it("the late worker committed and revealed an update in round 3, built on round 3's base, and it was accepted", async function () {
    const r3 = await coord.getFunction("roundResult")(jobId, 3n);
    const baseCid = await cidFromChain(r3.baseDigest, Number(r3.baseCodec));
    const log = events("worker-late");
    const committed = log.filter((e) => e.event === "committed").map((e) => e.round);
    expect(committed, `its events.jsonl:\n${procs.tail("worker-late")}`).to.deep.equal(["3"]);
    expect(await coord.getFunction("updateCommitmentOf")(jobId, 3n, late.address)).to.not.equal(ZERO32);
    const mine = (await revealedUpdates(coord, jobId, 3n, 0)).filter((u) => u.worker === late.address);
    expect(mine, "revealed in round 3").to.have.length(1);
    const update = await cidFromChain(mine[0]!.digest, mine[0]!.codec);
    const state = JSON.parse(readFileSync(join(lateCfg.dataDir, "state.json"), "utf8"));
    expect(state.jobs[stateKey(lateCfg.deployment.chainId, lateCfg.deployment.coordinator, jobId)].rounds["3"].cid).to.equal(update.toString());
    expect(log.find((e) => e.event === "trained" && e.round === "3")?.cid).to.equal(update.toString());

    // The update artifact, fetched from the late worker at the endpoint it published: its header names round 3's base.
    const store = await HeliaStore.create({ dataDir: join(dir, "reader-ipfs") });
    try {
      expect(await dialPublished(store, stake, [late.address])).to.deep.equal([]);
      const a = decodeArtifact(await store.get(update, { timeoutMs: 20_000 }));
      expect(a.header.kind).to.equal("update");
      expect(a.header.round).to.equal(3);
      expect(CID.decode(a.header.baseModelCid).toString(), "the update's base").to.equal(baseCid.toString());
    } finally {
      await store.stop();
    }

    // Accepted by the round's tally, and by each validator with its reason.
    expect(Number(r3.outcome)).to.equal(Outcome.Quorum);
    expect(hasBit(r3.acceptedBitmap, mine[0]!.index), `accepted bitmap ${r3.acceptedBitmap}`).to.equal(true);
    for (const v of ["validator-0", "validator-1"]) {
      const d = events(v).find((e) => e.event === "decision" && e.round === "3" && e.index === mine[0]!.index);
      expect(d, `${v}'s decision on the late update`).to.not.equal(undefined);
      expect(d!.accept, `${v}: ${d!.reason}`).to.equal(true);
    }
  });

  it("the late worker never timed out fetching the base", async function () {
    const r3 = await coord.getFunction("roundResult")(jobId, 3n);
    const baseCid = (await cidFromChain(r3.baseDigest, Number(r3.baseCodec))).toString();
    const lines = readFileSync(join(lateCfg.dataDir, "events.jsonl"), "utf8").split("\n");
    expect(lines.filter((l) => /TIMEOUT/.test(l) && l.includes(baseCid)), "TIMEOUT events for the base").to.deep.equal([]);
    expect(lines.filter((l) => /TIMEOUT/.test(l)), "any fetch TIMEOUT").to.deep.equal([]);
    const trained = events("worker-late").find((e) => e.event === "trained" && e.round === "3");
    expect(trained?.fetchMs as number, "base fetch time (ms)").to.be.below(30_000);
  });
});
