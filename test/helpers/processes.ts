/** Node processes that tests start on a devnet: starting, watching and cleaning up after them. */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

/** SIGTERM to every child still running, SIGKILL to any that has not exited 10 s later; resolves once all have exited. */
export async function stopChildren(children: Iterable<ChildProcess>): Promise<void> {
  await Promise.all(
    [...children].map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once("exit", r));
      c.kill("SIGTERM");
      const t = setTimeout(() => c.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }),
  );
}

/** Removes `dir`, and again a second later: a libp2p peer store may still flush a record after its node stopped. */
export async function removeTree(dir: string): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  await new Promise((r) => setTimeout(r, 1000));
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The node processes a test starts against a devnet, each one's stdout and stderr in DIR/NAME.out: start
 * them, read their last lines for failure messages, wait on a condition while failing as soon as one of
 * them dies, stop them all. Their environment is the caller's without its signing key and keystore
 * password, with the devnet's FEDSTAKE_HOME, FEDSTAKE_RPC and FEDSTAKE_DEPLOYMENT (DIR/deployment.json).
 */
export class NodeProcesses {
  readonly children = new Map<string, ChildProcess>();
  readonly dir: string;
  private readonly rpc: string;

  constructor(dir: string, rpc: string) {
    this.dir = dir;
    this.rpc = rpc;
  }

  /** The environment every process starts with (plus what `start` is given). */
  env(): NodeJS.ProcessEnv {
    const { FEDSTAKE_PRIVATE_KEY: _k, FEDSTAKE_KEYSTORE_PASSWORD: _p, ...clean } = process.env;
    return { ...clean, FEDSTAKE_HOME: join(this.dir, "home"), FEDSTAKE_RPC: this.rpc, FEDSTAKE_DEPLOYMENT: join(this.dir, "deployment.json") };
  }

  /** `node ARGS` in `cwd`, its output in DIR/NAME.out. */
  start(name: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = this.dir): ChildProcess {
    const out = openSync(join(this.dir, `${name}.out`), "w");
    const child = spawn(process.execPath, args, { cwd, env: { ...this.env(), ...env }, stdio: ["ignore", out, out] });
    closeSync(out);
    this.children.set(name, child);
    return child;
  }

  /** `fedstake ARGS` (scripts/fedstake.ts). */
  cli(name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    return this.start(name, [join(ROOT, "scripts/fedstake.ts"), ...args], env);
  }

  /** The last 25 lines a process printed. */
  tail(name: string): string {
    const f = join(this.dir, `${name}.out`);
    return existsSync(f) ? readFileSync(f, "utf8").split("\n").slice(-25).join("\n") : "(no output)";
  }

  /** Every process's last lines, each under its name. */
  tails(): string {
    return [...this.children.keys()].map((n) => `--- ${n}\n${this.tail(n)}`).join("\n");
  }

  /** Polls `done` until it holds; fails naming `what` when a process exits first or time runs out, with the processes' last lines. */
  async until(what: string, done: () => Promise<boolean>, timeoutMs: number, pollMs = 250): Promise<void> {
    const by = Date.now() + timeoutMs;
    while (Date.now() < by) {
      if (await done()) return;
      for (const [name, c] of this.children) if (c.exitCode !== null) throw new Error(`${name} exited (${c.exitCode}) while waiting for ${what}:\n${this.tail(name)}`);
      await new Promise((r) => setTimeout(r, pollMs));
    }
    throw new Error(`${what}: not within ${timeoutMs / 1000} s\n${this.tails()}`);
  }

  /** stopChildren for every process started. */
  stop(): Promise<void> {
    return stopChildren(this.children.values());
  }
}
