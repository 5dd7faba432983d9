/**
 * One process at a time per node data directory. A daemon and a node command (`vote commit`, `claim`…)
 * acting for the same validator at once race on its state file and its nonces: a by-hand commit beside
 * the daemon's lost the salt of the committed vote, and the vote was slashed as withheld. So every
 * process that opens a node's context takes `dataDir/node.lock` (its pid), and a second one is refused,
 * naming the holder. A lock whose process is gone (killed, crashed) is taken over.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class DataDirLockedError extends Error {
  override readonly name = "DataDirLockedError";
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/** Takes the data directory's lock for this process (released when it exits); throws DataDirLockedError if a live process holds it. */
export function lockDataDir(dataDir: string, what: string): () => void {
  const file = join(dataDir, "node.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, JSON.stringify({ pid: process.pid, what, since: new Date().toISOString() }), { flag: "wx" });
      const release = () => {
        try {
          if ((JSON.parse(readFileSync(file, "utf8")) as { pid: number }).pid === process.pid) rmSync(file, { force: true });
        } catch {
          // gone already
        }
      };
      process.once("exit", release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let holder: { pid?: number; what?: string; since?: string } = {};
      try {
        holder = JSON.parse(readFileSync(file, "utf8"));
      } catch {
        // unreadable: treated as stale
      }
      if (typeof holder.pid === "number" && holder.pid !== process.pid && alive(holder.pid)) {
        throw new DataDirLockedError(
          `${dataDir} is in use by process ${holder.pid} (${holder.what ?? "a node"}, since ${holder.since ?? "?"}): one process per node data directory — ` +
            `stop it first (a by-hand vote beside the node's daemon could lose the committed vote's salt, and the vote would be slashed as withheld)`,
        );
      }
      // Stale (its process is gone): taken over.
      rmSync(file, { force: true });
    }
  }
  throw new DataDirLockedError(`${dataDir}: could not take node.lock`);
}
