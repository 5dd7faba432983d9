/**
 * `npm run bench:robustness` — the acceptance policy against attacks, measured (sim/harness.ts): every
 * attack alone at each attacker fraction, against the vote (the real protocol; honest validators, then
 * colluding validator stake) and the no-vote baselines, same data and seeds. Writes robustness.json
 * (one row per cell) and robustness.html (a chart per attack) to bench/results/local/ (--update: the
 * committed bench/results/; --out DIR), prints the table.
 *
 *   npm run bench:robustness                       (20 workers, 5 validators, 10 rounds, the full grid)
 *   npm run bench:robustness -- --attacks signflip,noise --fractions 0.45 --rounds 5 --defences vote,fedavg
 *   npm run bench:robustness -- --compression int8,topk:0.01:2    (every vote cell once per compression;
 *                                                                   the baselines aggregate dense deltas)
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { network } from "hardhat";
import { benchOutDir, OUT_OPTIONS, shown } from "./bench-out.ts";
import { ATTACKS } from "../sim/attacks/index.ts";
import { compressionLabel, compressionOption, DEFAULT_POPULATION, DEFENCES, Population, runCell, type Cell, type Defence, type Row } from "../sim/harness.ts";

const { values: opt } = parseArgs({
  options: {
    workers: { type: "string", default: String(DEFAULT_POPULATION.workers) },
    validators: { type: "string", default: String(DEFAULT_POPULATION.validators) },
    rounds: { type: "string", default: String(DEFAULT_POPULATION.rounds) },
    attacks: { type: "string", default: Object.keys(ATTACKS).join(",") },
    fractions: { type: "string", default: "0.1,0.3,0.45" },
    colluding: { type: "string", default: "0,0.2,0.4" },
    defences: { type: "string", default: DEFENCES.join(",") },
    compression: { type: "string", default: "int8" },
    ...OUT_OPTIONS,
  },
});
/** bench/results/local/ unless --update (the committed results) or --out DIR. */
const OUT_DIR = benchOutDir(opt);
const list = (s: string) => s.split(",").filter(Boolean);
const attacks = list(opt.attacks!);
for (const a of attacks) if (!ATTACKS[a]) throw new Error(`--attacks: unknown attack "${a}" (known: ${Object.keys(ATTACKS).join(", ")})`);
const defences = list(opt.defences!) as Defence[];
for (const d of defences) if (!DEFENCES.includes(d)) throw new Error(`--defences: unknown defence "${d}" (known: ${DEFENCES.join(", ")})`);
const fractions = list(opt.fractions!).map(Number);
const colluding = list(opt.colluding!).map(Number);
if (![...fractions, ...colluding].every((f) => f >= 0 && f < 1)) throw new Error("--fractions and --colluding take numbers in [0, 1)");
const compressions = compressionOption(opt.compression!);

const pop = await Population.create({ ...DEFAULT_POPULATION, workers: Number(opt.workers), validators: Number(opt.validators), rounds: Number(opt.rounds) });
const { ethers, networkHelpers: helpers } = await network.create();

// The grid: the honest run once per defence, then each attack × fraction × defence; the vote with
// colluding validator stake at every fraction.
const cells: Cell[] = [];
for (const d of defences) for (const compression of d === "vote" ? compressions : [undefined]) cells.push({ attack: "none", fraction: 0, colludingStakeBps: 0, defence: d, compression });
// The reference for each fraction: FedAvg of the honest workers alone (the attackers left out).
if (defences.includes("honest-only")) for (const f of fractions) cells.push({ attack: "none", fraction: f, colludingStakeBps: 0, defence: "honest-only" });
for (const a of attacks) {
  for (const f of fractions) {
    for (const d of defences) {
      if (d === "honest-only") continue;
      for (const cs of d === "vote" ? colluding : [0]) {
        for (const compression of d === "vote" ? compressions : [undefined]) cells.push({ attack: a, fraction: f, colludingStakeBps: Math.round(cs * 10_000), defence: d, compression });
      }
    }
  }
}
const rows: Row[] = [];
const honestOnly = new Map<string, number>();
const t0 = Date.now();
for (const [i, c] of cells.entries()) {
  console.log(`[${i + 1}/${cells.length}] ${c.attack} ${Math.round(c.fraction * 100)} % ${c.defence}${c.compression ? ` ${compressionLabel(c.compression)}` : ""}${c.colludingStakeBps ? ` (${c.colludingStakeBps / 100} % colluding stake)` : ""}  (${Math.round((Date.now() - t0) / 1000)} s)`);
  const row = await runCell(pop, c, { ethers, helpers }, (m) => console.log(m));
  rows.push(row);
  if (c.attack === "none" && c.defence === "honest-only") honestOnly.set("", row.finalAccuracy);
  console.log(`    → accuracy ${(row.finalAccuracy * 100).toFixed(2)} %, attackers accepted ${row.attackerAccepted}/${row.attackerSubmitted}, honest rejected ${row.honestRejected}/${row.honestSubmitted}` +
    `${row.backdoorSuccess === null ? "" : `, backdoor ${(row.backdoorSuccess * 100).toFixed(1)} %`}, slashed attackers ${row.attackerSlashed} honest ${row.honestSlashed}, rewards to attackers ${row.rewardsToAttackers}, conserved ${row.tokensConserved} (${row.seconds} s)`);
  writeResults();
}

function writeResults() {
  const dir = OUT_DIR;
  writeFileSync(join(dir, "robustness.json"), JSON.stringify({ population: pop.o, honestOnlyAccuracy: honestOnly.get("") ?? null, rows }, null, 1));
  writeFileSync(join(dir, "robustness.html"), chart(rows));
}

function chart(rs: Row[]): string {
  const by = new Map<string, Row[]>();
  for (const r of rs) if (r.attack !== "none") by.set(r.attack, [...(by.get(r.attack) ?? []), r]);
  const colours = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
  const svgs = [...by.entries()].map(([attack, list]) => {
    const series = new Map<string, Row[]>();
    for (const r of [...rs.filter((x) => x.attack === "none"), ...list]) {
      const vote = (bps: number) => `vote (${bps / 100} % colluding${compressions.length > 1 && r.compression ? `, ${compressionLabel(r.compression)}` : ""})`;
      const key = r.defence === "vote" ? vote(r.colludingStakeBps) : r.defence;
      if (r.attack === "none" && r.defence === "vote") for (const b of [0, 2000, 4000]) series.set(vote(b), [...(series.get(vote(b)) ?? []), r]);
      else series.set(key, [...(series.get(key) ?? []), r]);
    }
    const W = 420, H = 260, x = (f: number) => 50 + (f / 0.5) * (W - 70), y = (a: number) => H - 30 - a * (H - 50);
    let s = `<svg width="${W + 220}" height="${H}" xmlns="http://www.w3.org/2000/svg" font-family="sans-serif" font-size="11"><text x="10" y="14" font-weight="bold">${attack}</text>`;
    s += `<line x1="50" y1="${y(0)}" x2="${W - 20}" y2="${y(0)}" stroke="#999"/><line x1="50" y1="${y(0)}" x2="50" y2="${y(1)}" stroke="#999"/>`;
    for (const a of [0, 0.25, 0.5, 0.75, 1]) s += `<text x="20" y="${y(a) + 4}">${a * 100}</text>`;
    for (const f of [0, 0.1, 0.3, 0.45]) s += `<text x="${x(f) - 8}" y="${H - 12}">${f * 100}%</text>`;
    [...series.entries()].forEach(([k, pts], i) => {
      const sorted = [...pts].sort((a, b) => a.fraction - b.fraction);
      const c = colours[i % colours.length];
      s += `<polyline fill="none" stroke="${c}" stroke-width="2" points="${sorted.map((r) => `${x(r.fraction)},${y(r.finalAccuracy)}`).join(" ")}"/>`;
      s += `<text x="${W}" y="${30 + i * 14}" fill="${c}">${k}</text>`;
    });
    return s + "</svg>";
  });
  return `<!doctype html><meta charset="utf-8"><title>fedstake robustness</title><h1>Final test accuracy vs attacker fraction</h1><p>${pop.o.workers} workers, ${pop.o.validators} validators, ${pop.o.rounds} rounds, MNIST Dirichlet(${pop.o.alpha}).</p>${svgs.join("<br>")}`;
}

console.log("\nattack      frac  defence              compression     collude  accuracy  att.acc/sub  hon.rej/sub  backdoor  slashed a/h  rewards→att  conserved");
for (const r of rows) {
  console.log(`${r.attack.padEnd(11)} ${String(Math.round(r.fraction * 100)).padStart(4)}%  ${r.defence.padEnd(20)} ${(r.compression ? compressionLabel(r.compression) : "-").padEnd(15)} ${String(r.colludingStakeBps / 100).padStart(6)}%  ${(r.finalAccuracy * 100).toFixed(2).padStart(7)}%  ${`${r.attackerAccepted}/${r.attackerSubmitted}`.padStart(11)}  ${`${r.honestRejected}/${r.honestSubmitted}`.padStart(11)}  ${r.backdoorSuccess === null ? "       -" : ((r.backdoorSuccess * 100).toFixed(1) + "%").padStart(8)}  ${`${r.attackerSlashed}/${r.honestSlashed}`.padStart(11)}  ${r.rewardsToAttackers.padStart(11)}  ${r.tokensConserved ?? "-"}`);
}
console.log(`\nwrote ${shown(join(OUT_DIR, "robustness.json"))} and robustness.html (${Math.round((Date.now() - t0) / 1000)} s)`);
