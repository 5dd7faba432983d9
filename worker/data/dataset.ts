/** A data set in memory: flat float features and integer labels (or float targets for regression). */
export interface Dataset {
  n: number;
  /** Values per sample. */
  features: number;
  /** n × features, row-major. */
  x: Float32Array;
  /** Class labels (classification). */
  labels?: Int32Array;
  /** n × outputs (regression). */
  targets?: Float32Array;
}

export class DataError extends Error {
  override readonly name = "DataError";
}

/** The samples at `idx`, in that order. */
export function subset(d: Dataset, idx: ArrayLike<number>): Dataset {
  const f = d.features;
  const x = new Float32Array(idx.length * f);
  const labels = d.labels ? new Int32Array(idx.length) : undefined;
  const outW = d.targets ? d.targets.length / d.n : 0;
  const targets = d.targets ? new Float32Array(idx.length * outW) : undefined;
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j]!;
    x.set(d.x.subarray(i * f, (i + 1) * f), j * f);
    if (labels) labels[j] = d.labels![i]!;
    if (targets) targets.set(d.targets!.subarray(i * outW, (i + 1) * outW), j * outW);
  }
  return { n: idx.length, features: f, x, ...(labels ? { labels } : {}), ...(targets ? { targets } : {}) };
}
