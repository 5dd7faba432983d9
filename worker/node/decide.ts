/**
 * Decision hooks: what replaces the built-in acceptance policy's vote without replacing the validator.
 * The daemon keeps everything else (prefetch, finalize, aggregate, attest, slash, claim) and asks the
 * hook for the accepted indices of a round, given the round's evaluation (roundEvaluation.ts). A hook
 * is a TypeScript function (`runValidator(config, { decide })`) or a program named in the node config
 * (`"decide": { "command": [...] }`) that reads the evaluation as JSON on stdin and prints its answer on
 * stdout. The answer is checked (acceptedIndices) whatever the hook's language.
 */
import { spawn } from "node:child_process";
import type { RoundEvaluation } from "../validation/roundEvaluation.ts";

/** The most a hook program may print: an index list is small, anything bigger is a confused hook. */
const MAX_ANSWER_BYTES = 1 << 20;

/**
 * A hook program as a DecideFn: spawned once per round with the evaluation on stdin (no shell: `argv[0]`
 * is the program), killed after `timeoutMs`. Rejects, with a reason that names the program, when it
 * cannot start, times out, exits non-zero (with the tail of its stderr), prints too much, or prints
 * something that is not JSON.
 */
export function commandHook(argv: readonly string[], timeoutMs: number, opts: { cwd?: string } = {}): (evaluation: RoundEvaluation) => Promise<number[]> {
  const name = argv[0]!;
  return (evaluation) =>
    new Promise<number[]>((resolve, reject) => {
      const child = spawn(name, argv.slice(1), { cwd: opts.cwd, stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`decision hook ${name}: ${why}`));
      };
      const timer = setTimeout(() => fail(`gave no answer within ${timeoutMs} ms`), timeoutMs);
      child.on("error", (e) => fail(`cannot run: ${e.message}`));
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        if (out.length > MAX_ANSWER_BYTES) fail(`printed more than ${MAX_ANSWER_BYTES} bytes`);
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-2000)));
      // A hook that does not read its stdin must not crash the validator with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(JSON.stringify(evaluation));
      child.on("close", (code, signal) => {
        if (settled) return;
        if (code !== 0) return fail(`exited with ${signal ? `signal ${signal}` : `status ${code}`}${err.trim() ? `: ${err.trim().split("\n").slice(-3).join(" | ")}` : ""}`);
        settled = true;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out) as number[]);
        } catch {
          reject(new Error(`decision hook ${name}: its answer is not JSON: ${JSON.stringify(out.trim().slice(0, 80))}`));
        }
      });
    });
}
