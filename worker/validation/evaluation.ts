/**
 * A validator's held-out measurements for one round (validate.ts: Evaluation): the loss of base + delta
 * on each class of its held-out data, and its reference update (its own local training from the base on
 * that data, with the job's reference recipe). The data are split by class once; the ONNX sessions and
 * the trainer live as long as the HeldOutSet.
 */
import type * as ort from "onnxruntime-node";
import type { Tensor } from "../artifacts/index.ts";
import { subset, type Dataset } from "../data/dataset.ts";
import type { ReferenceRecipe } from "../node/jobSpec.ts";
import { applyDelta } from "../training/delta.ts";
import type { ModelSpec } from "../training/spec.ts";
import { evaluate, localUpdate, Trainer } from "../training/trainer.ts";
import type { Evaluation } from "./validate.ts";

export class HeldOutSet {
  readonly spec: ModelSpec;
  readonly data: Dataset;
  /** One data set per class present (classification), or the whole set (regression). */
  private readonly parts: Dataset[];
  /** The class label of each part (empty for regression). */
  readonly classes: number[];
  private readonly sessions = new Map<number, ort.InferenceSession>();
  private trainer?: Promise<Trainer>;
  private readonly threads: number;
  private readonly recipe: ReferenceRecipe;

  /** Refuses a held-out set the policy cannot use (empty, or smaller than one reference batch), at start rather than at vote time. */
  constructor(spec: ModelSpec, data: Dataset, recipe: ReferenceRecipe, opts: { threads?: number } = {}) {
    if (data.n === 0) throw new RangeError("the validator's held-out data set is empty");
    if (data.n < recipe.batch) throw new RangeError(`the validator's held-out set (${data.n} samples) cannot fill one reference batch of ${recipe.batch} (validation.reference.batch)`);
    this.spec = spec;
    this.data = data;
    this.threads = opts.threads ?? 1;
    this.recipe = recipe;
    if (data.labels) {
      const byClass = new Map<number, number[]>();
      data.labels.forEach((l, i) => {
        const list = byClass.get(l);
        if (list) list.push(i);
        else byClass.set(l, [i]);
      });
      this.classes = [...byClass.keys()].sort((a, b) => a - b);
      this.parts = this.classes.map((k) => subset(data, byClass.get(k)!));
    } else [this.parts, this.classes] = [[data], []];
  }

  /**
   * `model`'s mean loss and accuracy on the whole held-out set: the score a validator publishes of the
   * model it attests (null accuracy for a regression job, whose outputs are not classes).
   */
  async score(model: Tensor[]): Promise<{ loss: number; accuracy: number | null; samples: number }> {
    const r = await evaluate(this.spec, new Map(model.map((t) => [t.name, t.data])), this.data, { cache: this.sessions });
    return { loss: r.loss, accuracy: this.spec.loss === "mse" ? null : r.accuracy, samples: this.data.n };
  }

  /** The Evaluation of one round from `base`; `seed` makes the reference update reproducible. */
  round(base: Tensor[], seed: number): Evaluation {
    const recipe = this.recipe;
    const params = (ts: Tensor[]) => new Map(ts.map((t) => [t.name, t.data]));
    // Each model (base, or base + one delta) is evaluated once per round, on every class part: the
    // per-class losses (the rules) and the whole-set score (the round evaluation a hook sees) share it.
    let baseParts: Promise<{ loss: number; accuracy: number }[]> | undefined;
    const byDelta = new WeakMap<Tensor[], Promise<{ loss: number; accuracy: number }[]>>();
    const parts = (delta: Tensor[] | null) => {
      const run = async () => {
        const p = params(delta ? applyDelta(base, delta) : base);
        const out = [];
        for (const part of this.parts) out.push(await evaluate(this.spec, p, part, { cache: this.sessions }));
        return out;
      };
      if (!delta) return (baseParts ??= run());
      let r = byDelta.get(delta);
      if (!r) byDelta.set(delta, (r = run()));
      return r;
    };
    const sizes = this.parts.map((p) => p.n);
    return {
      classes: this.classes,
      classLosses: async (delta) => (await parts(delta)).map((r) => r.loss),
      score: async (delta) => {
        const rs = await parts(delta);
        const w = (f: (r: { loss: number; accuracy: number }) => number) => rs.reduce((s, r, i) => s + f(r) * sizes[i]!, 0) / this.data.n;
        return { loss: w((r) => r.loss), accuracy: this.spec.loss === "mse" ? null : w((r) => r.accuracy) };
      },
      reference: async () => {
        this.trainer ??= Trainer.create(this.spec, { batch: recipe.batch, steps: 16, threads: this.threads, optimizer: { kind: "sgd", lr: recipe.lr, momentum: recipe.momentum } });
        const trainer = await this.trainer;
        return (await localUpdate(trainer, base, this.data, { epochs: recipe.epochs, seed })).delta;
      },
    };
  }
}
