/**
 * `replay`: a free rider that does not train and submits another worker's update from the previous
 * round (anyone can fetch revealed updates), re-wrapped in a header of its own (the worker builds the
 * header; this only returns the tensors). It copies the first revealed update, in reveal order, that is
 * not its own; with nothing to copy (round 1, or only its own update revealed) it submits zeros.
 */
import { zerosLike } from "../../worker/training/delta.ts";
import type { Attack } from "./attack.ts";

export const replay: Attack = {
  name: "replay",
  summary: "free rider: replays another worker's update of the previous round",
  skipsTraining: true,
  readsPrevious: true,
  craft(r) {
    const self = r.self.toLowerCase();
    const victim = r.previous.find((p) => p.worker.toLowerCase() !== self);
    if (!victim) return zerosLike(r.own);
    return victim.delta.map((t) => ({ name: t.name, shape: [...t.shape], data: Float32Array.from(t.data) }));
  },
};
