/**
 * `npm run bench:chaos -- --seed S --faults N --rounds R`: the demo's network (all honest: 6 workers, 4
 * validators by default) under N process faults drawn from the seed — a SIGKILL (restarted from the
 * data directory) or a SIGSTOP of 2–10 s, of a random node, right after a random protocol step of a
 * random round (worker: trained, committed, revealed, claimed; validator: evaluated, vote-committed,
 * vote-revealed, aggregated, attested) — triggered by the node's own events, each printed as it fires.
 * Phases are long enough (30,20,20,20,30 s) that a fault of this length fits in what remains of any
 * window, so the protocol promises that nobody honest loses stake. After the run it checks, each a
 * named property: every round decided; every round's attestations name one model; no stake slashed;
 * the token ledger balances (burned = slashed); every node settled (no lock or bond left); no worker
 * has two updates in a round; every fault drawn fired. Writes chaos.json (bench-out.ts: bench/results/
 * local/ unless --update or --out): the schedule, the faults fired by kind and step with their time to
 * recover, and the properties.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { prng } from "../worker/util/prng.ts";
import { benchOutDir, OUT_OPTIONS, shown } from "./bench-out.ts";

const ROOT = resolve(import.meta.dirname, "..");
const { values: opt } = parseArgs({
  options: {
    seed: { type: "string", default: "1" },
    faults: { type: "string", default: "6" },
    rounds: { type: "string", default: "3" },
    workers: { type: "string", default: "6" },
    validators: { type: "string", default: "4" },
    ...OUT_OPTIONS,
  },
});
const int = (k: keyof typeof opt, min: number) => {
  const v = Number(opt[k]);
  if (!Number.isInteger(v) || v < min) throw new Error(`--${k} must be an integer ≥ ${min}, got "${opt[k]}"`);
  return v;
};
const SEED = int("seed", 0);
const N_FAULTS = int("faults", 0);
const R = int("rounds", 1);
const W = int("workers", 2);
const V = int("validators", 1);
const OUT_DIR = benchOutDir(opt);

const STEPS = {
  worker: ["trained", "committed", "revealed", "claimed"],
  validator: ["evaluated", "vote-committed", "vote-revealed", "aggregated", "attested"],
} as const;

/** The schedule: N faults drawn from the seed, at most one per node and step (a step fires once per round). */
function schedule(): string[] {
  const rand = prng(SEED);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const nodes = [...Array.from({ length: W }, (_, i) => `worker-${i}`), ...Array.from({ length: V }, (_, j) => `validator-${j}`)];
  const out = new Set<string>();
  const busy = new Set<string>();
  for (let tries = 0; out.size < N_FAULTS && tries < 1000; tries++) {
    const node = pick(nodes);
    // One fault per node: a node faulted twice at once (stopped while being restarted) tests the demo, not the node.
    if (busy.has(node)) continue;
    const step = pick(node.startsWith("worker") ? STEPS.worker : STEPS.validator);
    const round = 1 + Math.floor(rand() * R);
    const kind = rand() < 0.5 ? "kill" : `stop=${2 + Math.floor(rand() * 9)}`;
    busy.add(node);
    out.add(`${node}@${step}#${round}:${kind}`);
  }
  if (out.size < N_FAULTS) throw new Error(`--faults ${N_FAULTS}: at most one fault per node, and there are ${W + V} nodes`);
  return [...out];
}

interface Round {
  round: number;
  outcome: string;
  updates: { name: string; accepted: boolean }[];
  attestations: { validator: string; digest: string }[];
  slashes: { account: string; reason: string; amount: string }[];
}
interface Fired {
  node: string;
  event: string;
  round: number | null;
  kind: "kill" | "stop";
  seconds?: number;
  recoverMs?: number;
}

async function main() {
  const faults = schedule();
  console.log(`chaos: seed ${SEED}, ${W} workers, ${V} validators, ${R} rounds, ${faults.length} faults:\n  ${faults.join("\n  ")}`);
  const home = mkdtempSync(join(tmpdir(), "fedstake-chaos-"));
  const t0 = Date.now();
  const args = ["--attack", "none", "--workers", String(W), "--validators", String(V), "--rounds", String(R), "--train-samples", String(1000 * W), "--phases", "30,20,20,20,30", "--port", "0", "--timeout-min", "30"];
  if (faults.length) args.push("--fault", faults.join(","));
  const child = spawn(process.execPath, [join(ROOT, "scripts/demo.ts"), ...args], { cwd: ROOT, env: { ...process.env, FEDSTAKE_HOME: home }, stdio: ["ignore", "pipe", "inherit"] });
  // The demo's lines, indented whole (a chunk may end mid-line).
  let partial = "";
  child.stdout!.on("data", (d: Buffer) => {
    const lines = (partial + d.toString()).split("\n");
    partial = lines.pop()!;
    for (const l of lines) console.log(`  | ${l}`);
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  const wallS = (Date.now() - t0) / 1000;
  const dir = realpathSync(join(home, "runs/latest"));
  const read = <T>(f: string): T => JSON.parse(readFileSync(join(dir, f), "utf8")) as T;
  const rounds = read<Round[]>("rounds.json");
  const ledger = read<{ balanced: boolean; burned: number; slashed: number; nodesSettled: number; nodes: number }>("ledger.json");
  const { fired, notFired } = read<{ fired: Fired[]; notFired: string[] }>("faults.json");

  const properties: Record<string, { ok: boolean; detail: string }> = {};
  const check = (name: string, ok: boolean, detail: string) => (properties[name] = { ok, detail });
  check("demo-exited-0", code === 0, `exit code ${code}`);
  check("every-round-decided", rounds.length === R && rounds.every((r) => r.outcome === "decided"), rounds.map((r) => `${r.round}: ${r.outcome}`).join(", "));
  check("one-model-per-round", rounds.every((r) => r.attestations.length > 0 && new Set(r.attestations.map((a) => a.digest)).size === 1), rounds.map((r) => `${r.round}: ${r.attestations.length} attestations, ${new Set(r.attestations.map((a) => a.digest)).size} CIDs`).join(", "));
  const slashes = rounds.flatMap((r) => r.slashes.map((s) => `round ${r.round}: ${s.account} ${s.reason} ${s.amount}`));
  check("no-honest-stake-lost", slashes.length === 0, slashes.join("; ") || "no slash");
  check("ledger-balances", ledger.balanced && Math.abs(ledger.burned - ledger.slashed) < 1e-9, JSON.stringify(ledger));
  check("every-node-settled", ledger.nodesSettled === ledger.nodes, `${ledger.nodesSettled}/${ledger.nodes}`);
  const twice = rounds.flatMap((r) => {
    const names = r.updates.map((u) => u.name);
    return names.filter((n, i) => names.indexOf(n) !== i).map((n) => `round ${r.round}: ${n}`);
  });
  check("one-update-per-worker-and-round", twice.length === 0, twice.join("; ") || "none twice");
  check("every-fault-fired", notFired.length === 0, notFired.length ? `not fired: ${notFired.join(", ")}` : `${fired.length} fired`);

  const byKind: Record<string, number> = {};
  const byStep: Record<string, number> = {};
  for (const f of fired) {
    byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
    byStep[f.event] = (byStep[f.event] ?? 0) + 1;
  }
  const result = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30) },
    config: { seed: SEED, faults: N_FAULTS, rounds: R, workers: W, validators: V, phases: "30,20,20,20,30" },
    schedule: faults,
    fired,
    notFired,
    byKind,
    byStep,
    recoverMs: fired.map((f) => f.recoverMs ?? null),
    properties,
    passed: Object.values(properties).every((p) => p.ok),
    wallS,
  };
  const out = join(OUT_DIR, "chaos.json");
  writeFileSync(out, JSON.stringify(result, null, 1) + "\n");
  console.log(`\nproperties after ${wallS.toFixed(0)} s:`);
  for (const [name, p] of Object.entries(properties)) console.log(`  ${p.ok ? "ok  " : "FAIL"} ${name.padEnd(32)} ${p.detail}`);
  console.log(`faults fired: ${fired.length} (${Object.entries(byKind).map(([k, n]) => `${n} ${k}`).join(", ")}); results: ${shown(out)}`);
  // The nodes' logs are kept when a property failed (to see why), removed otherwise.
  if (result.passed) rmSync(home, { recursive: true, force: true });
  else console.log(`the run's nodes, logs and state files: ${dir}`);
  process.exit(result.passed ? 0 : 1);
}

await main();
