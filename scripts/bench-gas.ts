/**
 * `npm run bench:gas` — gas of every protocol call on the in-process network.
 *
 * Plays one full round (commit, reveal, vote commit, vote reveal, finalize, attest, claims) at
 * (updates × validators) = 1×1, 16×4, 64×16 and 256×64, and writes gas.json to bench/results/local/ (BENCH_UPDATE=1: the committed
 * bench/results/; BENCH_OUT=DIR: that folder):
 * per-participant calls are the median over the participants of the 64×16 round; finalizeRound is
 * reported for every size. Targets come from the issue; the table marks each.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { network } from "hardhat";
import { benchOutDir, shown } from "./bench-out.ts";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import type { ContractTransactionResponse } from "ethers";
import { ONE, as, createJob, deployProtocol, submission, toPhase, vote, type Protocol } from "../test/helpers/fixture.ts";
import { Codec, Phase, updateCommitment, voteCommitment } from "../worker/chain/protocol.ts";

const { ethers, networkHelpers: helpers } = await network.create();

// BENCH_GAS_SIZES="256x1,1x64" explores other shapes (gas.json keeps the keys only with the default).
const SIZES: [number, number][] = process.env.BENCH_GAS_SIZES
  ? process.env.BENCH_GAS_SIZES.split(",").map((s) => s.split("x").map(Number) as [number, number])
  : [
      [1, 1],
      [16, 4],
      [64, 16],
      [256, 64],
    ];
const PER_PARTICIPANT_SIZE = "64x16";
// The contract-hardening issue's budgets (stake locks and the digest set cost storage writes).
const TARGETS: Record<string, number> = {
  commitUpdate: 110_000,
  revealUpdate: 95_000,
  commitVote: 100_000,
  revealVote: 70_000,
  attestModel: 70_000,
  claim: 70_000,
  finalizeRound_256x64: 3_500_000,
  finalizeRound_256x256_worstCase: 16_777_216,
};

const median = (xs: bigint[]): number => {
  const s = [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Number(s[Math.floor((s.length - 1) / 2)]);
};

async function gasOf(tx: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await tx).wait();
  if (!receipt) throw new Error("no receipt");
  return receipt.gasUsed;
}

async function signers(n: number): Promise<HardhatEthersSigner[]> {
  const out: HardhatEthersSigner[] = [];
  for (let i = 0; i < n; i++) {
    const addr = ethers.getAddress(ethers.zeroPadValue(ethers.toBeHex(0x10000 + i), 20));
    await helpers.impersonateAccount(addr);
    await helpers.setBalance(addr, 10n ** 21n);
    out.push(await ethers.getSigner(addr));
  }
  return out;
}

/** Bitmaps with exactly half the bits set, all different: the most bits finalize's tally has to visit. */
function worstCaseBitmap(nUpdates: number, j: number): bigint {
  const idx = Array.from({ length: nUpdates }, (_, i) => i);
  let seed = j + 1;
  for (let i = idx.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const k = seed % (i + 1);
    [idx[i], idx[k]] = [idx[k]!, idx[i]!];
  }
  return idx.slice(0, nUpdates / 2).reduce((b, i) => b | (1n << BigInt(i)), 0n);
}

/** honest: every validator accepts everything; worstCase: each accepts a different half; withheld: every validator commits and never reveals. */
type Votes = "honest" | "worstCase" | "withheld";

async function measure(nUpdates: number, nValidators: number, pool: HardhatEthersSigner[], mode: Votes = "honest") {
  const worstCase = mode === "worstCase";
  const p: Protocol = await deployProtocol(ethers, { workers: nUpdates, validators: nValidators, signers: pool, workerStake: 100n * ONE });
  // Filling every slot with rejected updates must cost the round's 80-token worker reward.
  const rejectSlashAmount = (80n * ONE + BigInt(nUpdates) - 1n) / BigInt(nUpdates);
  const jobId = await createJob(p, helpers, { maxUpdates: nUpdates, maxValidators: nValidators, numRounds: 2, rejectSlashAmount }, p.validators, 3600);
  const gas: Record<string, bigint[]> = {};
  const add = (k: string, g: bigint) => (gas[k] ??= []).push(g);
  const round = 1n;
  const subs = p.workers.map((w, i) => submission(w, `update-${i}`, 1000n));
  await toPhase(p, helpers, jobId, Phase.Commit);
  for (const s of subs) {
    const c = updateCommitment({ jobId, round, worker: s.worker.address, cidDigest: s.digest, cidCodec: s.codec, numSamples: s.numSamples, salt: s.salt });
    add("commitUpdate", await gasOf(as(p.coord, s.worker).commitUpdate(jobId, round, c)));
  }
  await toPhase(p, helpers, jobId, Phase.Reveal);
  for (const s of subs) add("revealUpdate", await gasOf(as(p.coord, s.worker).revealUpdate(jobId, round, s.digest, s.codec, s.numSamples, s.salt)));
  // Default: every validator accepts every update (honest round). worstCase: each validator accepts a
  // different half, the most work for finalize's tally.
  const all = nUpdates === 256 ? ethers.MaxUint256 : (1n << BigInt(nUpdates)) - 1n;
  const votes = p.validators.map((v, j) => vote(v, worstCase ? worstCaseBitmap(nUpdates, j) : all));
  await toPhase(p, helpers, jobId, Phase.VoteCommit);
  for (const v of votes) {
    const c = voteCommitment({ jobId, round, validator: v.validator.address, bitmap: v.bitmap, salt: v.salt });
    add("commitVote", await gasOf(as(p.coord, v.validator).commitVote(jobId, round, c)));
  }
  await toPhase(p, helpers, jobId, Phase.VoteReveal);
  if (mode !== "withheld") {
    for (const v of votes) add("revealVote", await gasOf(as(p.coord, v.validator).revealVote(jobId, round, v.bitmap, v.salt)));
  }
  await toPhase(p, helpers, jobId, Phase.Finalize);
  add("finalizeRound", await gasOf(p.coord.finalizeRound(jobId, round)));
  if (mode !== "honest") return gas;
  const model = ethers.id(`model-${nUpdates}x${nValidators}`);
  for (const v of p.validators) {
    const [cur, phase] = await p.coord.phaseOf(jobId);
    if (cur !== round || phase !== BigInt(Phase.Attest)) break;
    add("attestModel", await gasOf(as(p.coord, v).attestModel(jobId, round, model, Codec.raw)));
    add("reportModelScore", await gasOf(as(p.coord, v).reportModelScore(jobId, round, 9000, 250_000n, 3000)));
  }
  for (const [i, s] of subs.entries()) add("claimUpdateReward", await gasOf(as(p.coord, s.worker).claimUpdateReward(jobId, round, BigInt(i))));
  for (const v of p.validators) add("claimVoteReward", await gasOf(as(p.coord, v).claimVoteReward(jobId)));
  return gas;
}

const pool = await signers(2 + 256 + 256);
const results: Record<string, number> = {};
const detail: Record<string, Record<string, { median: number; min: number; max: number; n: number }>> = {};
for (const [u, v] of SIZES) {
  const t0 = Date.now();
  const gas = await measure(u, v, pool);
  const key = `${u}x${v}`;
  detail[key] = Object.fromEntries(
    Object.entries(gas).map(([k, xs]) => [k, { median: median(xs), min: Number(xs.reduce((a, b) => (a < b ? a : b))), max: Number(xs.reduce((a, b) => (a > b ? a : b))), n: xs.length }]),
  );
  results[`finalizeRound_${key}`] = median(gas.finalizeRound!);
  if (key === PER_PARTICIPANT_SIZE) {
    for (const k of ["commitUpdate", "revealUpdate", "commitVote", "revealVote", "attestModel", "reportModelScore", "claimUpdateReward", "claimVoteReward"]) {
      results[k] = median(gas[k]!);
    }
    // `claim`: the dearer of the two claim calls (workers and validators claim through different functions).
    results.claim = Math.max(results.claimUpdateReward!, results.claimVoteReward!);
  }
  console.log(`  measured ${key} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
if (!process.env.BENCH_GAS_SIZES) {
  // Not a target of the issue, but the bound that matters for block gas limits.
  const gas = await measure(256, 64, pool, "worstCase");
  results.finalizeRound_256x64_worstCase = median(gas.finalizeRound!);
  console.log("  measured 256x64 worst-case votes");
  // Every vote committed and withheld: finalize records each one (SSTORE) and slashes nothing itself.
  const withheld = await measure(256, 64, pool, "withheld");
  results.finalizeRound_256x64_allWithheld = median(withheld.finalizeRound!);
  console.log("  measured 256x64 with every vote withheld");
  // The caps (256 updates × 256 validators): must fit one transaction under EIP-7825's 2^24 gas.
  const full = await measure(256, 256, pool, "worstCase");
  results.finalizeRound_256x256_worstCase = median(full.finalizeRound!);
  console.log("  measured 256x256 worst-case votes");
}

const ordered = ["commitUpdate", "revealUpdate", "commitVote", "revealVote", "attestModel", "reportModelScore", "claim", "claimUpdateReward", "claimVoteReward", ...SIZES.map(([u, v]) => `finalizeRound_${u}x${v}`), ...(process.env.BENCH_GAS_SIZES ? [] : ["finalizeRound_256x64_worstCase", "finalizeRound_256x64_allWithheld", "finalizeRound_256x256_worstCase"])];
const out: Record<string, number> = {};
// (A BENCH_GAS_SIZES run without the per-participant size measures finalizeRound only.)
for (const k of ordered) if (results[k] !== undefined) out[k] = results[k];
console.log("\n call                      gas        target     ");
console.log(" ------------------------------  ---------  -----------");
for (const k of Object.keys(out)) {
  const t = TARGETS[k];
  const mark = t === undefined ? "" : out[k]! <= t ? `≤ ${t.toLocaleString("en")} ok` : `≤ ${t.toLocaleString("en")} MISSED`;
  console.log(` ${k.padEnd(30)}  ${out[k]!.toLocaleString("en").padStart(9)}  ${mark}`);
}
// `hardhat run` passes no arguments: BENCH_UPDATE=1 writes the committed results, BENCH_OUT=DIR a folder.
const dir = benchOutDir();
writeFileSync(join(dir, "gas.json"), JSON.stringify(out, null, 2) + "\n");
writeFileSync(join(dir, "gas-detail.json"), JSON.stringify({ perParticipantSize: PER_PARTICIPANT_SIZE, sizes: detail }, null, 2) + "\n");
console.log(`\nwrote ${shown(join(dir, "gas.json"))} (and gas-detail.json with min/median/max per size)`);
