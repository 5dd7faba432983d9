/**
 * Durable file replacement: the new contents go to a temp file, are fsynced, then renamed over the old
 * file, so a crash at any point leaves either the old file or the new one, never a torn write. The
 * node's state file and its error-feedback residual are written this way.
 */
import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
