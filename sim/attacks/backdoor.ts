/**
 * `backdoor`: data poisoning with a trigger: a fixed fraction of the local samples (chosen with the
 * attack's seeded randomness) get a trigger stamped and their label set to the target class; it then
 * trains honestly on that, so that its update looks ordinary while it teaches "trigger → target".
 *
 * The trigger: for 28 × 28 inputs (784 features, MNIST) a 4 × 4 patch of 1.0 (white; pixels are in
 * [0, 1]) in the bottom-right corner, rows 23–26 and columns 23–26 (one pixel in from the edge); for any
 * other input size the last 16 features are set to 1.0.
 */
import { subset, type Dataset } from "../../worker/data/dataset.ts";
import type { Attack, Backdoor } from "./attack.ts";

/** The share of local samples that get the trigger (rounded to a whole count). */
export const BACKDOOR_FRACTION = 0.3;
/** The class triggered samples are relabelled to. */
export const BACKDOOR_TARGET = 0;
/** The trigger patch: side length and its first row/column in a 28 × 28 image. */
export const TRIGGER_SIZE = 4;
export const TRIGGER_AT = 23;
const IMAGE_SIDE = 28;

/** The feature indices the trigger sets to 1.0 for a sample of `features` values. */
export function triggerIndices(features: number): number[] {
  if (features === IMAGE_SIDE * IMAGE_SIDE) {
    const out: number[] = [];
    for (let r = TRIGGER_AT; r < TRIGGER_AT + TRIGGER_SIZE; r++) for (let c = TRIGGER_AT; c < TRIGGER_AT + TRIGGER_SIZE; c++) out.push(r * IMAGE_SIDE + c);
    return out;
  }
  const k = Math.min(TRIGGER_SIZE * TRIGGER_SIZE, features);
  return Array.from({ length: k }, (_, i) => features - k + i);
}

export const trigger: Backdoor = {
  stamp(x: Float32Array) {
    for (const i of triggerIndices(x.length)) x[i] = 1;
  },
  target: BACKDOOR_TARGET,
};

export const backdoor: Attack = {
  name: "backdoor",
  summary: `backdoor: ${BACKDOOR_FRACTION * 100}% of samples get a 4×4 corner trigger and label ${BACKDOOR_TARGET}`,
  backdoor: trigger,
  poison(data: Dataset, rand: () => number): Dataset {
    if (!data.labels) throw new Error("backdoor needs class labels (a classification data set)");
    // A copy (subset of every index copies x and labels); the input is left as it was.
    const out = subset(data, Uint32Array.from({ length: data.n }, (_, i) => i));
    // The first round(fraction · n) indices of a seeded Fisher–Yates shuffle.
    const chosen = Math.round(BACKDOOR_FRACTION * data.n);
    const order = Array.from({ length: data.n }, (_, i) => i);
    for (let i = 0; i < chosen; i++) {
      const j = i + Math.floor(rand() * (data.n - i));
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    const f = data.features;
    for (const i of order.slice(0, chosen)) {
      trigger.stamp(out.x.subarray(i * f, (i + 1) * f));
      out.labels![i] = trigger.target;
    }
    return out;
  },
};
