/**
 * What the command groups share: usage errors, typed parsers for option and argument values (every
 * error names the option and what it expected), the shared option groups (chain, node), and the chain
 * and node handles built from them.
 */
import { existsSync, openSync, readFileSync, readSync, closeSync, statSync } from "node:fs";
import { join } from "node:path";
import { Argument, Option, type Command } from "commander";
import { formatUnits, getAddress, JsonRpcProvider, parseUnits, type Contract } from "ethers";
import { assertChainId, attach, type Deployment } from "../../worker/chain/client.ts";
import { KEY_ENV, loadWallet, PASSWORD_ENV } from "../../worker/chain/keys.ts";
import { SlashReason } from "../../worker/chain/protocol.ts";
import { parseDeployment, readConfig } from "../../worker/node/config.ts";
import { NodeContext, type LogTo } from "../../worker/node/context.ts";
import { inHome } from "../../worker/node/home.ts";

/** Bad input on the command line: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/**
 * Turns the text of an option or argument into its value, or throws an Error saying what was expected
 * ("must be …, got …"); `option()` and `argument()` prefix the option's name.
 */
export type Parse<T> = (text: string) => T;

const got = (s: string) => `got "${s}"`;

/** A whole number ≥ `min` that fits a JS number (seconds, counts). */
export const wholeNumber =
  (min = 0): Parse<number> =>
  (s) => {
    const n = Number(s);
    if (!/^\d+$/.test(s.trim()) || !Number.isSafeInteger(n) || n < min) throw new Error(`must be a whole number${min > 0 ? ` ≥ ${min}` : ""}, ${got(s)}`);
    return n;
  };

/** A job id or round number: positive, as the contracts' uint256 (bigint, so it is never rounded). */
export const positiveId: Parse<bigint> = (s) => {
  if (!/^\d+$/.test(s.trim()) || BigInt(s.trim()) < 1n) throw new Error(`must be a positive whole number, ${got(s)}`);
  return BigInt(s.trim());
};

/** An account address (any case; a mixed-case one must carry a valid EIP-55 checksum), checksummed. */
export const address: Parse<string> = (s) => {
  try {
    return getAddress(s);
  } catch {
    throw new Error(`must be an address (0x and 40 hex digits, checksummed if mixed-case), ${got(s)}`);
  }
};

/** A token amount in whole tokens ("100", "2.5"), as base units (18 decimals). */
export const tokenAmount: Parse<bigint> = (s) => {
  let v: bigint;
  try {
    v = parseUnits(s, 18);
  } catch {
    v = -1n;
  }
  if (v < 0n) throw new Error(`must be a token amount like 100 or 2.5, ${got(s)}`);
  return v;
};

/** An RPC endpoint: an http(s) or ws(s) URL, its scheme written out. */
export const rpcUrl: Parse<string> = (s) => {
  // "127.0.0.1:8545" is no URL at all, and "localhost:8545" parses as the scheme "localhost:".
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s.trim())) throw new Error(`must be an http(s) or ws(s) URL: ${JSON.stringify(s)} lacks the scheme (http://${s.trim()}?)`);
  let u: URL | undefined;
  try {
    u = new URL(s);
  } catch {
    u = undefined;
  }
  if (!u) throw new Error(`must be an http(s) or ws(s) URL, ${got(s)}`);
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) throw new Error(`must be an http(s) or ws(s) URL, ${got(s)} (scheme ${u.protocol.slice(0, -1)})`);
  return s;
};

/** Runs `parse`, turning its complaint into a UsageError that names `what`. */
export function named<T>(what: string, parse: Parse<T>): Parse<T> {
  return (s) => {
    try {
      return parse(s);
    } catch (e) {
      throw new UsageError(`${what} ${(e as Error).message}`);
    }
  };
}

/** An option whose value goes through `parse` (its errors name the option). */
export function option<T>(flags: string, description: string, parse?: Parse<T>): Option {
  const o = new Option(flags, description);
  return parse ? o.argParser(named(o.long ?? o.name(), parse)) : o;
}

/** A repeatable option: every occurrence's value, parsed, in order. */
export function repeatable<T>(flags: string, description: string, parse: Parse<T>): Option {
  const o = new Option(flags, description).default([], "none");
  const p = named(o.long ?? o.name(), parse);
  return o.argParser((v: string, prev: T[]) => [...prev, p(v)]);
}

/** A positional argument whose value goes through `parse`. */
export function argument<T>(name: string, description: string, parse: Parse<T>): Argument {
  return new Argument(name, description).argParser(named(name.replace(/[<>[\]]/g, ""), parse));
}

export const CHAIN_GROUP = "Chain options:";
export const NODE_GROUP = "Node options:";

export interface ChainOpts {
  rpc: string;
  deployment: string;
  keystore?: string;
}

/**
 * The options every chain command shares: --rpc, --deployment (both with env defaults) and, for
 * commands that sign, --keystore (else $FEDSTAKE_PRIVATE_KEY).
 */
export function chainOptions(cmd: Command, o: { deployment?: boolean; key?: "signs" | "optional" | "none" } = {}): Command {
  cmd.addOption(option("--rpc <URL>", "the chain's JSON-RPC endpoint", rpcUrl).env("FEDSTAKE_RPC").default("http://127.0.0.1:8545").helpGroup(CHAIN_GROUP));
  if (o.deployment !== false) {
    cmd.addOption(option("--deployment <FILE>", "the contracts' addresses (`fedstake deploy` writes it)").env("FEDSTAKE_DEPLOYMENT").default(inHome("deployment.json"), "$FEDSTAKE_HOME/deployment.json").helpGroup(CHAIN_GROUP));
  }
  const key = o.key ?? "signs";
  if (key !== "none") {
    const what = key === "signs" ? "the signing key" : "the account (when ADDRESS is not given)";
    cmd.addOption(option("--keystore <FILE>", `${what}: an encrypted JSON keystore, password in $${PASSWORD_ENV} (default: $${KEY_ENV})`).helpGroup(CHAIN_GROUP));
  }
  return cmd;
}

export interface NodeOpts {
  rpc?: string;
  keystore?: string;
  round?: bigint;
}

/** The node commands' CONFIG.json argument and their overrides of it (--rpc, --keystore, --round). */
export function nodeOptions(cmd: Command, o: { round?: boolean } = {}): Command {
  cmd.argument("<CONFIG.json>", "the node's config file (the one its daemon runs from)");
  cmd.addOption(option("--rpc <URL>", "overrides the config's rpc", rpcUrl).helpGroup(NODE_GROUP));
  cmd.addOption(option("--keystore <FILE>", `signing key: an encrypted JSON keystore, password in $${PASSWORD_ENV} (default: $${KEY_ENV}, else the config's privateKey)`).helpGroup(NODE_GROUP));
  if (o.round !== false) cmd.addOption(option("--round <R>", "the round (default: the job's current round)", positiveId).helpGroup(NODE_GROUP));
  return cmd;
}

/** Base units as whole tokens (18 decimals), exact: "100.0", "2.5", "0.000000000000000001". */
export const fmt = (x: bigint) => formatUnits(x, 18);

/** The --json option every command that prints a result takes (the same words everywhere). */
export const jsonOption = (): Option => new Option("--json", "print one JSON document on stdout");

/**
 * Prints `doc` as one JSON document on stdout (and nothing else: logs go to stderr). Bigints are
 * printed as decimal strings; token amounts must already be strings in tokens (`fmt`), never floats.
 */
export function printJson(doc: unknown): void {
  process.stdout.write(JSON.stringify(doc, (_, v: unknown) => (typeof v === "bigint" ? v.toString() : v), 2) + "\n");
}
export const nameOf = (o: Record<string, number>, v: number | bigint): string => Object.keys(o).find((k) => o[k] === Number(v)) ?? String(v);
export const isoTime = (seconds: bigint | number) => new Date(Number(seconds) * 1000).toISOString();
/** How `status` and `account` name a slash's reason. */
export const slashReasonName = (r: number | bigint): string =>
  ({ RejectedUpdate: "rejected update", MissedUpdateReveal: "missed update reveal", MissedVoteReveal: "missed vote reveal", Absence: "absence" })[
    nameOf(SlashReason, r)
  ] ?? `reason ${r}`;

/** The deployment file, checked (node/config.ts's rules): a bad address in it is named here (not taken for an ENS name by ethers later). */
export function readDeployment(file: string): Deployment {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new UsageError(`deployment ${file}: ${(e as Error).message} (write one with \`fedstake deploy\`)`);
  }
  return parseDeployment(raw, `deployment ${file}`, (what) => new UsageError(what));
}

export const providerOf = (rpc: string) => new JsonRpcProvider(rpc, undefined, { staticNetwork: true, pollingInterval: 250 });

/** The signing wallet and the contracts, for commands that send transactions (on the deployment's chain only). */
export async function signer(o: ChainOpts) {
  const provider = providerOf(o.rpc);
  const wallet = await loadWallet({ keystore: o.keystore }, provider);
  const dep = readDeployment(o.deployment);
  await assertChainId(provider, dep, o.rpc);
  return { wallet, dep, ...attach(dep, wallet) };
}

/** Read-only contract handles, on the deployment's chain only. */
export async function reader(o: Pick<ChainOpts, "rpc" | "deployment">) {
  const dep = readDeployment(o.deployment);
  const provider = providerOf(o.rpc);
  await assertChainId(provider, dep, o.rpc);
  return { dep, provider, ...attach(dep, provider) };
}

/** The job's current round (what a node command acts on when --round is not given). */
export async function currentRound(coord: Contract, jobId: bigint): Promise<bigint> {
  const [round] = (await coord.getFunction("phaseOf")(jobId)) as [bigint];
  return round;
}

/**
 * A node's context from its config file, with the --rpc / --keystore overrides. Its log lines go to
 * stderr (a one-shot command's stdout is its result); the daemons pass `logTo: "stdout"`.
 */
export async function nodeContext(o: NodeOpts, file: string, role?: "validator", opts: { logTo?: LogTo; purpose?: string } = {}): Promise<NodeContext> {
  const cfg = readConfig(file);
  if (role && cfg.role !== role) throw new UsageError(`${file} is a ${cfg.role}'s config; this command needs a ${role}'s`);
  if (o.rpc) cfg.rpc = o.rpc;
  if (o.keystore) cfg.keystore = o.keystore;
  return NodeContext.create(cfg, { logTo: opts.logTo ?? "stderr", purpose: opts.purpose ?? `fedstake ${process.argv.slice(2, 4).join(" ")}` });
}

/** One line of a node's events.jsonl, its token amounts in tokens. */
export type NodeEvent = { event: string } & Record<string, unknown>;

/** Fields of node events that hold token amounts in base units (`claimed.amount`, `left-committee.bondReleased`). */
const EVENT_AMOUNT = /amount|bond|reward|stake/i;

/**
 * The events a node logs from now on (its events.jsonl, read from its current end), for a command's
 * JSON result: amounts in tokens, without the per-line time and node name.
 */
export function eventsFrom(ctx: NodeContext): () => NodeEvent[] {
  const file = join(ctx.cfg.dataDir, "events.jsonl");
  const start = existsSync(file) ? statSync(file).size : 0;
  return () => {
    if (!existsSync(file)) return [];
    const size = statSync(file).size;
    if (size <= start) return [];
    const buf = Buffer.alloc(size - start);
    const fd = openSync(file, "r");
    try {
      readSync(fd, buf, 0, buf.length, start);
    } finally {
      closeSync(fd);
    }
    return buf
      .toString("utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .flatMap((l) => {
        try {
          const { t: _t, node: _n, ...e } = JSON.parse(l) as NodeEvent & { t?: string; node?: string };
          for (const [k, v] of Object.entries(e)) if (EVENT_AMOUNT.test(k) && typeof v === "string" && /^\d+$/.test(v)) e[k] = fmt(BigInt(v));
          return [e as NodeEvent];
        } catch {
          return [];
        }
      });
  };
}

/** Runs `f` with a node context and its round (--round, else the current one), then stops its IPFS node. */
export async function withNode(ctx: NodeContext, o: NodeOpts, f: (round: bigint) => Promise<void>): Promise<void> {
  try {
    await f(o.round ?? (await currentRound(ctx.chain.coord, ctx.jobId)));
  } finally {
    await ctx.store.stop().catch(() => {});
  }
}
