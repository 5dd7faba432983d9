/**
 * What a worker or validator daemon shares: its key and chain handles, its embedded IPFS node, its
 * state file, its log, and the helpers that move models and updates between the chain, IPFS and tensors.
 */
import { appendFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { JsonRpcProvider, Wallet } from "ethers";
import { CID } from "multiformats/cid";
import { decodeArtifact, encodeArtifact, type Tensor } from "../artifacts/index.ts";
import { attach, sendTx, type Deployment, type Protocol } from "../chain/client.ts";
import { Outcome } from "../chain/protocol.ts";
import { loadMnist } from "../data/mnist.ts";
import { dirichletSplit, iidSplit } from "../data/partition.ts";
import { subset, type Dataset } from "../data/dataset.ts";
import { HeliaStore } from "../storage/heliaStore.ts";
import { cidFromChain } from "../storage/store.ts";
import type { ModelSpec } from "../training/spec.ts";
import { paramsOf } from "../training/model.ts";
import { StateFile } from "./state.ts";

export interface DataConfig {
  dataset: "mnist";
  split: "train" | "test";
  /** Samples [offset, offset + limit) of the split are partitioned. */
  offset?: number;
  limit: number;
  partition: { kind: "iid" } | { kind: "dirichlet"; alpha: number };
  parties: number;
  index: number;
  seed: number;
}

export interface NodeConfig {
  role: "worker" | "validator";
  name: string;
  privateKey: string;
  rpc: string;
  deployment: Deployment;
  jobId: string;
  dataDir: string;
  /** Multiaddrs dialled at start (e.g. the sponsor's node that holds the initial model). */
  peers: string[];
  spec: ModelSpec;
  data: DataConfig;
  train?: { epochs: number; batch: number; lr: number; momentum: number };
  /** Demo only: a malicious worker sends its update sign-flipped and scaled. */
  attack?: { kind: "signflip"; scale: number };
  policy?: { maxNorm: number; lossTolerance: number; minCosineToMedian: number };
}

/** The fields of `TrainingCoordinator.roundResult` the daemons read. */
export interface RoundResultView {
  outcome: bigint;
  acceptedBitmap: bigint;
  slashableBitmap: bigint;
  workerRewardEach: bigint;
  updateCount: bigint;
}

export class NodeContext {
  readonly cfg: NodeConfig;
  readonly wallet: Wallet;
  readonly chain: Protocol;
  readonly jobId: bigint;
  readonly state: StateFile;
  readonly store: HeliaStore;
  private readonly logFile: string;

  private constructor(cfg: NodeConfig, store: HeliaStore) {
    this.cfg = cfg;
    const provider = new JsonRpcProvider(cfg.rpc, undefined, { staticNetwork: true, pollingInterval: 250 });
    this.wallet = new Wallet(cfg.privateKey, provider);
    this.chain = attach(cfg.deployment, this.wallet);
    this.jobId = BigInt(cfg.jobId);
    this.state = new StateFile(cfg.dataDir);
    this.store = store;
    this.logFile = join(cfg.dataDir, "events.jsonl");
  }

  static async create(cfg: NodeConfig): Promise<NodeContext> {
    mkdirSync(cfg.dataDir, { recursive: true });
    const store = await HeliaStore.create({ dataDir: join(cfg.dataDir, "ipfs") });
    const ctx = new NodeContext(cfg, store);
    await ctx.dialPeers();
    return ctx;
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
      if (peerId && this.store.helia.libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId)) continue;
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

  /** One line per event, to stdout and the node's events.jsonl (the demo reads it for reasons). */
  log(event: string, fields: Record<string, unknown> = {}): void {
    const line = { t: new Date().toISOString(), node: this.cfg.name, event, ...fields };
    appendFileSync(this.logFile, JSON.stringify(line, (_, v) => (typeof v === "bigint" ? v.toString() : v)) + "\n");
    const text = Object.entries(fields)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x))}`)
      .join(" ");
    console.log(`[${this.cfg.name}] ${event} ${text}`);
  }

  send(method: string, args: unknown[]) {
    return sendTx(this.wallet, this.chain.coord, method, args, { log: (m) => this.log("retry", { message: m }) });
  }

  /** Publishes this node's multiaddrs on chain (StakeManager endpoint registry) if they changed. */
  async publishEndpoint(): Promise<void> {
    const text = this.store.multiaddrs().join("\n");
    const current = Buffer.from((await this.chain.stake.getFunction("endpointOf")(this.wallet.address)).slice(2), "hex").toString();
    if (current !== text) await sendTx(this.wallet, this.chain.stake, "setEndpoint", [Buffer.from(text)]);
  }

  /** Dials the endpoints `accounts` published on chain (loopback only: the gater refuses the rest). */
  async dialAccounts(accounts: string[]): Promise<void> {
    for (const a of accounts) {
      const raw: string = await this.chain.stake.getFunction("endpointOf")(a);
      const addrs = Buffer.from(raw.slice(2), "hex").toString().split("\n").filter(Boolean);
      for (const m of addrs) {
        try {
          await this.store.dial(m);
          break;
        } catch {
          // try the next address
        }
      }
    }
  }

  async dataset(): Promise<Dataset> {
    const d = this.cfg.data;
    const loaded = await loadMnist(d.split, (d.offset ?? 0) + d.limit);
    const all = d.offset ? subset(loaded, Uint32Array.from({ length: d.limit }, (_, i) => d.offset! + i)) : loaded;
    const parts = d.partition.kind === "iid" ? iidSplit(all, d.parties, d.seed) : dirichletSplit(all, d.parties, d.partition.alpha, d.seed);
    return parts[d.index]!;
  }

  /** The base model of `round` as tensors, fetched by the CID on chain and checked against the spec. */
  async baseModel(round: bigint): Promise<{ cid: CID; tensors: Tensor[] }> {
    await this.dialPeers();
    const res = await this.chain.coord.getFunction("roundResult")(this.jobId, round);
    const cid = await cidFromChain(res.baseDigest, Number(res.baseCodec));
    return { cid, tensors: await this.fetchModel(cid) };
  }

  async fetchModel(cid: CID): Promise<Tensor[]> {
    const a = decodeArtifact(await this.store.get(cid, { timeoutMs: 30_000 }));
    const want = paramsOf(this.cfg.spec);
    if (a.header.kind !== "model" || a.tensors.length !== want.length || a.tensors.some((t, i) => t.name !== want[i]!.name)) {
      throw new Error(`${cid} is not a model of this job's spec`);
    }
    return a.tensors;
  }
}

/** Reads a node config file (JSON), written by the demo or by `fedstake worker|validator`. */
export function readConfig(file: string): NodeConfig {
  return JSON.parse(readFileSync(file, "utf8")) as NodeConfig;
}

/** A model artifact (f32), as the sponsor publishes the initial model and validators the aggregate. */
export function modelArtifact(jobId: bigint, round: number, baseCid: Uint8Array, tensors: Tensor[], numSamples: bigint): Uint8Array {
  return encodeArtifact({ kind: "model", jobId, round, baseModelCid: baseCid, worker: new Uint8Array(20), numSamples }, tensors, { encoding: "f32" });
}
