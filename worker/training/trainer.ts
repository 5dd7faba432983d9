/**
 * Runs the ONNX graphs with onnxruntime-node: a Trainer does E local epochs (K steps per session.run)
 * and an evaluator measures loss and accuracy. CPU by default; `webgpu` and `cuda` are tried on request
 * and refused with the runtime's reason when the machine cannot run them (no silent CPU fallback).
 */
import * as ort from "onnxruntime-node";
import type { Dataset } from "../data/dataset.ts";
import { evalModel, initParams, paramsOf, stateNames, trainModel, type Optimizer } from "./model.ts";
import { prng } from "../util/prng.ts";
import type { ModelSpec } from "./spec.ts";
import type { Tensor } from "../artifacts/index.ts";
import { deltaOf } from "./delta.ts";

export type Device = "cpu" | "webgpu" | "cuda";

export class DeviceUnavailableError extends Error {
  override readonly name = "DeviceUnavailableError";
}

/**
 * `threads`: ORT intra-op threads; 0 (default) is one per core. Several nodes sharing one machine
 * (the demo, the benchmarks) should use 1 each, or their thread pools fight over the same cores.
 */
export async function createSession(bytes: Uint8Array, device: Device = "cpu", threads = 0): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, {
      executionProviders: [device],
      graphOptimizationLevel: "all",
      intraOpNumThreads: threads,
    });
  } catch (e) {
    if (device === "cpu") throw e;
    throw new DeviceUnavailableError(`device "${device}" is not available here: ${(e as Error).message.split("\n")[0]}`);
  }
}

const tensor = (data: Float32Array, dims: number[]) => new ort.Tensor("float32", data, dims);

/** One-hot targets (classification) or the raw targets (regression) for samples `idx`. */
function batchOf(data: Dataset, idx: ArrayLike<number>, classes: number): { x: Float32Array; t: Float32Array } {
  const f = data.features;
  const x = new Float32Array(idx.length * f);
  const t = new Float32Array(idx.length * classes);
  for (let j = 0; j < idx.length; j++) {
    const i = idx[j]!;
    x.set(data.x.subarray(i * f, (i + 1) * f), j * f);
    if (data.targets) t.set(data.targets.subarray(i * classes, (i + 1) * classes), j * classes);
    else t[j * classes + data.labels![i]!] = 1;
  }
  return { x, t };
}

export interface TrainOptions {
  batch: number;
  /** Minibatch steps per session.run (the ONNX Loop's trip count). */
  steps: number;
  optimizer: Optimizer;
  device?: Device;
  /** ORT intra-op threads (see createSession). */
  threads?: number;
}

export class Trainer {
  readonly spec: ModelSpec;
  readonly opts: TrainOptions;
  params: Map<string, Float32Array>;
  private states: Map<string, Float32Array>;
  private step = 0;
  private readonly sessions = new Map<number, ort.InferenceSession>();

  private constructor(spec: ModelSpec, opts: TrainOptions, params: Map<string, Float32Array>) {
    this.spec = spec;
    this.opts = opts;
    this.params = params;
    this.states = new Map();
    this.resetOptimizer();
  }

  static async create(spec: ModelSpec, opts: TrainOptions, params = initParams(spec)): Promise<Trainer> {
    const t = new Trainer(spec, opts, params);
    await t.session(opts.steps);
    return t;
  }

  /** Starts the optimizer afresh (momentum and Adam moments zero, step 0), e.g. for a new round. */
  resetOptimizer(): void {
    this.step = 0;
    this.states = new Map();
    for (const p of paramsOf(this.spec)) {
      for (const s of stateNames(this.opts.optimizer, p)) this.states.set(s, new Float32Array(p.shape.reduce((a, b) => a * b, 1)));
    }
  }

  private async session(steps: number): Promise<ort.InferenceSession> {
    let s = this.sessions.get(steps);
    if (!s) {
      s = await createSession(trainModel(this.spec, { batch: this.opts.batch, steps, optimizer: this.opts.optimizer }), this.opts.device, this.opts.threads);
      this.sessions.set(steps, s);
    }
    return s;
  }

  /** Runs `k` steps on consecutive batches of the given samples; returns the per-step losses. */
  async runSteps(data: Dataset, idx: ArrayLike<number>, k: number): Promise<Float32Array> {
    const B = this.opts.batch;
    const { x, t } = batchOf(data, idx, this.spec.classes);
    const feeds: Record<string, ort.Tensor> = {
      X_all: tensor(x, [k * B, ...this.spec.input]),
      T_all: tensor(t, [k * B, this.spec.classes]),
      step: tensor(Float32Array.of(this.step), []),
    };
    const params = paramsOf(this.spec);
    for (const p of params) feeds[p.name] = tensor(this.params.get(p.name)!, p.shape);
    for (const p of params) for (const s of stateNames(this.opts.optimizer, p)) feeds[s] = tensor(this.states.get(s)!, p.shape);
    const out = await (await this.session(k)).run(feeds);
    const next = new Map<string, Float32Array>();
    for (const p of params) {
      next.set(p.name, Float32Array.from(out[`${p.name}:out`]!.data as Float32Array));
      for (const s of stateNames(this.opts.optimizer, p)) this.states.set(s, Float32Array.from(out[`${s}:out`]!.data as Float32Array));
    }
    this.params = next;
    this.step = (out["step:out"]!.data as Float32Array)[0]!;
    return Float32Array.from(out.losses!.data as Float32Array);
  }

  /**
   * E epochs over `data`, each shuffled afresh from `seed`; calls `onProgress` after every session.run.
   * With `until` (a performance.now() time), E is the minimum: training goes on, epoch after epoch (the
   * last one possibly partial), as long as time is left, checked after every session.run, and stops at
   * `maxEpochs` if given. Returns the per-step losses.
   */
  async train(
    data: Dataset,
    o: { epochs: number; seed: number; until?: number; maxEpochs?: number; onProgress?: (done: number, total: number, loss: number) => void },
  ): Promise<Float32Array> {
    const B = this.opts.batch;
    const K = this.opts.steps;
    const perEpoch = Math.floor(data.n / B);
    if (perEpoch === 0) throw new RangeError(`${data.n} samples cannot fill one batch of ${B}`);
    const rand = prng(o.seed);
    const losses: number[] = [];
    const minimum = perEpoch * o.epochs;
    const epochs = o.until === undefined ? o.epochs : (o.maxEpochs ?? Infinity);
    const total = o.until === undefined ? minimum : perEpoch * (Number.isFinite(epochs) ? epochs : o.epochs);
    for (let e = 0; e < epochs; e++) {
      const order = Uint32Array.from({ length: data.n }, (_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      for (let s = 0; s < perEpoch; s += K) {
        if (o.until !== undefined && losses.length >= minimum && performance.now() >= o.until) return Float32Array.from(losses);
        const k = Math.min(K, perEpoch - s);
        const l = await this.runSteps(data, order.subarray(s * B, (s + k) * B), k);
        losses.push(...l);
        o.onProgress?.(losses.length, Math.max(total, losses.length), l[l.length - 1]!);
      }
    }
    return Float32Array.from(losses);
  }
}

/**
 * One round of local training: from `base`, E epochs on `data` (shuffled from `seed`, the optimizer
 * started afresh), or with `until` at least E epochs and as many more steps as fit before it; returns
 * the update (trained − base) and the per-step losses. What a worker submits.
 */
export async function localUpdate(
  trainer: Trainer,
  base: Tensor[],
  data: Dataset,
  o: { epochs: number; seed: number; until?: number; maxEpochs?: number },
): Promise<{ delta: Tensor[]; losses: Float32Array }> {
  trainer.params = new Map(base.map((t) => [t.name, Float32Array.from(t.data)]));
  trainer.resetOptimizer();
  const losses = await trainer.train(data, o);
  return { delta: deltaOf(base.map((t) => ({ ...t, data: trainer.params.get(t.name)! })), base), losses };
}

/** Loss and accuracy of parameters on a data set, in batches of up to `batch`. */
export async function evaluate(
  spec: ModelSpec,
  params: Map<string, Float32Array>,
  data: Dataset,
  opts: { batch?: number; device?: Device; cache?: Map<number, ort.InferenceSession> } = {},
): Promise<{ loss: number; accuracy: number }> {
  const batch = opts.batch ?? 1000;
  const cache = opts.cache ?? new Map<number, ort.InferenceSession>();
  let lossSum = 0;
  let correct = 0;
  for (let start = 0; start < data.n; start += batch) {
    const n = Math.min(batch, data.n - start);
    let s = cache.get(n);
    if (!s) {
      s = await createSession(evalModel(spec, n), opts.device);
      cache.set(n, s);
    }
    const { x, t } = batchOf(data, Uint32Array.from({ length: n }, (_, i) => start + i), spec.classes);
    const feeds: Record<string, ort.Tensor> = { x: tensor(x, [n, ...spec.input]), t: tensor(t, [n, spec.classes]) };
    for (const p of paramsOf(spec)) feeds[p.name] = tensor(params.get(p.name)!, p.shape);
    const out = await s.run(feeds);
    lossSum += (out.loss_sum!.data as Float32Array)[0]!;
    correct += (out.correct!.data as Float32Array)[0]!;
  }
  return { loss: lossSum / data.n, accuracy: correct / data.n };
}
