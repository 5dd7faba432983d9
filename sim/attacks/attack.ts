/**
 * An adversary, as the demo, the robustness harness and the tests inject it into a worker: what it does
 * to its training data before training (label flipping, a backdoor), whether it trains at all (free
 * riders), and the update it submits instead of the honest one. One file per attack under sim/attacks/,
 * listed in the registry (sim/attacks/index.ts). The honest node (worker/) knows nothing of attacks; it
 * only offers the `WorkerHooks` an attack is turned into (worker/node/workerRole.ts).
 */
import type { Tensor } from "../../worker/artifacts/index.ts";
import type { Dataset } from "../../worker/data/dataset.ts";

/** What an attacker knows when it crafts its round's update. */
export interface AttackRound {
  round: number;
  /** The round's base model. */
  base: Tensor[];
  /** What this attacker's own training produced this round (on its data after `poison`; zero if it does not train). */
  own: Tensor[];
  /**
   * Updates the colluding group computed honestly this round, its own included (coordinated attacks such
   * as "A Little Is Enough" estimate the honest mean and spread from them). A lone attacker: [own].
   */
  colluders: Tensor[][];
  /**
   * Updates revealed in the previous round, as anyone can fetch them (by worker address, in reveal order);
   * empty in round 1. `hooksFor` fetches them only for an attack that sets `readsPrevious` (each costs a
   * fetch), and passes [] to the others.
   */
  previous: { worker: string; delta: Tensor[] }[];
  /** This attacker's address. */
  self: string;
  /** Seeded randomness (deterministic per attacker and round). */
  rand: () => number;
}

/** A backdoor's trigger, for measuring its success on the test set. */
export interface Backdoor {
  /** Stamps the trigger into one sample's features (in place). */
  stamp(x: Float32Array): void;
  /** The class triggered samples are mapped to. */
  target: number;
}

export interface Attack {
  /** Registry key, e.g. "signflip" (what `--attack` takes). */
  readonly name: string;
  /** One line for `--help` and the harness report. */
  readonly summary: string;
  /** Does no local training (free riders): `own` is then the zero update. */
  readonly skipsTraining?: boolean;
  /**
   * Never reveals an update of its own: it commits a copy of another worker's commitment (read from the
   * chain) and tries to reveal that worker's revealed update. Commit-reveal must stop it: the commitment
   * binds the worker's address, so its reveal fails and it is slashed for the missed reveal.
   */
  readonly copiesCommitment?: boolean;
  /** Reads `AttackRound.previous` (replay); without it the hooks pass [] and fetch nothing. */
  readonly readsPrevious?: boolean;
  /** Changes the local data before training (returns a new data set; the input is not modified). */
  poison?(data: Dataset, rand: () => number): Dataset;
  /** The update to submit; absent: `own`. */
  craft?(r: AttackRound): Tensor[];
  /** Set for backdoor attacks: the harness reports its success rate on triggered test images. */
  readonly backdoor?: Backdoor;
}
