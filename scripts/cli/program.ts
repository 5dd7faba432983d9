/**
 * The `fedstake` program: every command group registered on one commander tree, help generated from
 * the options the commands really take, and one place that turns errors into messages and exit codes
 * (0 done, 1 failure, 2 usage error, 3 too late or already done: `exitCodeOf`).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Command, CommanderError, Help, type Option } from "commander";
import { attach, ChainError, type Deployment } from "../../worker/chain/client.ts";
import { KEY_ENV, PASSWORD_ENV } from "../../worker/chain/keys.ts";
import { TooLateError } from "../../worker/node/errors.ts";
import { registerInit } from "./init.ts";
import { registerAccount } from "./account.ts";
import { registerChain } from "./chain.ts";
import { registerClaim } from "./claim.ts";
import { registerDashboard } from "./dashboard.ts";
import { registerDemo } from "./demo.ts";
import { registerJob } from "./job.ts";
import { registerKeystore } from "./keystore.ts";
import { registerModel } from "./model.ts";
import { registerNode } from "./node.ts";
import { registerRound } from "./round.ts";
import { registerStatus } from "./status.ts";
import { providerOf, readDeployment, UsageError } from "./common.ts";
import { readConfig } from "../../worker/node/config.ts";
import { registerVote } from "./vote.ts";
import { phaseOpensText, readTiming, registerWatch } from "./watch.ts";

const ROOT = resolve(import.meta.dirname, "../..");
const VERSION = (JSON.parse(readFileSync(resolve(ROOT, "package.json"), "utf8")) as { version: string }).version;

/** "--job <ID>" as the README writes it: "--job ID". */
const flagsText = (o: Option) => o.flags.replace(/<([^>]+)>/g, "$1");

/** A command's words after `fedstake` ("vote evaluate"). */
const pathOf = (c: Command): string => {
  const names: string[] = [];
  for (let x: Command | null = c; x?.parent; x = x.parent) names.unshift(x.name());
  return names.join(" ");
};

/**
 * A command's usage from its real arguments and options: its own options one by one (required ones
 * bare, the rest in brackets), each shared group as one "[chain options]" / "[node options]".
 */
function usageOf(c: Command): string {
  const parts = c.registeredArguments.map((a) => {
    const n = a.name() + (a.variadic ? "…" : "");
    return a.required ? n : `[${n}]`;
  });
  const groups: string[] = [];
  const own: Option[] = [];
  for (const o of c.options) {
    if (o.hidden) continue;
    if (!o.helpGroupHeading) own.push(o);
    else {
      const g = `[${o.helpGroupHeading.replace(/:$/, "").replace(/\s*\(.*\)$/, "").toLowerCase()}]`;
      if (!groups.includes(g)) groups.push(g);
    }
  }
  for (const o of [...own.filter((x) => x.mandatory), ...own.filter((x) => !x.mandatory)]) {
    const term = `${o.long}${o.required ? ` ${flagsText(o).split(" ").pop()}` : ""}`;
    parts.push(o.mandatory ? term : `[${term}]`);
  }
  return [...parts, ...groups].join(" ");
}

/** Every runnable command under `c`, depth first (groups are listed by their commands). */
const leaves = (c: Command): Command[] => c.commands.flatMap((s) => (s.commands.length ? leaves(s) : [s]));

const HELP: Partial<Help> = {
  optionTerm: flagsText,
  // The command list names each runnable command with its full path and usage ("vote evaluate CONFIG.json [--json] [node options]").
  visibleCommands(cmd: Command) {
    return Help.prototype.visibleCommands.call(this, cmd).flatMap((s) => (s.commands.length ? leaves(s) : [s]));
  },
  // (The implicit help command has no parent.)
  subcommandTerm: (c: Command) => `${c.parent ? pathOf(c) : c.name()} ${c.usage()}`.trim(),
  subcommandDescription: (c: Command) => c.summary() || c.description(),
  // Terms longer than this (most command usages) get their description on the next line.
  padWidth(cmd: Command, helper: Help) {
    return Math.min(Help.prototype.padWidth.call(this, cmd, helper), 30);
  },
  formatItem(term: string, termWidth: number, description: string, helper: Help) {
    if (helper.displayWidth(term) <= termWidth) return Help.prototype.formatItem.call(this, term, termWidth, description, helper);
    return `${Help.prototype.formatItem.call(this, term, termWidth, "", helper).trimEnd()}\n${Help.prototype.formatItem.call(this, "", 4, description, helper)}`;
  },
};

const ENVIRONMENT = `
Environment:
  FEDSTAKE_RPC                default --rpc (else http://127.0.0.1:8545)
  FEDSTAKE_HOME               the data directory (else ~/.fedstake): deployment file, sponsor IPFS repository, demo runs
  FEDSTAKE_DEPLOYMENT         default --deployment and deploy's --out (else $FEDSTAKE_HOME/deployment.json)
  ${KEY_ENV.padEnd(27)} the signing key when no --keystore is given
  ${PASSWORD_ENV.padEnd(27)} the password of --keystore files (and of keystore create)

Reverts are printed with the contract's custom error and its arguments named (phases by name, times as
ISO dates, amounts in tokens); a transaction is signed once and re-broadcast (never re-signed) on
transient RPC errors. With --json a command prints one JSON document on stdout; logs and errors go to
stderr. Contracts are compiled on first use if artifacts/ has no build of them.

Exit codes:
  0  done
  1  failed
  2  usage error: an unknown command or option, a bad or out-of-range value
  3  too late or already done: the step's phase or round is over (WrongPhase past it, WrongRound,
     SlashWindowOver), or it was taken already (AlreadyCommitted, AlreadyRevealed, AlreadyAttested,
     AlreadyClaimed, AlreadyInCommittee, NothingToSlash)
`;

/** Reverts that say the step is over or done already (exit code 3), with WrongPhase/WrongRound below. */
const DONE_OR_OVER = new Set(["AlreadyCommitted", "AlreadyRevealed", "AlreadyAttested", "AlreadyVoted", "AlreadyClaimed", "AlreadyInCommittee", "SlashWindowOver", "NothingToSlash"]);

/**
 * The exit code an error means: 2 for a usage error, 3 for "too late or already done" (a TooLateError,
 * or a revert that says so: WrongPhase when the job is past the expected phase, WrongRound for a round
 * that is over), 1 for anything else.
 */
export function exitCodeOf(e: unknown): 1 | 2 | 3 {
  if (e instanceof UsageError || e instanceof CommanderError) return 2;
  if (e instanceof TooLateError) return 3;
  if (e instanceof ChainError && e.errorName) {
    if (DONE_OR_OVER.has(e.errorName)) return 3;
    const [a, b] = (e.args ?? []) as unknown[];
    if (typeof a === "bigint" && typeof b === "bigint") {
      // WrongPhase(expected, actual): the job is past the phase the call needs. WrongRound(current, given): the given round is over.
      if (e.errorName === "WrongPhase" && b > a) return 3;
      if (e.errorName === "WrongRound" && b < a) return 3;
    }
  }
  return 1;
}

/**
 * For a call refused because its phase has not opened yet (WrongPhase, the job before the expected
 * phase): when it opens, read from the chain the command was pointed at (its --job, --rpc and
 * --deployment, or its node config). A hint only: if it cannot be read, the error stands alone.
 */
async function tooEarlyHint(cmd: Command, e: unknown): Promise<string | undefined> {
  if (!(e instanceof ChainError) || e.errorName !== "WrongPhase") return undefined;
  const [expected, actual] = (e.args ?? []) as unknown[];
  if (typeof expected !== "bigint" || typeof actual !== "bigint" || expected <= actual) return undefined;
  const o = cmd.opts() as { rpc?: string; deployment?: string; job?: bigint };
  let target: { rpc: string; dep: Deployment; job: bigint } | undefined;
  try {
    if (o.rpc && o.deployment && typeof o.job === "bigint") target = { rpc: o.rpc, dep: readDeployment(o.deployment), job: o.job };
    else if (typeof cmd.args[0] === "string" && cmd.args[0].endsWith(".json")) {
      const cfg = readConfig(cmd.args[0]);
      target = { rpc: o.rpc ?? cfg.rpc, dep: cfg.deployment, job: BigInt(cfg.jobId) };
    }
  } catch {
    return undefined;
  }
  if (!target) return undefined;
  const provider = providerOf(target.rpc);
  try {
    return phaseOpensText(await readTiming(attach(target.dep, provider).coord, provider, target.job), target.job, Number(expected));
  } catch {
    return undefined;
  } finally {
    provider.destroy();
  }
}

export function buildProgram(): Command {
  const program = new Command("fedstake")
    .description("The fedstake protocol from the command line: keys, stake, jobs, the worker and validator daemons, voting by hand, models, accounts.")
    .version(VERSION, "-V, --version", "print the version")
    .helpCommand("help [COMMAND]", "help for a command")
    .enablePositionalOptions()
    .showSuggestionAfterError()
    .configureHelp(HELP)
    // Errors are printed once, by run() below, with the command's usage.
    .configureOutput({ outputError: () => {} })
    .exitOverride()
    .addHelpText("after", ENVIRONMENT);
  // Groups are created with .command(), which copies the settings above into every subcommand.
  registerChain(program);
  registerKeystore(program);
  registerInit(program);
  registerJob(program);
  registerStatus(program);
  registerDashboard(program);
  registerAccount(program);
  registerNode(program);
  registerVote(program);
  registerWatch(program);
  registerRound(program);
  registerModel(program);
  registerClaim(program);
  registerDemo(program);
  const visit = (c: Command): void => {
    if (c.commands.length) {
      // A group given a word that is none of its commands.
      c.on("command:*", (operands: string[]) => {
        throw new UsageError(`unknown command "${`${pathOf(c)} ${operands[0]}`.trim()}" (fedstake help lists them)`);
      });
      c.commands.forEach(visit);
    } else if (c.name() !== "demo") {
      c.usage(usageOf(c));
    }
  };
  visit(program);
  return program;
}

/**
 * The deepest command `argv` names, and the words that name it as the user typed them (with the first
 * word a group does not know, so that an unknown command is named in full).
 */
function commandAt(program: Command, argv: string[]): { cmd: Command; words: string[]; rest: string[] } {
  let cmd = program;
  const words: string[] = [];
  let rest = argv;
  for (const [i, word] of argv.entries()) {
    if (word.startsWith("-")) continue;
    if (!cmd.commands.length) break;
    words.push(word);
    const next = cmd.commands.find((s) => s.name() === word);
    if (!next) break;
    cmd = next;
    rest = argv.slice(i + 1);
  }
  return { cmd, words, rest };
}

/** Runs the program on `argv` (the words after `fedstake`); returns the exit code, or undefined for a command that keeps running on its own (the demo). */
export async function run(argv: string[]): Promise<number | undefined> {
  const program = buildProgram();
  if (argv.length === 0) {
    program.outputHelp();
    return 0;
  }
  const { cmd, words, rest } = commandAt(program, argv);
  const where = ["fedstake", ...words].join(" ");
  try {
    await program.parseAsync(argv, { from: "user" });
    return cmd.name() === "demo" && !argv.includes("--help") && !argv.includes("-h") ? undefined : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end in a CommanderError too; help shown because a group was given no command is a usage error.
      if (["commander.helpDisplayed", "commander.help", "commander.version"].includes(e.code)) return e.exitCode === 0 ? 0 : 2;
      let message = e.message.replace(/^error: /, "");
      // Commander checks required options before unknown ones; a misspelt option is the better report.
      if (e.code === "commander.missingMandatoryOptionValue") {
        const unknown = cmd.parseOptions([...rest]).unknown.find((a) => a.startsWith("-"));
        if (unknown) message = `unknown option '${unknown}' (${where} --help lists the options)`;
      }
      console.error(`${where}: ${message}\nusage: ${where} ${cmd.usage()}`);
      return 2;
    }
    console.error(`${where}: ${(e as Error).message}`);
    const hint = await tooEarlyHint(cmd, e);
    if (hint) console.error(hint);
    if (e instanceof UsageError && cmd !== program && cmd.commands.length === 0) console.error(`usage: ${where} ${cmd.usage()}`);
    return exitCodeOf(e);
  }
}
