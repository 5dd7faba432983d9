/**
 * `init worker|validator`: a node config for a job, printed on stdout (`> node.json`), checked with the
 * same schema the daemons read it with (worker/node/config.ts) before it is printed.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { multiaddr } from "@multiformats/multiaddr";
import { SCALES, type Scale } from "../../worker/data/csv.ts";
import { readConfig } from "../../worker/node/config.ts";
import { inHome } from "../../worker/node/home.ts";
import { argument, option, positiveId, printJson, readDeployment, repeatable, rpcUrl, UsageError, wholeNumber } from "./common.ts";

const DATA_GROUP = "Data options (one source: --images and --labels, --csv, or --mnist):";
const WORKER_GROUP = "Training options (a worker's):";

const role = (s: string): "worker" | "validator" => {
  if (s !== "worker" && s !== "validator") throw new Error(`must be worker or validator, got "${s}"`);
  return s;
};
const positiveNumber = (s: string): number => {
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || n <= 0) throw new Error(`must be a positive number, got "${s}"`);
  return n;
};
const momentum = (s: string): number => {
  const n = Number(s);
  if (s.trim() === "" || !Number.isFinite(n) || n < 0 || n >= 1) throw new Error(`must be a number in [0, 1), got "${s}"`);
  return n;
};
const oneOf =
  <T extends string>(values: readonly T[]) =>
  (s: string): T => {
    if (!(values as readonly string[]).includes(s)) throw new Error(`must be one of ${values.join(", ")}, got "${s}"`);
    return s as T;
  };
/** A file path, absolute (the config may be saved anywhere); that it exists is checked when the command runs. */
const filePath = (s: string): string => {
  if (s.trim() === "") throw new Error("must be a file path");
  return resolve(s);
};
/** The files the config names must exist (a typo is found now, not when the daemon starts). */
function checkFiles(o: InitOpts): void {
  for (const [flag, p] of [["--images", o.images], ["--labels", o.labels], ["--csv", o.csv], ["--keystore", o.keystore]] as const) {
    if (p !== undefined && !existsSync(p)) throw new UsageError(`${flag} names no file: ${p} does not exist`);
  }
}

interface InitOpts {
  job: bigint;
  out?: string;
  deployment: string;
  rpc: string;
  name?: string;
  dataDir?: string;
  keystore?: string;
  peer: string[];
  kubo?: string;
  images?: string;
  labels?: string;
  csv?: string;
  label: string;
  scale: Scale;
  mnist?: "train" | "test";
  limit?: number;
  offset?: number;
  parties: number;
  index: number;
  partition: "iid" | "dirichlet";
  alpha: number;
  seed: number;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  threads?: number;
  decide?: string;
  onFailure?: "abstain" | "builtin";
}

/** The config's data section from the one data source given. */
function dataOf(o: InitOpts, who: "worker" | "validator"): Record<string, unknown> {
  const given = [o.images !== undefined || o.labels !== undefined, o.csv !== undefined, o.mnist !== undefined].filter(Boolean).length;
  if (given !== 1) {
    throw new UsageError(
      `give the node's ${who === "worker" ? "training" : "held-out"} data once: --images FILE --labels FILE (IDX), --csv FILE [--label COLUMN] [--scale HOW], or --mnist train|test [--parties N --index I]`,
    );
  }
  if (o.images !== undefined || o.labels !== undefined) {
    if (o.images === undefined || o.labels === undefined) throw new UsageError("IDX data needs both --images and --labels");
    return { dataset: "idx", images: o.images, labels: o.labels };
  }
  if (o.csv !== undefined) return { dataset: "csv", file: o.csv, label: o.label, scale: o.scale };
  if (o.index >= o.parties) throw new UsageError(`--index must be below --parties (${o.parties}), got ${o.index}`);
  // The whole split unless --limit: MNIST has 60,000 training and 10,000 test samples.
  const limit = o.limit ?? (o.mnist === "train" ? 60_000 : 10_000) - (o.offset ?? 0);
  if (limit < 1) throw new UsageError(`--offset ${o.offset} leaves no samples of MNIST's ${o.mnist} split`);
  return {
    dataset: "mnist",
    split: o.mnist,
    ...(o.offset ? { offset: o.offset } : {}),
    limit,
    partition: o.partition === "iid" ? { kind: "iid" } : { kind: "dirichlet", alpha: o.alpha },
    parties: o.parties,
    index: o.index,
    seed: o.seed,
  };
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .summary("prints a node config (worker or validator) for a job on stdout (> node.json), or writes it to --out")
    .description(
      "Prints a node config for the worker or validator daemon (and the node commands) on stdout, checked against the schema the daemons read it with. " +
        "Paths in it are absolute (resolved from the current directory), so the file may be saved anywhere. " +
        "The key is not written into it: give the daemon --keystore FILE or $FEDSTAKE_PRIVATE_KEY, or name the keystore here with --keystore.",
    )
    .addArgument(argument("<ROLE>", "worker or validator", role))
    .addOption(option("--job <ID>", "the job id", positiveId).makeOptionMandatory())
    .addOption(option("--deployment <FILE>", "the contracts' addresses (`fedstake deploy` writes it)").env("FEDSTAKE_DEPLOYMENT").default(inHome("deployment.json"), "$FEDSTAKE_HOME/deployment.json"))
    .addOption(option("--rpc <URL>", "the chain's JSON-RPC endpoint (http or https)", rpcUrl).env("FEDSTAKE_RPC").default("http://127.0.0.1:8545"))
    .addOption(option("--out <FILE>", "write the config to FILE instead of stdout"))
    .addOption(option("--name <NAME>", "the node's name in logs and events (default: ROLE-JOB, e.g. worker-1)"))
    .addOption(option("--data-dir <DIR>", "the node's directory: state, events.jsonl, its IPFS repository (default: $FEDSTAKE_HOME/nodes/NAME)"))
    .addOption(option("--keystore <FILE>", "the node's encrypted keystore (`fedstake keystore create`); password in $FEDSTAKE_KEYSTORE_PASSWORD when the node starts", filePath))
    .addOption(repeatable("--peer <MULTIADDR>", "an IPFS node to dial at start (repeatable; nodes find each other through the endpoints on chain without it)", (s) => {
      try {
        return multiaddr(s).toString();
      } catch (e) {
        throw new Error(`must be a multiaddr like /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo…: ${(e as Error).message}`);
      }
    }))
    .addOption(option("--kubo <URL>", "keep artifacts in a Kubo daemon (its RPC API URL) instead of the node's own embedded IPFS node", rpcUrl))
    .addOption(option("--images <FILE>", "IDX images (with --labels)", filePath).helpGroup(DATA_GROUP))
    .addOption(option("--labels <FILE>", "IDX labels (with --images)", filePath).helpGroup(DATA_GROUP))
    .addOption(option("--csv <FILE>", "a CSV file: a header row, numeric columns, an integer label column", filePath).helpGroup(DATA_GROUP))
    .addOption(option("--label <COLUMN>", "the CSV's label column").default("label").helpGroup(DATA_GROUP))
    .addOption(option("--scale <HOW>", `the CSV's feature scaling: ${SCALES.join(", ")} (every node of a job should use the same)`, oneOf(SCALES)).default("none").helpGroup(DATA_GROUP))
    .addOption(option("--mnist <SPLIT>", "a share of MNIST (demo and tests): train or test", oneOf(["train", "test"] as const)).helpGroup(DATA_GROUP))
    .addOption(option("--parties <N>", "MNIST: the number of shares the split is partitioned into", wholeNumber(1)).default(1).helpGroup(DATA_GROUP))
    .addOption(option("--index <I>", "MNIST: this node's share, below --parties", wholeNumber()).default(0).helpGroup(DATA_GROUP))
    .addOption(option("--partition <KIND>", "MNIST: iid or dirichlet (non-IID, --alpha)", oneOf(["iid", "dirichlet"] as const)).default("iid").helpGroup(DATA_GROUP))
    .addOption(option("--alpha <A>", "MNIST: the Dirichlet concentration (smaller: more skewed shares)", positiveNumber).default(0.5).helpGroup(DATA_GROUP))
    .addOption(option("--limit <N>", "MNIST: samples taken from the split before partitioning (default: all after --offset)", wholeNumber(1)).helpGroup(DATA_GROUP))
    .addOption(option("--offset <N>", "MNIST: the first sample taken", wholeNumber()).helpGroup(DATA_GROUP))
    .addOption(option("--seed <S>", "MNIST: the partition's seed (the same for every node of a job)", wholeNumber()).default(1).helpGroup(DATA_GROUP))
    .addOption(option("--epochs <N>", "local epochs per round", wholeNumber(1)).default(1).helpGroup(WORKER_GROUP))
    .addOption(option("--batch <N>", "batch size", wholeNumber(1)).default(32).helpGroup(WORKER_GROUP))
    .addOption(option("--lr <RATE>", "learning rate", positiveNumber).default(0.03).helpGroup(WORKER_GROUP))
    .addOption(option("--momentum <M>", "momentum, in [0, 1)", momentum).default(0.9).helpGroup(WORKER_GROUP))
    .addOption(option("--threads <N>", "onnxruntime threads (default: one per core)", wholeNumber(1)).helpGroup(WORKER_GROUP))
    .addOption(option("--decide <PROGRAM>", "validator: a decision hook program (its path, made absolute; it reads the round's evaluation on stdin and prints the indices to accept)").helpGroup("Validator options:"))
    .addOption(option("--on-failure <WHAT>", "validator: what a failing hook means: abstain (the default) or builtin (the built-in policy's vote)", oneOf(["abstain", "builtin"] as const)).helpGroup("Validator options:"))
    .action((who: "worker" | "validator", o: InitOpts, cmd: Command) => {
      checkFiles(o);
      const deployment = resolve(o.deployment);
      readDeployment(deployment);
      if (!/^https?:/.test(o.rpc)) throw new UsageError(`--rpc must be an http(s) URL for a node, got "${o.rpc}"`);
      if (o.kubo !== undefined && !/^https?:/.test(o.kubo)) throw new UsageError(`--kubo must be an http(s) URL, got "${o.kubo}"`);
      const name = o.name ?? `${who}-${o.job}`;
      const training = ["epochs", "batch", "lr", "momentum"].find((k) => cmd.getOptionValueSource(k) === "cli");
      if (who === "validator" && training) throw new UsageError(`--${training} is a worker's setting (a validator's reference update follows the job spec's validation.reference)`);
      const cfg = {
        role: who,
        name,
        rpc: o.rpc,
        jobId: o.job.toString(),
        deployment,
        dataDir: resolve(o.dataDir ?? inHome("nodes", name)),
        ...(o.keystore ? { keystore: o.keystore } : {}),
        peers: o.peer,
        data: dataOf(o, who),
        ...(who === "worker"
          ? { train: { epochs: o.epochs, batch: o.batch, lr: o.lr, momentum: o.momentum, ...(o.threads ? { threads: o.threads } : {}) } }
          : o.threads
            ? { train: { epochs: o.epochs, batch: o.batch, lr: o.lr, momentum: o.momentum, threads: o.threads } }
            : {}),
        storage: o.kubo ? { kind: "kubo", url: o.kubo } : { kind: "helia" },
        ...(o.decide ? { decide: { command: [o.decide.includes("/") ? resolve(o.decide) : o.decide], ...(o.onFailure ? { onFailure: o.onFailure } : {}) } } : {}),
      };
      if (who === "worker" && (o.decide || o.onFailure)) throw new UsageError("--decide and --on-failure are a validator's settings");
      if (!o.decide && o.onFailure) throw new UsageError("--on-failure takes effect only with --decide");
      // What is printed is what the daemons accept: read back with their own reader.
      const tmp = mkdtempSync(join(tmpdir(), "fedstake-init-"));
      try {
        writeFileSync(join(tmp, "node.json"), JSON.stringify(cfg));
        readConfig(join(tmp, "node.json"));
      } catch (e) {
        throw new Error(`the config this would print is refused: ${(e as Error).message.replace(/^node config \S+: /, "")}`);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      if (o.out === undefined) return printJson(cfg);
      mkdirSync(dirname(resolve(o.out)), { recursive: true });
      writeFileSync(o.out, JSON.stringify(cfg, null, 2) + "\n");
      console.log(`${who} config ${name} for job ${o.job} → ${o.out}`);
    });
}
