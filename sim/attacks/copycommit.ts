/**
 * `copycommit`: does not train; in the commit phase it sends a copy of another worker's commitment (read
 * from the chain) instead of its own. Commit-reveal must stop it: the commitment binds the committing
 * worker's address, so no reveal by the copier can match it (the chain refuses its reveal with
 * RevealMismatch) and the validators slash it for the missed reveal. What it "submits" (its own zero
 * update, pinned and never accepted) is irrelevant. If no other worker has committed by the time it
 * must commit, it falls back to its own commitment of that zero update (then it is a plain free rider).
 */
import type { Attack } from "./attack.ts";

export const copycommit: Attack = {
  name: "copycommit",
  summary: "copies another worker's commitment (its reveal must fail)",
  skipsTraining: true,
  copiesCommitment: true,
};
