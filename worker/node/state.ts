/**
 * What a node must not forget (salts, commitments, the artifacts it committed to), in one JSON file
 * in its data directory, written atomically (temp file, fsync, rename) before the transaction that
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
}

export interface NodeState {
  rounds: Record<string, RoundState>;
}

export class StateFile {
  private readonly file: string;
  state: NodeState;

  constructor(dataDir: string) {
    this.file = join(dataDir, "state.json");
    this.state = existsSync(this.file) ? (JSON.parse(readFileSync(this.file, "utf8")) as NodeState) : { rounds: {} };
  }

  round(r: bigint | number): RoundState {
    return (this.state.rounds[String(r)] ??= {});
  }

  /** Durably records `patch` for round `r` before returning. */
  save(r: bigint | number, patch: Partial<RoundState>): void {
    Object.assign(this.round(r), patch);
    writeFileAtomic(this.file, JSON.stringify(this.state, null, 1));
  }
}
