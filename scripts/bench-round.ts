/**
 * `npm run bench:round` — the wall time of one protocol round on the local network (the demo's
 * processes: hardhat node, N workers and 3 validators, each with its own IPFS node), split into
 * training, IPFS, chain, validation and waiting, for N = 4, 8 and 16 workers, plus the gas spent per
 * round. Writes round.json to bench/results/local/ (--update: the committed bench/results/; --out DIR).
 *
 * How a round is split (steady state: the run's last round, after every process has loaded its data):
 *   round      chain time from the round's start to its model's acceptance (ModelAccepted block)
 *   training   the slowest worker's training call
 *   ipfs       the slowest worker's base fetch + pin, the slowest validator's fetch of all updates,
 *              and the slowest aggregate pin — the IPFS steps on the round's critical path
 *   chain      the slowest commitUpdate, revealUpdate, commitVote, revealVote, the finalizeRound and
 *              the slowest attestModel transaction (send → mined)
 *   validation the slowest validator's held-out evaluation + aggregation
 *   waiting    the rest: phase windows nobody needs, block time, polling
 *   overhead   everything but training, as a fraction of the round
 *   gas        every transaction the nodes sent for the round: commitments, reveals, votes, finalize,
 *              attestations, reward claims (which release the workers' stake locks), lock releases and
 *              slashes; committee joins and leaves and vote-reward claims are per job, not per round
 *
 * Every phase closes as soon as everyone expected in it has acted (the contract's early closing; the
 * demo sets minUpdates to its worker count), so phase lengths are only the fallback for someone absent:
 * commit twice a calibration of one worker's training on this machine (N processes share its 2 cores;
 * shards are IID so that every worker trains the same amount), the others 10 s (vote commit + 0.35 s
 * per update). What is left as waiting is block time (1 s) and the daemons' 0.5 s polling. The slash
 * window (after vote reveal, off the critical path) is the demo's; the round with it must stay under
 * the demo's 3600 s unbonding.
 *
 *   npm run bench:round -- --workers 4,8,16 --epochs 5 [--heavy-epochs 40] [--update | --out DIR]
 */
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { benchOutDir, OUT_OPTIONS, shown } from "./bench-out.ts";
import { loadMnist } from "../worker/data/mnist.ts";
import { inHome } from "../worker/node/home.ts";
import { MNIST_MLP } from "../worker/training/presets.ts";
import { initParams } from "../worker/training/model.ts";
import { Trainer } from "../worker/training/trainer.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values: opt } = parseArgs({
  options: {
    workers: { type: "string", default: "4,8,16" },
    validators: { type: "string", default: "3" },
    epochs: { type: "string", default: "5" },
    /** Also run 8 workers with this many local epochs (0: skip), to show where the overhead falls under 20%. */
    "heavy-epochs": { type: "string", default: "40" },
    "train-samples": { type: "string", default: "48000" },
    ...OUT_OPTIONS,
  },
});
/** bench/results/local/ unless --update (the committed results) or --out DIR. */
const OUT_DIR = benchOutDir(opt);
const M = Number(opt.validators);
const TRAIN_SAMPLES = Number(opt["train-samples"]);
const SPEC = MNIST_MLP;

/** Seconds one worker takes to train `epochs` over `samples` samples alone on this machine. */
async function calibrate(samples: number, epochs: number): Promise<number> {
  const data = await loadMnist("train", samples);
  const trainer = await Trainer.create(SPEC, { batch: 32, steps: 16, threads: 1, optimizer: { kind: "sgd", lr: 0.03, momentum: 0.9 } }, initParams(SPEC));
  const t0 = performance.now();
  await trainer.train(data, { epochs, seed: 1 });
  return (performance.now() - t0) / 1000;
}

interface Event {
  node: string;
  event: string;
  round?: string;
  method?: string;
  ms?: number;
  gas?: string;
  fetchMs?: number;
  trainMs?: number;
  encodeMs?: number;
  pinMs?: number;
  evalMs?: number;
  aggregateMs?: number;
}

function runDemo(args: string[]): Promise<string> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, [join(ROOT, "scripts/demo.ts"), ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout!.on("data", (d: Buffer) => {
      out += d;
      process.stdout.write(d.toString().replace(/^(?=.)/gm, "    "));
    });
    // The demo writes its run under the data directory (worker/node/home.ts) and points runs/latest at it.
    child.on("exit", (code) => (code === 0 ? res(realpathSync(inHome("runs", "latest"))) : rej(new Error(`demo ${args.join(" ")} exited ${code}`))));
  });
}

async function measure(n: number, epochs: number) {
  // The demo's workers train with one ORT thread each, but each also keeps a JS thread busy assembling
  // batches: N of them on 2 cores take about N times as long as one alone (measured 3.9× at N = 4).
  // IID shards make every worker's share the same size.
  const alone = await calibrate(Math.floor(TRAIN_SAMPLES / n), epochs);
  // Phases close as soon as everyone expected in them has acted (the demo sets minUpdates to every
  // worker), so the windows are safety nets for absent participants, not the round's length: twice the
  // calibrated training for commit, and generous vote windows (held-out evaluation of every update).
  const commit = Math.ceil(alone * n * 2 + 10);
  const phases = [commit, 10, 10 + Math.ceil(0.35 * n), 10, 30];
  console.log(`\n${n} workers, ${M} validators, ${epochs} local epochs on ${Math.floor(TRAIN_SAMPLES / n)} samples each (alone: ${alone.toFixed(2)} s); phases ${phases.join(",")} s`);
  const dir = await runDemo(["--workers", String(n), "--validators", String(M), "--rounds", "2", "--attack", "none", "--port", "0", "--epochs", String(epochs), "--partition", "iid", "--train-samples", String(TRAIN_SAMPLES), "--phases", phases.join(",")]);
  const rounds = JSON.parse(readFileSync(join(dir, "rounds.json"), "utf8")) as { round: number; outcome: string; testAccuracy: number | null; updates: unknown[]; timing: { start: number; modelAcceptedAt: number | null } }[];
  const events: Event[] = readdirSync(join(dir, "nodes"))
    .filter((d) => d !== "sponsor")
    .flatMap((d) => readFileSync(join(dir, "nodes", d, "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Event));
  // The last round: every process has long been up, and it is a round that ran to its model.
  const r = rounds[rounds.length - 1]!;
  if (r.round < 2 || r.outcome !== "decided" || r.updates.length !== n || r.timing.modelAcceptedAt === null) {
    throw new Error(`round ${r.round} with ${n} workers: ${r.outcome}, ${r.updates.length}/${n} updates, model accepted: ${r.timing.modelAcceptedAt !== null} — phases too short?`);
  }
  const of = (name: string) => events.filter((e) => e.event === name && e.round === String(r.round));
  const max = (xs: number[]) => (xs.length ? Math.max(...xs) : 0) / 1000;
  const tx = (method: string) => max(of("tx").filter((e) => e.method === method).map((e) => e.ms!));
  const round = r.timing.modelAcceptedAt - r.timing.start;
  const train = max(of("trained").map((e) => e.trainMs!));
  const ipfs = max(of("trained").map((e) => e.fetchMs! + e.pinMs!)) + max(of("evaluated").map((e) => e.fetchMs!)) + max(of("aggregated").map((e) => e.pinMs!));
  const chain = ["commitUpdate", "revealUpdate", "commitVote", "revealVote", "finalizeRound", "attestModel"].reduce((s, m) => s + tx(m), 0);
  const validation = max(of("evaluated").map((e) => e.evalMs!)) + max(of("aggregated").map((e) => e.aggregateMs!));
  const gas = of("tx").reduce((s, e) => s + BigInt(e.gas!), 0n);
  const split = { round, train, ipfs, chain, validation, waiting: round - train - ipfs - chain - validation };
  console.log(`  round ${round} s: training ${train.toFixed(2)}, ipfs ${ipfs.toFixed(2)}, chain ${chain.toFixed(2)}, validation ${validation.toFixed(2)}, waiting ${split.waiting.toFixed(2)}; overhead ${((1 - train / round) * 100).toFixed(1)}%; gas ${gas}`);
  return { workers: n, round: r.round, epochs, samplesPerWorker: Math.floor(TRAIN_SAMPLES / n), trainAloneS: alone, phases, split, overheadFraction: 1 - train / round, gasPerRound: Number(gas), testAccuracy: r.testAccuracy, run: dir };
}

const results = [];
for (const n of opt.workers!.split(",").map(Number)) results.push(await measure(n, Number(opt.epochs)));
const heavy = Number(opt["heavy-epochs"]) > 0 ? await measure(8, Number(opt["heavy-epochs"])) : undefined;

const out: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: "2 cores (all processes share them)",
  model: "MLP 784-128-10, batch 32, SGD momentum",
  validators: M,
  method: "the last of 2 rounds (steady state); see scripts/bench-round.ts for the split",
};
for (const r of results) {
  out[`round_s_${r.workers}w`] = r.split.round;
  out[`train_s_${r.workers}w`] = +r.split.train.toFixed(3);
  out[`ipfs_s_${r.workers}w`] = +r.split.ipfs.toFixed(3);
  out[`chain_s_${r.workers}w`] = +r.split.chain.toFixed(3);
  out[`validation_s_${r.workers}w`] = +r.split.validation.toFixed(3);
  out[`waiting_s_${r.workers}w`] = +r.split.waiting.toFixed(3);
  out[`overhead_fraction_${r.workers}w`] = +r.overheadFraction.toFixed(3);
  out[`gas_per_round_${r.workers}w`] = r.gasPerRound;
}
if (heavy) {
  out[`round_s_8w_${heavy.epochs}ep`] = heavy.split.round;
  out[`train_s_8w_${heavy.epochs}ep`] = +heavy.split.train.toFixed(3);
  out[`overhead_fraction_8w_${heavy.epochs}ep`] = +heavy.overheadFraction.toFixed(3);
}
out.runs = [...results, ...(heavy ? [heavy] : [])];
const file = join(OUT_DIR, "round.json");
writeFileSync(file, JSON.stringify(out, null, 2) + "\n");
console.log("\n workers  epochs  round s  train s  ipfs s  chain s  valid. s  wait s  overhead  gas/round");
for (const r of out.runs as typeof results) {
  const s = r.split;
  console.log(
    ` ${String(r.workers).padStart(7)}  ${String(r.epochs).padStart(6)}  ${String(s.round).padStart(7)}  ${s.train.toFixed(2).padStart(7)}  ${s.ipfs.toFixed(2).padStart(6)}  ${s.chain.toFixed(2).padStart(7)}  ${s.validation.toFixed(2).padStart(8)}  ${s.waiting.toFixed(2).padStart(6)}  ${(r.overheadFraction * 100).toFixed(1).padStart(7)}%  ${String(r.gasPerRound).padStart(9)}`,
  );
}
console.log(`→ ${shown(file)}`);
