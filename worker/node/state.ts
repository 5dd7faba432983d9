/**
 * What a node must not forget (salts, commitments, the artifacts it committed to), per job, in one JSON
 * file in its data directory, written atomically (temp file, fsync, rename) before the transaction that
 * depends on it. A node killed and restarted reads it back and carries on.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomicFile.ts";
import { join } from "node:path";

export interface RoundState {
  cid?: string;
  salt?: string;
  numSamples?: string;
  bitmap?: string;
  committed?: boolean;
  revealed?: boolean;
  attested?: boolean;
  /** Worker: every own update of the decided round is claimed, released, or left to its slash. */
  claimed?: boolean;
  modelCid?: string;
  /** Worker: why the chain refused the reveal (round full, duplicate digest…); the lock expires on its own. */
  revealRefused?: string;
  /** Validator: the round's slashes (missed reveals, rejected updates) are executed, or their window is over. */
  slashed?: boolean;
  /** Validator: why it casts no vote this round (its decision hook failed and the config says abstain). */
  abstained?: string;
  /** Worker: why it sends no update this round (one more would exceed the job's privacy budget). */
  withheld?: string;
}

export interface NodeState {
  rounds: Record<string, RoundState>;
}

/** The file: each job's state under its key (stateKey), so one data directory can serve several jobs. */
interface StateFileContent {
  version: 2;
  jobs: Record<string, NodeState>;
}

/**
 * The key of a job's state: chain, coordinator and job. Round numbers restart with every job, so state
 * kept by round alone would make a node that served job 1 skip the rounds of job 2 it "had done".
 */
export const stateKey = (chainId: number | bigint, coordinator: string, jobId: bigint | number): string => `${chainId}:${coordinator.toLowerCase()}:${jobId}`;

/**
 * The state file of one job. Every read goes to the file and every save re-reads it, patches one round
 * and writes it back atomically, so a node command run beside the daemon of the same data directory (or
 * a daemon of another job) does not overwrite what the other recorded. (Two saves at the very same
 * moment can still race: run one daemon per job and data directory.)
 */
export class StateFile {
  readonly file: string;
  readonly key: string;

  constructor(dataDir: string, key: string) {
    this.file = join(dataDir, "state.json");
    this.key = key;
    this.read();
  }

  private read(): StateFileContent {
    if (!existsSync(this.file)) return { version: 2, jobs: {} };
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(this.file, "utf8"));
    } catch (e) {
      throw new Error(`state file ${this.file} cannot be read: ${(e as Error).message}`);
    }
    const c = raw as Partial<StateFileContent> & { rounds?: unknown };
    if (c && typeof c === "object" && c.version === 2 && c.jobs && typeof c.jobs === "object") return c as StateFileContent;
    if (c && typeof c === "object" && "rounds" in c) {
      throw new Error(
        `state file ${this.file} is from an earlier fedstake and does not say which job it belongs to. If it is this job's ` +
          `(${this.key}: chain id, coordinator, job), convert it, keeping its salts: jq '{version: 2, jobs: {"${this.key}": .}}' ${this.file} > state.new && mv state.new ${this.file}`,
      );
    }
    throw new Error(`state file ${this.file} is not a fedstake state file (expected {"version": 2, "jobs": {…}})`);
  }

  /** This job's state (rounds by number), as the file holds it now. */
  get state(): NodeState {
    return this.read().jobs[this.key] ?? { rounds: {} };
  }

  /** Round `r`'s state as the file holds it now (a copy: change it with `save`). */
  round(r: bigint | number): RoundState {
    return this.state.rounds[String(r)] ?? {};
  }

  /** Durably records `patch` for round `r` before returning (a field set to undefined is removed). */
  save(r: bigint | number, patch: Partial<RoundState>): void {
    const content = this.read();
    const job = (content.jobs[this.key] ??= { rounds: {} });
    const round = (job.rounds[String(r)] ??= {});
    Object.assign(round, patch);
    for (const k of Object.keys(round) as (keyof RoundState)[]) if (round[k] === undefined) delete round[k];
    writeFileAtomic(this.file, JSON.stringify(content, null, 1));
  }
}
