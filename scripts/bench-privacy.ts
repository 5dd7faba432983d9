/**
 * `npm run bench:privacy` — what user-level differential privacy (DP-FedAvg, issue 19 §1) costs in
 * accuracy and what it buys against the first-dense-layer reconstruction attack. A chainless
 * simulation: no contracts, no IPFS, no validators — only what affects the model. Per round each of W
 * workers trains E local epochs (the demo's recipe: SGD lr 0.03, momentum 0.9, batch 32) from the
 * round's global model on its MNIST shard (IID or Dirichlet(0.5)), clips its update to L2 ≤ C and adds
 * Gaussian noise from the CSPRNG (worker/privacy: `privatize`): std z·C ("local") or z·C/√W
 * ("distributed", k = W expected updates). The server averages the W noised updates with uniform
 * weights (sample counts are not protected by DP, so they may not weight the mean) and applies the
 * mean with server learning rate 1. z comes from the RDP accountant for R rounds without subsampling
 * (q = 1: every worker is in every round), δ = 1e−5. ε = ∞ is plain FedAvg with uniform weights
 * ("none"), and clipping without noise ("clip").
 *
 * C defaults to the median L2 norm of the honest round-1 updates without privacy (printed); --clip
 * fixes it. Choosing C from the private data is itself a (small, unaccounted) leak, as in every DP
 * benchmark that tunes it.
 *
 * The reconstruction attack (worker/privacy/reconstruction.ts): one worker with 16 MNIST images does
 * one local step (batch 16, the whole set) from the initial model; its update is privatized at each ε
 * (C of the job above, and C = the update's own norm: the tightest clip that removes nothing, the
 * attacker's best case) and inverted per hidden unit (ΔW[:, i] / Δb[i] of the first dense layer). Two
 * views: the single update (what a committee member, or anyone who fetches its CID without encryption,
 * sees) and the round's uniform mean with the W − 1 honest workers' round-1 updates, noised the same
 * way (what anyone sees in the new model); and, as a control, that mean without the attacked update
 * (the other workers' candidates are class-prototype-like averages of their inputs, which correlate
 * with MNIST digits by themselves). Reported: the best Pearson correlation of any candidate with any
 * of the 16 images, and how many images have a candidate above 0.5.
 *
 * Besides the configuration of the options ("main"), the default run measures variants that keep the
 * DP definition and the accountant but change the federation, because only the number of workers W
 * moves the ratio that matters: the mean's noise has std z·C/W per coordinate (distributed) against a
 * signal of norm ≤ C, and with q = 1 z grows as √R, so neither C nor R changes it. Default: w100
 * (100 workers, the same 12,000 samples) and w1000e5m (1,000 workers on all 60,000 samples, 5 local
 * epochs, server momentum 0.9 — post-processing of the released mean, free in privacy; ε = ∞ and 8
 * only, for time). On request (--variants NAME,… or all; none skips them): w100m (w100 + server
 * momentum), w100e5m (+ 5 local epochs), w1000 and w1000m (1,000 workers, 1 epoch, without / with
 * momentum). Variants take the options' ε (a variant may measure fewer), rounds, seed and α (and
 * epochs unless they fix them), and of their modes and partitions those the options name.
 *
 * Writes privacy.json and privacy.html (accuracy by round per ε; self-contained, chart.js inlined) to
 * bench/results/local/ (--update: the committed bench/results/; --out DIR) and prints the tables.
 *
 *   npm run bench:privacy                        (10 workers, 10 rounds, 12,000 samples + variants: ≈ 11 min on 2 cores)
 *   npm run bench:privacy -- --rounds 2 --workers 3 --eps 8 --variants none    (a smoke run)
 *   npm run bench:privacy -- --clip 1.5 --modes distributed --partitions iid
 *   npm run bench:privacy -- --update --from bench/results/privacy.json      (re-render the chart only)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { benchOutDir, OUT_OPTIONS, shown } from "./bench-out.ts";
import type { Tensor } from "../worker/artifacts/index.ts";
import type { Dataset } from "../worker/data/dataset.ts";
import { loadMnist } from "../worker/data/mnist.ts";
import { dirichletSplit, iidSplit } from "../worker/data/partition.ts";
import { noiseForEpsilon, rdpEpsilon } from "../worker/privacy/accountant.ts";
import { l2Norm, noiseStd, privatize, type PrivacyMechanism } from "../worker/privacy/mechanism.ts";
import { bestCorrelation, bestCorrelationPerImage, invertFirstDense } from "../worker/privacy/reconstruction.ts";
import { initParams, paramsOf } from "../worker/training/model.ts";
import { MNIST_MLP } from "../worker/training/presets.ts";
import { evaluate, localUpdate, Trainer } from "../worker/training/trainer.ts";

const { values: opt } = parseArgs({
  options: {
    workers: { type: "string", default: "10" },
    rounds: { type: "string", default: "10" },
    epochs: { type: "string", default: "1" },
    samples: { type: "string", default: "12000" },
    batch: { type: "string", default: "32" },
    clip: { type: "string" },
    eps: { type: "string", default: "inf,8,2,1" },
    modes: { type: "string", default: "local,distributed" },
    partitions: { type: "string", default: "iid,dirichlet" },
    alpha: { type: "string", default: "0.5" },
    "server-momentum": { type: "string", default: "0" },
    seed: { type: "string", default: "1" },
    variants: { type: "string", default: "default" },
    "no-attack": { type: "boolean", default: false },
    /** Only re-render privacy.html from an existing privacy.json (no training). */
    from: { type: "string" },
    ...OUT_OPTIONS,
  },
});
/** bench/results/local/ unless --update (the committed results) or --out DIR. */
const OUT_DIR = benchOutDir(opt);

const DELTA = 1e-5;
const LR = 0.03;
const MOMENTUM = 0.9;
const ATTACK_IMAGES = 16;
const RECOVERED = 0.5;
const SPEC = MNIST_MLP;

type Mode = "none" | "clip" | "local" | "distributed";
type Partition = "iid" | "dirichlet";

const list = (s: string) => s.split(",").map((x) => x.trim()).filter(Boolean);
function posInt(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} takes a positive integer, got "${v}"`);
  return n;
}
function parseEps(s: string): number[] {
  return list(s).map((e) => {
    const v = /^(inf|infinity|∞)$/i.test(e) ? Infinity : Number(e);
    if (!(v > 0)) throw new Error(`--eps: "${e}" is not a positive number or inf`);
    return v;
  });
}
const epsLabel = (e: number) => (Number.isFinite(e) ? String(e) : "∞");
/** JSON has no Infinity: ε = ∞ is written as null. */
const jsonEps = (e: number) => (Number.isFinite(e) ? e : null);

/** One federation to measure: the options' ("main") or a variant. */
interface Setup {
  name: string;
  description: string;
  workers: number;
  rounds: number;
  epochs: number;
  samples: number;
  batch: number;
  /** A fixed clip norm, else `clipFactor` × the median honest round-1 norm. */
  clip?: number;
  clipFactor: number;
  serverMomentum: number;
  /** Also run ε = ∞ with clipping only (the cost of clipping alone). */
  clipOnly: boolean;
  eps: number[];
  modes: ("local" | "distributed")[];
  partitions: Partition[];
  alpha: number;
  seed: number;
}

const modes = list(opt.modes!);
for (const m of modes) if (m !== "local" && m !== "distributed") throw new Error(`--modes: unknown mode "${m}" (local, distributed)`);
const partitions = list(opt.partitions!);
for (const p of partitions) if (p !== "iid" && p !== "dirichlet") throw new Error(`--partitions: unknown partition "${p}" (iid, dirichlet)`);
const clip = opt.clip === undefined ? undefined : Number(opt.clip);
if (clip !== undefined && !(clip > 0 && Number.isFinite(clip))) throw new Error(`--clip takes a positive number, got "${opt.clip}"`);
const main: Setup = {
  name: "main",
  description: "the options' federation",
  workers: posInt("workers", opt.workers!),
  rounds: posInt("rounds", opt.rounds!),
  epochs: posInt("epochs", opt.epochs!),
  samples: posInt("samples", opt.samples!),
  batch: posInt("batch", opt.batch!),
  clip,
  clipFactor: 1,
  serverMomentum: Number(opt["server-momentum"]),
  clipOnly: true,
  eps: parseEps(opt.eps!),
  modes: modes as ("local" | "distributed")[],
  partitions: partitions as Partition[],
  alpha: Number(opt.alpha),
  seed: Number(opt.seed),
};
if (main.samples > 60_000) throw new Error("--samples: MNIST has 60,000 training samples");
if (!(main.serverMomentum >= 0 && main.serverMomentum < 1)) throw new Error("--server-momentum takes a number in [0, 1)");

/**
 * The variants: the same DP definition (clip to C, Gaussian noise of std z·C or z·C/√W, uniform mean,
 * accountant for R rounds at q = 1), a larger federation. With W workers the mean carries noise of
 * std z·C/W per coordinate (distributed) against a signal of norm ≤ C: only W moves that ratio.
 */
const VARIANTS: Record<string, Omit<Setup, "eps" | "seed" | "alpha" | "rounds" | "epochs" | "clip" | "clipOnly"> & { epochs?: number; eps?: number[] }> = {
  w100: {
    name: "w100",
    description: "100 workers, the same 12,000 samples (120 each)",
    workers: 100, samples: 12_000, batch: 32, clipFactor: 1, serverMomentum: 0,
    modes: ["local", "distributed"], partitions: ["iid", "dirichlet"],
  },
  w1000: {
    name: "w1000",
    description: "1,000 workers on all 60,000 MNIST training samples (60 each, batch 20), distributed noise",
    workers: 1000, samples: 60_000, batch: 20, clipFactor: 1, serverMomentum: 0,
    modes: ["distributed"], partitions: ["iid", "dirichlet"],
  },
  w100m: {
    name: "w100m",
    description: "100 workers, 12,000 samples, server momentum 0.9",
    workers: 100, samples: 12_000, batch: 32, clipFactor: 1, serverMomentum: 0.9,
    modes: ["distributed"], partitions: ["iid", "dirichlet"],
  },
  w100e5m: {
    name: "w100e5m",
    description: "100 workers, 12,000 samples, 5 local epochs, server momentum 0.9",
    workers: 100, samples: 12_000, batch: 32, epochs: 5, clipFactor: 1, serverMomentum: 0.9,
    modes: ["distributed"], partitions: ["iid", "dirichlet"],
  },
  w1000m: {
    name: "w1000m",
    description: "1,000 workers on all 60,000 samples (60 each, batch 20), server momentum 0.9, distributed noise (IID only: 1,000 noised updates a round take a while)",
    workers: 1000, samples: 60_000, batch: 20, clipFactor: 1, serverMomentum: 0.9,
    modes: ["distributed"], partitions: ["iid"],
  },
  w1000e5m: {
    name: "w1000e5m",
    description: "1,000 workers on all 60,000 samples (60 each, batch 20), 5 local epochs, server momentum 0.9, distributed noise (ε = ∞ and 8 only, for time)",
    workers: 1000, samples: 60_000, batch: 20, epochs: 5, clipFactor: 1, serverMomentum: 0.9, eps: [Infinity, 8],
    modes: ["distributed"], partitions: ["iid", "dirichlet"],
  },
};
/** The default run's variants (with main, about 11 minutes on 2 cores); the others on request (--variants w100m,… or all). */
const DEFAULT_VARIANTS = ["w100", "w1000e5m"];
const variantNames = opt.variants === "all" ? Object.keys(VARIANTS) : opt.variants === "none" ? [] : opt.variants === "default" ? DEFAULT_VARIANTS : list(opt.variants!);
for (const v of variantNames) if (!VARIANTS[v]) throw new Error(`--variants: unknown variant "${v}" (${Object.keys(VARIANTS).join(", ")}, all, none)`);
// A variant takes the options' ε (or those of its own it lists), rounds, seed, α, epochs (unless it fixes them), and of its modes and partitions those the options name.
const setups: Setup[] = [
  main,
  ...variantNames.map((v) => {
    const x = VARIANTS[v]!;
    return { ...x, modes: x.modes.filter((m) => main.modes.includes(m)), partitions: x.partitions.filter((p) => main.partitions.includes(p)), clipOnly: false, eps: x.eps ? main.eps.filter((e) => x.eps!.includes(e)) : main.eps, seed: main.seed, alpha: main.alpha, rounds: main.rounds, epochs: x.epochs ?? main.epochs };
  }),
];
const runAttack = !opt["no-attack"];

// ---------------------------------------------------------------------------------------------

const trainers = new Map<number, Trainer>();
/** One trainer per batch size (a shard smaller than the batch trains on itself as one batch). */
async function trainerFor(batch: number): Promise<Trainer> {
  let t = trainers.get(batch);
  if (!t) {
    t = await Trainer.create(SPEC, { batch, steps: 16, threads: 1, optimizer: { kind: "sgd", lr: LR, momentum: MOMENTUM } });
    trainers.set(batch, t);
  }
  return t;
}

function initialModel(): Tensor[] {
  const init = initParams(SPEC);
  return paramsOf(SPEC).map((p) => ({ name: p.name, shape: p.shape, data: init.get(p.name)! }));
}
const DIM = initialModel().reduce((s, t) => s + t.data.length, 0);

function flat(ts: Tensor[]): Float32Array {
  const out = new Float32Array(DIM);
  let p = 0;
  for (const t of ts) {
    out.set(t.data, p);
    p += t.data.length;
  }
  return out;
}
function tensorsOf(v: ArrayLike<number>, like: Tensor[]): Tensor[] {
  let p = 0;
  return like.map((t) => {
    const data = new Float32Array(t.data.length);
    for (let j = 0; j < data.length; j++) data[j] = v[p++]!;
    return { name: t.name, shape: [...t.shape], data };
  });
}

/** Worker w's honest (not privatized) update of a round: E epochs from `base` on its shard, flat. A shard with no sample gives a zero update. */
async function honestUpdate(s: Setup, base: Tensor[], shard: Dataset, round: number, w: number): Promise<Float32Array> {
  if (shard.n === 0) return new Float32Array(DIM);
  const t = await trainerFor(Math.min(s.batch, shard.n));
  const { delta } = await localUpdate(t, base, shard, { epochs: s.epochs, seed: s.seed * 1_000_003 + round * 10_007 + w });
  return flat(delta);
}

const median = (xs: number[]) => {
  const a = [...xs].sort((x, y) => x - y);
  const m = a.length >> 1;
  return a.length % 2 ? a[m]! : (a[m - 1]! + a[m]!) / 2;
};
const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
const secs = (t: number) => Math.round((performance.now() - t) / 100) / 10;

interface Run {
  setup: string;
  mode: Mode;
  partition: Partition;
  /** null: ε = ∞ (no noise). */
  eps: number | null;
  workers: number;
  clipNorm: number | null;
  noiseMultiplier: number;
  /** Per-coordinate noise std each worker adds. */
  sigma: number;
  /** ε (δ = 1e−5) of the released model (the mean) after the rounds, from the accountant: z for R rounds at q = 1. */
  epsilonSpent: number | null;
  /** ε of one update seen alone (a committee member's view): z (local) or z/√W (distributed) for R rounds. */
  epsilonPerUpdate: number | null;
  finalAccuracy: number;
  accuracyByRound: number[];
  rounds: number;
  seconds: number;
}

interface SetupResult {
  setup: Setup;
  /** Per partition: the honest round-1 update norms' median, min and max, and the C used. */
  clip: Record<string, { median: number; min: number; max: number; clipNorm: number }>;
  runs: Run[];
}

if (opt.from !== undefined) {
  const file = join(OUT_DIR, "privacy.html");
  writeFileSync(file, html(JSON.parse(readFileSync(opt.from, "utf8")) as Results));
  console.log(`wrote ${shown(file)} from ${opt.from}`);
  process.exit(0);
}

const t0 = performance.now();
const [fullTrain, test] = [await loadMnist("train", Math.max(...setups.map((s) => s.samples))), await loadMnist("test")];
const evalCache = new Map();
async function accuracy(model: Tensor[]): Promise<number> {
  return round4((await evaluate(SPEC, new Map(model.map((t) => [t.name, t.data])), test, { cache: evalCache })).accuracy);
}

const results: SetupResult[] = [];
interface Reconstruction {
  eps: number | null;
  mode: "none" | "local" | "distributed";
  /** "aggregate-control": the same mean without the attacked worker's update (what prototype-like candidates reach by themselves). */
  view: "single-update" | "aggregate" | "aggregate-control";
  /** "job": the benchmark job's C; "own": C = the attacked update's own norm (nothing clipped away). */
  clip: "job" | "own";
  clipNorm: number | null;
  noiseMultiplier: number;
  bestCorrelation: number;
  imagesRecovered: number;
  perImage: number[];
}
const reconstruction: Reconstruction[] = [];
let attackInfo: Record<string, unknown> | null = null;

function shardsOf(s: Setup, p: Partition): Dataset[] {
  const data = s.samples === fullTrain.n ? fullTrain : { ...fullTrain, n: s.samples, x: fullTrain.x.subarray(0, s.samples * fullTrain.features), labels: fullTrain.labels!.subarray(0, s.samples) };
  return p === "iid" ? iidSplit(data, s.workers, s.seed) : dirichletSplit(data, s.workers, s.alpha, s.seed);
}

/** z for ε over R rounds (q = 1), 0 for ε = ∞. */
const zFor = (eps: number, rounds: number) => (Number.isFinite(eps) ? noiseForEpsilon({ targetEpsilon: eps, delta: DELTA, sampleRate: 1, steps: rounds }).noiseMultiplier : 0);
const epsOf = (z: number, rounds: number) => (z > 0 ? rdpEpsilon({ noiseMultiplier: z, sampleRate: 1, steps: rounds, delta: DELTA }).epsilon : Infinity);

async function federate(s: Setup, p: Partition, shards: Dataset[], mode: Mode, eps: number, C: number, label: string): Promise<Run> {
  const started = performance.now();
  const z = mode === "local" || mode === "distributed" ? zFor(eps, s.rounds) : 0;
  const mech: PrivacyMechanism | null =
    mode === "none" ? null : mode === "clip" ? { clipNorm: C, noiseMultiplier: 0, mode: "local" } : { clipNorm: C, noiseMultiplier: z, mode, expectedUpdates: mode === "distributed" ? s.workers : undefined };
  const sigma = mech ? noiseStd(mech) : 0;
  const perUpdateZ = mode === "distributed" ? z / Math.sqrt(s.workers) : z;
  let model = initialModel();
  const velocity = new Float64Array(DIM);
  const accs: number[] = [];
  for (let r = 1; r <= s.rounds; r++) {
    const sum = new Float64Array(DIM);
    let clipped = 0;
    for (let w = 0; w < s.workers; w++) {
      const u = await honestUpdate(s, model, shards[w]!, r, w);
      const released = mech ? privatize(u, mech) : { update: u, clipped: false };
      if (released.clipped) clipped++;
      const v = released.update;
      for (let j = 0; j < DIM; j++) sum[j]! += v[j]!;
    }
    // Uniform mean, server lr 1 (optionally heavy-ball momentum: post-processing, no privacy cost).
    const next = flat(model);
    for (let j = 0; j < DIM; j++) {
      velocity[j] = s.serverMomentum * velocity[j]! + sum[j]! / s.workers;
      next[j] = next[j]! + velocity[j]!;
    }
    model = tensorsOf(next, model);
    accs.push(await accuracy(model));
    const spent = z > 0 ? epsOf(z, r) : Infinity;
    console.log(`  ${label}  round ${r}/${s.rounds}  accuracy ${(accs.at(-1)! * 100).toFixed(2)} %  ε spent ${epsLabel(round4(spent))}${mech ? `  clipped ${clipped}/${s.workers}` : ""}  (${secs(started)} s)`);
  }
  const spent = z > 0 ? epsOf(z, s.rounds) : Infinity;
  const perUpdate = perUpdateZ > 0 ? epsOf(perUpdateZ, s.rounds) : Infinity;
  return {
    setup: s.name, mode, partition: p, eps: jsonEps(eps), workers: s.workers, clipNorm: mech ? C : null, noiseMultiplier: z, sigma,
    epsilonSpent: jsonEps(round4(spent)), epsilonPerUpdate: jsonEps(round4(perUpdate)), finalAccuracy: accs.at(-1)!, accuracyByRound: accs, rounds: s.rounds, seconds: secs(started),
  };
}

/** The attack of issue 19 against a 16-image worker, at each ε, both views; C: the main job's (IID). */
async function attack(jobC: number): Promise<void> {
  const s = main;
  const started = performance.now();
  const data = await loadMnist("train", ATTACK_IMAGES);
  const images = Array.from({ length: ATTACK_IMAGES }, (_, i) => data.x.subarray(i * 784, (i + 1) * 784));
  const base = initialModel();
  const t = await Trainer.create(SPEC, { batch: ATTACK_IMAGES, steps: 1, threads: 1, optimizer: { kind: "sgd", lr: LR, momentum: MOMENTUM } });
  const { delta, losses } = await localUpdate(t, base, data, { epochs: 1, seed: 1 });
  if (losses.length !== 1) throw new Error(`the attacked worker took ${losses.length} steps, not 1`);
  const target = flat(delta);
  const ownNorm = l2Norm(target);
  // The other W − 1 workers of the same round (round 1 of the main IID federation, from the same base).
  const shards = shardsOf(s, "iid");
  const others: Float32Array[] = [];
  for (let w = 1; w < s.workers; w++) others.push(await honestUpdate(s, base, shards[w]!, 1, w));
  attackInfo = { images: ATTACK_IMAGES, steps: 1, batch: ATTACK_IMAGES, lr: LR, momentum: MOMENTUM, updateNorm: round4(ownNorm), jobClipNorm: round4(jobC), otherWorkers: others.length, otherUpdateMedianNorm: others.length ? round4(median(others.map(l2Norm))) : null };
  console.log(`\nreconstruction: one worker, ${ATTACK_IMAGES} images, one step (update norm ${ownNorm.toFixed(4)}; job C ${jobC.toFixed(4)}); aggregate with ${others.length} honest round-1 updates`);

  const score = (v: Float32Array) => {
    const cands = invertFirstDense(SPEC, tensorsOf(v, base));
    const per = bestCorrelationPerImage(cands, images);
    return { best: round4(bestCorrelation(cands, images).correlation), recovered: per.filter((r) => r > RECOVERED).length, per: per.map(round4) };
  };
  const cases: { eps: number; mode: "none" | "local" | "distributed"; clip: "job" | "own" }[] = [];
  for (const eps of s.eps) {
    if (!Number.isFinite(eps)) cases.push({ eps, mode: "none", clip: "job" });
    else for (const mode of ["local", "distributed"] as const) for (const clip of ["job", "own"] as const) cases.push({ eps, mode, clip });
  }
  for (const c of cases) {
    const C = c.clip === "job" ? jobC : ownNorm;
    const z = zFor(c.eps, s.rounds);
    const mech: PrivacyMechanism | null = c.mode === "none" ? null : { clipNorm: C, noiseMultiplier: z, mode: c.mode, expectedUpdates: c.mode === "distributed" ? s.workers : undefined };
    const release = (u: Float32Array) => (mech ? privatize(u, mech).update : Float32Array.from(u));
    const single = release(target);
    const mean = new Float32Array(DIM);
    const sum = new Float64Array(single);
    for (const o of others) {
      const v = release(o);
      for (let j = 0; j < DIM; j++) sum[j]! += v[j]!;
    }
    for (let j = 0; j < DIM; j++) mean[j] = sum[j]! / (others.length + 1);
    const control = new Float32Array(DIM);
    for (let j = 0; j < DIM; j++) control[j] = (sum[j]! - single[j]!) / others.length;
    const views = others.length ? ([["single-update", single], ["aggregate", mean], ["aggregate-control", control]] as const) : ([["single-update", single]] as const);
    for (const [view, v] of views) {
      const r = score(v);
      reconstruction.push({ eps: jsonEps(c.eps), mode: c.mode, view, clip: c.clip, clipNorm: mech ? round4(C) : null, noiseMultiplier: z, bestCorrelation: r.best, imagesRecovered: r.recovered, perImage: r.per });
      console.log(`  ε=${epsLabel(c.eps).padEnd(3)} ${c.mode.padEnd(11)} ${view.padEnd(17)} C ${c.mode === "none" ? "-".padEnd(9) : `${c.clip}(${C.toFixed(4)})`.padEnd(9)}  best correlation ${r.best.toFixed(3)}  recovered ${r.recovered}/${ATTACK_IMAGES}`);
    }
  }
  console.log(`  (${secs(started)} s)`);
}

function write(final = false): void {
  const json = {
    date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` },
    config: {
      ...main, eps: main.eps.map(jsonEps), clip: main.clip ?? "median honest round-1 update norm", delta: DELTA, sampleRate: 1,
      model: "MNIST_MLP 784-128-10", parameters: DIM, localTraining: { optimizer: "sgd", lr: LR, momentum: MOMENTUM, batch: main.batch, epochs: main.epochs },
      aggregation: "uniform mean of the W released updates, server lr 1", testSamples: test.n, clipPerPartition: results.find((r) => r.setup.name === "main")?.clip ?? {},
    },
    runs: results.find((r) => r.setup.name === "main")?.runs ?? [],
    reconstruction,
    attack: attackInfo,
    variants: results.filter((r) => r.setup.name !== "main").map((r) => ({ name: r.setup.name, description: r.setup.description, config: { ...r.setup, eps: r.setup.eps.map(jsonEps) }, clip: r.clip, runs: r.runs })),
    wallSeconds: secs(t0),
    complete: final,
  };
  writeFileSync(join(OUT_DIR, "privacy.json"), JSON.stringify(json, null, 1) + "\n");
  writeFileSync(join(OUT_DIR, "privacy.html"), html(json));
}

interface Results {
  date: string;
  config: { workers: number; samples: number; epochs: number; rounds: number; alpha: number };
  runs: Run[];
  variants: { name: string; description: string; config: { workers: number; samples: number; epochs: number; serverMomentum: number }; runs: Run[] }[];
  reconstruction: Reconstruction[];
  wallSeconds: number;
}

/** The chart page: one panel per (setup, partition, noise mode), a line per ε; a fixed colour per ε. */
function html(j: Results): string {
  const lib = readFileSync(join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.min.js"), "utf8");
  const panels: { title: string; runs: Run[] }[] = [];
  const short = (c: { workers: number; samples: number; epochs: number; serverMomentum?: number }) =>
    `${c.workers} workers, ${c.samples.toLocaleString("en")} samples, ${c.epochs} local epoch${c.epochs === 1 ? "" : "s"}${c.serverMomentum ? `, server momentum ${c.serverMomentum}` : ""}`;
  for (const g of [{ name: "main", description: short(j.config), runs: j.runs }, ...j.variants.map((v) => ({ name: v.name, description: short(v.config), runs: v.runs }))]) {
    for (const p of ["iid", "dirichlet"] as const) {
      for (const m of ["local", "distributed"] as const) {
        const rs = g.runs.filter((r) => r.partition === p && (r.mode === m || r.mode === "none" || r.mode === "clip"));
        if (rs.some((r) => r.mode === m)) panels.push({ title: `${g.name} (${g.description}): ${p === "iid" ? "IID" : `Dirichlet(${j.config.alpha})`}, ${m} noise`, runs: rs });
      }
    }
  }
  const data = JSON.stringify({ panels: panels.map((p) => ({ title: p.title, series: p.runs.map((r) => ({ key: r.mode === "none" || r.mode === "clip" ? r.mode : String(r.eps), label: r.mode === "none" ? "ε = ∞ (no clip)" : r.mode === "clip" ? "ε = ∞ (clip only)" : `ε = ${r.eps} (z = ${r.noiseMultiplier.toFixed(2)})`, data: r.accuracyByRound.map((a) => a * 100) })) })) }).replace(/</g, "\\u003c");
  const rows = j.reconstruction.map((r) => `<tr><td>${r.eps ?? "∞"}</td><td>${r.mode}</td><td>${r.view}</td><td>${r.clipNorm === null ? "-" : `${r.clip} (${r.clipNorm})`}</td><td>${r.bestCorrelation.toFixed(3)}</td><td>${r.imagesRecovered}/${ATTACK_IMAGES}</td></tr>`).join("");
  return `<!doctype html><html><head><meta charset="utf-8"><title>fedstake privacy</title>
<style>body{font-family:sans-serif;margin:20px}.grid{display:flex;flex-wrap:wrap;gap:16px}.panel{width:560px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}</style>
<script>${lib}</script></head><body>
<h1>DP-FedAvg (user-level, δ = 1e−5): MNIST test accuracy by round</h1>
<p>${j.date}. ${j.config.rounds} rounds. Each worker clips its update to L2 ≤ C and adds N(0, σ²) per coordinate: σ = z·C (local) or z·C/√W (distributed); the server applies the uniform mean. z from the RDP accountant for the rounds at q = 1.</p>
<div class="grid" id="g"></div>
<h2>Reconstruction attack (16 images, one step; first dense layer ΔW[:, i] / Δb[i])</h2>
<table><tr><th>ε</th><th>mode</th><th>view</th><th>C</th><th>best correlation</th><th>images &gt; ${RECOVERED}</th></tr>${rows}</table>
<p>Wall time ${j.wallSeconds} s.</p>
<script>
const D = ${data};
const colours = { none: "#000000", clip: "#7f7f7f", "8": "#1f77b4", "2": "#ff7f0e", "1": "#d62728" };
const extra = ["#2ca02c", "#9467bd", "#8c564b", "#e377c2"];
const colour = (k, i) => colours[k] ?? extra[i % extra.length];
for (const p of D.panels) {
  const div = document.createElement("div"); div.className = "panel";
  const c = document.createElement("canvas"); div.appendChild(c); document.getElementById("g").appendChild(div);
  const n = Math.max(...p.series.map((s) => s.data.length));
  new Chart(c, { type: "line", data: { labels: Array.from({ length: n }, (_, i) => i + 1), datasets: p.series.map((s, i) => ({ label: s.label, data: s.data, borderColor: colour(s.key, i), backgroundColor: colour(s.key, i), fill: false, tension: 0 })) },
    options: { animation: false, plugins: { title: { display: true, text: p.title } }, scales: { x: { title: { display: true, text: "round" } }, y: { min: 0, max: 100, title: { display: true, text: "test accuracy (%)" } } } } });
}
</script></body></html>
`;
}

// ---------------------------------------------------------------------------------------------

let mainIidC: number | null = null;
for (const s of setups) {
  const res: SetupResult = { setup: s, clip: {}, runs: [] };
  results.push(res);
  console.log(`\n== ${s.name}: ${s.description}; ${s.workers} workers, ${s.samples} samples, ${s.rounds} rounds, ${s.epochs} epoch(s), batch ${s.batch}${s.serverMomentum ? `, server momentum ${s.serverMomentum}` : ""}`);
  for (const p of s.partitions) {
    const shards = shardsOf(s, p);
    const sizes = shards.map((d) => d.n);
    const base = initialModel();
    const norms: number[] = [];
    for (let w = 0; w < s.workers; w++) norms.push(l2Norm(await honestUpdate(s, base, shards[w]!, 1, w)));
    const nonEmpty = norms.filter((n, w) => sizes[w]! > 0);
    const m = median(nonEmpty);
    const C = s.clip ?? s.clipFactor * m;
    res.clip[p] = { median: round4(m), min: round4(Math.min(...nonEmpty)), max: round4(Math.max(...nonEmpty)), clipNorm: round4(C) };
    if (s.name === "main" && p === "iid") mainIidC = C;
    console.log(`[${s.name} ${p}] shard sizes ${Math.min(...sizes)}…${Math.max(...sizes)}; honest round-1 update norms: median ${m.toFixed(4)} (min ${Math.min(...nonEmpty).toFixed(4)}, max ${Math.max(...nonEmpty).toFixed(4)}) → C = ${C.toFixed(4)}${s.clip ? " (--clip)" : ""}`);
    const cells: { mode: Mode; eps: number }[] = [];
    for (const eps of s.eps) {
      if (!Number.isFinite(eps)) cells.push({ mode: "none", eps }, ...(s.clipOnly ? [{ mode: "clip" as const, eps }] : []));
      else for (const mode of s.modes) cells.push({ mode, eps });
    }
    for (const c of cells) {
      const label = `[${s.name} ${p} ${c.mode} ε=${epsLabel(c.eps)}]`;
      const run = await federate(s, p, shards, c.mode, c.eps, C, label);
      res.runs.push(run);
      console.log(`  → ${label} z ${run.noiseMultiplier.toFixed(3)}, σ ${run.sigma.toPrecision(3)}, final accuracy ${(run.finalAccuracy * 100).toFixed(2)} %, ε spent ${run.epsilonSpent ?? "∞"} (per update ${run.epsilonPerUpdate ?? "∞"}) (${run.seconds} s, total ${secs(t0)} s)`);
      write();
    }
  }
  if (s.name === "main" && runAttack) {
    if (mainIidC === null) {
      // The job's C when the main run had no IID partition: the median of the IID round-1 norms all the same.
      const shards = shardsOf(s, "iid");
      const base = initialModel();
      const norms: number[] = [];
      for (let w = 0; w < s.workers; w++) norms.push(l2Norm(await honestUpdate(s, base, shards[w]!, 1, w)));
      mainIidC = s.clip ?? median(norms);
    }
    await attack(mainIidC);
    write();
  }
}
write(true);

console.log("\nsetup    partition  mode         ε     z        σ/coord    ε spent  ε/update   final acc  accuracy by round (%)");
for (const r of results.flatMap((x) => x.runs)) {
  console.log(
    `${r.setup.padEnd(8)} ${r.partition.padEnd(10)} ${r.mode.padEnd(12)} ${String(r.eps ?? "∞").padStart(3)}  ${r.noiseMultiplier.toFixed(3).padStart(7)}  ${r.sigma.toPrecision(3).padStart(9)}  ${String(r.epsilonSpent ?? "∞").padStart(7)}  ${String(r.epsilonPerUpdate ?? "∞").padStart(8)}   ${(r.finalAccuracy * 100).toFixed(2).padStart(6)} %  ${r.accuracyByRound.map((a) => (a * 100).toFixed(1)).join(" ")}`,
  );
}
if (reconstruction.length) {
  console.log("\nreconstruction   ε   mode         view               C              best corr  recovered (> 0.5)");
  for (const r of reconstruction) console.log(`               ${String(r.eps ?? "∞").padStart(3)}   ${r.mode.padEnd(12)} ${r.view.padEnd(18)} ${(r.clipNorm === null ? "-" : `${r.clip} ${r.clipNorm}`).padEnd(14)} ${r.bestCorrelation.toFixed(3).padStart(9)}  ${r.imagesRecovered}/${ATTACK_IMAGES}`);
}
console.log(`\nwrote ${shown(join(OUT_DIR, "privacy.json"))} and privacy.html (${secs(t0)} s)`);
