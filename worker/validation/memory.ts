/**
 * What a validator remembers of a job's earlier rounds, so that the duplicate rule can catch replays:
 * the deltas of the updates it saw and the aggregate step each round applied, for the last `rounds`
 * rounds. In memory only: a restarted validator forgets them (it still catches copies within a round).
 */
import type { PastDelta } from "./rule.ts";

export class ReplayMemory {
  private readonly byRound = new Map<number, PastDelta[]>();
  readonly rounds: number;

  constructor(rounds = 3) {
    this.rounds = rounds;
  }

  /** Records `deltas` of `round` (replacing what was recorded for that source) and forgets old rounds. */
  remember(round: number, deltas: PastDelta[]): void {
    const list = (this.byRound.get(round) ?? []).filter((d) => !deltas.some((x) => x.source === d.source));
    this.byRound.set(round, [...list, ...deltas]);
    for (const r of this.byRound.keys()) if (r <= round - this.rounds) this.byRound.delete(r);
  }

  /** Everything remembered from rounds before `round`. */
  before(round: number): PastDelta[] {
    return [...this.byRound.entries()].filter(([r]) => r < round).flatMap(([, d]) => d);
  }
}
