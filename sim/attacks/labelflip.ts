/**
 * `labelflip`: data poisoning: every label y becomes classes − 1 − y (for MNIST's 10 classes 0↔9, 1↔8,
 * …, a fixed permutation with no fixed point for an even class count), then it trains honestly on that.
 */
import type { Dataset } from "../../worker/data/dataset.ts";
import type { Attack } from "./attack.ts";

/** The class count `labelflip` assumes (MNIST's). */
export const LABELFLIP_CLASSES = 10;

/** The permutation: y → classes − 1 − y. */
export const flipLabel = (y: number, classes: number) => classes - 1 - y;

/** A label-flipping attack over `classes` classes; poisoning data with a label outside [0, classes) throws. */
export function labelFlipAttack(classes = LABELFLIP_CLASSES): Attack {
  return {
    name: "labelflip",
    summary: `label flipping: y → ${classes - 1} − y, then honest training`,
    poison(data: Dataset): Dataset {
      if (!data.labels) throw new Error("labelflip needs class labels (a classification data set)");
      const labels = data.labels.map((y) => {
        if (!(y >= 0 && y < classes)) throw new Error(`labelflip: label ${y} is outside [0, ${classes})`);
        return flipLabel(y, classes);
      });
      return { n: data.n, features: data.features, x: Float32Array.from(data.x), labels };
    },
  };
}

export const labelflip: Attack = labelFlipAttack();
