/** `zero`: a free rider that does not train and submits an all-zero update (and claims its samples). */
import { zerosLike } from "../../worker/training/delta.ts";
import type { Attack } from "./attack.ts";

export const zero: Attack = {
  name: "zero",
  summary: "free rider: no training, all-zero updates",
  skipsTraining: true,
  craft: (r) => zerosLike(r.own),
};
