/**
 * A graph builder that emits standard ONNX ops with static shapes, and reverse-mode differentiation
 * over the ops it supports. `gradients()` walks the recorded nodes backwards and applies one
 * vector-Jacobian rule per op type (RULES below); nothing is written per model.
 */
import type { AttrValue, Node } from "./onnx.ts";

export type Shape = number[];

export class TrainingGraphError extends Error {
  override readonly name = "TrainingGraphError";
}

type Rule = (b: GraphBuilder, node: Node, dY: (string | undefined)[]) => (string | undefined)[];

export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly shapes = new Map<string, Shape>();
  private counter = 0;
  private readonly prefix: string;

  constructor(prefix = "") {
    this.prefix = prefix;
  }

  fresh(hint: string): string {
    return `${this.prefix}${hint}_${this.counter++}`;
  }

  shapeOf(name: string): Shape {
    const s = this.shapes.get(name);
    if (!s) throw new TrainingGraphError(`no static shape recorded for "${name}"`);
    return s;
  }

  /** Declares a value produced elsewhere (graph input, loop input) with its static shape. */
  declare(name: string, shape: Shape): string {
    this.shapes.set(name, shape);
    return name;
  }

  /**
   * Gives a computed value a fixed name (a graph output), rewriting its producer and consumers, so that
   * outputs need no Identity copy.
   */
  rename(value: string, name: string): void {
    for (const n of this.nodes) {
      n.outputs = n.outputs.map((o) => (o === value ? name : o));
      n.inputs = n.inputs.map((i) => (i === value ? name : i));
    }
    const s = this.shapes.get(value);
    if (s) this.shapes.set(name, s);
  }

  emit(op: string, inputs: string[], outShapes: Shape[], attrs?: Record<string, AttrValue>): string[] {
    const outputs = outShapes.map(() => this.fresh(op.toLowerCase()));
    outputs.forEach((o, i) => this.shapes.set(o, outShapes[i]!));
    this.nodes.push({ op, inputs, outputs, ...(attrs ? { attrs } : {}) });
    return outputs;
  }

  one(op: string, inputs: string[], shape: Shape, attrs?: Record<string, AttrValue>): string {
    return this.emit(op, inputs, [shape], attrs)[0]!;
  }

  constFloat(values: number[] | Float32Array, dims: Shape): string {
    const data = Float32Array.from(values);
    return this.one("Constant", [], dims, { value: { name: "v", dtype: "float", dims, data } });
  }

  constInt(values: number[], dims: Shape = [values.length]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    return this.one("Constant", [], dims, { value: { name: "v", dtype: "int64", dims, data } });
  }

  scalar(v: number): string {
    return this.constFloat([v], []);
  }

  // ------------------------------------------------------------------ forward ops (shape-checked)

  matmul(a: string, b: string): string {
    const [sa, sb] = [this.shapeOf(a), this.shapeOf(b)];
    if (sa.length !== 2 || sb.length !== 2 || sa[1] !== sb[0]) {
      throw new TrainingGraphError(`MatMul shapes [${sa}] × [${sb}] do not match`);
    }
    return this.one("MatMul", [a, b], [sa[0]!, sb[1]!]);
  }

  /** x·W + bias as one Gemm (2-D x and W, 1-D bias). */
  dense(x: string, w: string, bias: string): string {
    const [sx, sw, sb] = [this.shapeOf(x), this.shapeOf(w), this.shapeOf(bias)];
    if (sx.length !== 2 || sw.length !== 2 || sx[1] !== sw[0] || sb.length !== 1 || sb[0] !== sw[1]) {
      throw new TrainingGraphError(`dense shapes [${sx}] × [${sw}] + [${sb}] do not match`);
    }
    return this.one("Gemm", [x, w, bias], [sx[0]!, sw[1]!]);
  }

  /** op(A)·op(B) with transposes folded into Gemm (no copies); for gradient nodes. */
  gemmT(a: string, b: string, transA: boolean, transB: boolean): string {
    const [sa, sb] = [this.shapeOf(a), this.shapeOf(b)];
    const [m, k1] = transA ? [sa[1]!, sa[0]!] : [sa[0]!, sa[1]!];
    const [k2, n] = transB ? [sb[1]!, sb[0]!] : [sb[0]!, sb[1]!];
    if (k1 !== k2) throw new TrainingGraphError(`Gemm shapes do not match: [${sa}]${transA ? "ᵀ" : ""} × [${sb}]${transB ? "ᵀ" : ""}`);
    return this.one("Gemm", [a, b], [m, n], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 });
  }

  private broadcast(op: string, a: string, b: string): string {
    const [sa, sb] = [this.shapeOf(a), this.shapeOf(b)];
    const rank = Math.max(sa.length, sb.length);
    const out: number[] = [];
    for (let i = 0; i < rank; i++) {
      const x = sa[sa.length - rank + i] ?? 1;
      const y = sb[sb.length - rank + i] ?? 1;
      if (x !== y && x !== 1 && y !== 1) throw new TrainingGraphError(`${op} cannot broadcast [${sa}] with [${sb}]`);
      out.push(Math.max(x, y));
    }
    return this.one(op, [a, b], out);
  }

  add(a: string, b: string) {
    return this.broadcast("Add", a, b);
  }
  sub(a: string, b: string) {
    return this.broadcast("Sub", a, b);
  }
  mul(a: string, b: string) {
    return this.broadcast("Mul", a, b);
  }
  div(a: string, b: string) {
    return this.broadcast("Div", a, b);
  }
  unary(op: "Relu" | "Tanh" | "Sigmoid" | "Neg" | "Exp" | "Sqrt", x: string, attrs?: Record<string, AttrValue>): string {
    return this.one(op, [x], this.shapeOf(x), attrs);
  }
  logSoftmax(x: string): string {
    return this.one("LogSoftmax", [x], this.shapeOf(x), { axis: 1 });
  }
  transpose(x: string, perm: number[]): string {
    const s = this.shapeOf(x);
    return this.one("Transpose", [x], perm.map((p) => s[p]!), { perm });
  }
  reshape(x: string, shape: Shape): string {
    const from = this.shapeOf(x).reduce((a, b) => a * b, 1);
    const to = shape.reduce((a, b) => a * b, 1);
    if (from !== to) throw new TrainingGraphError(`cannot reshape ${from} elements to [${shape}]`);
    return this.one("Reshape", [x, this.constInt(shape)], shape);
  }
  /**
   * [N, ...] → [N, rest] as a Reshape to [0, rest]: 0 copies the batch dim at run time, so the graph
   * also runs where the batch is symbolic (the inference export); gradients take the Reshape rule.
   */
  flatten(x: string): string {
    const [n, ...rest] = this.shapeOf(x);
    const size = rest.reduce((a, b) => a * b, 1);
    return this.one("Reshape", [x, this.constInt([0, size])], [n!, size]);
  }
  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    const s = this.shapeOf(x);
    const out = keepdims ? s.map((d, i) => (axes.includes(i) ? 1 : d)) : s.filter((_, i) => !axes.includes(i));
    return this.one("ReduceSum", [x, this.constInt(axes)], out, { keepdims: keepdims ? 1 : 0 });
  }

  conv(x: string, w: string, bias: string, stride: number, pad: number): string {
    const [sx, sw] = [this.shapeOf(x), this.shapeOf(w)];
    const [n, c, h, wd] = sx as [number, number, number, number];
    const [o, ci, kh, kw] = sw as [number, number, number, number];
    if (sx.length !== 4 || c !== ci) throw new TrainingGraphError(`Conv input [${sx}] does not match weights [${sw}]`);
    const ho = Math.floor((h + 2 * pad - kh) / stride) + 1;
    const wo = Math.floor((wd + 2 * pad - kw) / stride) + 1;
    if (ho < 1 || wo < 1) throw new TrainingGraphError(`Conv kernel ${kh}×${kw} does not fit input ${h}×${wd}`);
    return this.one("Conv", [x, w, bias], [n, o, ho, wo], {
      kernel_shape: [kh, kw],
      strides: [stride, stride],
      pads: [pad, pad, pad, pad],
    });
  }

  maxPool(x: string, k: number): string {
    const [n, c, h, w] = this.shapeOf(x) as [number, number, number, number];
    const out = [n, c, Math.floor((h - k) / k) + 1, Math.floor((w - k) / k) + 1];
    return this.emit("MaxPool", [x], [out, out], { kernel_shape: [k, k], strides: [k, k] })[0]!;
  }

  avgPool(x: string, k: number): string {
    const [n, c, h, w] = this.shapeOf(x) as [number, number, number, number];
    if (h % k !== 0 || w % k !== 0) throw new TrainingGraphError(`AveragePool ${k} needs spatial dims divisible by ${k}, got ${h}×${w}`);
    return this.one("AveragePool", [x], [n, c, h / k, w / k], { kernel_shape: [k, k], strides: [k, k] });
  }

  // ------------------------------------------------------------------ reverse mode

  /**
   * Adds the nodes computing d(loss)/d(w) for every w in `wrt` (loss must be a scalar) and returns
   * their names. Values that do not depend on any `wrt` get no gradient nodes.
   */
  gradients(loss: string, wrt: string[]): string[] {
    if (this.shapeOf(loss).length !== 0) throw new TrainingGraphError(`loss "${loss}" must be a scalar`);
    // Forward reachability: which values depend on a parameter.
    const needs = new Set(wrt);
    const forward = [...this.nodes];
    for (const n of forward) if (n.inputs.some((i) => needs.has(i))) n.outputs.forEach((o) => needs.add(o));
    const contributions = new Map<string, string[]>();
    const gradOf = (name: string): string | undefined => {
      const parts = contributions.get(name);
      if (!parts || parts.length === 0) return undefined;
      let g = parts[0]!;
      for (const p of parts.slice(1)) g = this.add(g, p);
      contributions.set(name, [g]);
      return g;
    };
    contributions.set(loss, [this.scalar(1)]);
    for (let k = forward.length - 1; k >= 0; k--) {
      const node = forward[k]!;
      if (!node.outputs.some((o) => needs.has(o))) continue;
      const dY = node.outputs.map((o) => gradOf(o));
      if (dY.every((g) => g === undefined)) continue;
      const rule = RULES[node.op];
      if (!rule) throw new TrainingGraphError(`no gradient rule for op ${node.op}`);
      const dX = rule(this, node, dY);
      node.inputs.forEach((input, i) => {
        const g = dX[i];
        if (g !== undefined && needs.has(input)) {
          const list = contributions.get(input) ?? [];
          list.push(g);
          contributions.set(input, list);
        }
      });
    }
    return wrt.map((w) => {
      const g = gradOf(w);
      if (g) return g;
      const s = this.shapeOf(w);
      return this.constFloat(new Float32Array(s.reduce((a, b) => a * b, 1)), s);
    });
  }

  /** Sums `g` down to `shape` (undoing broadcasting). */
  reduceTo(g: string, shape: Shape): string {
    const gs = this.shapeOf(g);
    if (gs.length === shape.length && gs.every((d, i) => d === shape[i])) return g;
    const lead = gs.length - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < gs.length; i++) {
      if (i < lead || (shape[i - lead] === 1 && gs[i] !== 1)) axes.push(i);
    }
    // Only leading axes broadcast (e.g. a bias): one ReduceSum without keepdims lands on the shape.
    if (axes.every((a) => a < lead)) return this.reduceSum(g, axes, false);
    return this.reshape(this.reduceSum(g, axes, true), shape);
  }
}

const attr = (n: Node, k: string) => n.attrs?.[k];

export const RULES: Record<string, Rule> = {
  Gemm: (b, n, [dY]) => {
    if (n.attrs?.transA || n.attrs?.transB || n.attrs?.alpha !== undefined || n.attrs?.beta !== undefined) {
      throw new TrainingGraphError("Gemm gradients are implemented for the plain x·W + bias form only");
    }
    const [a, w, c] = n.inputs as [string, string, string | undefined];
    return [b.gemmT(dY!, w, false, true), b.gemmT(a, dY!, true, false), c === undefined ? undefined : b.reduceTo(dY!, b.shapeOf(c))];
  },
  Add: (b, n, [dY]) => n.inputs.map((i) => b.reduceTo(dY!, b.shapeOf(i))),
  Sub: (b, n, [dY]) => [b.reduceTo(dY!, b.shapeOf(n.inputs[0]!)), b.reduceTo(b.unary("Neg", dY!), b.shapeOf(n.inputs[1]!))],
  Mul: (b, n, [dY]) => {
    const [x, y] = n.inputs as [string, string];
    return [b.reduceTo(b.mul(dY!, y), b.shapeOf(x)), b.reduceTo(b.mul(dY!, x), b.shapeOf(y))];
  },
  Neg: (b, _n, [dY]) => [b.unary("Neg", dY!)],
  Relu: (b, n, [dY]) => {
    const x = n.inputs[0]!;
    const positive = b.one("Greater", [x, b.scalar(0)], b.shapeOf(x));
    return [b.mul(dY!, b.one("Cast", [positive], b.shapeOf(x), { to: 1 }))];
  },
  Tanh: (b, n, [dY]) => {
    const y = n.outputs[0]!;
    return [b.mul(dY!, b.sub(b.scalar(1), b.mul(y, y)))];
  },
  Sigmoid: (b, n, [dY]) => {
    const y = n.outputs[0]!;
    return [b.mul(dY!, b.mul(y, b.sub(b.scalar(1), y)))];
  },
  LogSoftmax: (b, n, [dY]) => {
    const y = n.outputs[0]!;
    const softmax = b.unary("Exp", y);
    return [b.sub(dY!, b.mul(softmax, b.reduceSum(dY!, [1], true)))];
  },
  ReduceSum: (b, n, [dY]) => {
    const x = n.inputs[0]!;
    const sx = b.shapeOf(x);
    let g = dY!;
    if (attr(n, "keepdims") === 0) {
      // Put the reduced axes back as size-1 dims before expanding.
      const kept = b.shapeOf(n.outputs[0]!);
      const withOnes: number[] = [];
      let k = 0;
      const reducedRank = sx.length - kept.length;
      const axesNode = b.nodes.find((m) => m.outputs[0] === n.inputs[1]);
      const axesData = axesNode?.attrs?.value as { data: BigInt64Array } | undefined;
      const axes = axesData ? Array.from(axesData.data, Number) : [];
      if (axes.length !== reducedRank) throw new TrainingGraphError("ReduceSum gradient needs constant axes");
      for (let i = 0; i < sx.length; i++) withOnes.push(axes.includes(i) ? 1 : kept[k++]!);
      g = b.reshape(g, withOnes);
    }
    return [b.one("Expand", [g, b.constInt(sx)], sx), undefined];
  },
  Reshape: (b, n, [dY]) => [b.reshape(dY!, b.shapeOf(n.inputs[0]!)), undefined],
  Conv: (b, n, [dY]) => {
    const [x, w] = n.inputs as [string, string, string];
    const [, , h, wd] = b.shapeOf(x) as [number, number, number, number];
    const [, , kh, kw] = b.shapeOf(w) as [number, number, number, number];
    const [, , ho, wo] = b.shapeOf(dY!) as [number, number, number, number];
    const s = (attr(n, "strides") as number[])[0]!;
    const p = (attr(n, "pads") as number[])[0]!;
    // dX: transposed convolution of dY with the same weights.
    const outPad = [h - ((ho - 1) * s - 2 * p + kh), wd - ((wo - 1) * s - 2 * p + kw)];
    const dX = b.one("ConvTranspose", [dY!, w], b.shapeOf(x), {
      kernel_shape: [kh, kw],
      strides: [s, s],
      pads: [p, p, p, p],
      output_padding: outPad,
    });
    // dW: correlate the input with dY, treating the batch as channels (dilation = stride).
    const xT = b.transpose(x, [1, 0, 2, 3]);
    const dYT = b.transpose(dY!, [1, 0, 2, 3]);
    const [ci] = b.shapeOf(xT) as [number];
    const [co] = b.shapeOf(dYT) as [number];
    const fh = h + 2 * p - (ho - 1) * s;
    const fw = wd + 2 * p - (wo - 1) * s;
    let dWT = b.one("Conv", [xT, dYT], [ci, co, fh, fw], {
      kernel_shape: [ho, wo],
      dilations: [s, s],
      pads: [p, p, p, p],
      strides: [1, 1],
    });
    if (fh !== kh || fw !== kw) {
      dWT = b.one("Slice", [dWT, b.constInt([0, 0]), b.constInt([kh, kw]), b.constInt([2, 3])], [ci, co, kh, kw]);
    }
    const dW = b.transpose(dWT, [1, 0, 2, 3]);
    const dB = b.reduceSum(dY!, [0, 2, 3], false);
    return [dX, dW, dB];
  },
  MaxPool: (b, n, [dY]) => {
    const x = n.inputs[0]!;
    const sx = b.shapeOf(x);
    const total = sx.reduce((a, c) => a * c, 1);
    const zeros = b.one("ConstantOfShape", [b.constInt([total])], [total], {
      value: { name: "z", dtype: "float", dims: [1], data: new Float32Array(1) },
    });
    const idx = b.reshape(n.outputs[1]!, [b.shapeOf(n.outputs[1]!).reduce((a, c) => a * c, 1)]);
    const flat = b.reshape(dY!, [b.shapeOf(dY!).reduce((a, c) => a * c, 1)]);
    const scattered = b.one("ScatterElements", [zeros, idx, flat], [total], { axis: 0, reduction: "add" });
    return [b.reshape(scattered, sx)];
  },
  AveragePool: (b, n, [dY]) => {
    const k = (attr(n, "kernel_shape") as number[])[0]!;
    const sx = b.shapeOf(n.inputs[0]!);
    const up = b.one("Resize", [dY!, "", b.constFloat([1, 1, k, k], [4])], sx, { mode: "nearest" });
    return [b.mul(up, b.scalar(1 / (k * k)))];
  },
};
