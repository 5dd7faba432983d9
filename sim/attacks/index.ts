/**
 * The attack registry (`--attack NAME`) and `hooksFor`, which turns an attack into the `WorkerHooks` a
 * worker runs with. The sources say where the attacker's knowledge comes from: a lone daemon reads the
 * chain and IPFS (sim/adversary.ts), the robustness harness passes in-process values.
 */
import type { Tensor } from "../../worker/artifacts/index.ts";
import type { WorkerHooks } from "../../worker/node/workerRole.ts";
import { prng } from "../../worker/util/prng.ts";
import type { Attack } from "./attack.ts";
import { alie } from "./alie.ts";
import { backdoor } from "./backdoor.ts";
import { copycommit } from "./copycommit.ts";
import { labelflip } from "./labelflip.ts";
import { noise } from "./noise.ts";
import { replay } from "./replay.ts";
import { scaled } from "./scaled.ts";
import { signflip } from "./signflip.ts";
import { zero } from "./zero.ts";

export type { Attack, AttackRound, Backdoor } from "./attack.ts";

/** Every attack, by registry name. */
export const ATTACKS: Readonly<Record<string, Attack>> = Object.freeze(
  Object.fromEntries([signflip, scaled, noise, labelflip, zero, replay, copycommit, backdoor, alie].map((a) => [a.name, a])),
);

/** The attack named `name`; an unknown name throws an Error that lists the valid ones. */
export function attackByName(name: string): Attack {
  const a = Object.hasOwn(ATTACKS, name) ? ATTACKS[name] : undefined;
  if (!a) throw new Error(`unknown attack "${name}"; valid attacks: ${Object.keys(ATTACKS).join(", ")}`);
  return a;
}

/** Where an attacker's knowledge comes from (rounds are 1-based round numbers). */
export interface AttackSources {
  /** The colluding group's honest updates this round, `own` included (a lone attacker: [own]). */
  colluders(round: number, base: Tensor[], own: Tensor[]): Promise<Tensor[][]>;
  /** The updates revealed in round − 1, by worker (empty in round 1). */
  previous(round: number): Promise<{ worker: string; delta: Tensor[] }[]>;
  /** Another worker's commitment of this round, or undefined if there is none to copy (then it commits its own). */
  copyCommitment(round: number): Promise<string | undefined>;
  /** This attacker's address. */
  self: string;
  /** Seeds the attack's randomness: `poison` gets a stream of its own, each round's `craft` another. */
  seed: number;
}

/** The seed of round `round`'s stream (round 0: `poison`'s), distinct per (seed, round). */
export function roundSeed(seed: number, round: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(round + 1, 0x85ebca6b)) >>> 0;
}

/** The worker hooks that carry out `attack` with what `sources` provide. */
export function hooksFor(attack: Attack, sources: AttackSources): WorkerHooks {
  const hooks: WorkerHooks = {};
  if (attack.poison) hooks.data = (d) => attack.poison!(d, prng(roundSeed(sources.seed, 0)));
  if (attack.skipsTraining) hooks.skipTraining = true;
  if (attack.craft) {
    hooks.update = async ({ round, base, own }) => {
      const n = Number(round);
      return attack.craft!({
        round: n,
        base,
        own,
        colluders: await sources.colluders(n, base, own),
        previous: attack.readsPrevious ? await sources.previous(n) : [],
        self: sources.self,
        rand: prng(roundSeed(sources.seed, n)),
      });
    };
  }
  if (attack.copiesCommitment) hooks.commitment = async (round, own) => (await sources.copyCommitment(Number(round))) ?? own;
  return hooks;
}
