/**
 * Every example in README.md, run: a README that drifts from the code fails here.
 *
 * Fenced code blocks. Each JSON block carries a tag on the line before its fence, `<!-- example: KIND -->`,
 * and is parsed by the real parser of that kind:
 *   job-file           a `job create --spec` file: the job spec (parseJobSpec) plus the on-chain "job"
 *                      section (checked by the real `fedstake job create`, stopped at its first chain call);
 *                      its model is built into a training graph and trained for a step on random data
 *   job-spec           a job spec alone (parseJobSpec), trained for a step like job-file's
 *   model-spec         a model spec (validateSpec), trained for a step
 *   node-config        a node config (readConfig from worker/node/config.ts, else worker/node/context.ts),
 *                      with a validator's `policy` (parseValidation)
 *   validation-policy  a job spec's "validation" object (parseValidation)
 *   aggregation        a job spec's "aggregation" object (parseAggregation)
 *   shell              (the default for bash/sh blocks) every `fedstake …`, `npx fedstake …`, `npm run …`
 *                      line: the subcommand exists and the real commander program accepts its arguments and
 *                      options (parsed with the actions replaced, so nothing runs); `npm run X` names a
 *                      package.json script; `--help`, `help` and `--version` are run for real
 *   not-run (reason)   a block nothing can run (a diagram); kept few
 * A JSON block without a tag, or a tag of no known kind, fails.
 *
 * Inline code. Every `npm run …`, `npx fedstake …` and `fedstake …` span, and every usage in the CLI's
 * command table, names a real script or command and only options that command has; every command of the
 * program is documented; the layer table lists exactly the layer types and parameters validateSpec reads;
 * the acceptance-rule table's defaults are the rules' defaults; every aggregation kind and parameter is named.
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError } from "commander";
import { AGGREGATIONS, AGGREGATION_KINDS, parseAggregation } from "../worker/aggregation/index.ts";
import { defaultJobParams } from "../worker/chain/protocol.ts";
import { DEFAULT_REFERENCE, parseJobSpec, parseValidation } from "../worker/node/jobSpec.ts";
import { paramsOf } from "../worker/training/model.ts";
import { SpecError, validateSpec, type ModelSpec } from "../worker/training/spec.ts";
import { Trainer } from "../worker/training/trainer.ts";
import { DEFAULT_RULES } from "../worker/validation/rules/index.ts";
import { buildProgram } from "../scripts/cli/program.ts";
import { prng } from "../worker/util/prng.ts";

const ROOT = resolve(import.meta.dirname, "..");
// README_TEST_FILE: another copy of the README (to see that a broken example fails without editing the real one).
const README = readFileSync(process.env.README_TEST_FILE ?? join(ROOT, "README.md"), "utf8");
const SCRIPTS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;
const CLI = join(ROOT, "scripts/fedstake.ts");

const KINDS = ["job-file", "job-spec", "model-spec", "node-config", "validation-policy", "aggregation", "shell", "not-run"] as const;
type Kind = (typeof KINDS)[number];
const SHELL_LANGS = ["bash", "sh", "shell", "console"];
/** At most this many blocks may be left unchecked. */
const MAX_NOT_RUN = 2;

interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  body: string;
  tag?: string;
  reason?: string;
}

/** The fenced code blocks, each with the `<!-- example: KIND (reason) -->` tag on the line before its fence. */
function fencedBlocks(md: string): Block[] {
  const lines = md.split("\n");
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^ {0,3}(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`).test(lines[j]!)) j++;
    if (j === lines.length) throw new Error(`README.md:${i + 1}: the code block is never closed`);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === "") k--;
    const tag = k >= 0 ? /^<!--\s*example:\s*([\w-]+)\s*(?:\((.*)\))?\s*-->$/.exec(lines[k]!.trim()) : null;
    out.push({ line: i + 1, lang: open[2]!.toLowerCase(), body: lines.slice(i + 1, j).join("\n"), tag: tag?.[1], reason: tag?.[2]?.trim() });
    i = j;
  }
  return out;
}

/** The kind a block is checked as, or why it cannot be. */
function kindOf(b: Block): Kind | Error {
  const where = `README.md:${b.line} (\`\`\`${b.lang})`;
  if (b.tag !== undefined) {
    if (!(KINDS as readonly string[]).includes(b.tag)) return new Error(`${where}: unknown example tag "${b.tag}" (known: ${KINDS.join(", ")})`);
    if (b.tag === "not-run" && !b.reason) return new Error(`${where}: "not-run" needs its reason: <!-- example: not-run (why) -->`);
    if (b.tag === "shell" && !SHELL_LANGS.includes(b.lang)) return new Error(`${where}: tagged shell, but it is a ${b.lang || "plain"} block`);
    if (b.tag !== "shell" && b.tag !== "not-run" && b.lang !== "json") return new Error(`${where}: tagged ${b.tag}, which is a JSON kind, but the block is ${b.lang || "plain"}`);
    return b.tag as Kind;
  }
  if (SHELL_LANGS.includes(b.lang)) return "shell";
  if (b.lang === "json") return new Error(`${where}: untagged JSON block: put <!-- example: KIND --> on the line before it (KIND: ${KINDS.filter((k) => k !== "shell").join(", ")})`);
  return new Error(`${where}: untagged block: tag it with its kind, or <!-- example: not-run (why) -->`);
}

const BLOCKS = fencedBlocks(README);
const jsonOf = (b: Block): Record<string, unknown> => {
  try {
    return JSON.parse(b.body) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`README.md:${b.line}: not JSON: ${(e as Error).message}`);
  }
};
const tagged = (kind: Kind) => BLOCKS.filter((b) => kindOf(b) === kind);

/** What this test reads of a parsed node config (the type lives with readConfig, which is moving). */
interface NodeConfig {
  role: string;
  data: unknown;
  train?: { epochs: number; batch: number; lr: number; momentum: number };
  policy?: unknown;
}

/** readConfig, from wherever it lives now (it is moving from worker/node/context.ts to worker/node/config.ts). */
async function loadReadConfig(): Promise<(file: string) => NodeConfig> {
  for (const f of ["worker/node/config.ts", "worker/node/context.ts"]) {
    const file = join(ROOT, f);
    if (!existsSync(file)) continue;
    const m = (await import(pathToFileURL(file).href)) as { readConfig?: (file: string) => NodeConfig };
    if (typeof m.readConfig === "function") return m.readConfig;
  }
  throw new Error("readConfig is exported by neither worker/node/config.ts nor worker/node/context.ts");
}

// ---------------------------------------------------------------------------------------------------
// Markdown text outside the code blocks: inline code spans and tables.

/** README without its fenced blocks and HTML comments (line count kept, so positions stay meaningful). */
const PROSE = (() => {
  const lines = README.split("\n");
  for (const b of BLOCKS) {
    const end = b.line + b.body.split("\n").length;
    for (let i = b.line - 1; i <= end; i++) lines[i] = "";
  }
  return lines.join("\n").replace(/<!--[\s\S]*?-->/g, "");
})();

/** Inline code spans, with the line they start on (a span may continue on the next line; GFM table pipes unescaped). */
function inlineSpans(text: string): { line: number; code: string }[] {
  const out: { line: number; code: string }[] = [];
  const re = /(`+)([\s\S]+?)\1/g;
  for (let m; (m = re.exec(text)); ) {
    out.push({ line: text.slice(0, m.index).split("\n").length, code: m[2]!.replace(/\\\|/g, "|").replace(/\s*\n\s*/g, " ").trim() });
  }
  return out;
}

/** The rows of the table whose header row's cells are `header` (cells split on unescaped pipes). */
function tableRows(header: string[]): string[][] {
  const lines = PROSE.split("\n");
  const cells = (l: string) =>
    l
      .trim()
      .replace(/^\||\|$/g, "")
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
  const rows: string[][] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.trim().startsWith("|") || cells(lines[i]!).join("\u0000") !== header.join("\u0000")) continue;
    for (let j = i + 2; j < lines.length && lines[j]!.trim().startsWith("|"); j++) rows.push(cells(lines[j]!));
  }
  return rows;
}

const spansIn = (cell: string) => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\\\|/g, "|"));

// ---------------------------------------------------------------------------------------------------
// The CLI.

/** The program with every command's action replaced by one that records which command ran: parsing checks everything, nothing executes. */
function dryProgram(): { program: Command; ran: () => Command | undefined } {
  const program = buildProgram();
  let ran: Command | undefined;
  const visit = (c: Command): void => {
    if (c.commands.length) c.commands.forEach(visit);
    else c.action(() => void (ran = c));
  };
  visit(program);
  return { program, ran: () => ran };
}

const pathOf = (c: Command): string => {
  const names: string[] = [];
  for (let x: Command | null = c; x?.parent; x = x.parent) names.unshift(x.name());
  return names.join(" ");
};
const leaves = (c: Command): Command[] => c.commands.flatMap((s) => (s.commands.length ? leaves(s) : [s]));

/** Parses a concrete `fedstake` command line with the real program (actions replaced); throws what the CLI would report. */
async function parseCommandLine(argv: string[]): Promise<Command> {
  const { program, ran } = dryProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    const why = e instanceof CommanderError ? e.message.replace(/^error: /, "") : (e as Error).message;
    throw new Error(`fedstake ${argv.join(" ")}: ${why}`);
  }
  const cmd = ran();
  if (!cmd) throw new Error(`fedstake ${argv.join(" ")}: names no command`);
  return cmd;
}

/** Is this word a placeholder (ID, CONFIG.json, <command>, …) rather than a literal word of a command line? */
const placeholder = (w: string) => /^<.*>$|^\[.*\]$|^\(.*\)$|^[A-Z][A-Z0-9_.]*(\.json)?$|…/.test(w);

/**
 * Checks a usage (`model eval --job ID (--images FILE …) [--round R]`, `fedstake COMMAND --help`): the words
 * before the first option or placeholder name a command, and every `--option` is one it takes.
 */
function checkUsage(argv: string[], where: string): Command | undefined {
  const program = buildProgram();
  // `fedstake help [COMMAND]`: the words after it name a command.
  if (argv[0] === "help") {
    checkUsage([...argv.slice(1).filter((w) => !w.startsWith("-")), "--help"], where);
    return undefined;
  }
  let cmd = program;
  let i = 0;
  for (; i < argv.length && cmd.commands.length; i++) {
    const w = argv[i]!;
    if (w.startsWith("-") || w.startsWith("[") || w.startsWith("(")) break;
    if (placeholder(w)) return checkGenericOptions(argv.slice(i + 1), where);
    const next = cmd.commands.find((s) => s.name() === w);
    if (!next) throw new Error(`${where}: "fedstake ${argv.slice(0, i + 1).join(" ")}" is no command (known: ${cmd.commands.map((s) => s.name()).join(", ")})`);
    cmd = next;
  }
  const takes = new Set(cmd.options.flatMap((o) => [o.long, o.short]).filter(Boolean) as string[]);
  if (cmd.name() !== "demo") takes.add("--help").add("-h");
  if (cmd === program) takes.add("--version");
  for (const w of argv.slice(i).join(" ").match(/(?<![\w-])--?[a-z][\w-]*/g) ?? []) {
    if (cmd.name() === "demo") continue; // the demo parses its own options; checked against `demo --help` elsewhere
    if (!takes.has(w)) throw new Error(`${where}: fedstake ${pathOf(cmd) || "(the program)"} has no option ${w} (it takes ${[...takes].join(" ")})`);
  }
  return cmd === program ? undefined : cmd;
}

/** Options after a placeholder command (`fedstake COMMAND --help`): only what every command takes. */
function checkGenericOptions(rest: string[], where: string): undefined {
  for (const w of rest.join(" ").match(/(?<![\w-])--?[a-z][\w-]*/g) ?? []) {
    if (!["--help", "-h"].includes(w)) throw new Error(`${where}: ${w} is not an option every command takes`);
  }
  return undefined;
}

/** Runs `node scripts/fedstake.ts ARGS` (output captured, a private data directory). */
function runCli(args: string[], env: Record<string, string> = {}, cwd = ROOT): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", fail);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, out, err });
    });
  });
}

/** `fedstake demo --help`, once: the demo's options come from its own parser. */
let demoHelp: Promise<string> | undefined;
const demoOptions = async (): Promise<Set<string>> => {
  demoHelp ??= runCli(["demo", "--help"]).then((r) => {
    if (r.code !== 0) throw new Error(`fedstake demo --help exited ${r.code}: ${r.err}`);
    return r.out;
  });
  return new Set((await demoHelp).match(/(?<![\w-])--[a-z][\w-]*/g) ?? []);
};

async function checkDemoArgs(args: string[], where: string): Promise<void> {
  const known = await demoOptions();
  for (const w of args.join(" ").match(/(?<![\w-])--[a-z][\w-]*/g) ?? []) {
    if (!known.has(w)) throw new Error(`${where}: the demo has no option ${w} (\`fedstake demo --help\` lists ${[...known].join(" ")})`);
  }
}

/** The command lines of a shell block: comments dropped, continuations joined, `&&` / `;` split, leading VAR=value assignments and a trailing `&` (run in the background) dropped. */
function commandLines(body: string): string[][] {
  const joined = body.replace(/\\\n/g, " ");
  const out: string[][] = [];
  for (const raw of joined.split("\n")) {
    const line = raw.replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    for (const part of line.split(/\s*(?:&&|\|\||;)\s*/)) {
      const words = (part.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((w) => w.replace(/^(["'])(.*)\1$/, "$2"));
      while (words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) words.shift();
      if (words[words.length - 1] === "&") words.pop();
      if (words.length) out.push(words);
    }
  }
  return out;
}

/** The words after `fedstake` in a command line, or undefined if it does not run the CLI. */
function fedstakeArgs(words: string[]): string[] | undefined {
  if (words[0] === "fedstake") return words.slice(1);
  if (words[0] === "npx" && words[1] === "fedstake") return words.slice(2);
  if (words[0] === "node" && words[1] === "scripts/fedstake.ts") return words.slice(2);
  if (words[0] === "npm" && words[1] === "run" && words[2] === "fedstake") return words[3] === "--" ? words.slice(4) : words.slice(3);
  return undefined;
}

/** Cheap, side-effect-free command lines, run for real: help pages and the version. */
const cheap = (args: string[]) => args.length === 0 || args[0] === "help" || args.includes("--help") || args.includes("-h") || (args.length === 1 && args[0] === "--version");

/** Checks (and, where cheap, runs) one shell command line of a README block. */
async function checkShellLine(words: string[], where: string): Promise<void> {
  const line = words.join(" ");
  const fs = fedstakeArgs(words);
  if (fs) {
    if (cheap(fs)) {
      const r = await runCli(fs, { FEDSTAKE_HOME: mkdtempSync(join(tmpdir(), "fedstake-readme-home-")) });
      expect(r.code, `${where}: \`${line}\` exited ${r.code}\n${r.err}`).to.equal(0);
      expect(r.out.trim(), `${where}: \`${line}\` printed nothing`).to.not.equal("");
      return;
    }
    const cmd = await parseCommandLine(fs);
    if (cmd.name() === "demo") await checkDemoArgs(fs.slice(1), where);
    return;
  }
  if (words[0] === "npm") {
    const sub = words[1];
    if (sub === "ci" || sub === "install" || sub === "i") return;
    if (sub === "test" || sub === "start") {
      expect(SCRIPTS, `${where}: \`${line}\`: package.json has no "${sub}" script`).to.have.property(sub);
      return;
    }
    if (sub === "run" || sub === "run-script") {
      const script = words[2];
      expect(script, `${where}: \`${line}\` names no script`).to.be.a("string");
      expect(Object.keys(SCRIPTS), `${where}: \`${line}\`: package.json has no script "${script}"`).to.include(script);
      const rest = words.slice(words.indexOf("--") + 1);
      if (script === "demo" && words.includes("--")) await checkDemoArgs(rest, where);
      return;
    }
    throw new Error(`${where}: \`${line}\`: npm ${sub} is not checked by this test (tag the block not-run, or teach test/readme.test.ts)`);
  }
  throw new Error(`${where}: \`${line}\` is not a command this test knows how to check (fedstake, npx fedstake, npm run …): tag the block not-run (why), or teach test/readme.test.ts`);
}

// ---------------------------------------------------------------------------------------------------
// Models.

/** Builds the model's training graph and runs one SGD step on random data; the loss is finite and the weights move. */
async function trainOneStep(spec: ModelSpec, recipe: { batch: number; lr: number; momentum: number }): Promise<void> {
  const batch = Math.min(recipe.batch, 8);
  const trainer = await Trainer.create(spec, { batch, steps: 1, threads: 1, optimizer: { kind: "sgd", lr: recipe.lr, momentum: recipe.momentum } });
  const features = spec.input.reduce((a, b) => a * b, 1);
  const r = prng(1);
  const data =
    spec.loss === "mse"
      ? { n: batch, features, x: Float32Array.from({ length: batch * features }, r), targets: Float32Array.from({ length: batch * spec.classes }, r) }
      : { n: batch, features, x: Float32Array.from({ length: batch * features }, r), labels: Int32Array.from({ length: batch }, () => Math.floor(r() * spec.classes)) };
  const before = new Map([...trainer.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const losses = await trainer.runSteps(data, Uint32Array.from({ length: batch }, (_, i) => i), 1);
  expect(losses.length).to.equal(1);
  expect(Number.isFinite(losses[0]!), `loss ${losses[0]}`).to.equal(true);
  for (const p of paramsOf(spec)) {
    const w = trainer.params.get(p.name)!;
    expect(w.length).to.equal(p.shape.reduce((a, b) => a * b, 1));
    expect(w.every(Number.isFinite), `${p.name} has non-finite values`).to.equal(true);
  }
  expect([...trainer.params].some(([k, v]) => v.some((x, i) => x !== before.get(k)![i])), "one step changed no weight").to.equal(true);
}

/** The layer types validateSpec knows (from its own error message, so this list cannot drift). */
function knownLayerTypes(): string[] {
  try {
    validateSpec({ input: [1], classes: 1, loss: "mse", seed: 0, layers: [{ type: "\u0000" }] });
  } catch (e) {
    const m = /known: ([^)]*)\)/.exec((e as Error).message);
    if (m) return m[1]!.split(", ");
  }
  throw new Error("validateSpec no longer names the known layer types in its error for an unknown one");
}

/** The README's layer table: layer type → the parameters it lists. */
function layerTable(): Map<string, string[]> {
  const rows = tableRows(["layer", "parameters", "input → output"]);
  if (!rows.length) throw new Error('README.md has no layer table (header "| layer | parameters | input → output |")');
  const out = new Map<string, string[]>();
  for (const [types, params] of rows) for (const t of spansIn(types!)) out.set(t, spansIn(params!));
  return out;
}

/** A minimal valid spec around one layer of `type`, for probing its parameters. */
function probeSpec(type: string, layer: Record<string, unknown>): Record<string, unknown> {
  if (type === "dense") return { input: [4], classes: 3, loss: "mse", seed: 1, layers: [{ ...layer, units: layer.units ?? 3 }] };
  return { input: [1, 4, 4], classes: 3, loss: "mse", seed: 1, layers: [layer, { type: "flatten" }, { type: "dense", units: 3 }] };
}
const PROBE_LAYERS: Record<string, Record<string, unknown>> = {
  dense: { type: "dense", units: 3 },
  conv2d: { type: "conv2d", filters: 2, kernel: 3, stride: 1, padding: 1 },
  maxpool: { type: "maxpool", size: 2 },
  avgpool: { type: "avgpool", size: 2 },
};

/** Checks a model spec from the README: validateSpec, every layer's keys are parameters the layer table lists. */
function checkModelSpec(raw: unknown, where: string): ModelSpec {
  const { spec } = validateSpec(raw);
  const table = layerTable();
  spec.layers.forEach((l, i) => {
    const allowed = table.get(l.type);
    expect(allowed, `${where}: layer ${i} (${l.type}) is not in the README's layer table`).to.not.equal(undefined);
    for (const k of Object.keys(l)) if (k !== "type") expect(allowed, `${where}: layer ${i} (${l.type}) has "${k}", which the layer table does not list`).to.include(k);
  });
  return spec;
}

// ---------------------------------------------------------------------------------------------------

describe("README examples", function () {
  this.timeout(180_000);
  const dir = mkdtempSync(join(tmpdir(), "fedstake-readme-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const DEPLOYMENT = { chainId: 31337, token: "0x" + "11".repeat(20), stakeManager: "0x" + "22".repeat(20), coordinator: "0x" + "33".repeat(20) };

  it("lists every default of a job file's \"job\" section as the code has it", function () {
    const at = README.indexOf("these defaults (`defaultJobParams`");
    expect(at, "the defaults paragraph").to.be.greaterThan(0);
    const paragraph = README.slice(at, README.indexOf("\n\n", at));
    const listed = new Map([...paragraph.matchAll(/`(\w+)` (\d+)( tokens)?/g)].map((m) => [m[1]!, BigInt(m[2]!) * (m[3] ? 10n ** 18n : 1n)]));
    const skip = new Set(["initialModelDigest", "initialModelCodec", "specDigest", "specCodec", "startTime"]);
    const code = Object.entries(defaultJobParams()).filter(([k]) => !skip.has(k));
    expect([...listed.keys()].sort()).to.deep.equal(code.map(([k]) => k).sort());
    for (const [k, v] of code) expect(listed.get(k), k).to.equal(BigInt(v as bigint | number));
  });

  it("every fenced block has a known kind (JSON blocks tagged), and few are left unrun", function () {
    expect(BLOCKS.length).to.be.greaterThan(0);
    const errors = BLOCKS.map(kindOf).filter((k): k is Error => k instanceof Error);
    expect(errors.map((e) => e.message)).to.deep.equal([]);
    expect(tagged("not-run").length, "not-run blocks").to.be.at.most(MAX_NOT_RUN);
    expect(tagged("job-file").length + tagged("job-spec").length, "a job file or job spec example").to.be.at.least(1);
  });

  it("the tag parser and the classification fail where they should", function () {
    const probe = (md: string) => fencedBlocks(md).map(kindOf);
    expect(probe("text\n\n```json\n{}\n```\n")[0]).to.be.instanceOf(Error);
    expect(probe("<!-- example: jobspec -->\n```json\n{}\n```\n")[0]).to.be.instanceOf(Error);
    expect(probe("<!-- example: not-run -->\n```mermaid\nx\n```\n")[0]).to.be.instanceOf(Error);
    expect(probe("<!-- example: job-spec -->\n\n```json\n{}\n```\n")[0]).to.equal("job-spec");
    expect(probe("```bash\nnpm test\n```\n")[0]).to.equal("shell");
    expect(commandLines("FOO=1 npm run node   # comment\nnpx fedstake \\\n  status --job 1 && npm test")).to.deep.equal([
      ["npm", "run", "node"],
      ["npx", "fedstake", "status", "--job", "1"],
      ["npm", "test"],
    ]);
  });

  it("the dry parse refuses what the CLI refuses, and runs nothing", async function () {
    expect((await parseCommandLine(["status", "--job", "1"])).name()).to.equal("status");
    expect((await parseCommandLine(["job", "create", "--spec", "job.json", "--serve"])).name()).to.equal("create");
    for (const bad of [["status", "--jbo", "1"], ["job", "create"], ["status", "--job", "one"], ["vote", "tally"], ["nope"]]) {
      let threw = false;
      await parseCommandLine(bad).catch(() => (threw = true));
      expect(threw, `fedstake ${bad.join(" ")} was accepted`).to.equal(true);
    }
    expect(() => checkUsage(["model", "get", "--job", "ID", "--bogus"], "probe")).to.throw(/no option --bogus/);
    expect(() => checkUsage(["modle", "show"], "probe")).to.throw(/is no command/);
  });

  for (const b of BLOCKS) {
    const kind = kindOf(b);
    if (kind instanceof Error || kind === "not-run") continue;
    const where = `README.md:${b.line}`;

    it(`${where}: ${kind} example`, async function () {
      switch (kind) {
        case "job-file":
        case "job-spec": {
          const raw = jsonOf(b);
          const { job: section, ...specPart } = raw;
          if (kind === "job-spec") expect(section, `${where}: a job spec has no "job" section (tag it job-file)`).to.equal(undefined);
          const spec = parseJobSpec(specPart);
          checkModelSpec(specPart.model, where);
          // The validation part names every rule with every parameter, and the whole reference recipe.
          const v = (specPart.validation ?? {}) as { rules?: Record<string, unknown>[]; reference?: Record<string, unknown> };
          if (v.rules) {
            // Every rule of the default list (dp-norm is not listed: a privacy section sets it).
            expect(v.rules.map((r) => r.rule), `${where}: validation.rules`).to.have.members(DEFAULT_RULES.map((r) => r.rule));
            for (const r of v.rules) {
              const defaults = DEFAULT_RULES.find((d) => d.rule === r.rule)!;
              expect(Object.keys(r), `${where}: rule "${r.rule}" lists every parameter`).to.have.members(Object.keys(defaults));
            }
          }
          if (v.reference) expect(Object.keys(v.reference), `${where}: validation.reference`).to.have.members(Object.keys(DEFAULT_REFERENCE));
          await trainOneStep(spec.model, spec.validation.reference);
          if (kind === "job-file") await checkJobSection(raw, section, where);
          break;
        }
        case "model-spec": {
          const spec = checkModelSpec(jsonOf(b), where);
          await trainOneStep(spec, { batch: 8, lr: 0.03, momentum: 0.9 });
          break;
        }
        case "validation-policy":
          parseValidation(jsonOf(b), `${where}: validation`);
          break;
        case "aggregation":
          parseAggregation(jsonOf(b));
          break;
        case "node-config": {
          const raw = jsonOf(b);
          const readConfig = await loadReadConfig();
          const sub = mkdtempSync(join(dir, "node-"));
          if (typeof raw.deployment === "string") writeFileSync(join(sub, raw.deployment), JSON.stringify(DEPLOYMENT));
          const file = join(sub, "config.json");
          writeFileSync(file, b.body);
          // readConfig checks every field (and refuses unknown ones); the policy with the job spec's own parser.
          const cfg = readConfig(file);
          if (cfg.policy) parseValidation(cfg.policy, `${where}: policy`);
          if (cfg.role === "worker") {
            expect(cfg.train, `${where}: a worker's train`).to.not.equal(undefined);
            // The recipe trains the README's job model.
            const job = tagged("job-file")[0] ?? tagged("job-spec")[0];
            if (job) await trainOneStep(parseJobSpec({ ...jsonOf(job), job: undefined }).model, cfg.train!);
          }
          break;
        }
        case "shell": {
          const lines = commandLines(b.body);
          expect(lines.length, `${where}: an empty shell block`).to.be.greaterThan(0);
          for (const words of lines) await checkShellLine(words, where);
          break;
        }
      }
    });
  }

  /** The job file's "job" section, through the real `fedstake job create`, which checks it before its first chain call. */
  async function checkJobSection(raw: Record<string, unknown>, section: unknown, where: string): Promise<void> {
    const sub = mkdtempSync(join(dir, "job-"));
    writeFileSync(join(sub, "deployment.json"), JSON.stringify(DEPLOYMENT));
    // A loopback port nobody listens on: the command gets as far as the chain and fails there.
    const port = await new Promise<number>((done) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => done(p));
      });
    });
    const env = { FEDSTAKE_HOME: join(sub, "home"), FEDSTAKE_PRIVATE_KEY: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" };
    const create = async (job: unknown) => {
      writeFileSync(join(sub, "job.json"), JSON.stringify(job));
      return runCli(["job", "create", "--spec", "job.json", "--rpc", `http://127.0.0.1:${port}`, "--deployment", "deployment.json", "--ipfs-dir", "ipfs"], env, sub);
    };
    const good = await create(raw);
    expect(good.err, `${where}: fedstake job create refused the job file`).to.not.match(/job spec|JOB\.json|not JSON/i);
    expect([good.code, good.err], `${where}: fedstake job create should fail only at the chain`).to.satisfy(([c, e]: [number, string]) => c === 1 && /ECONNREFUSED/.test(e));
    // Control: the same route refuses a bad job section, so the file above really was checked.
    const bad = await create({ ...raw, job: { ...(section as object), notAParameter: 1 } });
    expect([bad.code, bad.err.split("\n")[0]]).to.deep.equal([2, 'fedstake job create: job spec: "job.notAParameter" is not a job parameter']);
    // The round fits the unbonding period `fedstake deploy` sets by default (job create checks it against the chain's).
    const p = { ...defaultJobParams(), ...(section as object) } as unknown as Record<string, number>;
    const span = p.commitPeriod! + p.revealPeriod! + p.voteCommitPeriod! + p.voteRevealPeriod! + p.slashWindow! + p.attestPeriod!;
    const deploy = buildProgram().commands.find((c) => c.name() === "deploy")!;
    const unbonding = deploy.options.find((o) => o.long === "--unbonding")!.defaultValue as number;
    expect(span, `${where}: a round of the job file (${span} s) must be shorter than deploy's default unbonding period`).to.be.below(unbonding);
  }

  describe("inline commands and tables", function () {
    const spans = inlineSpans(PROSE);

    it("every `npm run …`, `npx fedstake …` and `fedstake …` span names a real script, command and options", async function () {
      let checked = 0;
      const ran = new Set<string>();
      for (const [i, s] of spans.entries()) {
        const where = `README.md:${s.line} \`${s.code}\``;
        const words = s.code.split(/\s+/);
        while (words.length && /^[A-Z_][A-Z0-9_]*=/.test(words[0]!)) words.shift();
        if (words[0] === "npm" && (words[1] === "run" || words[1] === "test" || words[1] === "ci") && words[2] !== "fedstake") {
          if (words[1] === "run") expect(Object.keys(SCRIPTS), `${where}: no package.json script "${words[2]}"`).to.include(words[2]);
          if (words[1] === "run" && words[2] === "demo") {
            // `npm run demo` (options: `-- --workers 4 …`): the options are the next span.
            const next = spans[i + 1];
            const args = words.includes("--") ? words.slice(words.indexOf("--") + 1) : next?.code.startsWith("-- ") ? next.code.split(/\s+/).slice(1) : [];
            await checkDemoArgs(args, where);
          }
          checked++;
          continue;
        }
        const args = fedstakeArgs(words);
        // `fedstake mint: --to must be …` quotes an error message, not a command line.
        if (!args || args[0]?.endsWith(":")) continue;
        if (args.length === 0) continue;
        checkUsage(args, where);
        checked++;
        // A help page or the version, written out in full: run it.
        if (cheap(args) && !args.some(placeholder)) ran.add(args.join(" "));
      }
      expect(checked).to.be.greaterThan(10);
      for (const line of ran) await checkShellLine(["fedstake", ...line.split(" ")], `README.md \`fedstake ${line}\``);
      expect(ran.size, "help pages and --version run").to.be.at.least(2);
    });

    it("the CLI's command table: every usage is the real command's, and every command is documented", function () {
      const rows = tableRows(["command", "what it does"]);
      const documented = new Set<string>();
      for (const [cell] of rows) {
        for (const usage of spansIn(cell!)) {
          const words = usage.split(/\s+/);
          const args = words[0] === "npm" ? undefined : words[0] === "npx" ? words.slice(2) : words;
          if (!args) continue;
          const cmd = checkUsage(args, `README.md command table \`${usage}\``);
          if (cmd) documented.add(pathOf(cmd));
        }
      }
      for (const s of inlineSpans(PROSE)) {
        const args = fedstakeArgs(s.code.split(/\s+/));
        if (!args?.length || args[0]!.endsWith(":")) continue;
        const cmd = checkUsage(args, `README.md:${s.line}`);
        if (cmd) documented.add(pathOf(cmd));
      }
      const missing = leaves(buildProgram())
        .map(pathOf)
        .filter((p) => !documented.has(p));
      expect(missing, "commands the README never shows").to.deep.equal([]);
    });

    it("the layer table lists exactly the layer types validateSpec knows, with the parameters it reads", function () {
      const table = layerTable();
      expect([...table.keys()]).to.have.members(knownLayerTypes());
      for (const [type, params] of table) {
        for (const p of params) {
          const layer = PROBE_LAYERS[type];
          expect(layer, `no probe for ${type}, which the table says takes "${p}"`).to.not.equal(undefined);
          expect(() => validateSpec(probeSpec(type, layer!))).to.not.throw();
          // A bad value of a parameter validateSpec reads is refused, naming the layer.
          const bad = p === "padding" ? -1 : 0;
          expect(() => validateSpec(probeSpec(type, { ...layer, [p]: bad })), `${type}.${p} = ${bad}`).to.throw(SpecError, new RegExp(`\\(${type}\\)`));
        }
      }
      // The job example shows every layer type with every parameter.
      const job = tagged("job-file")[0] ?? tagged("job-spec")[0];
      expect(job, "a job example").to.not.equal(undefined);
      const layers = (jsonOf(job!).model as { layers: Record<string, unknown>[] }).layers;
      expect([...new Set(layers.map((l) => l.type as string))]).to.have.members(knownLayerTypes());
      for (const [type, params] of table) {
        for (const p of params) expect(layers.some((l) => l.type === type && p in l), `the job example shows no ${type} with "${p}"`).to.equal(true);
      }
    });

    it("the shapes the README gives for the job example are validateSpec's", function () {
      const job = tagged("job-file")[0] ?? tagged("job-spec")[0];
      const m = /the example's are ((?:`\[[^\]]*\]`,?\s*)+)/.exec(PROSE.replace(/\s+/g, " "));
      expect(m, 'the layer table\'s introduction names the example\'s shapes ("the example\'s are `[…]`, …")').to.not.equal(null);
      const written = [...m![1]!.matchAll(/`(\[[^\]]*\])`/g)].map((x) => JSON.parse(x[1]!) as number[]);
      const { shapes } = validateSpec((jsonOf(job!) as { model: unknown }).model);
      const changes = shapes.filter((s, i) => i === 0 || s.join() !== shapes[i - 1]!.join());
      expect(written).to.deep.equal(changes);
    });

    it("the acceptance-rule table's defaults are the rules' defaults, in their order", function () {
      const rows = tableRows(["rule", "rejects (code)", "why it holds for honest non-IID workers"]);
      const table = rows.map(([cell]) => {
        const [name, ...rest] = spansIn(cell!);
        const params: Record<string, unknown> = { rule: name };
        for (const m of cell!.matchAll(/`(\w+)` ([-−]?[\d.]+)/g)) if (m[1] !== name) params[m[1]!] = Number(m[2]!.replace("−", "-"));
        void rest;
        return params;
      });
      expect(table).to.deep.equal(DEFAULT_RULES.map((r) => ({ ...r })));
    });

    it("every aggregation kind and parameter is named", function () {
      const named = new Set(spans.map((s) => s.code));
      for (const kind of AGGREGATION_KINDS) {
        expect(named, `aggregation kind ${kind}`).to.include(kind);
        for (const f of AGGREGATIONS[kind].fields) expect(named, `${kind}'s parameter ${f}`).to.include(f);
      }
    });
  });
});
