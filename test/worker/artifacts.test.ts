import { expect } from "chai";
import {
  ArtifactError,
  ErrorFeedback,
  decodeArtifact,
  encodeArtifact,
  type ArtifactHeader,
  type EncodeOptions,
  type Tensor,
} from "../../worker/artifacts/index.ts";
import { decodePayload, Encoding, encodePayload, topkCounts } from "../../worker/artifacts/encodings.ts";
import { prng as rng } from "../../worker/util/prng.ts";

const header = (over: Partial<ArtifactHeader> = {}): ArtifactHeader => ({
  kind: "update",
  jobId: 7n,
  round: 3,
  baseModelCid: new Uint8Array([1, 0x55, 0x12, 0x20, ...new Array(32).fill(9)]),
  worker: new Uint8Array(20).fill(0xab),
  numSamples: 1234n,
  ...over,
});

function randomTensors(seed: number, sizes: [string, number[]][]): Tensor[] {
  const r = rng(seed);
  return sizes.map(([name, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name, shape, data: Float32Array.from({ length: n }, () => (r() - 0.5) * 0.2) };
  });
}

const MLP: [string, number[]][] = [
  ["fc1.weight", [64, 32]],
  ["fc1.bias", [64]],
  ["fc2.weight", [10, 64]],
  ["fc2.bias", [10]],
];

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe("artifact container", function () {
  it("round-trips f32 exactly, with the header", function () {
    const tensors = randomTensors(1, MLP);
    const bytes = encodeArtifact(header(), tensors, { encoding: "f32" });
    const a = decodeArtifact(bytes);
    expect(a.header.kind).to.equal("update");
    expect(a.header.jobId).to.equal(7n);
    expect(a.header.round).to.equal(3);
    expect(a.header.numSamples).to.equal(1234n);
    expect([...a.header.worker]).to.deep.equal(new Array(20).fill(0xab));
    expect([...a.header.baseModelCid]).to.deep.equal([...header().baseModelCid]);
    expect(a.tensors.map((t) => t.name)).to.deep.equal(MLP.map(([n]) => n));
    for (const [i, t] of a.tensors.entries()) {
      expect(t.shape).to.deep.equal(tensors[i]!.shape);
      expect([...t.data]).to.deep.equal([...tensors[i]!.data]);
    }
  });

  it("round-trips f16 within half precision", function () {
    const tensors = randomTensors(2, MLP);
    const a = decodeArtifact(encodeArtifact(header(), tensors, { encoding: "f16" }));
    for (const [i, t] of a.tensors.entries()) {
      for (const [j, v] of t.data.entries()) {
        const x = tensors[i]!.data[j]!;
        expect(Math.abs(v - x)).to.be.at.most(Math.max(Math.abs(x) * 2 ** -11, 2 ** -25));
      }
    }
  });

  it("encodes f16 with the same bytes as the former hand-written binary16 converter", function () {
    // Bytes produced by the removed worker/artifacts/half.ts (round to nearest, ties to even); the native
    // DataView.setFloat16 must reproduce them exactly so that artifacts stay byte-for-byte identical.
    const cases: [number, number, number][] = [
      [0, 0x0000, 0],
      [-0, 0x8000, -0],
      [1, 0x3c00, 1],
      [-1, 0xbc00, -1],
      [0.1, 0x2e66, 0.0999755859375],
      [-2.5, 0xc100, -2.5],
      [65504, 0x7bff, 65504], // largest finite
      [-65504, 0xfbff, -65504],
      [65519, 0x7bff, 65504], // rounds down, just below the tie to Inf
      [1 + 2 ** -11, 0x3c00, 1], // tie rounds to even (down)
      [1 + 3 * 2 ** -11, 0x3c02, 1 + 2 ** -9], // tie rounds to even (up)
      [2 ** -14, 0x0400, 2 ** -14], // smallest normal
      [2 ** -14 - 2 ** -24, 0x03ff, 2 ** -14 - 2 ** -24], // largest subnormal
      [2 ** -24, 0x0001, 2 ** -24], // smallest subnormal
      [-(2 ** -24), 0x8001, -(2 ** -24)],
      [2 ** -25, 0x0000, 0], // subnormal tie rounds to even (zero)
      [3 * 2 ** -25, 0x0002, 2 ** -23], // subnormal tie rounds to even (up)
      [2 ** -26, 0x0000, 0], // underflow to +0
      [-(2 ** -26), 0x8000, -0], // underflow keeps the sign
    ];
    const { params, bytes } = encodePayload(Float32Array.from(cases, (c) => c[0]), { encoding: "f16" });
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(bytes.length).to.equal(cases.length * 2);
    expect(cases.map((_, i) => view.getUint16(i * 2, true))).to.deep.equal(cases.map((c) => c[1]));
    const back = decodePayload(bytes, cases.length, params, "t");
    for (const [i, c] of cases.entries()) expect(Object.is(back[i], c[2]), `${c[0]} → ${back[i]}`).to.equal(true);

    // Values that do not fit: ±Inf and NaN are refused before encoding, overflow to ±Inf is refused.
    for (const v of [Infinity, -Infinity, NaN]) {
      expect(() => encodePayload(new Float32Array([v]), { encoding: "f16" })).to.throw(ArtifactError, /NON_FINITE/);
    }
    for (const v of [65520, -65520, 1e6]) {
      expect(() => encodePayload(new Float32Array([v]), { encoding: "f16" })).to.throw(ArtifactError, /overflows float16/);
    }
    // Inf and NaN bit patterns in a payload are refused on decoding.
    for (const h of [0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe00]) {
      const p = new Uint8Array(2);
      new DataView(p.buffer).setUint16(0, h, true);
      expect(() => decodePayload(p, 1, params, "t"), h.toString(16)).to.throw(ArtifactError, /NON_FINITE/);
    }
  });

  it("round-trips int8 within half a scale step per chunk", function () {
    const tensors = randomTensors(3, MLP);
    const chunk = 100;
    const a = decodeArtifact(encodeArtifact(header(), tensors, { encoding: "int8", chunk }));
    for (const [i, t] of a.tensors.entries()) {
      const x = tensors[i]!.data;
      for (let c = 0; c * chunk < x.length; c++) {
        const part = x.subarray(c * chunk, (c + 1) * chunk);
        const scale = Math.fround(maxAbs(part) / 127);
        for (let j = 0; j < part.length; j++) {
          expect(Math.abs(t.data[c * chunk + j]! - part[j]!)).to.be.at.most(scale / 2 + 1e-9);
        }
      }
    }
  });

  it("round-trips top-k: keeps the k largest magnitudes (int8), zeroes the rest", function () {
    const tensors = randomTensors(4, MLP);
    const a = decodeArtifact(encodeArtifact(header(), tensors, { encoding: "topk", fraction: 0.05 }));
    for (const [i, t] of a.tensors.entries()) {
      const x = tensors[i]!.data;
      const k = Math.max(1, Math.ceil(x.length * 0.05));
      const kept = [...t.data.keys()].filter((j) => t.data[j] !== 0);
      expect(kept.length).to.be.at.most(k);
      const threshold = [...x].map(Math.abs).sort((p, q) => q - p)[k - 1]!;
      const scale = maxAbs(x) / 127;
      for (const j of kept) {
        expect(Math.abs(x[j]!)).to.be.at.least(threshold);
        expect(Math.abs(t.data[j]! - x[j]!)).to.be.at.most(scale / 2 + 1e-9);
      }
    }
  });

  for (const [encoding, bits] of [["topk4", 4], ["topk2", 2]] as const) {
    it(`round-trips ${encoding}: the k largest magnitudes in ${bits} bits, sign kept, no worse than scaling to the chunk's largest`, function () {
      const chunk = 32;
      const tensors = randomTensors(4, MLP);
      const a = decodeArtifact(encodeArtifact(header(), tensors, { encoding, fraction: 0.2, chunk }));
      const half = (2 ** bits - 1) / 2;
      for (const [i, t] of a.tensors.entries()) {
        const x = tensors[i]!.data;
        const k = Math.max(1, Math.ceil(x.length * 0.2));
        const kept = [...t.data.keys()].filter((j) => t.data[j] !== 0);
        expect(kept.length).to.equal(k);
        const threshold = [...x].map(Math.abs).sort((p, q) => q - p)[k - 1]!;
        let err = 0;
        let errAtMax = 0;
        for (let c = 0; c * chunk < k; c++) {
          const js = kept.slice(c * chunk, (c + 1) * chunk);
          const max = Math.max(...js.map((j) => Math.abs(x[j]!)));
          const s = Math.fround(max / half);
          for (const j of js) {
            expect(Math.abs(x[j]!)).to.be.at.least(threshold);
            expect(Math.sign(t.data[j]!)).to.equal(Math.sign(x[j]!));
            expect(Math.abs(t.data[j]!)).to.be.at.most(max * (1 + 1e-6));
            err += (t.data[j]! - x[j]!) ** 2;
            // The plain quantiser scaled to the chunk's largest value: the chosen scale may only do better.
            const q = Math.max(0, Math.min(2 * half, Math.round(x[j]! / s + half)));
            errAtMax += ((q - half) * s - x[j]!) ** 2;
          }
        }
        expect(err).to.be.at.most(errAtMax * (1 + 1e-6)); // (float32 rounding of the decoded values)
        const energy = kept.reduce((e, j) => e + x[j]! ** 2, 0);
        expect(Math.sqrt(err / energy)).to.be.below(bits === 4 ? 0.1 : 0.35);
      }
    });
  }

  it("packs low-bit top-k tightly and leaves zeros out", function () {
    const x = Float32Array.from({ length: 1000 }, (_, i) => (i % 10 === 0 ? (i % 20 === 0 ? 1 : -1) * (1 + i / 1000) : 0));
    for (const [encoding, bits] of [["topk4", 4], ["topk2", 2]] as const) {
      // 100 values are non-zero; asking for 150 sends those 100 only (a low-bit level cannot be 0).
      const { params, bytes } = encodePayload(x, { encoding, k: 150, chunk: 64 });
      expect(params).to.deep.equal({ encoding, chunk: 64 });
      // k, index-bytes; the gaps (0, then 9 × 99) Rice coded with r = 2: the parameter byte, 3 bits for
      // the 0, 5 for each 9 (two 1s, a 0, 2 low bits), against 100 bytes of LEB128; 2 scales; the values.
      const { bytes: leb } = encodePayload(x, { encoding: "topk", k: 150, chunk: 64 });
      const riceBytes = 1 + Math.ceil((3 + 99 * 5) / 8);
      expect(new DataView(bytes.buffer).getUint32(4, true)).to.equal(riceBytes);
      expect(bytes[8]).to.equal(2);
      expect(bytes.length).to.equal(8 + riceBytes + 2 * 4 + Math.ceil((100 * bits) / 8));
      expect(new DataView(leb.buffer).getUint32(4, true)).to.equal(150); // 8-bit topk: LEB128, zeros kept, as before
      const back = decodePayload(bytes, x.length, params, "t");
      expect([...back.keys()].filter((i) => back[i] !== 0)).to.deep.equal([...x.keys()].filter((i) => x[i] !== 0));
    }
    // The older encodings keep their codes (a reader of version 1 decodes what it did before).
    expect(Encoding).to.deep.include({ f32: 0, f16: 1, int8: 2, topk: 3, topk4: 4, topk2: 5 });
  });

  it("spreads an update-wide top-k over the tensors by magnitude", function () {
    const a = Float32Array.from([5, -4, 0.1, 0.2]);
    const b = Float32Array.from([3, 0.3, -6]);
    expect(topkCounts([a, b], 3 / 7)).to.deep.equal([2, 1]); // 6, 5, 4
    expect(topkCounts([a, b], 4 / 7)).to.deep.equal([2, 2]); // and 3
    // Ties at the threshold go to the earlier tensor, as topkIndices gives them to the lower index.
    expect(topkCounts([Float32Array.from([1, 1]), Float32Array.from([1])], 2 / 3)).to.deep.equal([2, 0]);
    expect(topkCounts([new Float32Array(0)], 0.5)).to.deep.equal([0]);
    const tensors: Tensor[] = [{ name: "a", shape: [4], data: a }, { name: "b", shape: [3], data: b }];
    const wide = decodeArtifact(encodeArtifact(header(), tensors, { encoding: "topk4", fraction: 3 / 7, across: "update" })).tensors;
    expect(wide.map((t) => [...t.data].map((v) => v !== 0))).to.deep.equal([[true, true, false, false], [false, false, true]]);
    // Per tensor (the default), each tensor keeps its own ⌈3/7 × n⌉.
    const each = decodeArtifact(encodeArtifact(header(), tensors, { encoding: "topk4", fraction: 3 / 7 })).tensors;
    expect(each.map((t) => t.data.filter((v) => v !== 0).length)).to.deep.equal([2, 2]);
  });

  it("encodes deterministically: same tensors and options, same bytes", function () {
    const opts: EncodeOptions[] = [{ encoding: "f32" }, { encoding: "f16" }, { encoding: "int8" }, { encoding: "topk", fraction: 0.01 }, { encoding: "topk4", fraction: 0.05 }, { encoding: "topk2", fraction: 0.05 }, { encoding: "topk2", fraction: 0.05, across: "update" }];
    for (const o of opts) {
      const a = encodeArtifact(header(), randomTensors(5, MLP), o);
      const b = encodeArtifact(header(), randomTensors(5, MLP), o);
      expect(Buffer.from(a).equals(Buffer.from(b)), o.encoding).to.equal(true);
    }
    const f = encodeArtifact(header(), randomTensors(5, MLP), { encoding: "f32" });
    const g = encodeArtifact(header({ round: 4 }), randomTensors(5, MLP), { encoding: "f32" });
    expect(Buffer.from(f).equals(Buffer.from(g))).to.equal(false);
  });

  it("refuses to encode what it could not decode", function () {
    const bad = (t: Tensor[], o: EncodeOptions = { encoding: "f32" }, h = header()) => () => encodeArtifact(h, t, o);
    expect(bad([{ name: "x", shape: [2], data: new Float32Array([1, NaN]) }])).to.throw(ArtifactError, /NON_FINITE/);
    expect(bad([{ name: "x", shape: [3], data: new Float32Array(2) }])).to.throw(ArtifactError, /has 3 elements/);
    expect(bad([{ name: "x", shape: [1], data: new Float32Array(1) }, { name: "x", shape: [1], data: new Float32Array(1) }])).to.throw(/duplicate/);
    expect(bad([{ name: "x", shape: [1], data: new Float32Array([1e6]) }], { encoding: "f16" })).to.throw(/overflows float16/);
    expect(bad([], { encoding: "f32" }, header({ worker: new Uint8Array(3) }))).to.throw(/20 bytes/);
    expect(bad([{ name: "x", shape: [4], data: new Float32Array(4) }], { encoding: "topk", k: 5 })).to.throw(/outside 0..4/);
  });
});

describe("artifact decoder rejects bad input with a reason", function () {
  const good = encodeArtifact(header(), randomTensors(6, MLP), { encoding: "f32" });
  const headerLen = new DataView(good.buffer).getUint32(8, true);
  const mutate = (f: (b: Uint8Array, v: DataView) => void, from = good) => {
    const b = Uint8Array.from(from);
    f(b, new DataView(b.buffer));
    return b;
  };
  const rejects = (bytes: Uint8Array, code: string, re?: RegExp, limits = {}) => {
    try {
      decodeArtifact(bytes, limits);
    } catch (e) {
      expect(e).to.be.instanceOf(ArtifactError);
      expect((e as ArtifactError).code).to.equal(code);
      if (re) expect((e as Error).message).to.match(re);
      return;
    }
    expect.fail(`expected ${code}`);
  };

  it("names each failure", function () {
    rejects(good.subarray(0, 5), "TRUNCATED", /preamble/);
    rejects(mutate((b) => (b[0] = 0x47)), "BAD_MAGIC");
    rejects(mutate((_, v) => v.setUint16(4, 2, true)), "BAD_VERSION", /version 2/);
    rejects(mutate((_, v) => v.setUint16(6, 1, true)), "BAD_HEADER", /flags/);
    rejects(mutate((_, v) => v.setUint32(8, 2 ** 31, true)), "BAD_HEADER", /header length/);
    rejects(mutate((_, v) => v.setUint32(8, good.length, true)), "TRUNCATED", /runs past the end/);
    rejects(good.subarray(0, good.length - 1), "TRUNCATED", /payloads need/);
    rejects(Uint8Array.from([...good, 0]), "TRAILING_BYTES");
    rejects(good, "TOO_LARGE", /exceeds the limit/, { maxBytes: 100 });
    rejects(good, "TOO_LARGE", /elements/, { maxElements: 100 });
    rejects(mutate((b) => (b[12] = 9)), "BAD_HEADER", /kind 9/);
    // First tensor: name length at 12 + 1 + 8 + 4 + 1 + 36 + 20 + 8 + 2.
    const t0 = 12 + 1 + 8 + 4 + 1 + 36 + 20 + 8 + 2;
    rejects(mutate((b) => (b[t0] = 0)), "BAD_TENSOR", /name length 0/);
    rejects(mutate((b) => (b[t0 + 1] = 0xff)), "BAD_TENSOR", /UTF-8/);
    rejects(mutate((b) => (b[t0 + 1 + 10] = 9)), "BAD_TENSOR", /rank 9/); // "fc1.weight" is 10 bytes
    rejects(mutate((_, v) => v.setUint32(t0 + 12, 0, true)), "BAD_TENSOR", /dimension 0 is 0/);
    rejects(mutate((b) => (b[t0 + 20] = 1)), "BAD_TENSOR", /dtype 1/); // after rank (t0+11) and 2 dims
    rejects(mutate((b) => (b[t0 + 21] = 7)), "BAD_ENCODING", /encoding 7/);
    rejects(mutate((_, v) => v.setUint32(t0 + 22, 5, true)), "BAD_ENCODING", /chunk 5 invalid for f32/);
    rejects(mutate((_, v) => v.setUint32(t0 + 26, 4, true)), "BAD_TENSOR", /offset 4, expected 0/);
    rejects(mutate((_, v) => v.setUint32(t0 + 30, 8, true)), "BAD_TENSOR", /offset/); // lying length shifts the next offset
    rejects(mutate((_, v) => v.setFloat32(12 + headerLen, NaN, true)), "NON_FINITE", /fc1.weight/);
    rejects(mutate((_, v) => v.setFloat32(12 + headerLen + 4, Infinity, true)), "NON_FINITE");
  });

  it("checks top-k indices and int8 values", function () {
    const t: Tensor[] = [{ name: "w", shape: [10], data: Float32Array.from([0, 5, 0, 0, -7, 0, 0, 0, 0, 1]) }];
    const bytes = encodeArtifact(header({ baseModelCid: new Uint8Array(0) }), t, { encoding: "topk", k: 2, chunk: 4 });
    const p = bytes.length - (8 + 2 + 4 + 2); // payload start: k, idxLen, 2 varints, 1 scale, 2 int8
    expect([...decodeArtifact(bytes).tensors[0]!.data].map((v) => Math.round(v))).to.deep.equal([0, 5, 0, 0, -7, 0, 0, 0, 0, 0]);
    rejects(mutate((b) => (b[p + 9] = 20), bytes), "INDEX_OUT_OF_RANGE", /index 22/);
    rejects(mutate((_, v) => v.setUint32(p, 11, true), bytes), "BAD_ENCODING", /exceeds 10 elements/);
    rejects(mutate((_, v) => v.setUint32(p + 4, 3, true), bytes), "LENGTH_MISMATCH");
    rejects(mutate((b) => (b[p + 9] = 0x81), bytes), "TRUNCATED", /runs past/); // last varint byte says "more"
    rejects(mutate((b) => (b[bytes.length - 1] = 0x80), bytes), "BAD_ENCODING", /-128/);
    rejects(mutate((_, v) => v.setFloat32(p + 10, -1, true), bytes), "NON_FINITE", /scale 0/);
  });

  it("checks low-bit top-k scales, Rice-coded indices, lengths and padding", function () {
    // n values of 12, at indices 0..n-1: every gap is 0, so r = 0 and each index is one 0 bit.
    const t = (n: number): Tensor[] => [{ name: "w", shape: [12], data: Float32Array.from({ length: 12 }, (_, i) => (i < n ? (i % 2 ? -1 : 1) * (i + 1) : 0)) }];
    for (const [encoding, n, bits] of [["topk2", 3, 2], ["topk4", 5, 4]] as const) {
      const bytes = encodeArtifact(header({ baseModelCid: new Uint8Array(0) }), t(n), { encoding, k: n, chunk: 4 });
      const p = 12 + new DataView(bytes.buffer).getUint32(8, true); // the payload (one tensor)
      const idxLen = new DataView(bytes.buffer).getUint32(p + 4, true);
      expect(idxLen).to.equal(2); // r, then n bits
      const scales = p + 8 + idxLen;
      expect(bytes.length).to.equal(scales + 4 * Math.ceil(n / 4) + Math.ceil((n * bits) / 8));
      const back = decodeArtifact(bytes).tensors[0]!.data;
      expect([...back.keys()].filter((i) => back[i] !== 0)).to.deep.equal([...Array(n).keys()]);
      rejects(mutate((_, v) => v.setFloat32(scales, 0, true), bytes), "NON_FINITE", /scale 0 is 0 \(must be finite and > 0\)/);
      rejects(mutate((_, v) => v.setFloat32(scales, -1, true), bytes), "NON_FINITE", /scale 0/);
      rejects(mutate((_, v) => v.setFloat32(scales, NaN, true), bytes), "NON_FINITE", /scale 0/);
      rejects(mutate((b) => (b[bytes.length - 1]! |= 0x80), bytes), "BAD_ENCODING", new RegExp(`padding bits after value ${n - 1}`));
      rejects(mutate((b) => (b[p + 9]! |= 0x80), bytes), "BAD_ENCODING", /padding bits after the last index are not 0/);
      rejects(mutate((b) => (b[p + 8] = 31), bytes), "BAD_ENCODING", /Rice parameter 31 exceeds 30/);
      rejects(mutate((b) => b.set([4, 0x1e], p + 8), bytes), "INDEX_OUT_OF_RANGE", /index 15 \(entry 0\) ≥ 12 elements/); // r 4: a 0, then 15
      rejects(mutate((b) => b.set([2, 0x07], p + 8), bytes), "INDEX_OUT_OF_RANGE", /index 0 lies beyond 12 elements/); // r 2: three 1s = 12 or more
      rejects(mutate((b) => (b[p + 9] = 0xff), bytes), "TRUNCATED", /index 0 runs past the index bytes/);
      rejects(mutate((_, v) => v.setUint32(p, n + 4, true), bytes), "LENGTH_MISMATCH", new RegExp(`${encoding} \\(k ${n + 4}`));
      rejects(mutate((_, v) => v.setUint32(p, 13, true), bytes), "BAD_ENCODING", /exceeds 12 elements/);
      rejects(bytes.subarray(0, bytes.length - 1), "TRUNCATED", /payloads need/);
      // One index byte more than the indices need (and the payload one byte longer to match).
      const payload = bytes.subarray(p);
      const padded = Uint8Array.from([...payload.subarray(0, 8 + idxLen), 0, ...payload.subarray(8 + idxLen)]);
      new DataView(padded.buffer).setUint32(4, idxLen + 1, true);
      expect(() => decodePayload(padded, 12, { encoding, chunk: 4 }, "w")).to.throw(ArtifactError, /LENGTH_MISMATCH: w: 1 unused index bytes/);
      // The right length for another bit width is still the wrong length for this one.
      const encodingAt = 12 + 1 + 8 + 4 + 1 + 20 + 8 + 2 + 1 + 1 + 1 + 4 + 1; // preamble, header (no CID), name "w", rank 1, one dim, dtype
      expect(bytes[encodingAt]).to.equal(Encoding[encoding]);
      rejects(mutate((b) => (b[encodingAt] = encoding === "topk2" ? Encoding.topk4 : Encoding.topk2), bytes), "LENGTH_MISMATCH", /topk\d \(k/);
    }
  });

  it("survives 100,000 mutated and random inputs: an artifact or an ArtifactError, nothing else", function () {
    this.timeout(120_000);
    const r = rng(42);
    const seeds = (["f32", "f16", "int8", "topk", "topk4", "topk2"] as const).map((encoding) =>
      encodeArtifact(header(), randomTensors(7, [["a", [8, 4]], ["b", [5]]]), { encoding, chunk: 8, fraction: 0.3 }),
    );
    const counts = { ok: 0, rejected: 0 };
    const codes = new Set<string>();
    for (let i = 0; i < 100_000; i++) {
      let b: Uint8Array;
      const kind = i % 5;
      if (kind === 4) {
        b = Uint8Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256));
        if (r() < 0.5 && b.length >= 4) b.set([0x46, 0x53, 0x54, 0x4b], 0); // get past the magic
      } else {
        b = Uint8Array.from(seeds[Math.floor(r() * seeds.length)]!);
        const flips = 1 + Math.floor(r() * 4);
        for (let f = 0; f < flips; f++) {
          const op = r();
          if (op < 0.6) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
          else if (op < 0.8) b = b.subarray(0, Math.floor(r() * b.length));
          else if (op < 0.9) b = Uint8Array.from([...b, ...Array.from({ length: 1 + Math.floor(r() * 16) }, () => Math.floor(r() * 256))]);
          else {
            const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
            if (b.length >= 4) v.setUint32(Math.floor(r() * (b.length - 3)), Math.floor(r() * 2 ** 32), true);
          }
        }
      }
      try {
        decodeArtifact(b);
        counts.ok++;
      } catch (e) {
        if (!(e instanceof ArtifactError)) throw new Error(`input ${i} (${Buffer.from(b).toString("hex")}) threw ${e}`);
        codes.add(e.code);
        counts.rejected++;
      }
    }
    expect(counts.ok + counts.rejected).to.equal(100_000);
    expect(counts.rejected).to.be.greaterThan(50_000);
    expect(codes.size).to.be.at.least(8);
  });
});

describe("error feedback", function () {
  for (const opts of [{ encoding: "int8", chunk: 64 }, { encoding: "topk", fraction: 0.1 }, { encoding: "topk2", fraction: 0.1 }] as EncodeOptions[]) {
    it(`keeps the cumulative sent update close to the true one (${opts.encoding})`, function () {
      const r = rng(9);
      const n = 2048;
      const drift = Float32Array.from({ length: n }, () => r() - 0.5);
      let ef = new ErrorFeedback();
      const truth = new Float64Array(n);
      const sent = new Float64Array(n);
      const rounds = 40;
      let maxStep = 0;
      for (let t = 0; t < rounds; t++) {
        const u = Float32Array.from(drift, (d) => d * 0.01 + (r() - 0.5) * 0.004);
        maxStep = Math.max(maxStep, maxAbs(u));
        for (let i = 0; i < n; i++) truth[i]! += u[i]!;
        const step = ef.encode(header(), [{ name: "w", shape: [n], data: u }], opts);
        ef = step.next;
        const got = decodeArtifact(step.bytes).tensors[0]!.data;
        for (let i = 0; i < n; i++) sent[i]! += got[i]!;
        // The gap is exactly the residual carried forward.
        const res = ef.residualOf("w")!;
        // (plain comparison: the Hardhat chai plugin turns closeTo into a bigint matcher)
        for (let i = 0; i < n; i += 97) expect(Math.abs(truth[i]! - sent[i]! - res[i]!)).to.be.below(1e-4);
      }
      const gap = Math.max(...truth.map((v, i) => Math.abs(v - sent[i]!)));
      const norm = (a: Float64Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
      const gapNorm = norm(truth.map((v, i) => v - sent[i]!));
      // Bounded by a few rounds' worth of update, not growing with the number of rounds.
      expect(gap).to.be.at.most(opts.encoding === "int8" ? maxStep : 12 * maxStep);
      expect(gapNorm / norm(truth)).to.be.below(opts.encoding === "int8" ? 0.01 : 0.25);
    });
  }

  it("persists its residual, with its tensors' shapes and the header", function () {
    const { next: ef } = new ErrorFeedback().encode(header(), randomTensors(11, MLP), { encoding: "topk", fraction: 0.01 });
    const back = ErrorFeedback.load(ef.save(header({ round: 9 })));
    expect(back.header.round).to.equal(9);
    expect(back.feedback.tensors.map((t) => [t.name, t.shape])).to.deep.equal(MLP);
    expect([...back.feedback.residualOf("fc1.weight")!]).to.deep.equal([...ef.residualOf("fc1.weight")!]);
  });

  it("leaves its own residual alone and refuses a residual that does not fit the update", function () {
    const ef = new ErrorFeedback(randomTensors(12, MLP));
    const before = ef.residualOf("fc1.bias")!;
    ef.encode(header(), randomTensors(13, MLP), { encoding: "topk2", fraction: 0.05 });
    expect([...ef.residualOf("fc1.bias")!]).to.deep.equal([...before]);
    expect(() => ef.encode(header(), randomTensors(13, MLP.slice(1)), { encoding: "int8" })).to.throw(/residual has tensor "fc1.weight", the update has none/);
    expect(() => ef.encode(header(), randomTensors(13, [["fc1.weight", [2]], ...MLP.slice(1)]), { encoding: "int8" })).to.throw(/has 2048 values, update has 2/);
  });
});
