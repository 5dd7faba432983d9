/**
 * The data directory: where commands keep what they write when not told where (the deployment file,
 * the sponsor's IPFS repository, the demo's runs). `$FEDSTAKE_HOME`, else `~/.fedstake`; never the
 * repository or the current directory by default, so running a command from a checkout leaves it clean.
 */
import { homedir } from "node:os";
import { join, resolve } from "node:path";

export const HOME_ENV = "FEDSTAKE_HOME";

/** The data directory (not created here: what writes into it creates what it needs). */
export function fedstakeHome(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env[HOME_ENV] || join(homedir(), ".fedstake"));
}

/** A path inside the data directory. */
export const inHome = (...parts: string[]): string => join(fedstakeHome(), ...parts);
