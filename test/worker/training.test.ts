import { expect } from "chai";
import * as ort from "onnxruntime-node";
import { loadMnist } from "../../worker/data/mnist.ts";
import { DataError, type Dataset } from "../../worker/data/dataset.ts";
import { dirichletSplit, iidSplit } from "../../worker/data/partition.ts";
import { gradientModel, initParams, paramsOf } from "../../worker/training/model.ts";
import { prng } from "../../worker/util/prng.ts";
import { SpecError, validateSpec, type Layer, type ModelSpec } from "../../worker/training/spec.ts";
import { createSession, DeviceUnavailableError, evaluate, Trainer } from "../../worker/training/trainer.ts";

const spec = (input: number[], classes: number, layers: Layer[], loss: ModelSpec["loss"] = "softmax_cross_entropy"): ModelSpec => ({
  input,
  classes,
  layers,
  loss,
  seed: 3,
});

/** Random inputs and targets for a tiny batch. */
function batch(s: ModelSpec, n: number, seed: number) {
  const r = prng(seed);
  const f = s.input.reduce((a, b) => a * b, 1);
  const x = Float32Array.from({ length: n * f }, () => r() * 2 - 1);
  const t = new Float32Array(n * s.classes);
  for (let i = 0; i < n; i++) {
    if (s.loss === "mse") for (let c = 0; c < s.classes; c++) t[i * s.classes + c] = r() * 2 - 1;
    else t[i * s.classes + Math.floor(r() * s.classes)] = 1;
  }
  return { x, t };
}

/**
 * Compares the graph's gradients with central finite differences of its own loss, computed in float64
 * from float32 losses: relative error ‖g − ĝ‖ / max(‖g‖, ‖ĝ‖) over a sample of coordinates.
 */
async function gradCheck(s: ModelSpec, n = 3): Promise<number> {
  const session = await createSession(gradientModel(s, n));
  const params = initParams(s);
  // Move parameters off zero so ReLU kinks and zero biases do not sit exactly at the probe points.
  const r = prng(11);
  for (const [, v] of params) for (let i = 0; i < v.length; i++) v[i] = v[i]! + (r() - 0.5) * 0.2;
  const { x, t } = batch(s, n, 5);
  const run = async (ps: Map<string, Float32Array>) => {
    const feeds: Record<string, ort.Tensor> = {
      x: new ort.Tensor("float32", x, [n, ...s.input]),
      t: new ort.Tensor("float32", t, [n, s.classes]),
    };
    for (const p of paramsOf(s)) feeds[p.name] = new ort.Tensor("float32", ps.get(p.name)!, p.shape);
    return session.run(feeds);
  };
  const base = await run(params);
  let num = 0;
  let den = 0;
  for (const p of paramsOf(s)) {
    const g = base[`grad:${p.name}`]!.data as Float32Array;
    const v = params.get(p.name)!;
    const probes = Math.min(v.length, 12);
    for (let k = 0; k < probes; k++) {
      const i = Math.floor((k * v.length) / probes);
      const h = 1e-2;
      const orig = v[i]!;
      v[i] = orig + h;
      const up = ((await run(params)).loss!.data as Float32Array)[0]!;
      v[i] = orig - h;
      const down = ((await run(params)).loss!.data as Float32Array)[0]!;
      v[i] = orig;
      const fd = (up - down) / (2 * h);
      num += (g[i]! - fd) ** 2;
      den += Math.max(g[i]! ** 2, fd ** 2);
    }
  }
  return Math.sqrt(num / den);
}

describe("training engine: gradients", function () {
  this.timeout(120_000);
  // Float32 losses and h = 1e-2: the documented tolerance is 2e-2 relative (float64 would allow 1e-3,
  // but ORT computes in float32); a wrong rule gives errors of order 1.
  const TOL = 2e-2;
  const cases: [string, ModelSpec][] = [
    ["dense + softmax cross-entropy", spec([5], 4, [{ type: "dense", units: 4 }])],
    ["dense + relu", spec([5], 3, [{ type: "dense", units: 6 }, { type: "relu" }, { type: "dense", units: 3 }])],
    ["dense + tanh", spec([5], 3, [{ type: "dense", units: 6 }, { type: "tanh" }, { type: "dense", units: 3 }])],
    ["dense + sigmoid", spec([5], 3, [{ type: "dense", units: 6 }, { type: "sigmoid" }, { type: "dense", units: 3 }])],
    ["mean squared error", spec([4], 2, [{ type: "dense", units: 5 }, { type: "tanh" }, { type: "dense", units: 2 }], "mse")],
    [
      "conv2d (stride 1, padding 1) + flatten",
      spec([2, 5, 5], 3, [{ type: "conv2d", filters: 3, kernel: 3, padding: 1 }, { type: "tanh" }, { type: "flatten" }, { type: "dense", units: 3 }]),
    ],
    [
      "conv2d (stride 2, no padding)",
      spec([1, 6, 6], 2, [{ type: "conv2d", filters: 2, kernel: 3, stride: 2 }, { type: "flatten" }, { type: "dense", units: 2 }]),
    ],
    [
      "maxpool",
      spec([1, 4, 4], 2, [{ type: "conv2d", filters: 2, kernel: 1 }, { type: "maxpool", size: 2 }, { type: "flatten" }, { type: "dense", units: 2 }]),
    ],
    [
      "avgpool",
      spec([1, 4, 4], 2, [{ type: "conv2d", filters: 2, kernel: 1 }, { type: "avgpool", size: 2 }, { type: "flatten" }, { type: "dense", units: 2 }]),
    ],
  ];
  for (const [name, s] of cases) {
    it(`matches central finite differences: ${name}`, async function () {
      const err = await gradCheck(s);
      expect(err).to.be.below(TOL);
    });
  }
});

describe("training engine: specs, determinism, devices, data", function () {
  this.timeout(120_000);
  it("rejects bad specs naming the layer", function () {
    const bad: [unknown, RegExp][] = [
      [{ ...spec([4], 2, [{ type: "dense", units: 2 }]), layers: [{ type: "lstm" }] }, /layer 0: unknown layer type "lstm"/],
      [spec([1, 4, 4], 2, [{ type: "dense", units: 2 }]), /layer 0 \(dense\): needs a flat input, got \[1,4,4\]/],
      [spec([4], 2, [{ type: "conv2d", filters: 2, kernel: 3 }]), /layer 0 \(conv2d\): needs a \[channels, height, width\] input/],
      [spec([1, 2, 2], 2, [{ type: "conv2d", filters: 2, kernel: 3 }]), /layer 0 \(conv2d\): kernel 3 does not fit a 2×2 input/],
      [spec([4], 3, [{ type: "dense", units: 2 }]), /outputs \[2\], but spec.classes is 3/],
      [{ ...spec([4], 2, [{ type: "dense", units: 2 }]), loss: "hinge" }, /spec.loss/],
      // A misspelt parameter is refused, not ignored (stride would silently stay 1).
      [spec([1, 4, 4], 2, [{ type: "conv2d", filters: 2, kernel: 3, strides: 2 } as unknown as Layer, { type: "flatten" }, { type: "dense", units: 2 }]), /layer 0 \(conv2d\): unknown field "strides" \(it has: type, filters, kernel, stride, padding\)/],
      [spec([4], 2, [{ type: "relu", units: 3 } as unknown as Layer, { type: "dense", units: 2 }]), /layer 0 \(relu\): unknown field "units" \(it has: type\)/],
      [{ ...spec([4], 2, [{ type: "dense", units: 2 }]), clases: 2 }, /spec: unknown field "clases"/],
    ];
    for (const [s, re] of bad) expect(() => validateSpec(s)).to.throw(SpecError, re);
  });

  it("gives bit-identical initial weights and identical training results for the same spec and seed", async function () {
    const s = spec([784], 10, [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 10 }]);
    const a = initParams(s);
    const b = initParams(s);
    for (const [k, v] of a) expect(Buffer.from(v.buffer).equals(Buffer.from(b.get(k)!.buffer)), k).to.equal(true);
    expect(Buffer.from(initParams({ ...s, seed: 4 }).get("l0.weight")!.buffer).equals(Buffer.from(a.get("l0.weight")!.buffer))).to.equal(false);
    const data = await loadMnist("train", 512);
    const run = async () => {
      const t = await Trainer.create(s, { batch: 32, steps: 4, optimizer: { kind: "adam", lr: 1e-3 } });
      const losses = await t.train(data, { epochs: 1, seed: 9 });
      return { losses, w: t.params.get("l0.weight")! };
    };
    const [r1, r2] = [await run(), await run()];
    expect(Buffer.from(r1.losses.buffer).equals(Buffer.from(r2.losses.buffer))).to.equal(true);
    expect(Buffer.from(r1.w.buffer).equals(Buffer.from(r2.w.buffer))).to.equal(true);
  });

  it("trains to a time budget: at least the minimum epochs, more while time lasts, never past maxEpochs", async function () {
    const s = spec([784], 10, [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 10 }]);
    const data = await loadMnist("train", 256);
    const t = await Trainer.create(s, { batch: 32, steps: 4, optimizer: { kind: "sgd", lr: 0.01 } });
    const perEpoch = 256 / 32;
    // No time left: exactly the minimum.
    expect((await t.train(data, { epochs: 2, seed: 1, until: performance.now() })).length).to.equal(2 * perEpoch);
    // Time left: more than the minimum (in whole session.runs of 4 steps), capped by maxEpochs.
    const long = await t.train(data, { epochs: 1, seed: 1, until: performance.now() + 60_000, maxEpochs: 3 });
    expect(long.length).to.equal(3 * perEpoch);
    const t0 = performance.now();
    const some = await t.train(data, { epochs: 1, seed: 1, until: t0 + 2000 });
    expect(some.length).to.be.above(perEpoch);
    expect(some.length % 4).to.equal(0);
  });

  it("says clearly why a GPU device is unavailable", async function () {
    const s = spec([4], 2, [{ type: "dense", units: 2 }]);
    for (const device of ["cuda", "webgpu"] as const) {
      let err: unknown;
      try {
        await Trainer.create(s, { batch: 2, steps: 1, optimizer: { kind: "sgd", lr: 0.1 }, device });
      } catch (e) {
        err = e;
      }
      // Where the machine has the device, training works; where not, the error names it.
      if (err !== undefined) {
        expect(err).to.be.instanceOf(DeviceUnavailableError);
        expect(String(err)).to.match(new RegExp(`device "${device}" is not available here: .+`));
      }
    }
  });

  it("splits data IID and by Dirichlet(α), seeded, and refuses nonsense", async function () {
    const d: Dataset = await loadMnist("train", 2000);
    const iid = iidSplit(d, 4, 1);
    expect(iid.map((p) => p.n)).to.deep.equal([500, 500, 500, 500]);
    const skewed = dirichletSplit(d, 4, 0.1, 1);
    expect(skewed.reduce((a, p) => a + p.n, 0)).to.equal(2000);
    const classesSeen = (p: Dataset) => new Set(p.labels).size;
    const mostSkewed = Math.min(...skewed.map(classesSeen));
    expect(mostSkewed).to.be.below(Math.min(...iid.map(classesSeen)));
    const again = dirichletSplit(d, 4, 0.1, 1);
    expect(again.map((p) => p.n)).to.deep.equal(skewed.map((p) => p.n));
    expect(() => dirichletSplit(d, 4, 0, 1)).to.throw(DataError, /α must be positive/);
    expect(() => iidSplit(d, 0, 1)).to.throw(DataError);
  });
});

describe("training engine: learning", function () {
  this.timeout(600_000);
  it("an MLP on 10k MNIST images reaches ≥ 90% test accuracy", async function () {
    const s = spec([784], 10, [{ type: "dense", units: 128 }, { type: "relu" }, { type: "dense", units: 10 }]);
    const [train, test] = [await loadMnist("train", 10_000), await loadMnist("test")];
    const t = await Trainer.create(s, { batch: 64, steps: 16, optimizer: { kind: "sgd", lr: 0.05, momentum: 0.9 } });
    await t.train(train, { epochs: 3, seed: 1 });
    const { accuracy } = await evaluate(s, t.params, test);
    console.log(`      MLP test accuracy ${(accuracy * 100).toFixed(2)}%`);
    expect(accuracy).to.be.at.least(0.9);
  });

  it("a small CNN learns (loss falls clearly)", async function () {
    const s = spec([1, 28, 28], 10, [
      { type: "conv2d", filters: 4, kernel: 5, stride: 2 },
      { type: "relu" },
      { type: "maxpool", size: 2 },
      { type: "flatten" },
      { type: "dense", units: 10 },
    ]);
    const train = await loadMnist("train", 2048);
    const t = await Trainer.create(s, { batch: 32, steps: 8, optimizer: { kind: "adam", lr: 3e-3 } });
    const before = await evaluate(s, t.params, train);
    await t.train(train, { epochs: 2, seed: 2 });
    const after = await evaluate(s, t.params, train);
    console.log(`      CNN loss ${before.loss.toFixed(3)} → ${after.loss.toFixed(3)}, accuracy ${(after.accuracy * 100).toFixed(1)}%`);
    expect(after.loss).to.be.below(before.loss * 0.5);
  });
});

describe("data loaders reject bad files by name and line", function () {
  it("CSV: wrong width, non-numbers, labels out of range, missing label column", async function () {
    const { mkdtemp, writeFile } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { loadCsv } = await import("../../worker/data/csv.ts");
    const dir = await mkdtemp(join(tmpdir(), "fedstake-csv-"));
    const file = join(dir, "d.csv");
    const load = async (text: string, label = "y") => {
      await writeFile(file, text);
      return loadCsv(file, { label, classes: 3 });
    };
    const ok = await load("a,b,y\n1,2,0\n3,4,2\n");
    expect(ok.n).to.equal(2);
    expect([...ok.x]).to.deep.equal([1, 2, 3, 4]);
    expect([...ok.labels!]).to.deep.equal([0, 2]);
    const fails: [string, RegExp, string?][] = [
      ["a,b,y\n1,2,0\n3,4\n", /d\.csv:3: 2 columns, the header has 3/],
      ["a,b,y\n1,x,0\n", /d\.csv:2: column "b" is not a number: "x"/],
      ["a,b,y\n1,2,3\n", /d\.csv:2: label 3 is out of range 0\.\.2/],
      ["a,b,y\n1,2,0\n", /no column named "label"/, "label"],
    ];
    for (const [text, re, label] of fails) {
      let err: unknown;
      try {
        await load(text, label);
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(DataError);
      expect(String(err)).to.match(re);
    }
  });

  it("IDX: wrong magic and lying counts", async function () {
    const { parseIdx } = await import("../../worker/data/idx.ts");
    expect(() => parseIdx(Uint8Array.of(0, 0, 9, 1, 0, 0, 0, 1, 5), "f.idx")).to.throw(DataError, /f\.idx: not an unsigned-byte IDX file/);
    expect(() => parseIdx(Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 3, 5), "f.idx")).to.throw(DataError, /f\.idx: header promises 3 values .*holds 1/);
    expect(parseIdx(Uint8Array.of(0, 0, 8, 1, 0, 0, 0, 2, 5, 6), "f.idx").dims).to.deep.equal([2]);
  });
});
