/**
 * `npm run bench:compression` — update compression in the real protocol (sim/harness.ts: the contracts,
 * WorkerRoles sending with the job's compression and error feedback, ValidatorRoles voting with the
 * default acceptance policy, all honest), MNIST Dirichlet(0.5). Per compression: mean bytes of an update
 * artifact, its ratio to float32, final test accuracy, honest updates rejected (by the stake majority,
 * and by reason code per honest validator's vote). Writes compression.json to bench/results/local/
 * (--update: the committed bench/results/; --out DIR).
 *
 *   npm run bench:compression                        (20 workers, 5 validators, 10 rounds)
 *   npm run bench:compression -- --workers 8 --rounds 3 --compression none,topk:0.01:2
 *
 * The target: at least 100 × smaller than float32 with at most 1 point of accuracy lost against "none".
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { network } from "hardhat";
import { benchOutDir, OUT_OPTIONS, shown } from "./bench-out.ts";
import { compressionLabel, compressionOption, DEFAULT_POPULATION, Population, runCell } from "../sim/harness.ts";

const { values: opt } = parseArgs({
  options: {
    workers: { type: "string", default: String(DEFAULT_POPULATION.workers) },
    validators: { type: "string", default: String(DEFAULT_POPULATION.validators) },
    rounds: { type: "string", default: String(DEFAULT_POPULATION.rounds) },
    compression: { type: "string", default: "none,topk:0.01:2,topk:0.03:2,topk:0.035:2,topk:0.04:2,topk:0.05:2,topk:0.01:8,topk:0.02:4,topk:0.1:8,int8" },
    ...OUT_OPTIONS,
  },
});
/** bench/results/local/ unless --update (the committed results) or --out DIR. */
const OUT_DIR = benchOutDir(opt);
const TARGET_RATIO = 100;
const MAX_LOSS = 0.01;

const compressions = compressionOption(opt.compression!);
const pop = await Population.create({ ...DEFAULT_POPULATION, workers: Number(opt.workers), validators: Number(opt.validators), rounds: Number(opt.rounds) });
const { ethers, networkHelpers: helpers } = await network.create();
const f32Bytes = pop.f32UpdateBytes();

interface Result {
  compression: string;
  bytesPerUpdate: number;
  ratioToF32: number;
  finalAccuracy: number;
  accuracyByRound: number[];
  honestRejected: number;
  honestSubmitted: number;
  /** Honest validators' rejections of honest updates by reason code (one per validator vote). */
  honestRejectedBy: Record<string, number>;
  seconds: number;
}
const results: Result[] = [];
const t0 = Date.now();
for (const [i, compression] of compressions.entries()) {
  const label = compressionLabel(compression);
  console.log(`[${i + 1}/${compressions.length}] ${label}  (${Math.round((Date.now() - t0) / 1000)} s)`);
  const row = await runCell(pop, { attack: "none", fraction: 0, colludingStakeBps: 0, defence: "vote", compression }, { ethers, helpers }, (m) => console.log(m));
  const bytes = row.updateBytes ?? NaN;
  results.push({
    compression: label, bytesPerUpdate: bytes, ratioToF32: Math.round((f32Bytes / bytes) * 10) / 10, finalAccuracy: row.finalAccuracy, accuracyByRound: row.accuracyByRound,
    honestRejected: row.honestRejected, honestSubmitted: row.honestSubmitted, honestRejectedBy: row.honestRejectedBy, seconds: row.seconds,
  });
  console.log(`    → ${bytes} bytes per update (${results.at(-1)!.ratioToF32} × smaller than f32), accuracy ${(row.finalAccuracy * 100).toFixed(2)} %, honest rejected ${row.honestRejected}/${row.honestSubmitted} ${JSON.stringify(row.honestRejectedBy)} (${row.seconds} s)`);
  write();
}

/** The reference accuracy ("none"), and the best ratio that loses at most MAX_LOSS against it. */
function summary() {
  const none = results.find((r) => r.compression === "none");
  if (!none) return { reference: null, best: null, targetMet: null };
  // (1e-9: accuracies are whole test images out of thousands; a loss of exactly 1 point is within it)
  const within = results.filter((r) => none.finalAccuracy - r.finalAccuracy <= MAX_LOSS + 1e-9).sort((a, b) => b.ratioToF32 - a.ratioToF32)[0] ?? null;
  return { reference: none.finalAccuracy, best: within && { compression: within.compression, ratioToF32: within.ratioToF32, finalAccuracy: within.finalAccuracy }, targetMet: within !== null && within.ratioToF32 >= TARGET_RATIO };
}

function write() {
  writeFileSync(join(OUT_DIR, "compression.json"), JSON.stringify({ population: pop.o, f32UpdateBytes: f32Bytes, target: { ratio: TARGET_RATIO, maxAccuracyLoss: MAX_LOSS }, ...summary(), results }, null, 1));
}

console.log(`\nf32 update: ${f32Bytes} bytes; ${pop.o.workers} workers, ${pop.o.validators} validators, ${pop.o.rounds} rounds`);
console.log("compression       bytes/update  ratio  accuracy  honest rejected  rejections by code (per validator vote)");
for (const r of results) {
  console.log(`${r.compression.padEnd(16)} ${String(r.bytesPerUpdate).padStart(13)}  ${r.ratioToF32.toFixed(1).padStart(5)}  ${(r.finalAccuracy * 100).toFixed(2).padStart(7)}%  ${`${r.honestRejected}/${r.honestSubmitted}`.padStart(15)}  ${JSON.stringify(r.honestRejectedBy)}`);
}
const s = summary();
if (s.best) console.log(`\nbest within ${MAX_LOSS * 100} point of none: ${s.best.compression}, ${s.best.ratioToF32} × (target ≥ ${TARGET_RATIO} ×: ${s.targetMet ? "met" : "not met"})`);
console.log(`wrote ${shown(join(OUT_DIR, "compression.json"))} (${Math.round((Date.now() - t0) / 1000)} s)`);
