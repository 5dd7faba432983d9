/** Cleaning up after tests that start node processes on a devnet. */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

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
