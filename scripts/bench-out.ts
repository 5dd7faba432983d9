/**
 * Where the benchmarks (scripts/bench-*.ts) write their results. A run writes to bench/results/local/
 * (ignored by git), so that measuring never rewrites the committed results; `--update` (or
 * BENCH_UPDATE=1, for `npm run bench:gas`, which `hardhat run` starts without arguments) writes the
 * committed bench/results/, and `--out DIR` (or BENCH_OUT=DIR) any folder (relative to the folder the
 * command was run in, also under `npm run`). The JSON written is the same either way.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
/** The committed results (README quotes them). */
export const COMMITTED_RESULTS = resolve(ROOT, "bench/results");
/** A local run's results (in .gitignore). */
export const LOCAL_RESULTS = resolve(ROOT, "bench/results/local");

/** The options every benchmark takes for it, for node:util parseArgs. */
export const OUT_OPTIONS = {
  out: { type: "string" },
  update: { type: "boolean", default: false },
} as const;

/**
 * The folder to write results in (created): `out`, else the committed results with `update`, else
 * bench/results/local/; BENCH_OUT and BENCH_UPDATE=1 stand in for --out and --update.
 */
export function benchOutDir(o: { out?: string; update?: boolean } = {}): string {
  const out = o.out ?? process.env.BENCH_OUT;
  const update = o.update || process.env.BENCH_UPDATE === "1";
  if (out !== undefined && update) throw new Error("--out and --update are exclusive: --update writes bench/results/");
  const dir = out !== undefined ? resolve(process.env.INIT_CWD ?? process.cwd(), out) : update ? COMMITTED_RESULTS : LOCAL_RESULTS;
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** --out DIR / --out=DIR and --update from a plain argv (the benchmarks that take no other options). */
export function outFromArgv(argv: string[] = process.argv.slice(2)): { out?: string; update?: boolean } {
  const o: { out?: string; update?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--update") o.update = true;
    else if (a === "--out") {
      if (argv[i + 1] === undefined) throw new Error("--out needs a folder");
      o.out = argv[++i];
    } else if (a.startsWith("--out=")) o.out = a.slice("--out=".length);
    else throw new Error(`unknown argument "${a}" (the benchmark takes --out DIR or --update)`);
  }
  return o;
}

/** A results path as the run prints it: relative to the checkout when inside it. */
export const shown = (path: string) => (path.startsWith(ROOT + "/") ? path.slice(ROOT.length + 1) : path);
