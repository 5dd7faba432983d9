/**
 * What a worker or validator daemon shares: its key and chain handles, its artifact store (an embedded
 * IPFS node or a Kubo daemon: worker/storage/factory.ts), its state file, its log, and the helpers that
 * move models and updates between the chain, IPFS and tensors.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { JsonRpcProvider, type Wallet } from "ethers";
import { CID } from "multiformats/cid";
import { decodeArtifact, encodeArtifact, type Artifact, type Tensor } from "../artifacts/index.ts";
import { assertChainId, attach, sendTx, type Protocol } from "../chain/client.ts";
import { loadWallet } from "../chain/keys.ts";
import { Outcome } from "../chain/protocol.ts";
import { loadCsv } from "../data/csv.ts";
import { loadIdx } from "../data/idx.ts";
import { loadMnist } from "../data/mnist.ts";
import { dirichletSplit, iidSplit } from "../data/partition.ts";
import { subset, type Dataset } from "../data/dataset.ts";
import { createStore } from "../storage/factory.ts";
import { cidFromChain, type NodeStore } from "../storage/store.ts";
import { paramsOf } from "../training/model.ts";
import type { ModelSpec } from "../training/spec.ts";
import type { NodeConfig } from "./config.ts";
import { fetchJobSpec, jobCreated, parseValidation, type JobSpec, type ValidationPolicy } from "./jobSpec.ts";
import { dialPublished, endpointText, ModelHolders, publishedEndpoint } from "./providers.ts";
import { sealKeysOf, type SealKeys } from "../privacy/sealed.ts";
import { lockDataDir } from "./lock.ts";
import { StateFile, stateKey } from "./state.ts";

/** The fields of `TrainingCoordinator.roundResult` the daemons read. */
export interface RoundResultView {
  outcome: bigint;
  acceptedBitmap: bigint;
  slashableBitmap: bigint;
  workerRewardEach: bigint;
  updateCount: bigint;
  start: bigint;
}

/** The fields of `TrainingCoordinator.jobConfig` the daemons read (fixed at job creation). */
export interface JobConfigView {
  commitPeriod: bigint;
  revealPeriod: bigint;
  voteCommitPeriod: bigint;
  voteRevealPeriod: bigint;
  slashWindow: bigint;
  attestPeriod: bigint;
  maxUpdates: bigint;
  maxSamplesPerUpdate: bigint;
  minWorkerStake: bigint;
  workerLock: bigint;
  maxMissedRounds: bigint;
  absenceSlashAmount: bigint;
}

/** JSON.stringify's replacer for bigints: their decimal text. */
const bigintText = (_: string, v: unknown) => (typeof v === "bigint" ? v.toString() : v);

/** Where a node's log lines go besides its events.jsonl. */
export type LogTo = "stdout" | "stderr" | "none";

export class NodeContext {
  readonly cfg: NodeConfig;
  readonly wallet: Wallet;
  readonly chain: Protocol;
  readonly jobId: bigint;
  readonly state: StateFile;
  readonly store: NodeStore;
  /** The job spec named on chain (model, aggregation, acceptance policy), fetched at start. */
  job!: JobSpec;
  /**
   * The block the job was created in: its events begin there, so the roles' event queries start there
   * (worker/chain/events.ts). In-process contexts, whose job is given, use the deployment's block.
   */
  jobBlock: number;
  private readonly logFile: string;
  private configCache?: JobConfigView;
  private sealKeyCache?: Promise<SealKeys>;
  /** Set by `inProcess`: the data set to use instead of loading `cfg.data`. */
  private localData?: Dataset;
  /**
   * Where `log` prints its lines besides events.jsonl: stdout for the daemons, stderr for one-shot
   * commands (whose stdout is their result, e.g. one JSON document), nowhere for in-process simulations.
   */
  private logTo: LogTo = "stdout";
  /** Who holds which model, read from the chain's attestations as they come (worker/node/providers.ts). */
  private readonly holders: ModelHolders;
  /** The last round's base model (callers must not modify its tensors). */
  private lastBase?: { round: bigint; model: { cid: CID; tensors: Tensor[] } };

  private constructor(cfg: NodeConfig, wallet: Wallet, store: NodeStore) {
    this.cfg = cfg;
    this.wallet = wallet;
    this.chain = attach(cfg.deployment, this.wallet);
    this.jobId = BigInt(cfg.jobId);
    this.state = new StateFile(cfg.dataDir, stateKey(cfg.deployment.chainId, cfg.deployment.coordinator, this.jobId));
    this.store = store;
    this.logFile = join(cfg.dataDir, "events.jsonl");
    this.holders = new ModelHolders(this.chain.coord, this.jobId, this.chain.fromBlock);
    this.jobBlock = this.chain.fromBlock;
  }

  /** Loads the key, opens the store (cfg.storage), dials the configured peers and the job's sponsor, fetches the job spec. */
  static async create(cfg: NodeConfig, opts: { logTo?: LogTo; purpose?: string } = {}): Promise<NodeContext> {
    const provider = new JsonRpcProvider(cfg.rpc, undefined, { staticNetwork: true, pollingInterval: 250 });
    await assertChainId(provider, cfg.deployment, cfg.rpc);
    const wallet = await loadWallet(cfg, provider);
    mkdirSync(cfg.dataDir, { recursive: true });
    // One process per data directory (worker/node/lock.ts), held until this process exits.
    const release = lockDataDir(cfg.dataDir, opts.purpose ?? `${cfg.name}: a node command`);
    let store: NodeStore;
    try {
      store = await createStore(cfg.storage, { dataDir: join(cfg.dataDir, "ipfs") });
    } catch (e) {
      release();
      throw e;
    }
    const ctx = new NodeContext(cfg, wallet, store);
    ctx.logTo = opts.logTo ?? "stdout";
    try {
      await ctx.dialPeers();
      const created = await jobCreated(ctx.chain.coord, ctx.jobId, ctx.chain.fromBlock);
      ctx.jobBlock = created.block;
      await ctx.dialAccounts([created.sponsor]);
      ctx.job = await fetchJobSpec(store, ctx.jobId, created.specCid);
    } catch (e) {
      await store.stop().catch(() => {});
      release();
      throw e;
    }
    return ctx;
  }

  /**
   * A context for simulations and tests that run many nodes in one process on one chain: the given
   * artifact store (e.g. sim/memoryStore.ts) instead of an IPFS node, the given data set instead of
   * `cfg.data`, the job spec given rather than fetched; events go to the data directory's log only.
   */
  static inProcess(o: { cfg: NodeConfig; wallet: Wallet; store: NodeStore; job: JobSpec; data: Dataset }): NodeContext {
    mkdirSync(o.cfg.dataDir, { recursive: true });
    const ctx = new NodeContext(o.cfg, o.wallet, o.store);
    ctx.job = o.job;
    ctx.localData = o.data;
    ctx.logTo = "none";
    return ctx;
  }

  get spec() {
    return this.job.model;
  }

  /**
   * The job's acceptance policy with this validator's overrides. A private job's `dp-norm` rule stays
   * first whatever the override lists: it is the job's privacy promise, not a matter of judgement.
   */
  get policy(): ValidationPolicy {
    const o = this.cfg.policy;
    if (!o) return this.job.validation;
    const mine = parseValidation(o, `node config ${this.cfg.file ?? this.cfg.name}: policy`);
    const dp = this.job.validation.rules.filter((r) => r.rule === "dp-norm");
    const rules = o.rules === undefined ? this.job.validation.rules : [...dp, ...mine.rules.filter((r) => r.rule !== "dp-norm")];
    return { rules, reference: o.reference === undefined ? this.job.validation.reference : mine.reference };
  }

  /** The job's parameters (read once: they never change). */
  async config(): Promise<JobConfigView> {
    return (this.configCache ??= (await this.chain.coord.getFunction("jobConfig")(this.jobId)) as JobConfigView);
  }

  /** The latest block's timestamp: the clock the contracts' phases and slash deadlines follow. */
  async chainNow(): Promise<bigint> {
    return BigInt((await this.wallet.provider!.getBlock("latest"))!.timestamp);
  }

  /**
   * Rounds up to `current` this node revealed in and has not settled yet, once the chain has decided
   * them, with their results. The caller marks each settled (`claimed`) when done with it.
   */
  async *decidedUnsettled(current: bigint): AsyncGenerator<{ round: bigint; res: RoundResultView }> {
    for (const [r, st] of Object.entries(this.state.state.rounds)) {
      const round = BigInt(r);
      if (!st.revealed || st.claimed || round > current) continue;
      const res = (await this.chain.coord.getFunction("roundResult")(this.jobId, round)) as RoundResultView;
      if (Number(res.outcome) !== Outcome.Pending) yield { round, res };
    }
  }

  /** Dials the configured peers that are not connected, with a few retries; logs what fails. */
  async dialPeers(): Promise<void> {
    for (const addr of this.cfg.peers) {
      const peerId = addr.split("/p2p/")[1];
      if (peerId && (await this.store.isConnected(peerId))) continue;
      for (let attempt = 0; attempt < 4; attempt++) {
        try {
          await this.store.dial(addr);
          break;
        } catch (e) {
          if (attempt === 3) this.log("dial-failed", { addr, error: (e as Error).message });
          else await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
        }
      }
    }
  }

  /**
   * A sentence for a person (a phase line with its countdown): printed as it is (no key=value fields),
   * and kept in events.jsonl as a "progress" event.
   */
  say(text: string, fields: Record<string, unknown> = {}): void {
    this.record("progress", { text, ...fields }, text);
  }

  /** One line per event, to the node's events.jsonl (the demo reads it for reasons) and to `logTo`. */
  log(event: string, fields: Record<string, unknown> = {}): void {
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v, bigintText)}`)
      .join(" ");
    this.record(event, fields, `${event} ${text}`);
  }

  /** Appends the event to events.jsonl and prints `line` where `logTo` says. */
  private record(event: string, fields: Record<string, unknown>, line: string): void {
    appendFileSync(this.logFile, JSON.stringify({ t: new Date().toISOString(), node: this.cfg.name, event, ...fields }, bigintText) + "\n");
    if (this.logTo === "stdout") console.log(`[${this.cfg.name}] ${line}`);
    else if (this.logTo === "stderr") console.error(`[${this.cfg.name}] ${line}`);
  }

  /**
   * Sends a coordinator call (see sendTx) and logs a "tx" event with its round (the call's second
   * argument, where it has one), latency and gas, which `npm run bench:round` adds up per round.
   */
  async send(method: string, args: unknown[]) {
    const t0 = performance.now();
    const rc = await sendTx(this.wallet, this.chain.coord, method, args, { log: (m) => this.log("retry", { message: m }) });
    this.log("tx", { method, ...(typeof args[1] === "bigint" ? { round: args[1] } : {}), ms: Math.round(performance.now() - t0), gas: rc.gasUsed });
    return rc;
  }

  /** Publishes this node's multiaddrs on chain (StakeManager endpoint registry) if they changed. */
  async publishEndpoint(): Promise<void> {
    const text = endpointText({ addrs: this.store.multiaddrs(), sealKey: (await this.sealKeys()).publicKey });
    const current = endpointText(await publishedEndpoint(this.chain.stake, this.wallet.address));
    if (current !== text) await sendTx(this.wallet, this.chain.stake, "setEndpoint", [Buffer.from(text)]);
  }

  /** This node's update-sealing keys, derived from its staking key (worker/privacy/sealed.ts). */
  sealKeys(): Promise<SealKeys> {
    return (this.sealKeyCache ??= sealKeysOf(this.wallet.privateKey));
  }

  /** Dials the endpoints `accounts` published on chain (loopback only: the dialer refuses the rest). */
  async dialAccounts(accounts: string[]): Promise<void> {
    const failed = await dialPublished(this.store, this.chain.stake, accounts);
    if (failed.length) this.log("dial-failed", { accounts: failed });
  }

  async dataset(): Promise<Dataset> {
    if (this.localData) return this.localData;
    const d = this.cfg.data;
    const at = (p: string) => resolve(this.cfg.file ? dirname(this.cfg.file) : ".", p);
    // The files are checked against the job's model (input size) as they are opened, before any training.
    if (d.dataset === "idx") return loadIdx(at(d.images), at(d.labels), { classes: this.spec.classes, input: this.spec.input });
    if (d.dataset === "csv") return loadCsv(at(d.file), { label: d.label, classes: this.spec.classes, scale: d.scale, input: this.spec.input });
    const loaded = await loadMnist(d.split, (d.offset ?? 0) + d.limit);
    const all = d.offset ? subset(loaded, Uint32Array.from({ length: d.limit }, (_, i) => d.offset! + i)) : loaded;
    const parts = d.partition.kind === "iid" ? iidSplit(all, d.parties, d.seed) : dirichletSplit(all, d.parties, d.partition.alpha, d.seed);
    return parts[d.index]!;
  }

  /**
   * The base model of `round` as tensors, fetched by the CID on chain and checked against the spec. The
   * nodes that hold it (the validators that attested it, the sponsor) are dialled first, so a node that
   * missed rounds finds it without a configured peer (worker/node/providers.ts).
   */
  async baseModel(round: bigint): Promise<{ cid: CID; tensors: Tensor[] }> {
    // A validator asks twice a round (to evaluate, to aggregate): the base of a round never changes.
    if (this.lastBase?.round === round) return this.lastBase.model;
    await this.dialPeers();
    const res = await this.chain.coord.getFunction("roundResult")(this.jobId, round);
    const cid = await cidFromChain(res.baseDigest, Number(res.baseCodec));
    const me = this.wallet.address.toLowerCase();
    await this.dialAccounts((await this.holders.of(res.baseDigest)).filter((a) => a.toLowerCase() !== me));
    const model = { cid, tensors: await this.fetchModel(cid) };
    this.lastBase = { round, model };
    return model;
  }

  async fetchModel(cid: CID): Promise<Tensor[]> {
    return modelTensors(decodeArtifact(await this.store.get(cid, { timeoutMs: 30_000 })), this.spec, String(cid));
  }
}

/** The tensors of an artifact that is a model of `spec` (its parameters' names and shapes, in order); else an error naming `what`. */
export function modelTensors(a: Artifact, spec: ModelSpec, what: string): Tensor[] {
  const want = paramsOf(spec);
  if (a.header.kind !== "model") throw new Error(`${what} is an ${a.header.kind} artifact, not a model`);
  const bad = a.tensors.length !== want.length ? -1 : a.tensors.findIndex((t, i) => t.name !== want[i]!.name || t.shape.join() !== want[i]!.shape.join());
  if (a.tensors.length !== want.length || bad >= 0) throw new Error(`${what} is not a model of this job's spec (${a.tensors.length !== want.length ? `${a.tensors.length} tensors, the spec has ${want.length}` : `tensor ${bad} is "${a.tensors[bad]!.name}" [${a.tensors[bad]!.shape}], the spec has "${want[bad]!.name}" [${want[bad]!.shape}]`})`);
  return a.tensors;
}

/** A model artifact (f32), as the sponsor publishes the initial model and validators the aggregate. */
export function modelArtifact(jobId: bigint, round: number, baseCid: Uint8Array, tensors: Tensor[], numSamples: bigint): Uint8Array {
  return encodeArtifact({ kind: "model", jobId, round, baseModelCid: baseCid, worker: new Uint8Array(20), numSamples }, tensors, { encoding: "f32" });
}
