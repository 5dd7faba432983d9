/**
 * A worker's error-feedback residual on disk (`residual-<job>.fstk` in its data directory), so that a
 * restarted worker still sends what compression held back before the restart. One f32 artifact whose
 * header names the job, the worker and the round whose encoding left the residual; it is replaced
 * atomically (temp file, fsync, rename) after each round's update is pinned and before that update is
 * recorded in the state file.
 *
 * A residual is used only if it is exactly the one the last recorded update left: same job, same worker,
 * the model's tensor names and shapes, and the round of the last update in the state file. Anything
 * else (corrupt bytes, another job or model, or a residual from an update that was never recorded or
 * from before the last one) is reported and discarded: sending it would count some of the update twice
 * or add another model's values.
 */
import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "../util/atomicFile.ts";
import { join } from "node:path";
import { ArtifactError, ErrorFeedback } from "../artifacts/index.ts";

export interface ResidualKey {
  jobId: bigint;
  /** 20-byte worker address. */
  worker: Uint8Array;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

export class ResidualFile {
  readonly file: string;
  private readonly key: ResidualKey;

  constructor(dataDir: string, key: ResidualKey) {
    this.file = join(dataDir, `residual-${key.jobId}.fstk`);
    this.key = key;
  }

  /**
   * The residual to carry into the next update: the file's if it is the one the update of `lastRound`
   * left (undefined: this worker has recorded no update), else an empty one and why the file was not used.
   */
  load(model: readonly { name: string; shape: readonly number[] }[], lastRound: number | undefined): { feedback: ErrorFeedback; discarded?: string } {
    const fresh = new ErrorFeedback();
    if (!existsSync(this.file)) return lastRound === undefined ? { feedback: fresh } : { feedback: fresh, discarded: `${this.file} is missing (the update of round ${lastRound} left one)` };
    let loaded;
    try {
      loaded = ErrorFeedback.load(readFileSync(this.file));
    } catch (e) {
      if (e instanceof ArtifactError) return { feedback: fresh, discarded: `${this.file} is corrupt: ${e.message}` };
      throw e;
    }
    const { header, feedback } = loaded;
    if (header.jobId !== this.key.jobId) return { feedback: fresh, discarded: `${this.file} is for job ${header.jobId}, not ${this.key.jobId}` };
    if (!same(header.worker, this.key.worker)) return { feedback: fresh, discarded: `${this.file} is another worker's (0x${Buffer.from(header.worker).toString("hex")})` };
    if (header.round !== lastRound) {
      return { feedback: fresh, discarded: `${this.file} was left by round ${header.round}'s update, the last recorded update is ${lastRound === undefined ? "none" : `round ${lastRound}'s`}` };
    }
    const got = feedback.tensors;
    const bad = got.length !== model.length ? -1 : got.findIndex((t, i) => t.name !== model[i]!.name || t.shape.join() !== model[i]!.shape.join());
    if (got.length !== model.length || bad >= 0) {
      const what = bad < 0 ? `${got.length} tensors, the model has ${model.length}` : `tensor ${bad} is "${got[bad]!.name}" [${got[bad]!.shape}], the model has "${model[bad]!.name}" [${model[bad]!.shape}]`;
      return { feedback: fresh, discarded: `${this.file} does not fit the job's model (${what})` };
    }
    return { feedback };
  }

  /** Durably replaces the file with the residual the update of `round` left. */
  save(round: number, feedback: ErrorFeedback): void {
    const bytes = feedback.save({ kind: "update", jobId: this.key.jobId, round, baseModelCid: new Uint8Array(0), worker: this.key.worker, numSamples: 0n });
    writeFileAtomic(this.file, bytes);
  }
}
