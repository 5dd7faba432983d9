/**
 * From a model spec to ONNX: deterministic parameter initialisation, the forward pass, the eval graph
 * (loss sum and correct count on a batch), the training graph, where one ONNX `Loop` runs K minibatch
 * steps (forward, gradients by reverse mode, optimizer update) so that one `session.run` does K steps,
 * and the inference graph that `model get --onnx` exports (the same forward pass, weights built in).
 */
import { GraphBuilder } from "./graph.ts";
import { modelBytes, type Graph, type ValueInfo } from "./onnx.ts";
import { validateSpec, type ModelSpec } from "./spec.ts";
import { prng } from "../util/prng.ts";

export interface Param {
  name: string;
  shape: number[];
}

export interface Optimizer {
  kind: "sgd" | "adam";
  lr: number;
  /** SGD momentum (default 0.9). */
  momentum?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

/** Parameter names and shapes, in spec order. */
export function paramsOf(spec: ModelSpec): Param[] {
  const { shapes } = validateSpec(spec);
  const out: Param[] = [];
  let shape = spec.input;
  spec.layers.forEach((l, i) => {
    if (l.type === "dense") {
      out.push({ name: `l${i}.weight`, shape: [shape[0]!, l.units] });
      out.push({ name: `l${i}.bias`, shape: [l.units] });
    } else if (l.type === "conv2d") {
      out.push({ name: `l${i}.weight`, shape: [l.filters, shape[0]!, l.kernel, l.kernel] });
      out.push({ name: `l${i}.bias`, shape: [l.filters] });
    }
    shape = shapes[i]!;
  });
  return out;
}

/** Glorot-uniform weights and zero biases from spec.seed: the same spec gives the same bytes. */
export function initParams(spec: ModelSpec): Map<string, Float32Array> {
  const rand = prng(spec.seed);
  const out = new Map<string, Float32Array>();
  for (const p of paramsOf(spec)) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.name.endsWith(".bias")) {
      out.set(p.name, new Float32Array(n));
      continue;
    }
    const receptive = p.shape.length === 4 ? p.shape[2]! * p.shape[3]! : 1;
    const [fanIn, fanOut] = p.shape.length === 4 ? [p.shape[1]! * receptive, p.shape[0]! * receptive] : [p.shape[0]!, p.shape[1]!];
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    out.set(p.name, Float32Array.from({ length: n }, () => (rand() * 2 - 1) * limit));
  }
  return out;
}

/** The forward pass on a batch `x` of shape [B, ...input]; returns logits/outputs [B, classes]. */
export function forward(b: GraphBuilder, spec: ModelSpec, x: string, params: Map<string, string>): string {
  let h = x;
  spec.layers.forEach((l, i) => {
    const w = () => params.get(`l${i}.weight`)!;
    const bias = () => params.get(`l${i}.bias`)!;
    switch (l.type) {
      case "dense":
        h = b.dense(h, w(), bias());
        break;
      case "conv2d":
        h = b.conv(h, w(), bias(), l.stride ?? 1, l.padding ?? 0);
        break;
      case "maxpool":
        h = b.maxPool(h, l.size);
        break;
      case "avgpool":
        h = b.avgPool(h, l.size);
        break;
      case "flatten":
        h = b.flatten(h);
        break;
      case "relu":
        h = b.unary("Relu", h);
        break;
      case "tanh":
        h = b.unary("Tanh", h);
        break;
      case "sigmoid":
        h = b.unary("Sigmoid", h);
        break;
    }
  });
  return h;
}

/** Mean loss over the batch: softmax cross-entropy against one-hot targets, or mean squared error. */
export function lossOf(b: GraphBuilder, spec: ModelSpec, out: string, target: string): string {
  const [batch, classes] = b.shapeOf(out) as [number, number];
  if (spec.loss === "softmax_cross_entropy") {
    const perSample = b.reduceSum(b.mul(b.logSoftmax(out), target), [1], false);
    return b.mul(b.reduceSum(perSample, [0], false), b.scalar(-1 / batch));
  }
  const d = b.sub(out, target);
  return b.mul(b.reduceSum(b.mul(d, d), [0, 1], false), b.scalar(1 / (batch * classes)));
}

const float = (name: string, shape: number[]): ValueInfo => ({ name, dtype: "float", shape });

/** A graph over one batch of exactly `n` samples: inputs x, t and the parameters, and the model's output. */
function batchGraph(spec: ModelSpec, n: number) {
  const b = new GraphBuilder();
  const params = paramsOf(spec);
  const x = b.declare("x", [n, ...spec.input]);
  const t = b.declare("t", [n, spec.classes]);
  const out = forward(b, spec, x, new Map(params.map((p) => [p.name, b.declare(p.name, p.shape)])));
  const inputs = [float("x", [n, ...spec.input]), float("t", [n, spec.classes]), ...params.map((p) => float(p.name, p.shape))];
  return { b, params, t, out, inputs };
}

/** Eval graph for a batch of exactly `n` samples: outputs the loss sum and the number correct. */
export function evalModel(spec: ModelSpec, n: number): Uint8Array {
  const { b, t, out, inputs } = batchGraph(spec, n);
  const lossSum = b.mul(lossOf(b, spec, out, t), b.scalar(n));
  const predicted = b.one("ArgMax", [out], [n], { axis: 1, keepdims: 0 });
  const truth = b.one("ArgMax", [t], [n], { axis: 1, keepdims: 0 });
  const hits = b.one("Cast", [b.one("Equal", [predicted, truth], [n])], [n], { to: 1 });
  const correct = b.reduceSum(hits, [0], false);
  b.rename(lossSum, "loss_sum");
  b.rename(correct, "correct");
  return modelBytes({
    name: "fedstake_eval",
    nodes: b.nodes,
    inputs,
    outputs: [float("loss_sum", []), float("correct", [])],
    initializers: [],
  });
}

/**
 * The inference graph of a model, for any ONNX runtime: input "input" [N, ...spec.input] → "logits"
 * [N, classes] (the raw outputs, whatever the loss), the weights as initializers, N symbolic.
 */
export function inferenceModel(spec: ModelSpec, weights: Map<string, Float32Array>): Uint8Array {
  const params = paramsOf(spec);
  for (const p of params) {
    const n = p.shape.reduce((a, c) => a * c, 1);
    const w = weights.get(p.name);
    if (!w) throw new RangeError(`no weights for ${p.name} [${p.shape}]`);
    if (w.length !== n) throw new RangeError(`weights for ${p.name} [${p.shape}]: ${w.length} values, the spec needs ${n}`);
  }
  // The builder checks shapes with a nominal batch of 1; they are not written, and no op bakes the batch
  // in (flatten copies it at run time), so the graph runs any batch size.
  const b = new GraphBuilder();
  const x = b.declare("input", [1, ...spec.input]);
  b.rename(forward(b, spec, x, new Map(params.map((p) => [p.name, b.declare(p.name, p.shape)]))), "logits");
  return modelBytes({
    name: "fedstake_inference",
    nodes: b.nodes,
    inputs: [{ name: "input", dtype: "float", shape: ["N", ...spec.input] }],
    outputs: [{ name: "logits", dtype: "float", shape: ["N", spec.classes] }],
    initializers: params.map((p) => ({ name: p.name, dtype: "float", dims: p.shape, data: weights.get(p.name)! })),
  });
}

/** Names of the optimizer state tensors per parameter. */
export function stateNames(opt: Optimizer, p: Param): string[] {
  return opt.kind === "adam" ? [`${p.name}.m`, `${p.name}.v`] : [`${p.name}.velocity`];
}

/**
 * Training graph: inputs X_all [K·B, ...input], T_all [K·B, classes], the parameters, the optimizer
 * states and the step counter; one Loop runs K steps over consecutive batches of B and outputs the
 * updated parameters and states (suffix ":out") and the loss of every step ("losses", [K]).
 */
export function trainModel(spec: ModelSpec, opts: { batch: number; steps: number; optimizer: Optimizer }): Uint8Array {
  const { batch: B, steps: K, optimizer: opt } = opts;
  const params = paramsOf(spec);
  const states = params.flatMap((p) => stateNames(opt, p).map((name) => ({ name, shape: p.shape })));

  // Loop body.
  const b = new GraphBuilder("b_");
  b.declare("X_all", [K * B, ...spec.input]);
  b.declare("T_all", [K * B, spec.classes]);
  const iter = b.declare("iter", []);
  const pIn = new Map(params.map((p) => [p.name, b.declare(`${p.name}:in`, p.shape)]));
  const sIn = new Map(states.map((s) => [s.name, b.declare(`${s.name}:in`, s.shape)]));
  const tIn = b.declare("step:in", []);
  const start = b.one("Unsqueeze", [b.one("Mul", [iter, b.constInt([B], [])], []), b.constInt([0])], [1]);
  const end = b.one("Add", [start, b.constInt([B])], [1]);
  const axis0 = b.constInt([0]);
  const x = b.one("Slice", ["X_all", start, end, axis0], [B, ...spec.input]);
  const t = b.one("Slice", ["T_all", start, end, axis0], [B, spec.classes]);
  const out = forward(b, spec, x, pIn);
  const loss = lossOf(b, spec, out, t);
  const grads = b.gradients(loss, params.map((p) => pIn.get(p.name)!));

  const step = b.add(tIn, b.scalar(1));
  const pOut: string[] = [];
  const sOut: string[] = [];
  const lr = b.scalar(opt.lr);
  params.forEach((p, i) => {
    const g = grads[i]!;
    const w = pIn.get(p.name)!;
    if (opt.kind === "sgd") {
      const vel = b.add(b.mul(sIn.get(`${p.name}.velocity`)!, b.scalar(opt.momentum ?? 0.9)), g);
      sOut.push(vel);
      pOut.push(b.sub(w, b.mul(vel, lr)));
    } else {
      const [b1, b2, eps] = [opt.beta1 ?? 0.9, opt.beta2 ?? 0.999, opt.eps ?? 1e-8];
      const m = b.add(b.mul(sIn.get(`${p.name}.m`)!, b.scalar(b1)), b.mul(g, b.scalar(1 - b1)));
      const v = b.add(b.mul(sIn.get(`${p.name}.v`)!, b.scalar(b2)), b.mul(b.mul(g, g), b.scalar(1 - b2)));
      sOut.push(m, v);
      const c1 = b.sub(b.scalar(1), b.one("Pow", [b.scalar(b1), step], []));
      const c2 = b.sub(b.scalar(1), b.one("Pow", [b.scalar(b2), step], []));
      const denom = b.add(b.unary("Sqrt", b.div(v, c2)), b.scalar(eps));
      pOut.push(b.sub(w, b.mul(b.div(b.div(m, c1), denom), lr)));
    }
  });
  // Name the computed values as the body's outputs (no Identity copies inside the hot loop).
  const bodyOuts = [...params.map((p) => `${p.name}:next`), ...states.map((s) => `${s.name}:next`), "step:next", "loss:step"];
  [...pOut, ...sOut, step, loss].forEach((v, i) => b.rename(v, bodyOuts[i]!));
  const body: Graph = {
    name: "train_step",
    nodes: b.nodes,
    inputs: [
      { name: "iter", dtype: "int64", shape: [] },
      { name: "cond:in", dtype: "bool", shape: [] },
      ...params.map((p) => float(`${p.name}:in`, p.shape)),
      ...states.map((s) => float(`${s.name}:in`, s.shape)),
      float("step:in", []),
    ],
    outputs: [
      { name: "cond:in", dtype: "bool", shape: [] },
      ...params.map((p) => float(`${p.name}:next`, p.shape)),
      ...states.map((s) => float(`${s.name}:next`, s.shape)),
      float("step:next", []),
      float("loss:step", []),
    ],
    initializers: [],
  };

  // Outer graph: one Loop node.
  const outer: Graph = {
    name: "fedstake_train",
    nodes: [
      { op: "Constant", inputs: [], outputs: ["trip"], attrs: { value: { name: "trip", dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(K)) } } },
      { op: "Constant", inputs: [], outputs: ["cond"], attrs: { value: { name: "cond", dtype: "bool", dims: [], data: Uint8Array.of(1) } } },
      {
        op: "Loop",
        inputs: ["trip", "cond", ...params.map((p) => p.name), ...states.map((s) => s.name), "step"],
        outputs: [...params.map((p) => `${p.name}:out`), ...states.map((s) => `${s.name}:out`), "step:out", "losses"],
        attrs: { body },
      },
    ],
    inputs: [
      float("X_all", [K * B, ...spec.input]),
      float("T_all", [K * B, spec.classes]),
      ...params.map((p) => float(p.name, p.shape)),
      ...states.map((s) => float(s.name, s.shape)),
      float("step", []),
    ],
    outputs: [
      ...params.map((p) => float(`${p.name}:out`, p.shape)),
      ...states.map((s) => float(`${s.name}:out`, s.shape)),
      float("step:out", []),
      float("losses", [K]),
    ],
    initializers: [],
  };
  return modelBytes(outer);
}

/**
 * Loss and gradients for a batch of exactly `n` samples, without an optimizer step: outputs "loss" and
 * "grad:<param>" — for gradient checks and for anyone who wants the raw gradient.
 */
export function gradientModel(spec: ModelSpec, n: number): Uint8Array {
  const { b, params, t, out, inputs } = batchGraph(spec, n);
  const loss = lossOf(b, spec, out, t);
  const grads = b.gradients(loss, params.map((p) => p.name));
  b.nodes.push({ op: "Identity", inputs: [loss], outputs: ["loss"] });
  params.forEach((p, i) => b.nodes.push({ op: "Identity", inputs: [grads[i]!], outputs: [`grad:${p.name}`] }));
  return modelBytes({
    name: "fedstake_gradients",
    nodes: b.nodes,
    inputs,
    outputs: [float("loss", []), ...params.map((p) => float(`grad:${p.name}`, p.shape))],
    initializers: [],
  });
}
