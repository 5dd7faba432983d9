/**
 * `npm run build:lib`: the package as it is installed, in dist/. Node runs the TypeScript sources
 * directly in a clone, but refuses to strip types from files under node_modules, so an installed
 * fedstake runs JavaScript: tsc (tsconfig.build.json) compiles what the library entry (worker/index.ts)
 * and the CLI (scripts/fedstake.ts) reach, with declarations; then this copies what the compiled code
 * reads at run time from paths relative to itself:
 * - the four contracts' ABIs and bytecode (worker/chain/client.ts reads `artifacts/contracts/…` two
 *   folders above itself, which in dist/ is dist/), built first if missing;
 * - the dashboard's page (worker/dashboard/server.ts serves `page/` next to itself);
 * - a package.json with the version (`fedstake --version` reads it two folders above scripts/cli/).
 */
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { CHILD_ENV, ensureBuilt } from "../worker/chain/devnet.ts";

const ROOT = resolve(import.meta.dirname, "..");
const DIST = join(ROOT, "dist");
/** The artifacts worker/chain/client.ts loads (its ARTIFACT_PATHS). */
const CONTRACTS = [
  "StakeToken.sol/StakeToken.json",
  "StakeManager.sol/StakeManager.json",
  "TrainingCoordinator.sol/TrainingCoordinator.json",
  "coordinator/CoordinatorExtension.sol/CoordinatorExtension.json",
];

rmSync(DIST, { recursive: true, force: true });
ensureBuilt();
const tsc = spawnSync(join(ROOT, "node_modules/.bin/tsc"), ["-p", "tsconfig.build.json"], { cwd: ROOT, env: CHILD_ENV, stdio: "inherit" });
if (tsc.status !== 0) process.exit(tsc.status ?? 1);

for (const rel of CONTRACTS) {
  const a = JSON.parse(readFileSync(join(ROOT, "artifacts/contracts", rel), "utf8")) as { contractName: string; sourceName: string; abi: unknown[]; bytecode: string };
  const out = join(DIST, "artifacts/contracts", rel);
  mkdirSync(dirname(out), { recursive: true });
  // What the client reads (abi, bytecode), not the compiler's whole output.
  writeFileSync(out, JSON.stringify({ contractName: a.contractName, sourceName: a.sourceName, abi: a.abi, bytecode: a.bytecode }));
}
cpSync(join(ROOT, "worker/dashboard/page"), join(DIST, "worker/dashboard/page"), { recursive: true });
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
writeFileSync(join(DIST, "package.json"), JSON.stringify({ version: pkg.version, type: "module" }, null, 2) + "\n");
console.log(`dist/: library (worker/index.js, .d.ts), CLI (scripts/fedstake.js), ${CONTRACTS.length} contract artifacts, fedstake ${pkg.version}`);
