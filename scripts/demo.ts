/**
 * `npm run demo` — the whole system on one machine, loopback only: a `hardhat node` on 127.0.0.1,
 * the contracts, an MNIST job, N worker processes (Dirichlet non-IID shards; the last K are attackers,
 * by default one sign-flipping and scaling its update, run by sim/adversary.ts with an attack from
 * sim/attacks/) and M validator processes (each with its own held-out slice), each process with its own
 * key and embedded IPFS node. Shows every round as it is decided, waits for every
 * node to settle after the job (claims, stake lock releases, slashes, committee bonds), shows the
 * accounts (slashed stake is burned, all of it: nobody profits from a slash) and writes
 * $FEDSTAKE_HOME/runs/<timestamp>/ (default ~/.fedstake; rounds.json, accounts.json, ledger.json,
 * accuracy.html) with runs/latest pointing at it.
 *
 *   npm run demo -- --workers 4 --validators 3 --rounds 5 --attack signflip --attackers 1
 *   npm run demo -- --attack none                  (all honest; --attack takes any sim/attacks/ name)
 *   npm run demo -- --crash worker-0,validator-0   (kill each after its first commit, restart it)
 *   npm run demo -- --fault worker-1@trained:kill,validator-0@vote-committed:stop=8   (faults at protocol steps)
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { HDNodeWallet, Mnemonic, parseEther, Wallet, type EventLog } from "ethers";
import { attach, deployProtocol, revealedUpdates, sendTx, sendValue } from "../worker/chain/client.ts";
import { DEVNET_NODES, mintAndStake, startDevnet, type Devnet, type DevnetNode } from "../worker/chain/devnet.ts";
import { defaultJobParams, hasBit, JobStatus, Outcome, outcomeName, Phase } from "../worker/chain/protocol.ts";
import { loadMnist } from "../worker/data/mnist.ts";
import { MNIST_MLP } from "../worker/training/presets.ts";
import type { NodeConfig } from "../worker/node/config.ts";
import { inHome } from "../worker/node/home.ts";
import { parseJobSpec, parseValidation, type JobSpec } from "../worker/node/jobSpec.ts";
import { completePrivacy } from "../worker/privacy/policy.ts";
import { noiseStd } from "../worker/privacy/mechanism.ts";
import { modelArtifact } from "../worker/node/context.ts";
import { phaseProgress } from "../worker/node/progress.ts";
import { HeliaStore } from "../worker/storage/heliaStore.ts";
import { cidFromChain, cidToChain } from "../worker/storage/store.ts";
import { decodeArtifact } from "../worker/artifacts/index.ts";
import { initParams, paramsOf } from "../worker/training/model.ts";
import type { ModelSpec } from "../worker/training/spec.ts";
import { evaluate } from "../worker/training/trainer.ts";
import { readRounds, roundScore } from "../worker/dashboard/rounds.ts";
import { startDashboard } from "../worker/dashboard/server.ts";
import { ATTACKS, attackByName } from "../sim/attacks/index.ts";
import { AGGREGATION_KINDS, parseAggregation } from "../worker/aggregation/index.ts";
import { queryEvents } from "../worker/chain/events.ts";

const ROOT = resolve(import.meta.dirname, "..");
/** The demo's options, each with its default and what it does (`--help` prints this table). */
const OPTIONS = {
  workers: { type: "string", default: "4", about: "worker processes (each a Dirichlet non-IID shard of MNIST)" },
  validators: { type: "string", default: "3", about: "validator processes (each its own held-out slice)" },
  rounds: { type: "string", default: "5", about: "rounds of the job" },
  attack: { type: "string", default: "signflip", about: `what the last --attackers workers do: none or ${Object.keys(ATTACKS).join(", ")} (sim/attacks/)` },
  attackers: { type: "string", default: "1", about: "how many workers (the last ones) run the attack" },
  aggregation: { type: "string", default: "fedavg", about: `the job's aggregation: ${AGGREGATION_KINDS.join(", ")}` },
  epochs: { type: "string", default: "1", about: "local epochs per round" },
  "train-samples": { type: "string", default: "12000", about: "MNIST training samples shared among the workers" },
  partition: { type: "string", default: "dirichlet", about: "how the workers' data is split: dirichlet (α = 0.5, non-IID) or iid" },
  phases: { type: "string", default: "12,6,10,6,20", about: "phase lengths in seconds: commit,reveal,voteCommit,voteReveal,attest" },
  "slash-window": { type: "string", default: "300", about: "seconds after vote reveal within which finalize and every slash of a round must happen" },
  dataset: { type: "string", default: "mnist", about: "the data set (only mnist ships with the demo)" },
  privacy: { type: "string", default: "", about: "differentially private updates (worker/privacy/): eps=E[,delta=1e-5][,clip=C][,mode=local|distributed] — the noise multiplier is derived for --rounds" },
  encrypt: { type: "boolean", default: false, about: "seal every update to the committee: only its validators can read them (worker/privacy/sealed.ts)" },
  chain: { type: "string", default: "hardhat", about: `the local chain: ${DEVNET_NODES.join(" or ")} (Foundry's Anvil: blocks that batch transactions, as public chains do)` },
  port: { type: "string", default: "0", about: "the chain's RPC port on 127.0.0.1 (0: one the OS picks, so a chain of your own on 8545 is never touched; a busy port: a free one)" },
  "timeout-min": { type: "string", default: "15", about: "give up after this many minutes" },
  crash: { type: "string", default: "", about: "crash test: comma-separated node names (worker-0,validator-0) killed right after their first commit, then restarted" },
  fault: { type: "string", default: "", about: "faults at protocol steps: NODE@EVENT[#ROUND][:kill|:stop=S], comma-separated (worker-1@trained:kill, validator-0@vote-committed#2:stop=8): when NODE logs EVENT, SIGKILL and restart it, or SIGSTOP it for S seconds" },
  help: { type: "boolean", short: "h", default: false, about: "print this help" },
} as const;

/** The demo's usage, generated from OPTIONS. */
export function demoHelp(): string {
  const rows = Object.entries(OPTIONS).map(([k, o]) => `  --${k}${o.type === "string" ? " VALUE" : ""}`.padEnd(26) + ` ${o.about}${o.type === "string" && o.default !== "" ? ` (default ${o.default})` : ""}`);
  return `usage: npm run demo -- [options]   (or: npx fedstake demo [options])\n\nThe whole system on one machine, loopback only (README, "The demo").\n\n${rows.join("\n")}\n`;
}

let parsed;
try {
  parsed = parseArgs({ options: Object.fromEntries(Object.entries(OPTIONS).map(([k, { about: _, ...o }]) => [k, o])) as { [K in keyof typeof OPTIONS]: Omit<(typeof OPTIONS)[K], "about"> } });
} catch (e) {
  console.error(`demo: ${(e as Error).message.split("\n")[0]}\n\n${demoHelp()}`);
  process.exit(2);
}
const opt = parsed.values as { [K in keyof typeof OPTIONS]: (typeof OPTIONS)[K]["type"] extends "boolean" ? boolean : string };
if (opt.help) {
  console.log(demoHelp());
  process.exit(0);
}
/** One --fault entry: NODE@EVENT[#ROUND][:kill|:stop=S]. */
function parseFault(spec: string): { name: string; events: string[]; round?: number; kind: "kill" | "stop"; seconds: number } {
  const m = /^([\w-]+)@([a-z-]+)(?:#(\d+))?(?::(kill|stop=(\d+(?:\.\d+)?)))?$/.exec(spec.trim());
  if (!m) usage(`--fault takes NODE@EVENT[#ROUND][:kill|:stop=SECONDS] (e.g. worker-1@trained:kill, validator-0@vote-committed#2:stop=8), got "${spec}"`);
  const seconds = m[5] === undefined ? 0 : Number(m[5]);
  if (m[5] !== undefined && !(seconds > 0 && seconds <= 600)) usage(`--fault ${spec}: a stop lasts more than 0 and at most 600 s`);
  return { name: m[1]!, events: [m[2]!], ...(m[3] ? { round: Number(m[3]) } : {}), kind: m[5] === undefined ? "kill" : "stop", seconds };
}

/** A bad option: named, before anything starts (no chain, no stack trace), exit status 2. */
function usage(message: string): never {
  console.error(`demo: ${message}\n(npm run demo -- --help lists the options)`);
  process.exit(2);
}
const N = Number(opt.workers);
const M = Number(opt.validators);
const R = Number(opt.rounds);
if (opt.dataset !== "mnist") usage(`dataset "${opt.dataset}" is not available (only mnist ships with the demo)`);
if (!(Number.isInteger(N) && Number.isInteger(M) && Number.isInteger(R) && N >= 2 && M >= 1 && R >= 1)) usage(`need whole numbers --workers ≥ 2, --validators ≥ 1, --rounds ≥ 1, got ${opt.workers}, ${opt.validators}, ${opt.rounds}`);
if (opt.attack !== "none" && !Object.hasOwn(ATTACKS, opt.attack)) usage(`--attack must be none or one of ${Object.keys(ATTACKS).join(", ")}, got "${opt.attack}"`);
const ATTACK = opt.attack === "none" ? undefined : attackByName(opt.attack);
/** Attackers: the last K workers (none without an attack); at least one worker stays honest. */
const K = ATTACK ? Number(opt.attackers) : 0;
if (!(Number.isInteger(K) && K >= 0 && K < N)) usage(`--attackers must be an integer in [0, workers − 1] = [0, ${N - 1}], got "${opt.attackers}"`);

if (!(AGGREGATION_KINDS as readonly string[]).includes(opt.aggregation)) usage(`--aggregation must be one of ${AGGREGATION_KINDS.join(", ")}, got "${opt.aggregation}"`);
/** The job's aggregation, with its defaults (trimmed_mean: trim 0.2). */
const AGGREGATION: JobSpec["aggregation"] = parseAggregation(opt.aggregation === "trimmed_mean" ? { kind: "trimmed_mean", trim: 0.2 } : { kind: opt.aggregation });
const SPEC: ModelSpec = MNIST_MLP;
const phaseList = opt.phases.split(",").map(Number);
if (phaseList.length !== 5 || !phaseList.every((p) => Number.isInteger(p) && p > 0)) usage(`--phases takes five positive integers (commit,reveal,voteCommit,voteReveal,attest), got "${opt.phases}"`);
const [commitPeriod, revealPeriod, voteCommitPeriod, voteRevealPeriod, attestPeriod] = phaseList as [number, number, number, number, number];
const PHASES = { commitPeriod, revealPeriod, voteCommitPeriod, voteRevealPeriod, attestPeriod };
/** The stake manager's unbonding period: every round (its slash window and attestation included) must be shorter. */
const UNBONDING = 3600;
const SLASH_WINDOW = Number(opt["slash-window"]);
if (!(Number.isInteger(SLASH_WINDOW) && SLASH_WINDOW > 0)) usage(`--slash-window must be a positive integer, got "${opt["slash-window"]}"`);
if (phaseList.reduce((a, b) => a + b, 0) + SLASH_WINDOW >= UNBONDING) {
  usage(`a round (--phases + --slash-window = ${phaseList.reduce((a, b) => a + b, 0) + SLASH_WINDOW} s) must be shorter than the demo's ${UNBONDING} s unbonding period`);
}
/** --fault: checked before anything starts. */
const FAULT_SPECS = opt.fault.split(",").filter(Boolean).map(parseFault);
if (!(DEVNET_NODES as readonly string[]).includes(opt.chain)) usage(`--chain must be ${DEVNET_NODES.join(" or ")}, got "${opt.chain}"`);
/** --privacy eps=8,clip=1,mode=local: the job spec's privacy section, completed for the job's rounds. */
const PRIVACY = opt.privacy === "" ? undefined : privacySection(opt.privacy);
function privacySection(text: string): Record<string, unknown> {
  const kv = Object.fromEntries(text.split(",").map((p) => p.split("=").map((x) => x.trim()) as [string, string]));
  for (const k of Object.keys(kv)) if (!["eps", "delta", "clip", "mode"].includes(k)) usage(`--privacy takes eps=E[,delta=D][,clip=C][,mode=local|distributed], got "${k}"`);
  const num = (k: string, dflt?: number) => {
    const v = kv[k] === undefined ? dflt : Number(kv[k]);
    if (v === undefined || !Number.isFinite(v) || v <= 0) usage(`--privacy: ${k} must be a positive number, got "${kv[k] ?? ""}"`);
    return v;
  };
  const raw = { mode: kv.mode ?? "local", epsilon: num("eps"), delta: num("delta", 1e-5), clipNorm: num("clip", 1) };
  try {
    return completePrivacy(raw, { rounds: R, minUpdates: N }, "--privacy");
  } catch (e) {
    usage((e as Error).message);
  }
}
const EPOCHS = Number(opt.epochs);
if (opt.partition !== "dirichlet" && opt.partition !== "iid") usage(`--partition must be "dirichlet" or "iid", got "${opt.partition}"`);
const PARTITION = opt.partition === "iid" ? ({ kind: "iid" } as const) : ({ kind: "dirichlet", alpha: 0.5 } as const);
const TRAIN_SAMPLES = Number(opt["train-samples"]);
if (!(Number.isInteger(EPOCHS) && EPOCHS >= 1)) usage(`--epochs must be a positive integer, got "${opt.epochs}"`);
// Validators' held-out slices start at sample 50,000: workers' data must end before.
if (!(Number.isInteger(TRAIN_SAMPLES) && TRAIN_SAMPLES >= N && TRAIN_SAMPLES <= 50_000)) usage(`--train-samples must be an integer in [workers, 50000], got "${opt["train-samples"]}"`);
const isAttacker = (i: number) => i >= N - K;

const stamp = new Date().toISOString().replace(/[:.]/g, "-");
/** Runs go under the data directory ($FEDSTAKE_HOME/runs, else ~/.fedstake/runs), never into the checkout. */
const RUNS = inHome("runs");
const runDir = join(RUNS, stamp);
mkdirSync(runDir, { recursive: true });
const children: ChildProcess[] = [];
const say = (m: string) => console.log(m);

let devnet: Devnet | undefined;
/** Set once the demo shuts its nodes down: a node that exits then is not restarted. */
let stopping = false;
function stopAll() {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  devnet?.stop();
}

/**
 * The orderly end of a run: the nodes first (SIGTERM, and up to 10 s for each to exit), then the chain,
 * so that no node's last tick finds the chain gone and logs an error that is only the shutdown.
 */
async function stopInOrder(): Promise<void> {
  stopping = true;
  await Promise.all(
    children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }),
  );
  stopAll();
}
process.on("SIGINT", () => {
  stopAll();
  process.exit(130);
});

async function main() {
  const t0 = Date.now();
  devnet = await startDevnet({ port: Number(opt.port), node: opt.chain as DevnetNode });
  const { url: rpc, provider } = devnet;
  say(`chain: ${opt.chain === "anvil" ? "anvil" : "hardhat node"} at ${rpc}`);
  const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
  const wallet = (i: number) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(provider) as unknown as Wallet;
  const admin = wallet(0);
  const sponsor = wallet(1);
  const workers = Array.from({ length: N }, (_, i) => wallet(2 + i));
  const validators = Array.from({ length: M }, (_, i) => wallet(2 + N + i));
  for (const w of [...workers, ...validators]) {
    if ((await provider.getBalance(w.address)) < parseEther("1")) {
      // Beyond the chain's 20 funded development accounts: gas money from the deployer.
      await sendValue(admin, w.address, parseEther("10"));
    }
  }

  const dep = await deployProtocol(admin, { unbondingPeriod: UNBONDING });
  writeFileSync(join(runDir, "deployment.json"), JSON.stringify(dep, null, 2));
  const { token, stake, coord, fromBlock } = attach(dep, admin);
  const ONE = 10n ** 18n;
  say(`contracts: coordinator ${dep.coordinator}`);
  say("staking: minting and staking for every participant…");
  await sendTx(admin, token, "mint", [sponsor.address, 10_000n * ONE]);
  await mintAndStake(admin, dep, [...workers.map((w) => [w, 100n * ONE] as const), ...validators.map((v) => [v, 1_000n * ONE] as const)]);

  say("sponsor: publishing the initial model and the spec on IPFS, creating the job…");
  // The sponsor's IPFS node holds the initial model and the spec.
  const sponsorStore = await HeliaStore.create({ dataDir: join(runDir, "nodes/sponsor/ipfs") });
  const init = initParams(SPEC);
  const initTensors = paramsOf(SPEC).map((p) => ({ name: p.name, shape: p.shape, data: init.get(p.name)! }));
  const initCid = await sponsorStore.add(modelArtifact(0n, 0, new Uint8Array(0), initTensors, 0n));
  // Non-IID shards: one honest update alone may raise the held-out loss a little; a poisoned one
  // raises it many times over, and points away from the round's median update.
  const sealed = opt.encrypt ? { encryption: { updates: "committee" as const } } : {};
  const jobSpec: JobSpec = PRIVACY
    ? parseJobSpec({ model: SPEC, aggregation: AGGREGATION, privacy: PRIVACY, ...sealed })
    : { model: SPEC, aggregation: AGGREGATION, validation: parseValidation(undefined), ...sealed };
  if (opt.encrypt) say("encryption: every update is sealed to the committee (HPKE X25519 + AES-256-GCM); the chain's CIDs name ciphertext");
  if (jobSpec.privacy) {
    const p = jobSpec.privacy;
    say(`privacy: ${p.mode} noise, clip norm ${p.clipNorm}, noise multiplier ${p.noiseMultiplier.toFixed(4)} (σ ${noiseStd(p).toPrecision(3)} per coordinate): ε ≤ ${p.epsilon} (δ ${p.delta}) over ${R} rounds; validators check each update's norm (dp-norm)`);
  }
  const specCid = await sponsorStore.add(new TextEncoder().encode(JSON.stringify(jobSpec)));
  const now = (await provider.getBlock("latest"))!.timestamp;
  const params = defaultJobParams({
    initialModelDigest: cidToChain(initCid).digest,
    initialModelCodec: cidToChain(initCid).codec,
    specDigest: cidToChain(specCid).digest,
    specCodec: cidToChain(specCid).codec,
    // Every node must be up (IPFS, data, ORT sessions) before round 1: ~2.5 s each on 2 shared cores.
    startTime: BigInt(now + Math.ceil(20 + 2.5 * (N + M))),
    numRounds: R,
    rewardPerRound: 100n * ONE,
    ...PHASES,
    slashWindow: SLASH_WINDOW,
    // At least 8 slots: filling them all with rejected updates (8 × 10 slashed) costs at least the
    // round's worker reward (80 of 100), as the contract requires.
    maxUpdates: Math.max(N, 8),
    // The commit phase closes once every worker has committed; the later phases close once everyone
    // expected in them has acted (the contract's early closing), so a round lasts as long as its work.
    minUpdates: N,
    maxValidators: M,
    quorumBps: 5000,
    acceptBps: 5000,
    attestBps: 5001,
    rejectSlashBps: 6600,
    validatorShareBps: 2000,
    minWorkerStake: 10n * ONE,
    minValidatorStake: 100n * ONE,
    // minUpdates (N) commitments shut the commit phase: together their slashes must cover the round's
    // worker reward (80), or committing early and revealing nothing (or junk) would be a cheap way to
    // shut honest workers out; so with few workers each slash is larger.
    rejectSlashAmount: BigInt(Math.max(10, Math.ceil(80 / N))) * ONE,
    missedRevealSlashAmount: BigInt(Math.max(5, Math.ceil(80 / N))) * ONE,
    // Each validator's committee bond, held from its stake until it leaves (slashed if evicted for absence).
    absenceSlashAmount: 10n * ONE,
  });
  await sendTx(sponsor, attach(dep, sponsor).token, "approve", [dep.coordinator, params.rewardPerRound * BigInt(R)]);
  await sendTx(sponsor, attach(dep, sponsor).coord, "createJob", [params]);
  const jobId = (await coord.getFunction("jobCount")()) as bigint;
  for (const v of validators) await sendTx(v, attach(dep, v).coord, "joinCommittee", [jobId]);
  say(`job ${jobId}: ${R} rounds of ${Object.values(PHASES).slice(0, 4).reduce((a, b) => a + b, 0)} s + attestation; initial model ${initCid}`);

  // Worker and validator processes.
  const base = {
    rpc,
    deployment: dep,
    jobId: jobId.toString(),
    peers: sponsorStore.multiaddrs(),
  };
  const configs: NodeConfig[] = [
    ...workers.map((w, i) => ({
      ...base,
      role: "worker" as const,
      name: `worker-${i}${isAttacker(i) ? `-${ATTACK!.name}` : ""}`,
      privateKey: w.privateKey,
      dataDir: join(runDir, `nodes/worker-${i}`),
      data: { dataset: "mnist" as const, split: "train" as const, limit: TRAIN_SAMPLES, partition: PARTITION, parties: N, index: i, seed: 11 },
      // Every node shares this machine's cores: one ORT thread each keeps them from fighting.
      train: { epochs: EPOCHS, batch: 32, lr: 0.03, momentum: 0.9, threads: 1 },
    })),
    ...validators.map((v, j) => ({
      ...base,
      role: "validator" as const,
      name: `validator-${j}`,
      privateKey: v.privateKey,
      dataDir: join(runDir, `nodes/validator-${j}`),
      data: { dataset: "mnist" as const, split: "train" as const, offset: 50_000, limit: 3000, partition: { kind: "iid" as const }, parties: M, index: j, seed: 13 },
    })),
  ];
  const attackerNames = new Set(configs.filter((c, i) => c.role === "worker" && isAttacker(i)).map((c) => c.name));
  // Attackers run the worker daemon with their attack's hooks (sim/adversary.ts); nothing in a config sets them.
  // The demo supervises its nodes as systemd's Restart=on-failure would: a daemon that exits with an
  // error (an uncaught one exits 70: worker/node/daemon.ts) is started again from its data directory,
  // a few times at most. The crash test's SIGKILLs are restarted by the crash test itself.
  const restarts = new Map<string, number>();
  const killedOnPurpose = new WeakSet<ChildProcess>();
  const MAX_RESTARTS = 3;
  const startNode = (c: NodeConfig): ChildProcess => {
    const config = join(c.dataDir, "config.json");
    const args = attackerNames.has(c.name) ? [join(ROOT, "sim/adversary.ts"), ATTACK!.name, config] : [join(ROOT, "scripts/fedstake.ts"), c.role, config];
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
    children.push(child);
    child.on("exit", (code, signal) => {
      // Not restarted here: a clean exit, the demo's own shutdown, and the crash test's kill (it restarts that one itself).
      if (stopping || code === 0 || killedOnPurpose.has(child)) return;
      const n = (restarts.get(c.name) ?? 0) + 1;
      restarts.set(c.name, n);
      if (n > MAX_RESTARTS) return say(`   ${c.name} exited (${signal ?? `code ${code}`}) after ${MAX_RESTARTS} restarts: not restarted again (see ${join(c.dataDir, "events.jsonl")})`);
      say(`   ${c.name} exited (${signal ?? `code ${code}`}): restarting it (${n}/${MAX_RESTARTS})`);
      setTimeout(() => {
        if (!stopping) processes.set(c.name, startNode(c));
      }, 1000);
    });
    return child;
  };
  const processes = new Map<string, ChildProcess>();
  for (const c of configs) {
    mkdirSync(c.dataDir, { recursive: true });
    writeFileSync(join(c.dataDir, "config.json"), JSON.stringify(c, null, 1));
    processes.set(c.name, startNode(c));
  }
  // Faults at protocol steps (--fault, and --crash: a kill right after a node's first commitment):
  // triggered by the node's own events.jsonl, not by a timer. A killed node is started again from its
  // data directory; a stopped one continues after its pause. Each must still do its part in time.
  const crashes: { node: string; killedAfter: string; restartedAt: string }[] = [];
  /** Each fault fired; recovered: a stopped node continued, a killed one's new process is ready. */
  const faults: { node: string; event: string; round: number | null; kind: "kill" | "stop"; seconds?: number; firedAt: string; recoveredAt?: string; recoverMs?: number }[] = [];
  const pendingFaults = [
    ...opt.crash.split(",").filter(Boolean).map((name) => ({ name, events: ["committed", "vote-committed"], round: undefined as number | undefined, kind: "kill" as const, seconds: 0, crash: true })),
    ...FAULT_SPECS.map((f) => ({ ...f, crash: false })),
  ];
  for (const f of pendingFaults) if (!configs.some((c) => c.name === f.name)) throw new Error(`--${f.crash ? "crash" : "fault"}: no node named "${f.name}" (nodes: ${configs.map((c) => c.name).join(", ")})`);
  /** Killed nodes restarted and not yet ready: recovered when their new process logs "ready". */
  const restarting: { fired: (typeof faults)[number]; file: string; t: number }[] = [];
  const faultWatch = setInterval(() => {
    for (const r of [...restarting]) {
      const ready = readFileSync(r.file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((e) => e.event === "ready" && Date.parse(e.t) > r.t);
      if (!ready) continue;
      restarting.splice(restarting.indexOf(r), 1);
      Object.assign(r.fired, { recoveredAt: ready.t, recoverMs: Date.parse(ready.t) - r.t });
    }
    for (const f of [...pendingFaults]) {
      const c = configs.find((x) => x.name === f.name)!;
      const file = join(c.dataDir, "events.jsonl");
      if (!existsSync(file)) continue;
      const hit = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((e) => f.events.includes(e.event) && (f.round === undefined || Number(e.round) === f.round));
      if (!hit) continue;
      const running = processes.get(f.name)!;
      // A node that already exited (and that the supervisor restarts) is not killed and started a second time.
      if (running.exitCode !== null || running.signalCode !== null) continue;
      pendingFaults.splice(pendingFaults.indexOf(f), 1);
      const fired = { node: f.name, event: hit.event as string, round: hit.round === undefined ? null : Number(hit.round), kind: f.kind, ...(f.kind === "stop" ? { seconds: f.seconds } : {}), firedAt: new Date().toISOString() };
      faults.push(fired);
      const t = Date.now();
      if (f.kind === "stop") {
        running.kill("SIGSTOP");
        say(`   fault: stopped ${f.name} right after ${hit.event}${hit.round ? ` (round ${hit.round})` : ""} for ${f.seconds} s`);
        setTimeout(() => {
          running.kill("SIGCONT");
          Object.assign(fired, { recoveredAt: new Date().toISOString(), recoverMs: Date.now() - t });
        }, f.seconds * 1000);
        continue;
      }
      killedOnPurpose.add(running);
      running.kill("SIGKILL");
      setTimeout(() => {
        processes.set(f.name, startNode(c));
        restarting.push({ fired, file, t });
        if (f.crash) crashes.push({ node: f.name, killedAfter: hit.event, restartedAt: new Date().toISOString() });
        say(`   ${f.crash ? "crash test" : "fault"}: killed ${f.name} right after ${hit.event}${hit.round ? ` (round ${hit.round})` : ""} and restarted it`);
      }, 500);
    }
  }, 200);
  faultWatch.unref();
  const attackers = [...attackerNames].join(", ");
  say(`started ${N} workers (${K ? `${attackers} ${K > 1 ? "are" : "is"} malicious: ${ATTACK!.summary}` : "all honest"}) and ${M} validators\n`);

  // Live view: one block of lines per decided round.
  const test = await loadMnist("test");
  // Where the chart starts: the initial model's test accuracy (round 0).
  const initialAccuracy = (await evaluate(SPEC, init, test)).accuracy;
  const attackerWallets = workers.filter((_, i) => isAttacker(i));
  const attackerStake = async () => {
    let total = 0n;
    for (const w of attackerWallets) total += (await stake.getFunction("stakeOf")(w.address)) as bigint;
    return Number(total) / 1e18;
  };
  const attackerStakeAtStart = ATTACK ? await attackerStake() : null;
  const rounds: { round: number; testAccuracy: number | null; heldOut?: ReturnType<typeof roundScore>; slashes: { account: string; reason: string; amount: string }[]; [k: string]: unknown }[] = [];
  const shown = new Set<string>();
  // The live dashboard (what `fedstake dashboard` serves), with the validators' decision logs and, beside
  // the validators' held-out scores on chain, the MNIST test accuracy the demo measures of each model.
  const dashboard = await startDashboard({
    coord,
    stake,
    provider,
    fromBlock,
    jobId,
    port: 0,
    decisionLogs: configs.filter((c) => c.role === "validator").map((c) => join(c.dataDir, "events.jsonl")),
    testAccuracy: async () => rounds.flatMap((r) => (r.testAccuracy === null ? [] : [{ round: r.round, accuracy: r.testAccuracy }])),
  });
  say(`dashboard: ${dashboard.url} (follows the job live)\n`);
  const deadline = Date.now() + Number(opt["timeout-min"]) * 60_000;
  const addressName = new Map([...workers.map((w, i) => [w.address, configs[i]!.name] as const), ...validators.map((v, j) => [v.address, `validator-${j}`] as const)]);
  const REASONS = ["rejected update", "missed update reveal", "missed vote reveal", "absence"];
  // Slashed stake is burned, all of it.
  const slashesOf = async (r: bigint) =>
    (await queryEvents(coord, coord.filters.SlashApplied!(jobId, r), fromBlock)).map((e) => ({
      account: addressName.get(e.args.account as string) ?? (e.args.account as string),
      reason: REASONS[Number(e.args.reason)] ?? `reason ${e.args.reason}`,
      amount: (Number(e.args.amount) / 1e18).toString(),
    }));
  const decisions = (round: bigint, index: number) => {
    const out: { node: string; accept: boolean; reason: string; metrics: Record<string, number> }[] = [];
    for (const c of configs.filter((x) => x.role === "validator")) {
      const f = join(c.dataDir, "events.jsonl");
      if (!existsSync(f)) continue;
      for (const line of readFileSync(f, "utf8").split("\n").filter(Boolean)) {
        const e = JSON.parse(line);
        if (e.event === "decision" && e.round === round.toString() && e.index === index) out.push({ node: e.node, accept: e.accept, reason: e.reason, metrics: e.metrics ?? {} });
      }
    }
    return out;
  };
  say(" round  updates  accepted  rejected  test acc.  model");
  const periods = await coord.getFunction("jobConfig")(jobId);
  // Between round lines, what the network is doing: the phase, who acted, the countdown.
  let said = { key: "", at: 0 };
  for (;;) {
    if (Date.now() > deadline) throw new Error(`the demo did not finish within ${opt["timeout-min"]} minutes`);
    const progress = await phaseProgress(coord, jobId, periods);
    const key = progress.text.replace(/ · (closes )?in \d+ s$/, "");
    if (progress.phase < Phase.Completed && (key !== said.key || Date.now() - said.at >= 10_000)) {
      say(`        ${progress.text}`);
      said = { key, at: Date.now() };
    }
    const st = await coord.getFunction("jobState")(jobId);
    for (let r = 1n; r <= BigInt(st.round); r++) {
      const res = await coord.getFunction("roundResult")(jobId, r);
      const decided = Number(res.outcome) !== Outcome.Pending;
      const modelKnown = res.modelDigest !== "0x" + "0".repeat(64) || Number(res.outcome) !== Outcome.Quorum || BigInt(res.acceptedBitmap) === 0n;
      if (!decided || !modelKnown || shown.has(r.toString())) continue;
      const updates = (await revealedUpdates(coord, jobId, r, fromBlock)).map(({ index, worker }) => {
        const accepted = hasBit(res.acceptedBitmap, index);
        const ds = decisions(r, index);
        const d = ds.find((x) => x.accept === accepted) ?? ds[0];
        // The scores of every rule that judged it, by validator: whatever metrics the job's rules return.
        const scores = Object.fromEntries(ds.map((x) => [x.node, x.metrics]));
        return { index, worker, name: addressName.get(worker) ?? worker, malicious: attackerNames.has(addressName.get(worker) ?? ""), accepted, reason: d?.reason ?? "(no validator log)", scores };
      });
      let testAccuracy: number | null = null;
      let modelCid: string | null = null;
      if (res.modelDigest !== "0x" + "0".repeat(64)) {
        const cid = await cidFromChain(res.modelDigest, Number(res.modelCodec));
        modelCid = cid.toString();
        for (const c of configs.filter((x) => x.role === "validator")) {
          const peer = JSON.parse(readFileSync(join(c.dataDir, "events.jsonl"), "utf8").split("\n")[0]!).ipfs as string | undefined;
          if (peer) await sponsorStore.dial(peer).catch(() => {});
        }
        const a = decodeArtifact(await sponsorStore.get(cid, { timeoutMs: 30_000 }));
        testAccuracy = (await evaluate(SPEC, new Map(a.tensors.map((t) => [t.name, t.data])), test)).accuracy;
      }
      const attestations = (await queryEvents(coord, coord.filters.ModelAttested!(jobId, r), fromBlock)).map((e) => ({
        validator: e.args.validator as string,
        digest: e.args.digest as string,
      }));
      const slashes = await slashesOf(r);
      const blockTime = async (events: EventLog[]) => (events[0] ? (await events[0].getBlock()).timestamp : null);
      const timing = {
        start: Number(res.start),
        finalizedAt: await blockTime(await queryEvents(coord, coord.filters.RoundFinalized!(jobId, r), fromBlock)),
        modelAcceptedAt: await blockTime(await queryEvents(coord, coord.filters.ModelAccepted!(jobId, r), fromBlock)),
      };
      shown.add(r.toString());
      const rejected = updates.filter((u) => !u.accepted);
      const outcome = outcomeName(res.outcome);
      say(
        ` ${String(r).padStart(5)}  ${String(updates.length).padStart(7)}  ${String(updates.length - rejected.length).padStart(8)}  ${String(rejected.length).padStart(8)}` +
          `  ${testAccuracy === null ? "    -    " : (testAccuracy * 100).toFixed(2).padStart(8) + "%"}  ${modelCid ?? "-"}${outcome === "decided" ? "" : `  (${outcome})`}`,
      );
      // Each rejection with its reason, whole.
      for (const u of rejected) say(`          rejected ${u.name}${u.malicious ? " (malicious)" : ""}: ${u.reason}`);
      rounds.push({
        round: Number(r),
        outcome,
        modelCid,
        testAccuracy,
        accepted: updates.length - rejected.length,
        rejected: rejected.length,
        attackerStake: ATTACK ? await attackerStake() : null,
        updates: updates.map(({ name, worker, malicious, accepted, reason, scores }) => ({ worker, name, malicious, accepted, reason, scores })),
        attestations,
        slashes,
        timing,
      });
    }
    if (Number(st.status) !== JobStatus.Active && shown.size >= Number(st.round)) break;
    await new Promise((r) => setTimeout(r, 1000));
  }

  // After the job ends every daemon settles: last claims, stake lock releases, the slashes still in
  // their window, and (validators) leaving the committee, which releases the seat's bond.
  const nodesSettled = () =>
    configs.filter((c) => {
      const f = join(c.dataDir, "events.jsonl");
      return existsSync(f) && readFileSync(f, "utf8").split("\n").some((l) => l.includes('"event":"settled"'));
    }).length;
  const settleBy = Date.now() + 90_000;
  while (nodesSettled() < configs.length && Date.now() < settleBy) await new Promise((r) => setTimeout(r, 1000));
  const settled = nodesSettled();
  say(`\nsettlement: ${settled}/${configs.length} nodes settled (rewards claimed, stake locks and committee bonds released)`);
  // Slashes are read again now: some are executed after their round's model was shown.
  for (const r of rounds) r.slashes = await slashesOf(BigInt(r.round));
  // The validators' own held-out scores of each round's model, which they report on chain after attesting it.
  const onChain = await readRounds(coord, jobId, Math.max(0, ...rounds.map((r) => r.round)), fromBlock);
  for (const r of rounds) r.heldOut = roundScore(onChain[r.round - 1]!);
  say(` held-out accuracy the validators report (median): ${rounds.map((r) => `round ${r.round} ${r.heldOut?.accuracy == null ? "-" : (100 * r.heldOut.accuracy).toFixed(1) + "%"}`).join(", ")}`);

  // The sponsor takes back what the job did not pay out (rounding dust, unpaid validator shares).
  const remainder = (await coord.getFunction("rewardPool")(jobId)) as bigint;
  if (remainder > 0n) await sendTx(sponsor, attach(dep, sponsor).coord, "withdrawRemainder", [jobId]);

  // Balances and stake at the end.
  const tok = (x: bigint) => Number(x) / 1e18;
  say("\n account              stake     free    balance");
  const accounts: { name: string; address: string; malicious: boolean; stake: number; free: number; balance: number }[] = [];
  for (const [name, w] of [...workers.map((w, i) => [configs[i]!.name, w] as const), ...validators.map((v, j) => [`validator-${j}`, v] as const), ["sponsor", sponsor] as const]) {
    const s = tok((await stake.getFunction("stakeOf")(w.address)) as bigint);
    const f = tok((await stake.getFunction("freeStakeOf")(w.address)) as bigint);
    const b = tok((await token.getFunction("balanceOf")(w.address)) as bigint);
    accounts.push({ name, address: w.address, malicious: attackerNames.has(name), stake: s, free: f, balance: b });
    say(` ${name.padEnd(18)} ${s.toFixed(1).padStart(8)} ${f.toFixed(1).padStart(8)}  ${b.toFixed(2).padStart(9)}`);
  }
  // Every token minted is held, staked, owed/escrowed by the coordinator, or burned.
  const burnAddress = (await stake.getFunction("BURN_ADDRESS")()) as string;
  const supply = (await token.getFunction("totalSupply")()) as bigint;
  const balanceOf = async (a: string) => (await token.getFunction("balanceOf")(a)) as bigint;
  let held = await balanceOf(admin.address);
  for (const w of [...workers, ...validators, sponsor]) held += await balanceOf(w.address);
  const staked = await balanceOf(dep.stakeManager);
  const inCoordinator = await balanceOf(dep.coordinator);
  const burned = await balanceOf(burnAddress);
  const slashed = rounds.flatMap((r) => r.slashes).reduce((a, x) => a + Number(x.amount), 0);
  // The chain keeps time by itself (hardhat.config.ts): its clock must not have run ahead of the wall
  // clock, or every phase would have been shorter than configured.
  const latestBlock = (await provider.getBlock("latest"))!;
  const chainAheadS = latestBlock.timestamp - Math.floor(Date.now() / 1000);
  const ledger = {
    chainAheadS,
    supply: tok(supply),
    held: tok(held),
    staked: tok(staked),
    coordinator: tok(inCoordinator),
    burned: tok(burned),
    slashed,
    escrowed: tok(params.rewardPerRound) * R,
    refunded: tok(remainder),
    balanced: supply === held + staked + inCoordinator + burned,
    nodesSettled: settled,
    nodes: configs.length,
  };
  say(
    `\n slashed ${ledger.slashed.toFixed(2)}, burned ${ledger.burned.toFixed(2)} (slashes are burned, none paid to anyone);` +
      ` sponsor escrowed ${ledger.escrowed.toFixed(0)}, refunded ${ledger.refunded.toFixed(2)}`,
  );
  say(
    ` supply ${ledger.supply.toFixed(2)} = held ${ledger.held.toFixed(2)} + staked ${ledger.staked.toFixed(2)} + coordinator ${ledger.coordinator.toFixed(2)} + burned ${ledger.burned.toFixed(2)}: ${ledger.balanced ? "balanced" : "NOT BALANCED"}`,
  );
  say(` chain clock: ${chainAheadS >= 0 ? `${chainAheadS} s ahead of` : `${-chainAheadS} s behind`} the wall clock after block ${latestBlock.number}`);
  writeFileSync(join(runDir, "accounts.json"), JSON.stringify(accounts, null, 2) + "\n");
  writeFileSync(join(runDir, "ledger.json"), JSON.stringify(ledger, null, 2) + "\n");
  writeFileSync(join(runDir, "crashes.json"), JSON.stringify(crashes, null, 2) + "\n");
  writeFileSync(join(runDir, "faults.json"), JSON.stringify({ fired: faults, notFired: pendingFaults.map((f) => `${f.name}@${f.events.join("|")}${f.round ? `#${f.round}` : ""}:${f.kind}`) }, null, 2) + "\n");
  writeFileSync(join(runDir, "rounds.json"), JSON.stringify(rounds, null, 2) + "\n");
  writeFileSync(join(runDir, "accuracy.html"), chart(rounds, { initialAccuracy, attackerStakeAtStart }));
  const latest = join(RUNS, "latest");
  rmSync(latest, { force: true });
  symlinkSync(stamp, latest);
  await sponsorStore.stop();
  await dashboard.close();
  await stopInOrder();
  say(`\nreport: ${runDir} (${latest}): rounds.json, accounts.json, ledger.json, accuracy.html — ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

/**
 * A self-contained HTML page: the global model's test accuracy per round from the initial model (round
 * 0), the round's accepted and rejected updates as bars, and the attackers' stake (right axis) as it
 * was when each round was shown, so the picture shows what the demo claims.
 */
function chart(
  rounds: { round: number; testAccuracy: number | null; accepted?: unknown; rejected?: unknown; attackerStake?: unknown }[],
  o: { initialAccuracy: number; attackerStakeAtStart: number | null },
): string {
  const pts = [{ round: 0, testAccuracy: o.initialAccuracy }, ...(rounds.filter((r) => r.testAccuracy !== null) as { round: number; testAccuracy: number }[])];
  const W = 720;
  const H = 380;
  const pad = 56;
  const maxR = Math.max(1, ...rounds.map((r) => r.round));
  const x = (r: number) => pad + (r / maxR) * (W - 2 * pad);
  const y = (a: number) => H - pad - a * (H - 2 * pad);
  const maxUpdates = Math.max(1, ...rounds.map((r) => Number(r.accepted ?? 0) + Number(r.rejected ?? 0)));
  const barH = (n: number) => (n / maxUpdates) * (H - 2 * pad) * 0.35;
  const bw = Math.min(18, (W - 2 * pad) / (maxR + 1) / 3);
  const bars = rounds
    .map((r) => {
      const [a, j] = [Number(r.accepted ?? 0), Number(r.rejected ?? 0)];
      const cx = x(r.round);
      return `<rect x="${cx - bw - 1}" y="${H - pad - barH(a)}" width="${bw}" height="${barH(a)}" fill="#2da44e" opacity="0.7"><title>round ${r.round}: ${a} accepted</title></rect>` +
        `<rect x="${cx + 1}" y="${H - pad - barH(j)}" width="${bw}" height="${barH(j)}" fill="#cf222e" opacity="0.7"><title>round ${r.round}: ${j} rejected</title></rect>`;
    })
    .join("");
  const stakeMax = o.attackerStakeAtStart ?? 0;
  const ys = (v: number) => H - pad - (stakeMax > 0 ? v / stakeMax : 0) * (H - 2 * pad);
  const stakePts = o.attackerStakeAtStart === null ? [] : [{ round: 0, v: o.attackerStakeAtStart }, ...rounds.filter((r) => typeof r.attackerStake === "number").map((r) => ({ round: r.round, v: r.attackerStake as number }))];
  const stakeLine = stakePts.length
    ? `<polyline fill="none" stroke="#bf8700" stroke-width="2" stroke-dasharray="6 4" points="${stakePts.map((p) => `${x(p.round).toFixed(1)},${ys(p.v).toFixed(1)}`).join(" ")}"/>` +
      stakePts.map((p) => `<circle cx="${x(p.round)}" cy="${ys(p.v)}" r="3" fill="#bf8700"><title>attackers' stake ${p.v}</title></circle>`).join("") +
      [0, 0.5, 1].map((f) => `<text x="${W - pad + 8}" y="${ys(f * stakeMax) + 4}" fill="#bf8700">${(f * stakeMax).toFixed(0)}</text>`).join("")
    : "";
  const line = pts.map((p) => `${x(p.round).toFixed(1)},${y(p.testAccuracy).toFixed(1)}`).join(" ");
  const ticks = [0, 0.25, 0.5, 0.75, 1]
    .map((a) => `<line x1="${pad}" x2="${W - pad}" y1="${y(a)}" y2="${y(a)}" stroke="#ddd"/><text x="${pad - 8}" y="${y(a) + 4}" text-anchor="end">${a * 100}%</text>`)
    .join("");
  const dots = pts
    .map((p) => `<circle cx="${x(p.round)}" cy="${y(p.testAccuracy)}" r="4" fill="#1f6feb"/><text x="${x(p.round)}" y="${y(p.testAccuracy) - 10}" text-anchor="middle">${(p.testAccuracy * 100).toFixed(1)}%</text>`)
    .join("");
  const xt = [0, ...rounds.map((r) => r.round)].map((r) => `<text x="${x(r)}" y="${H - pad + 18}" text-anchor="middle">${r === 0 ? "initial" : r}</text>`).join("");
  const legend = `<text x="${pad}" y="20" fill="#1f6feb">— test accuracy</text><text x="${pad + 130}" y="20" fill="#2da44e">■ accepted updates</text><text x="${pad + 270}" y="20" fill="#cf222e">■ rejected updates</text>${stakeLine ? `<text x="${pad + 410}" y="20" fill="#bf8700">- - attackers' stake (right axis, tokens)</text>` : ""}`;
  return `<!doctype html><meta charset="utf-8"><title>fedstake demo: test accuracy per round</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}text{font-size:12px;fill:#333}</style>
<h1>Global model test accuracy per round</h1><p>MNIST test set (10,000 images): the initial model, then the model attested on chain after each round; bars: the round's accepted and rejected updates (up to ${maxUpdates}).</p>
<svg width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg">${legend}${ticks}${bars}${xt}
<text x="${W / 2}" y="${H - 8}" text-anchor="middle">round</text>
<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="${line}"/>${dots}${stakeLine}</svg>`;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`demo failed: ${(e as Error).stack ?? e}`);
    stopAll();
    process.exit(1);
  },
);
