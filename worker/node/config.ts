/**
 * Node config files (JSON), written by the demo or by hand for `fedstake worker|validator` and the node
 * commands. One zod schema types every field; a file with mistakes is refused with one message that
 * names each problem's field and the value found (`node config FILE: data.limit must be a positive
 * integer (got -3)`), and a key the schema does not know is an error, so a typo is never ignored.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { multiaddr } from "@multiformats/multiaddr";
import { z } from "zod";
import type { Deployment } from "../chain/client.ts";
import { SCALES } from "../data/csv.ts";
import type { StorageConfig } from "../storage/factory.ts";
import { parseValidation } from "./jobSpec.ts";

/** An issue whose message already names its field (it comes from a parser that does). */
const NAMED = { named: true };

const positiveInt = z.int({ error: "must be a positive integer" }).min(1, { error: "must be a positive integer" });
const nonNegativeInt = z.int({ error: "must be a non-negative integer" }).min(0, { error: "must be a non-negative integer" });
const text = (what: string) => z.string({ error: `must be ${what}` }).min(1, { error: `must be ${what}` });
const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" });
const address = z.string({ error: "must be an address" }).regex(/^0x[0-9a-fA-F]{40}$/, { error: "must be an address" });
const multiaddrText = text("a multiaddr").refine(
  (s) => {
    try {
      multiaddr(s);
      return true;
    } catch {
      return false;
    }
  },
  { error: "must be a multiaddr" },
);

const deploymentSchema = z.strictObject(
  { chainId: positiveInt, token: address, stakeManager: address, coordinator: address, deployBlock: nonNegativeInt.optional() },
  { error: "must be the contracts' addresses or the path of a deployment file" },
) satisfies z.ZodType<Deployment>;

const partitionSchema = z.discriminatedUnion(
  "kind",
  [z.strictObject({ kind: z.literal("iid") }), z.strictObject({ kind: z.literal("dirichlet"), alpha: z.number({ error: "must be a positive number" }).positive({ error: "must be a positive number" }) })],
  { error: 'must be { "kind": "iid" } or { "kind": "dirichlet", "alpha" }' },
);

const dataSchema = z.discriminatedUnion(
  "dataset",
  [
    z.strictObject({ dataset: z.literal("idx"), images: text("a file path"), labels: text("a file path") }),
    z.strictObject({
      dataset: z.literal("csv"),
      file: text("a file path"),
      label: text("a column name"),
      /** Feature scaling from this file's own statistics (worker/data/csv.ts; default none). */
      scale: z.enum(SCALES, { error: `must be ${oneOf(SCALES)}` }).optional(),
    }),
    z
      .strictObject({
        dataset: z.literal("mnist"),
        split: z.enum(["train", "test"], { error: 'must be "train" or "test"' }),
        offset: nonNegativeInt.optional(),
        limit: positiveInt,
        partition: partitionSchema,
        parties: positiveInt,
        index: nonNegativeInt,
        seed: nonNegativeInt,
      })
      .refine((d) => d.index < d.parties, { error: "must be below parties", path: ["index"] }),
  ],
  { error: 'must be an object { "dataset": "idx" | "csv" | "mnist", … }' },
);

const storageSchema = z.discriminatedUnion(
  "kind",
  [z.strictObject({ kind: z.literal("helia") }), z.strictObject({ kind: z.literal("kubo"), url: httpUrl })],
  { error: 'must be { "kind": "helia" } or { "kind": "kubo", "url": "http://127.0.0.1:5001" }' },
) satisfies z.ZodType<StorageConfig>;

/** A node config file as written (before its deployment file is read and its paths resolved). */
const fileSchema = z
  .strictObject(
    {
      role: z.enum(["worker", "validator"], { error: 'must be "worker" or "validator"' }),
      name: text("a name"),
      /** The signing key: see worker/chain/keys.ts (keystore, FEDSTAKE_PRIVATE_KEY, or this). */
      privateKey: z.string({ error: "must be a 0x-prefixed 32-byte hex key" }).regex(/^0x[0-9a-fA-F]{64}$/, { error: "must be a 0x-prefixed 32-byte hex key" }).optional(),
      keystore: text("a file path").optional(),
      rpc: httpUrl,
      /** The contracts' addresses, or the path of a deployment file (relative to the config; `fedstake deploy` writes one). */
      deployment: z.union([text("a file path"), deploymentSchema], { error: "must be the contracts' addresses or the path of a deployment file" }),
      jobId: z.string({ error: 'must be a positive integer in a string, like "1"' }).regex(/^[1-9][0-9]*$/, { error: 'must be a positive integer in a string, like "1"' }),
      dataDir: text("a directory path"),
      /** Multiaddrs dialled at start (e.g. the sponsor's node that holds the initial model). */
      peers: z.array(multiaddrText, { error: "must be a list of multiaddrs" }).default([]),
      data: dataSchema,
      /**
       * Worker: local training per round; `threads` caps ORT's threads (default: one per core). A
       * validator reads only `threads` (its reference update follows `policy.reference`).
       */
      train: z
        .strictObject(
          {
            /** Local epochs per round; with `budget`, the minimum. */
            epochs: positiveInt,
            batch: positiveInt,
            lr: z.number({ error: "must be a positive number" }).positive({ error: "must be a positive number" }),
            momentum: z.number({ error: "must be in [0, 1)" }).min(0, { error: "must be in [0, 1)" }).lt(1, { error: "must be in [0, 1)" }),
            threads: positiveInt.optional(),
            /**
             * Time-budgeted training: after `epochs` epochs, go on training (more epochs, the last one
             * possibly partial) while the budget lasts — seconds from the start of training, or "auto": what
             * is left of the round's commit window, less a margin for pinning and committing.
             */
            budget: z
              .union([z.number().positive({ error: 'must be a number of seconds > 0 or "auto"' }), z.literal("auto")], { error: 'must be a number of seconds > 0 or "auto"' })
              .optional(),
            /** With `budget`: never more than this many epochs. */
            maxEpochs: positiveInt.optional(),
          },
          { error: 'must be { "epochs", "batch", "lr", "momentum", "threads"?, "budget"?, "maxEpochs"? }' },
        )
        .optional(),
      /**
       * Validator: its own acceptance policy instead of the job spec's, in the job spec's "validation" form
       * ({ "rules": [...], "reference": {...} }; a part left out is the job spec's). Checked here by the
       * job spec's own parser, so a mistake is found at start.
       */
      policy: z
        .custom<{ rules?: unknown; reference?: unknown }>()
        .superRefine((p, ctx) => {
          try {
            parseValidation(p, "policy");
          } catch (e) {
            ctx.addIssue({ code: "custom", message: (e as Error).message, params: NAMED });
          }
        })
        .optional(),
      /**
       * Validator: a program that decides the vote instead of the built-in policy (worker/node/decide.ts).
       * It gets the round's evaluation (worker/validation/roundEvaluation.ts) as JSON on stdin and prints
       * the indices to accept. `command`: argv (a string is one executable); a path with a "/" is relative
       * to the config file, a bare name is looked up in PATH. `onFailure`: what a failing or late hook
       * means — "abstain" (no vote this round; default) or "builtin" (the built-in policy's vote).
       */
      decide: z
        .strictObject(
          {
            command: z.union(
              [
                text("a command").refine((c) => !/\s/.test(c), { error: 'is one program (no shell): write its words as a list, like ["python3", "rule.py"]' }),
                z.array(text("a word"), { error: "must be a list of words" }).min(1, { error: "must name a program" }),
              ],
              { error: 'must be a program path or argv, like ["./rule.sh"]' },
            ),
            timeoutMs: positiveInt.default(30_000),
            onFailure: z.enum(["abstain", "builtin"], { error: 'must be "abstain" or "builtin"' }).default("abstain"),
          },
          { error: 'must be { "command", "timeoutMs"?, "onFailure"? }' },
        )
        .optional(),
      /** Validator: how long to wait for one update's artifact (default 15 s). */
      fetchTimeoutMs: positiveInt.optional(),
      /** Where artifacts are kept and fetched (worker/storage/factory.ts); default the node's own Helia node in dataDir/ipfs. */
      storage: storageSchema.optional(),
    },
    { error: "must be a JSON object" },
  )
  .superRefine(
    (c, ctx) => {
      if (c.train?.maxEpochs !== undefined && c.train.budget === undefined) ctx.addIssue({ code: "custom", path: ["train", "maxEpochs"], message: "takes effect only with train.budget" });
      if (c.train?.maxEpochs !== undefined && c.train.maxEpochs < c.train.epochs) ctx.addIssue({ code: "custom", path: ["train", "maxEpochs"], message: `must be at least train.epochs (${c.train.epochs})` });
      if (c.role !== "worker") return;
      if (c.train === undefined) ctx.addIssue({ code: "custom", path: ["train"], message: 'is required for a worker ({ "epochs", "batch", "lr", "momentum" })' });
      for (const k of ["policy", "fetchTimeoutMs", "decide"] as const) if (c[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: "is a validator's setting, not a worker's" });
    },
    // Also when other fields have problems (the value is then the input as parsed so far), so that one
    // message lists every problem.
    { when: (p) => typeof p.value === "object" && p.value !== null },
  );

/**
 * A node's local data: its own files (IDX image/label pair, or a CSV with a label column), or, for the
 * demo and tests, one party's share of MNIST (samples [offset, offset + limit) of a split, partitioned).
 * Paths are relative to the config file.
 */
export type DataConfig = z.infer<typeof dataSchema>;

/** A node's config as the node runs it: the deployment read, paths resolved. */
export type NodeConfig = Omit<z.infer<typeof fileSchema>, "deployment" | "decide"> & {
  deployment: Deployment;
  /** The decision hook's argv (its program's path resolved). */
  decide?: { command: string[]; timeoutMs: number; onFailure: "abstain" | "builtin" };
  /** Where the config file was read from (relative data paths resolve against it). */
  file?: string;
};

/** Reads a node config file (JSON); every problem is named in one error. */
export function readConfig(file: string): NodeConfig {
  const problem = (what: string) => new Error(`node config ${file}: ${what}`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw problem((e as Error).message);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) throw problem(describeIssues(parsed.error.issues, raw, Object.keys(fileSchema.shape)));
  const { decide, ...cfg } = parsed.data;
  const at = (p: string) => resolve(dirname(resolve(file)), p);
  return {
    ...cfg,
    file: resolve(file),
    dataDir: at(cfg.dataDir),
    ...(cfg.keystore === undefined ? {} : { keystore: at(cfg.keystore) }),
    ...(decide === undefined ? {} : { decide: { ...decide, command: programArgv(decide.command, at) } }),
    deployment: typeof cfg.deployment === "string" ? readDeployment(at(cfg.deployment), problem) : cfg.deployment,
  };
}

/** A hook's argv with its program's path resolved against the config (a bare name stays for PATH lookup). */
function programArgv(command: string | string[], at: (p: string) => string): string[] {
  const [program, ...args] = typeof command === "string" ? [command] : command;
  return [program!.includes("/") ? at(program!) : program!, ...args];
}

/** A deployment file named by a config, checked as strictly as addresses written inline. */
function readDeployment(at: string, problem: (what: string) => Error): Deployment {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(at, "utf8"));
  } catch (e) {
    throw problem(`deployment names ${at}, which cannot be read: ${(e as Error).message}`);
  }
  return parseDeployment(raw, `deployment file ${at}`, problem);
}

/**
 * A deployment (`fedstake deploy`'s file, parsed JSON) checked: every problem named after `where`
 * (`deployment file d.json: chainId must be a positive integer (got 0)`), thrown as `problem` makes it.
 */
export function parseDeployment(raw: unknown, where: string, problem: (what: string) => Error): Deployment {
  const parsed = deploymentSchema.safeParse(raw);
  if (!parsed.success) throw problem(`${where}: ${describeIssues(parsed.error.issues, raw)}`);
  return parsed.data;
}

/** Fields whose values are never echoed into an error message. */
const SECRET = new Set(["privateKey"]);

/**
 * zod's issues as one line: each names its field's path and the value found there (`train.lr must be a
 * positive number (got 0)`), a missing field as missing, unknown keys by name (at the top level with
 * the fields a config has, `known`, since a misspelt field is the usual cause).
 */
function describeIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, known?: readonly string[]): string {
  return issues
    .map((issue) => {
      const name = pathText(issue.path);
      if (issue.code === "unrecognized_keys") {
        const keys = issue.keys.map((k) => JSON.stringify(k)).join(", ");
        const hint = issue.path.length === 0 && known ? ` (a node config has: ${known.join(", ")})` : "";
        return `${name ? `${name}: ` : ""}unknown field${issue.keys.length > 1 ? "s" : ""} ${keys}${hint}`;
      }
      if (issue.code === "custom" && issue.params?.named) return issue.message;
      const found = valueAt(raw, issue.path);
      const subject = name || "the file";
      // Only a refinement (a field a worker needs) may speak of a field that is absent.
      if (!found.present && issue.code !== "custom") return `${subject} is missing`;
      // A discriminated union's tag that matches no variant: name the variants rather than the union's shape.
      const message = issue.code === "invalid_union" && "options" in issue ? `must be ${oneOf(issue.options as unknown[])}` : issue.message;
      const got = found.present && !SECRET.has(String(issue.path[0])) ? ` (got ${shortJson(found.value)})` : "";
      return `${subject} ${message}${got}`;
    })
    .join("; ");
}

/** `"a", "b" or "c"` */
function oneOf(values: readonly unknown[]): string {
  const q = values.map((v) => JSON.stringify(v));
  return q.length > 1 ? `${q.slice(0, -1).join(", ")} or ${q.at(-1)}` : (q[0] ?? "");
}

function pathText(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : `${i ? "." : ""}${String(p)}`)).join("");
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): { present: boolean; value?: unknown } {
  let v = raw;
  for (const p of path) {
    if (typeof v !== "object" || v === null || !Object.hasOwn(v, p)) return { present: false };
    v = (v as Record<PropertyKey, unknown>)[p];
  }
  return { present: v !== undefined, value: v };
}

function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…` : s;
}
