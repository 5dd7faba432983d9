/**
 * The robustness harness: one cell = one attack at one attacker fraction against one defence, for R
 * rounds of real training on MNIST Dirichlet(0.5) shards. The "vote" defence runs the real protocol: the
 * contracts on the in-process Hardhat network, every worker a WorkerRole (attackers with their attack's
 * hooks, sim/attacks/), every validator a ValidatorRole with its own held-out slice (colluding ones
 * commit a bitmap accepting every attacker and rejecting every honest update), artifacts in an in-memory
 * store; slashing, claims and lock releases are the daemons' own. The baselines train the same workers
 * with the same data and seeds and aggregate everything with no vote (or only the honest workers).
 * A vote cell's workers send their updates with the cell's compression (the job spec's "compression",
 * with error feedback); the baselines aggregate their dense float32 deltas.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HDNodeWallet, Mnemonic, type Contract, type Wallet } from "ethers";
import type { HardhatEthers } from "@nomicfoundation/hardhat-ethers/types";
import type { NetworkHelpers } from "@nomicfoundation/hardhat-network-helpers/types";
import { accounting, createJob, deployProtocol, ONE, toPhase } from "../test/helpers/fixture.ts";
import { decodeArtifact, encodeArtifact, type Tensor } from "../worker/artifacts/index.ts";
import { aggregate, type AggregationPolicy } from "../worker/aggregation/index.ts";
import { revealedUpdates } from "../worker/chain/client.ts";
import { bitmapOf, Phase } from "../worker/chain/protocol.ts";
import { subset, type Dataset } from "../worker/data/dataset.ts";
import { loadMnist } from "../worker/data/mnist.ts";
import { MNIST_MLP } from "../worker/training/presets.ts";
import { dirichletSplit } from "../worker/data/partition.ts";
import type { NodeConfig } from "../worker/node/config.ts";
import { modelArtifact, NodeContext } from "../worker/node/context.ts";
import { DEFAULT_COMPRESSION, parseCompression, parseJobSpec, type Compression, type JobSpec } from "../worker/node/jobSpec.ts";
import { ValidatorRole } from "../worker/node/validatorRole.ts";
import { WorkerRole } from "../worker/node/workerRole.ts";
import { cidFromChain, cidToChain } from "../worker/storage/store.ts";
import { zerosLike } from "../worker/training/delta.ts";
import { initParams, paramsOf } from "../worker/training/model.ts";
import { prng } from "../worker/util/prng.ts";
import { evaluate, localUpdate, Trainer } from "../worker/training/trainer.ts";
import { attackByName, hooksFor, roundSeed, type Attack } from "./attacks/index.ts";
import { MemoryStore } from "./memoryStore.ts";
import { queryEvents } from "../worker/chain/events.ts";

export const DEFENCES = ["vote", "honest-only", "fedavg", "median", "trimmed_mean", "multi_krum"] as const;
export type Defence = (typeof DEFENCES)[number];
/** The baselines' aggregation (no vote). */
const BASELINE: Record<Exclude<Defence, "vote">, AggregationPolicy> = {
  "honest-only": { kind: "fedavg" },
  fedavg: { kind: "fedavg" },
  median: { kind: "median" },
  trimmed_mean: { kind: "trimmed_mean", trim: 0.2 },
  multi_krum: { kind: "multi_krum" },
};

export interface PopulationOptions {
  workers: number;
  validators: number;
  rounds: number;
  /** MNIST training samples split across the workers (Dirichlet α). */
  trainSamples: number;
  alpha: number;
  /** Held-out samples per validator (from MNIST train 50,000+). */
  holdout: number;
  /** MNIST test samples the final accuracy is measured on. */
  testSamples: number;
  epochs: number;
  seed: number;
}

export const DEFAULT_POPULATION: PopulationOptions = { workers: 20, validators: 5, rounds: 10, trainSamples: 20_000, alpha: 0.5, holdout: 1000, testSamples: 5000, epochs: 1, seed: 11 };

const TRAIN = { epochs: 1, batch: 32, lr: 0.03, momentum: 0.9, threads: 1 };

/** The data every cell shares: shards, held-out slices, test set, job spec. */
export class Population {
  readonly o: PopulationOptions;
  readonly shards: Dataset[];
  readonly holdouts: Dataset[];
  readonly test: Dataset;
  readonly job: JobSpec;
  private trainer?: Trainer;

  private constructor(o: PopulationOptions, shards: Dataset[], holdouts: Dataset[], test: Dataset) {
    this.o = o;
    this.shards = shards;
    this.holdouts = holdouts;
    this.test = test;
    this.job = parseJobSpec({ model: MNIST_MLP });
  }

  static async create(o: PopulationOptions): Promise<Population> {
    const train = await loadMnist("train", 50_000 + o.validators * o.holdout);
    const shards = dirichletSplit(subset(train, Uint32Array.from({ length: o.trainSamples }, (_, i) => i)), o.workers, o.alpha, o.seed);
    const holdouts = Array.from({ length: o.validators }, (_, v) => subset(train, Uint32Array.from({ length: o.holdout }, (_, i) => 50_000 + v * o.holdout + i)));
    return new Population(o, shards, holdouts, await loadMnist("test", o.testSamples));
  }

  /** One trainer for the baselines' workers (they train one after the other). */
  async sharedTrainer(): Promise<Trainer> {
    return (this.trainer ??= await Trainer.create(this.job.model, { batch: TRAIN.batch, steps: 16, threads: 1, optimizer: { kind: "sgd", lr: TRAIN.lr, momentum: TRAIN.momentum } }));
  }

  initialModel(): Tensor[] {
    const init = initParams(this.job.model);
    return paramsOf(this.job.model).map((p) => ({ name: p.name, shape: p.shape, data: init.get(p.name)! }));
  }

  /** Bytes of an uncompressed update artifact (float32, header included): what compression ratios are against. */
  f32UpdateBytes(): number {
    const header = { kind: "update", jobId: 1n, round: 1, baseModelCid: new Uint8Array(36), worker: new Uint8Array(20), numSamples: 1n } as const;
    return encodeArtifact(header, zerosLike(this.initialModel()), { encoding: "f32" }).length;
  }
}

/** A compression as the command lines write it: "none", "f16", "int8", "topk:FRACTION:BITS". */
export function compressionLabel(c: Compression): string {
  return c.kind === "topk" ? `topk:${c.fraction}:${c.bits}` : c.kind;
}

/** The inverse of `compressionLabel`, checked as the job spec checks it. */
export function parseCompressionLabel(label: string): Compression {
  const [kind, ...params] = label.split(":");
  const field = `compression "${label}"`;
  if (kind !== "topk") {
    if (params.length) throw new Error(`${field}: only topk takes parameters (topk:FRACTION:BITS)`);
    return parseCompression({ kind }, field);
  }
  if (params.length !== 2) throw new Error(`${field}: write topk:FRACTION:BITS`);
  return parseCompression({ kind, fraction: Number(params[0]), bits: Number(params[1]) }, field);
}

/** A benchmark's `--compression` option: comma-separated labels, each checked; errors name the option. */
export function compressionOption(value: string): Compression[] {
  return value
    .split(",")
    .filter(Boolean)
    .map((c) => {
      try {
        return parseCompressionLabel(c);
      } catch (e) {
        throw new Error(`--compression: ${(e as Error).message}`);
      }
    });
}

export interface Cell {
  attack: string;
  /** Share of the workers that attack (the last ⌊fraction × workers⌉ of them). */
  fraction: number;
  /** Share of the validators' stake that colludes with the attackers (vote defence only). */
  colludingStakeBps: number;
  defence: Defence;
  /** How the vote cell's workers send updates (absent: the job spec's default, int8). */
  compression?: Compression;
}

export interface Row extends Cell {
  rounds: number;
  workers: number;
  finalAccuracy: number;
  attackerAccepted: number;
  attackerSubmitted: number;
  honestRejected: number;
  honestSubmitted: number;
  backdoorSuccess: number | null;
  attackerSlashed: number;
  honestSlashed: number;
  /** Net tokens the attackers gained (rewards claimed less nothing: slashes are counted apart). */
  rewardsToAttackers: string;
  /** The protocol's accounting: tokens held by the contracts = stakes + unbonding + reward pools + owed (vote cells). */
  tokensConserved: boolean | null;
  /** Node steps that failed (the daemons log and retry them; e.g. a slashed attacker without the stake to commit again). */
  stepFailures: number;
  accuracyByRound: number[];
  /** Mean bytes of the revealed update artifacts (vote cells; null for the baselines). */
  updateBytes: number | null;
  /** Honest validators' rejections of honest updates, by reason code, one per validator and update (vote cells). */
  honestRejectedBy: Record<string, number>;
  seconds: number;
}

const P = (ts: Tensor[]) => new Map(ts.map((t) => [t.name, t.data]));

/** Accuracy, and for a backdoor its success rate: triggered test images of other classes classified as the target. */
async function measure(pop: Population, model: Tensor[], attack?: Attack): Promise<{ accuracy: number; backdoor: number | null }> {
  const { accuracy } = await evaluate(pop.job.model, P(model), pop.test);
  if (!attack?.backdoor) return { accuracy, backdoor: null };
  const bd = attack.backdoor;
  const idx = [...pop.test.labels!.keys()].filter((i) => pop.test.labels![i] !== bd.target);
  const t = subset(pop.test, idx);
  for (let i = 0; i < t.n; i++) bd.stamp(t.x.subarray(i * t.features, (i + 1) * t.features));
  t.labels!.fill(bd.target);
  return { accuracy, backdoor: (await evaluate(pop.job.model, P(model), t)).accuracy };
}

/** How many workers attack (honest-only: how many are left out, so it is the reference for that fraction). */
const attackerCount = (pop: Population, c: Cell) => (c.attack === "none" && c.defence !== "honest-only" ? 0 : Math.round(c.fraction * pop.o.workers));

/** Worker i's seed: its attack's randomness (hooksFor seeds the same streams from it in the vote cells). */
const attackerSeed = (i: number) => 1000 + i;

/** What each worker trains on: its shard, poisoned by the attack for attackers. */
const trainingData = (pop: Population, attack: Attack | undefined, isAttacker: (i: number) => boolean): Dataset[] =>
  pop.shards.map((d, i) => (isAttacker(i) && attack?.poison ? attack.poison(d, prng(roundSeed(attackerSeed(i), 0))) : d));

/** A cell of a baseline defence: the same workers, no chain, everything (or only the honest) aggregated. */
async function runBaseline(pop: Population, c: Cell, log: (m: string) => void): Promise<Row> {
  const t0 = performance.now();
  const N = pop.o.workers;
  const A = attackerCount(pop, c);
  const attack = A > 0 && c.attack !== "none" ? attackByName(c.attack) : undefined;
  const isAttacker = (i: number) => i >= N - A;
  const trainer = await pop.sharedTrainer();
  const data = trainingData(pop, attack, isAttacker);
  let model = pop.initialModel();
  let previous: { worker: string; delta: Tensor[] }[] = [];
  const accuracyByRound: number[] = [];
  let attackerSubmitted = 0;
  let attackerAggregated = 0;
  for (let r = 1; r <= pop.o.rounds; r++) {
    const own: Tensor[][] = [];
    for (let i = 0; i < N; i++) {
      if (c.defence === "honest-only" && isAttacker(i)) own.push([]);
      else if (isAttacker(i) && attack?.skipsTraining) own.push(zerosLike(model));
      else own.push((await localUpdate(trainer, model, data[i]!, { epochs: pop.o.epochs, seed: r })).delta);
    }
    const colluders = own.filter((_, i) => isAttacker(i));
    const subs: { delta: Tensor[]; numSamples: number; worker: string }[] = [];
    for (let i = 0; i < N; i++) {
      const worker = `worker-${i}`;
      if (c.defence === "honest-only" && isAttacker(i)) continue;
      if (!isAttacker(i) || !attack) {
        subs.push({ delta: own[i]!, numSamples: pop.shards[i]!.n, worker });
        continue;
      }
      attackerSubmitted++;
      if (attack.copiesCommitment) continue; // never reveals: nothing to aggregate
      attackerAggregated++;
      const delta = attack.craft ? attack.craft({ round: r, base: model, own: own[i]!, colluders, previous, self: worker, rand: prng(roundSeed(attackerSeed(i), r)) }) : own[i]!;
      subs.push({ delta, numSamples: pop.shards[i]!.n, worker });
    }
    model = aggregate(BASELINE[c.defence as Exclude<Defence, "vote">], model, subs);
    previous = subs.map((s) => ({ worker: s.worker, delta: s.delta }));
    const m = await measure(pop, model);
    accuracyByRound.push(m.accuracy);
    log(`    round ${r}: accuracy ${(m.accuracy * 100).toFixed(2)} %`);
  }
  const final = await measure(pop, model, attack);
  return {
    ...c, rounds: pop.o.rounds, workers: N, finalAccuracy: final.accuracy,
    attackerAccepted: attackerAggregated, attackerSubmitted,
    honestRejected: 0, honestSubmitted: (N - A) * pop.o.rounds, backdoorSuccess: final.backdoor,
    attackerSlashed: 0, honestSlashed: 0, rewardsToAttackers: "n/a", tokensConserved: null, stepFailures: 0, accuracyByRound, updateBytes: null, honestRejectedBy: {},
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
}

const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");

/** A cell of the vote defence: the real protocol on the in-process chain. */
async function runVote(pop: Population, c: Cell, net: { ethers: HardhatEthers; helpers: NetworkHelpers }, log: (m: string) => void): Promise<Row> {
  const t0 = performance.now();
  const { ethers, helpers } = net;
  const N = pop.o.workers;
  const V = pop.o.validators;
  const A = attackerCount(pop, c);
  const attack = A > 0 ? attackByName(c.attack) : undefined;
  const colluding = Math.round((c.colludingStakeBps / 10_000) * V);
  // Fresh accounts per cell (the chain is shared by the cells of one run): HD indices after the 20 Hardhat signers.
  const offset = 20 + (((await ethers.provider.getBlockNumber()) * 7) % 100_000) * 200;
  const wallets = Array.from({ length: 2 + N + V }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${offset + i}`).connect(ethers.provider) as unknown as Wallet);
  for (const w of wallets) await helpers.setBalance(w.address, 10n ** 21n);
  const p = await deployProtocol(ethers, { workers: N, validators: V, signers: wallets as never });
  const store = new MemoryStore();
  const job: JobSpec = { ...pop.job, compression: c.compression ?? DEFAULT_COMPRESSION };
  const initCid = await store.add(modelArtifact(0n, 0, new Uint8Array(0), pop.initialModel(), 0n));
  const specCid = await store.add(new TextEncoder().encode(JSON.stringify(job)));
  const jobId = await createJob(p, helpers, {
    initialModelDigest: cidToChain(initCid).digest, initialModelCodec: cidToChain(initCid).codec,
    specDigest: cidToChain(specCid).digest, specCodec: cidToChain(specCid).codec,
    numRounds: pop.o.rounds, rewardPerRound: 100n * ONE, maxUpdates: Math.max(N, 8), maxValidators: V,
    attestBps: 5001, rejectSlashAmount: 10n * ONE, missedRevealSlashAmount: 5n * ONE,
  });
  const deployment = { chainId: 31337, token: await p.token.getAddress(), stakeManager: await p.stake.getAddress(), coordinator: await p.coord.getAddress() };
  const dir = mkdtempSync(join(tmpdir(), "fedstake-robustness-"));
  const cfg = (name: string, role: "worker" | "validator"): NodeConfig => ({ role, name, rpc: "", deployment, jobId: String(jobId), dataDir: join(dir, name), peers: [], data: { dataset: "idx", images: "", labels: "" }, train: TRAIN });
  const ctxOf = (i: number, name: string, role: "worker" | "validator", data: Dataset) => NodeContext.inProcess({ cfg: cfg(name, role), wallet: wallets[2 + i]!, store: store.peer().asNodeStore(), job, data });
  const isAttacker = (i: number) => i >= N - A;
  const attackerAddr = new Set(wallets.slice(2 + N - A, 2 + N).map((w) => w.address));
  // The colluding group's honest updates of a round (each trained once, on its own poisoned data).
  const collusion = new Map<number, Promise<Tensor[][]>>();
  const colluderTrainer = pop.sharedTrainer();
  const colluderData = trainingData(pop, attack, isAttacker);
  const workers: WorkerRole[] = [];
  for (let i = 0; i < N; i++) {
    const ctx = ctxOf(i, `worker-${i}`, "worker", pop.shards[i]!);
    if (!isAttacker(i) || !attack) {
      workers.push(new WorkerRole(ctx));
      continue;
    }
    const hooks = hooksFor(attack, {
      self: ctx.wallet.address,
      seed: attackerSeed(i),
      colluders: (round, base) => {
        let v = collusion.get(round);
        if (!v) {
          v = (async () => {
            const t = await colluderTrainer;
            const out = [];
            for (let j = N - A; j < N; j++) out.push(attack.skipsTraining ? zerosLike(base) : (await localUpdate(t, base, colluderData[j]!, { epochs: pop.o.epochs, seed: round })).delta);
            return out;
          })();
          collusion.set(round, v);
        }
        return v;
      },
      previous: async (round) => {
        if (round <= 1) return [];
        const out = [];
        for (const u of await revealedUpdates(p.coord, jobId, BigInt(round - 1), p.fromBlock)) {
          out.push({ worker: u.worker, delta: decodeArtifact(await store.get(await cidFromChain(u.digest, u.codec))).tensors });
        }
        return out;
      },
      copyCommitment: async (round) => {
        for (const e of await queryEvents(p.coord, p.coord.filters.UpdateCommitted!(jobId, round), p.fromBlock)) {
          if (!attackerAddr.has(e.args.worker as string)) return e.args.commitment as string;
        }
        return undefined;
      },
    });
    workers.push(new WorkerRole(ctx, hooks));
  }
  const validators = pop.holdouts.map((h, j) => {
    const ctx = ctxOf(N + j, `validator-${j}`, "validator", h);
    return { ctx, role: new ValidatorRole(ctx), colludes: j < colluding };
  });
  const stakeAt0 = await Promise.all(wallets.slice(2, 2 + N).map((w) => p.stake.stakeOf(w.address) as Promise<bigint>));
  const accuracyByRound: number[] = [];
  // As the daemon loop does: a step that fails (e.g. a slashed attacker without the stake to commit again)
  // is reported and the others go on.
  const failures = new Map<string, number>();
  const guarded = async (name: string, step: () => Promise<void>) => {
    try {
      await step();
    } catch (e) {
      const key = `${name.replace(/-\d+$/, "")}: ${(e as Error).message.split("\n")[0]!.slice(0, 100)}`;
      if (!failures.has(key)) log(`    ${name}: ${(e as Error).message.split("\n")[0]!.slice(0, 160)}`);
      failures.set(key, (failures.get(key) ?? 0) + 1);
    }
  };
  const tick = async (round: bigint, phase: number) => {
    for (const [i, w] of workers.entries()) await guarded(`worker-${i}`, () => w.tick(round, phase));
    for (const [j, v] of validators.entries()) {
      await guarded(`validator-${j}`, async () => {
        if (v.colludes && phase === Phase.VoteCommit && !v.ctx.state.round(round).committed) {
          const ups = await revealedUpdates(p.coord, jobId, round, p.fromBlock);
          await v.role.commitVote(round, bitmapOf(ups.filter((u) => attackerAddr.has(u.worker)).map((u) => u.index)));
        } else await v.role.tick(round, phase);
      });
    }
  };
  for (let r = 1n; r <= BigInt(pop.o.rounds); r++) {
    for (const phase of [Phase.Commit, Phase.Reveal, Phase.VoteCommit, Phase.VoteReveal, Phase.Finalize, Phase.Attest]) {
      // Attest follows finalize at once: no time to move.
      if (phase !== Phase.Attest) await toPhase(p, helpers, jobId, phase);
      await helpers.mine();
      await tick(r, phase);
    }
    const res = await p.coord.roundResult(jobId, r);
    const model = await modelOf(p.coord, jobId, r, store);
    const m = await measure(pop, model);
    accuracyByRound.push(m.accuracy);
    log(`    round ${r}: accuracy ${(m.accuracy * 100).toFixed(2)} %, accepted 0b${BigInt(res.acceptedBitmap).toString(2)}`);
  }
  // After the job: every node settles (claims, releases, the last round's slashes).
  for (let k = 0; k < 4; k++) {
    await helpers.mine();
    const [round, phase] = await p.coord.phaseOf(jobId);
    for (const [i, w] of workers.entries()) if (!w.settled) await guarded(`worker-${i}`, () => w.settle(round, Number(phase)));
    for (const [j, v] of validators.entries()) if (!v.role.settled) await guarded(`validator-${j}`, () => v.role.settle(round, Number(phase)));
  }
  // What happened to each update, from the chain.
  let attackerAccepted = 0, attackerSubmitted = 0, honestRejected = 0, honestSubmitted = 0;
  const updateSizes: number[] = [];
  for (let r = 1n; r <= BigInt(pop.o.rounds); r++) {
    const res = await p.coord.roundResult(jobId, r);
    const committed = await queryEvents(p.coord, p.coord.filters.UpdateCommitted!(jobId, r), p.fromBlock);
    const revealed = await revealedUpdates(p.coord, jobId, r, p.fromBlock);
    for (const u of revealed) updateSizes.push((await store.get(await cidFromChain(u.digest, u.codec))).length);
    for (const e of committed) {
      const a = e.args.worker as string;
      const u = revealed.find((x) => x.worker === a);
      const accepted = u !== undefined && ((BigInt(res.acceptedBitmap) >> BigInt(u.index)) & 1n) === 1n;
      if (attackerAddr.has(a)) [attackerSubmitted, attackerAccepted] = [attackerSubmitted + 1, attackerAccepted + (accepted ? 1 : 0)];
      else [honestSubmitted, honestRejected] = [honestSubmitted + 1, honestRejected + (accepted ? 0 : 1)];
    }
  }
  let attackerSlashed = 0, honestSlashed = 0, rewardsToAttackers = 0n;
  for (let i = 0; i < N; i++) {
    const a = wallets[2 + i]!.address;
    const slashed = ((await p.stake.stakeOf(a)) as bigint) < stakeAt0[i]!;
    if (attackerAddr.has(a)) {
      attackerSlashed += slashed ? 1 : 0;
      const claimed = (await queryEvents(p.coord, p.coord.filters.RewardClaimed!(jobId, null, a), p.fromBlock)).reduce((s, e) => s + (e.args.amount as bigint), 0n);
      rewardsToAttackers += claimed;
    } else honestSlashed += slashed ? 1 : 0;
  }
  const { held, owed } = await accounting(p);
  const tokensConserved = held === owed;
  const final = await measure(pop, await modelOf(p.coord, jobId, BigInt(pop.o.rounds), store), attack);
  // Why the honest validators rejected honest updates (by code), and what the first of them got wrong
  // (attackers it accepted, honest updates it rejected), from their decision logs.
  const honestRejectedBy: Record<string, number> = {};
  const honestV = validators.findIndex((v) => !v.colludes);
  for (const [j, v] of validators.entries()) {
    if (v.colludes) continue;
    const events = readFileSync(join(dir, `validator-${j}`, "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const e of events) {
      if (e.event !== "decision") continue;
      const fromAttacker = attackerAddr.has(e.worker as string);
      if (!fromAttacker && !e.accept) honestRejectedBy[e.code as string] = (honestRejectedBy[e.code as string] ?? 0) + 1;
      if (j === honestV && fromAttacker === (e.accept as boolean)) log(`    validator-${j}, round ${e.round}: ${fromAttacker ? "accepted attacker" : "rejected honest"} ${e.index}: ${e.reason} ${JSON.stringify(e.metrics)}`);
    }
  }
  // FEDSTAKE_SIM_KEEP=1 keeps every node's data directory (events.jsonl with each decision's metrics) for analysis.
  if (process.env.FEDSTAKE_SIM_KEEP) log(`    node logs kept in ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
  return {
    ...c, rounds: pop.o.rounds, workers: N, finalAccuracy: final.accuracy, attackerAccepted, attackerSubmitted, honestRejected, honestSubmitted,
    backdoorSuccess: final.backdoor, attackerSlashed, honestSlashed, rewardsToAttackers: (Number(rewardsToAttackers) / 1e18).toFixed(2), tokensConserved, stepFailures: [...failures.values()].reduce((a, b) => a + b, 0), accuracyByRound,
    updateBytes: updateSizes.length ? Math.round(updateSizes.reduce((a, b) => a + b, 0) / updateSizes.length) : null, honestRejectedBy,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  };
}

/** The model a round ended with (its attested aggregate; the base model again if it had none). */
async function modelOf(coord: Contract, jobId: bigint, round: bigint, store: MemoryStore): Promise<Tensor[]> {
  const res = await coord.roundResult(jobId, round);
  const attested = BigInt(res.modelDigest) !== 0n;
  const [digest, codec] = attested ? [res.modelDigest, res.modelCodec] : [res.baseDigest, res.baseCodec];
  return decodeArtifact(await store.get(await cidFromChain(digest, Number(codec)))).tensors;
}

export async function runCell(pop: Population, c: Cell, net: { ethers: HardhatEthers; helpers: NetworkHelpers }, log: (m: string) => void = () => {}): Promise<Row> {
  return c.defence === "vote" ? runVote(pop, c, net, log) : runBaseline(pop, c, log);
}
