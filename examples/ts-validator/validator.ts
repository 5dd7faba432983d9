/**
 * A validator with its own acceptance rule, in TypeScript. `runValidator` runs the fedstake validator
 * daemon — fetching and checking every revealed update, committing and revealing the vote, finalizing,
 * aggregating, attesting, slashing, claiming — and asks `decide` for the indices to accept once per
 * round, in the vote-commit phase, given the round's evaluation (the document `fedstake vote evaluate
 * --json` prints). An answer that throws, or names an index the round does not have, makes the
 * validator abstain for that round rather than vote for something it did not mean.
 *
 * Run: FEDSTAKE_PRIVATE_KEY=0x… node validator.ts [validator.json]
 */
import { runValidator, type RoundEvaluation } from "fedstake";

/** An update at most this many times the round's median norm... */
const MAX_NORM_RATIO = 3;
/** ...that leaves the held-out loss within this ratio of the base model's is accepted. */
const MAX_LOSS_RATIO = 1.1;

function decide(ev: RoundEvaluation): number[] {
  const decodable = ev.updates.filter((u) => u.decodable);
  const norms = decodable.map((u) => u.norm!).sort((a, b) => a - b);
  const medianNorm = norms[norms.length >> 1] ?? 0;
  const baseLoss = ev.heldOut?.loss;
  return decodable
    .filter((u) => u.norm! <= MAX_NORM_RATIO * medianNorm)
    .filter((u) => baseLoss === undefined || u.loss === undefined || u.loss <= MAX_LOSS_RATIO * baseLoss)
    .map((u) => u.index);
}

await runValidator(process.argv[2] ?? new URL("validator.json", import.meta.url).pathname, { decide });
