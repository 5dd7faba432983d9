/**
 * Decision hooks: what replaces the built-in acceptance policy's vote without replacing the validator.
 * The daemon keeps everything else (prefetch, finalize, aggregate, attest, slash, claim) and asks the
 * hook for the accepted indices of a round, given the round's evaluation (roundEvaluation.ts). A hook
 * is a TypeScript function (`runValidator(config, { decide })`) or a program named in the node config
 * (`"decide": { "command": [...] }`) that reads the evaluation as JSON on stdin and prints its answer on
 * stdout. The answer is checked (acceptedIndices) whatever the hook's language.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { KEY_ENV, PASSWORD_ENV } from "../chain/keys.ts";
import type { RoundEvaluation } from "../validation/roundEvaluation.ts";

/** The most a hook program may print: an index list is small, anything bigger is a confused hook. */
const MAX_ANSWER_BYTES = 1 << 20;
/** After the program exits, how long its stdout may still take to drain (a background child may hold it open). */
const DRAIN_MS = 250;

/**
 * Checks at start that a hook program can be run: a path (with a "/") must be an executable file, a
 * bare name must be one on PATH. Throws an Error naming the problem, so a typo is found before any
 * round rather than as an abstention every round.
 */
export function checkHookProgram(program: string, env: NodeJS.ProcessEnv = process.env): void {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (program.includes("/")) {
    if (!executable(program)) throw new Error(`decision hook ${program}: no such executable file (is it there, and chmod +x?)`);
    return;
  }
  if (!(env.PATH ?? "").split(delimiter).some((d) => d && executable(join(d, program)))) throw new Error(`decision hook ${program}: not found on PATH`);
}

/**
 * A hook program as a function: spawned once per round with the evaluation on stdin (no shell: `argv[0]`
 * is the program), in its own process group, with the node's environment less its secrets (the signing
 * key and the keystore password). Rejects, with a reason that names the program, when it cannot start,
 * gives no answer within `timeoutMs` (its whole process group is killed), exits non-zero (with the tail of
 * its stderr), prints more than 1 MiB, or prints something that is not JSON. An answer counts once the
 * program has exited 0 and its stdout has drained (or DRAIN_MS later, if a child of its holds it open).
 */
export function runHookProgram(argv: readonly string[], evaluation: RoundEvaluation, timeoutMs: number, opts: { cwd?: string } = {}): Promise<unknown> {
  const name = argv[0]!;
  const env = { ...process.env };
  delete env[KEY_ENV];
  delete env[PASSWORD_ENV];
  return new Promise((resolve, reject) => {
    const child = spawn(name, argv.slice(1), { cwd: opts.cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let err = "";
    let settled = false;
    let drain: NodeJS.Timeout | undefined;
    let exited = false;
    let drained = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        // the group is gone already
      }
    };
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(drain);
      child.stdout.destroy();
      child.stderr.destroy();
      killGroup();
      f();
    };
    const fail = (why: string) => finish(() => reject(new Error(`decision hook ${name}: ${why}`)));
    const answer = () =>
      finish(() => {
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve(JSON.parse(text));
        } catch {
          reject(new Error(`decision hook ${name}: its answer is not JSON: ${JSON.stringify(text.trim().slice(0, 80))}`));
        }
      });
    const timer = setTimeout(() => fail(`gave no answer within ${timeoutMs} ms`), timeoutMs);
    child.on("error", (e) => fail(`cannot run: ${e.message}`));
    child.stdout.on("data", (d: Buffer) => {
      if (settled) return;
      bytes += d.length;
      if (bytes > MAX_ANSWER_BYTES) return fail(`printed more than ${MAX_ANSWER_BYTES} bytes`);
      chunks.push(d);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (!settled) err = (err + d).slice(-2000);
    });
    // A hook that does not read its stdin must not crash the validator with EPIPE.
    child.stdin.on("error", () => {});
    child.stdin.end(JSON.stringify(evaluation));
    child.on("exit", (code, signal) => {
      if (settled) return;
      if (code !== 0) return fail(`exited with ${signal ? `signal ${signal}` : `status ${code}`}${err.trim() ? `: ${err.trim().split("\n").slice(-3).join(" | ")}` : ""}`);
      exited = true;
      if (drained) answer();
      else drain = setTimeout(answer, DRAIN_MS);
    });
    child.stdout.on("end", () => {
      drained = true;
      if (exited) answer();
    });
  });
}

/** `p`, or a rejection naming `what` once `ms` have passed (a hook given in code cannot be killed: it is left behind). */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} gave no answer within ${ms} ms`)), ms)));
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
