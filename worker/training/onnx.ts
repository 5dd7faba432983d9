/**
 * A minimal, deterministic ONNX protobuf writer: just the messages a training graph needs (ModelProto,
 * GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto). Field numbers follow onnx.proto.
 */
export const DType = { float: 1, int64: 7, bool: 9 } as const;
export type DTypeName = keyof typeof DType;

export type AttrValue = number | number[] | string | Graph | { floats: number[] } | { float: number } | Tensor;

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  name?: string;
}

export interface ValueInfo {
  name: string;
  dtype: DTypeName;
  /** Static dims; a string is a symbolic dimension; undefined = unknown shape. */
  shape?: (number | string)[];
}

export interface Tensor {
  name: string;
  dtype: DTypeName;
  dims: number[];
  data: Float32Array | BigInt64Array | Uint8Array;
}

export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: Tensor[];
}

class Writer {
  private parts: number[] = [];
  varint(v: number | bigint) {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.parts.push(Number(x));
  }
  tag(field: number, wire: number) {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number | bigint) {
    this.tag(field, 0);
    this.varint(v);
  }
  bytes(field: number, b: Uint8Array) {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.parts.push(x);
  }
  string(field: number, s: string) {
    this.bytes(field, new TextEncoder().encode(s));
  }
  message(field: number, w: Writer) {
    this.bytes(field, w.finish());
  }
  float(field: number, v: number) {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.parts.push(x);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function tensorProto(t: Tensor): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  w.int(2, DType[t.dtype]);
  w.string(8, t.name);
  w.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  return w;
}

function valueInfo(v: ValueInfo): Writer {
  const tensorType = new Writer();
  tensorType.int(1, DType[v.dtype]);
  if (v.shape) {
    const shape = new Writer();
    for (const d of v.shape) {
      const dim = new Writer();
      if (typeof d === "number") dim.int(1, d);
      else dim.string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new Writer();
  type.message(1, tensorType);
  const w = new Writer();
  w.string(1, v.name);
  w.message(2, type);
  return w;
}

function attribute(name: string, v: AttrValue): Writer {
  const w = new Writer();
  w.string(1, name);
  if (typeof v === "number") {
    w.int(20, 2);
    w.int(3, v);
  } else if (typeof v === "string") {
    w.int(20, 3);
    w.string(4, v);
  } else if (Array.isArray(v)) {
    w.int(20, 7);
    for (const x of v) w.int(8, x);
  } else if ("floats" in v) {
    w.int(20, 6);
    for (const x of v.floats) w.float(7, x);
  } else if ("float" in v) {
    w.int(20, 1);
    w.float(2, v.float);
  } else if ("dims" in v) {
    w.int(20, 4);
    w.message(5, tensorProto(v));
  } else {
    w.int(20, 5);
    w.message(6, graphProto(v));
  }
  return w;
}

function graphProto(g: Graph): Writer {
  const w = new Writer();
  for (const n of g.nodes) {
    const nw = new Writer();
    for (const i of n.inputs) nw.string(1, i);
    for (const o of n.outputs) nw.string(2, o);
    if (n.name) nw.string(3, n.name);
    nw.string(4, n.op);
    for (const [k, a] of Object.entries(n.attrs ?? {})) nw.message(5, attribute(k, a));
    w.message(1, nw);
  }
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, tensorProto(t));
  for (const i of g.inputs) w.message(11, valueInfo(i));
  for (const o of g.outputs) w.message(12, valueInfo(o));
  return w;
}

export const OPSET = 17;

/** Serialises a model: IR version 8, default-domain opset 17. */
export function modelBytes(g: Graph): Uint8Array {
  const w = new Writer();
  w.int(1, 8);
  w.string(2, "fedstake");
  w.message(7, graphProto(g));
  const opset = new Writer();
  opset.string(1, "");
  opset.int(2, OPSET);
  w.message(8, opset);
  return w.finish();
}
