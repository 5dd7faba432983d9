/**
 * `npm run bench:train` — training speed of fedstake's ONNX training graphs (onnxruntime-node, CPU)
 * against TensorFlow.js (wasm and plain cpu backends) on the identical model, batch, optimizer and
 * data, in one run; the machine's ceiling from ORT's own MatMul throughput on the training step's
 * matrix shapes; and MNIST MLP accuracy after 3 epochs. Writes train.json to bench/results/local/
 * (--update: the committed bench/results/; --out DIR).
 */
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as tf from "@tensorflow/tfjs";
import { setWasmPaths } from "@tensorflow/tfjs-backend-wasm";
import * as ort from "onnxruntime-node";
import { benchOutDir, outFromArgv, shown } from "./bench-out.ts";
import { loadMnist } from "../worker/data/mnist.ts";
import type { Dataset } from "../worker/data/dataset.ts";
import { GraphBuilder } from "../worker/training/graph.ts";
import { modelBytes } from "../worker/training/onnx.ts";
import type { ModelSpec } from "../worker/training/spec.ts";
import { createSession, evaluate, Trainer } from "../worker/training/trainer.ts";

/** --out DIR or --update (checked before the long run starts; see bench-out.ts). */
const OUT = outFromArgv();
const B = 64;
const LR = 0.05;
const MOMENTUM = 0.9;
const STEPS = Number(process.env.BENCH_TRAIN_STEPS ?? 200);
const ROUNDS = 5;
const results: Record<string, number | string> = {};

const MLP: ModelSpec = {
  input: [784],
  classes: 10,
  seed: 1,
  loss: "softmax_cross_entropy",
  layers: [{ type: "dense", units: 256 }, { type: "relu" }, { type: "dense", units: 128 }, { type: "relu" }, { type: "dense", units: 10 }],
};
const CNN: ModelSpec = {
  input: [1, 28, 28],
  classes: 10,
  seed: 1,
  loss: "softmax_cross_entropy",
  layers: [
    { type: "conv2d", filters: 8, kernel: 5, padding: 2 },
    { type: "relu" },
    { type: "maxpool", size: 2 },
    { type: "flatten" },
    { type: "dense", units: 10 },
  ],
};

/** Returns a function that measures fedstake's training samples/s over `steps` steps (50 per run). */
async function fedstakeMeter(spec: ModelSpec, data: Dataset, steps: number): Promise<() => Promise<number>> {
  const k = 50;
  const t = await Trainer.create(spec, { batch: B, steps: k, optimizer: { kind: "sgd", lr: LR, momentum: MOMENTUM } });
  const idx = Uint32Array.from({ length: data.n }, (_, i) => i);
  await t.runSteps(data, idx.subarray(0, k * B), k); // warm-up
  return async () => {
    const t0 = performance.now();
    for (let s = 0; s < steps; s += k) await t.runSteps(data, idx.subarray(s * B, (s + k) * B), k);
    return (steps * B) / ((performance.now() - t0) / 1000);
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

function tfModel(kind: "mlp" | "cnn"): tf.Sequential {
  const m = tf.sequential();
  if (kind === "mlp") {
    m.add(tf.layers.dense({ inputShape: [784], units: 256, activation: "relu" }));
    m.add(tf.layers.dense({ units: 128, activation: "relu" }));
    m.add(tf.layers.dense({ units: 10 }));
  } else {
    m.add(tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 8, kernelSize: 5, padding: "same", activation: "relu" }));
    m.add(tf.layers.maxPooling2d({ poolSize: 2 }));
    m.add(tf.layers.flatten());
    m.add(tf.layers.dense({ units: 10 }));
  }
  return m;
}

async function tfjsSamplesPerS(backend: "wasm" | "cpu", kind: "mlp" | "cnn", data: Dataset, steps: number): Promise<number> {
  await tf.setBackend(backend);
  await tf.ready();
  const model = tfModel(kind);
  const opt = tf.train.momentum(LR, MOMENTUM);
  const f = data.features;
  const batches = Array.from({ length: steps + 1 }, (_, s) => {
    const x = data.x.slice(s * B * f, (s + 1) * B * f);
    const y = new Float32Array(B * 10);
    for (let i = 0; i < B; i++) y[i * 10 + data.labels![s * B + i]!] = 1;
    return { x, y };
  });
  const step = (s: number) =>
    tf.tidy(() => {
      const x = kind === "mlp" ? tf.tensor2d(batches[s]!.x, [B, 784]) : tf.tensor4d(batches[s]!.x, [B, 28, 28, 1]);
      const y = tf.tensor2d(batches[s]!.y, [B, 10]);
      opt.minimize(() => tf.losses.softmaxCrossEntropy(y, model.predict(x) as tf.Tensor) as tf.Scalar);
    });
  step(steps); // warm-up
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) step(s);
  await tf.backend().read?.(tf.scalar(0).dataId);
  const rate = (steps * B) / ((performance.now() - t0) / 1000);
  model.dispose();
  return rate;
}

/**
 * The ceiling: ORT running exactly the MatMuls of one MLP training step (forward, weight gradients,
 * input gradients of the hidden layers) K times inside one Loop, as the training graph does; nothing
 * else. samples/s = B / time per step.
 */
async function ceilingMeter(k = 50): Promise<() => Promise<{ rate: number; gflops: number }>> {
  const b = new GraphBuilder("c_");
  const dims = [784, 256, 128, 10];
  const inputs: [string, number[]][] = [];
  let acc = b.declare("acc:in", []);
  let flops = 0;
  const mm = (m: number, kk: number, n: number) => {
    const a = b.declare(`a${inputs.length}`, [m, kk]);
    inputs.push([a, [m, kk]]);
    const w = b.declare(`a${inputs.length}`, [kk, n]);
    inputs.push([w, [kk, n]]);
    // Keep every product alive (summed into the loop-carried accumulator) so none is optimised away.
    acc = b.add(acc, b.reduceSum(b.matmul(a, w), [0, 1], false));
    flops += 2 * m * kk * n;
  };
  for (let l = 0; l < 3; l++) {
    const [i, o] = [dims[l]!, dims[l + 1]!];
    mm(B, i, o); // forward
    mm(i, B, o); // dW = xᵀ · dY
    if (l > 0) mm(B, o, i); // dX = dY · Wᵀ (not needed for the input layer)
  }
  b.nodes.push({ op: "Identity", inputs: ["cond:in"], outputs: ["cond:out"] }, { op: "Identity", inputs: [acc], outputs: ["acc:out"] });
  const f = (name: string, shape: number[]) => ({ name, dtype: "float" as const, shape });
  const bytes = modelBytes({
    name: "ceiling",
    nodes: [
      { op: "Constant", inputs: [], outputs: ["trip"], attrs: { value: { name: "trip", dtype: "int64", dims: [], data: BigInt64Array.of(BigInt(k)) } } },
      { op: "Constant", inputs: [], outputs: ["cond"], attrs: { value: { name: "cond", dtype: "bool", dims: [], data: Uint8Array.of(1) } } },
      {
        op: "Loop",
        inputs: ["trip", "cond", "acc0"],
        outputs: ["acc"],
        attrs: {
          body: {
            name: "matmuls",
            nodes: b.nodes,
            inputs: [{ name: "iter", dtype: "int64", shape: [] }, { name: "cond:in", dtype: "bool", shape: [] }, f("acc:in", [])],
            outputs: [{ name: "cond:out", dtype: "bool", shape: [] }, f("acc:out", [])],
            initializers: [],
          },
        },
      },
    ],
    inputs: [f("acc0", []), ...inputs.map(([name, shape]) => f(name, shape))],
    outputs: [f("acc", [])],
    initializers: [],
  });
  const s = await createSession(bytes);
  const feeds: Record<string, ort.Tensor> = { acc0: new ort.Tensor("float32", Float32Array.of(0), []) };
  for (const [name, shape] of inputs) feeds[name] = new ort.Tensor("float32", new Float32Array(shape.reduce((x, y) => x * y, 1)).fill(0.01), shape);
  for (let i = 0; i < 3; i++) await s.run(feeds);
  return async () => {
    const reps = 4;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await s.run(feeds);
    const perStep = (performance.now() - t0) / 1000 / (reps * k);
    return { rate: B / perStep, gflops: flops / perStep / 1e9 };
  };
}

async function main() {
  const wasmDir = join(dirname(createRequire(import.meta.url).resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/";
  setWasmPaths(wasmDir);
  const train = await loadMnist("train", (STEPS + 1) * B);
  const r = (x: number) => Math.round(x);

  console.log(`MLP 784-256-128-10, batch ${B}, SGD (lr ${LR}, momentum ${MOMENTUM}), ${STEPS} steps each`);
  // This machine is noisy: interleave the measurements (fedstake, ceiling, tfjs-wasm) and report medians.
  const fed = await fedstakeMeter(MLP, train, STEPS);
  const ceil = await ceilingMeter();
  const [fedRates, ceilRates, gflops, wasmRates] = [[], [], [], []] as number[][];
  for (let rep = 0; rep < ROUNDS; rep++) {
    fedRates.push(await fed());
    const c = await ceil();
    ceilRates.push(c.rate);
    gflops.push(c.gflops);
    wasmRates.push(await tfjsSamplesPerS("wasm", "mlp", train, STEPS / 2));
  }
  results.fedstake_samples_per_s = r(median(fedRates));
  results.tfjs_wasm_samples_per_s = r(median(wasmRates));
  results.tfjs_cpu_samples_per_s = r(await tfjsSamplesPerS("cpu", "mlp", train, Math.max(10, STEPS / 10)));
  results.ceiling_samples_per_s = r(median(ceilRates));
  results.ceiling_matmul_gflops = Math.round(median(gflops) * 10) / 10;
  results.ratio_vs_tfjs_wasm = Math.round(median(fedRates.map((f, i) => f / wasmRates[i]!)) * 100) / 100;
  results.fraction_of_ceiling = Math.round(median(fedRates.map((f, i) => f / ceilRates[i]!)) * 1000) / 1000;
  results.rounds = ROUNDS;
  for (const k of ["fedstake_samples_per_s", "tfjs_wasm_samples_per_s", "tfjs_cpu_samples_per_s", "ceiling_samples_per_s"]) {
    console.log(`  ${k.padEnd(26)} ${results[k]}`);
  }

  console.log(`CNN conv(8, 5×5, same)-relu-maxpool(2)-dense(10), batch ${B}`);
  const cnnSteps = Math.max(20, STEPS / 4);
  results.cnn_fedstake_samples_per_s = r(await (await fedstakeMeter(CNN, train, cnnSteps))());
  results.cnn_tfjs_cpu_samples_per_s = r(await tfjsSamplesPerS("cpu", "cnn", train, 10));
  results.cnn_ratio_vs_tfjs_cpu =
    Math.round(((results.cnn_fedstake_samples_per_s as number) / (results.cnn_tfjs_cpu_samples_per_s as number)) * 100) / 100;
  try {
    results.cnn_tfjs_wasm_samples_per_s = r(await tfjsSamplesPerS("wasm", "cnn", train, cnnSteps));
    results.cnn_ratio_vs_tfjs_wasm =
      Math.round(((results.cnn_fedstake_samples_per_s as number) / (results.cnn_tfjs_wasm_samples_per_s as number)) * 100) / 100;
  } catch (e) {
    // tfjs's wasm backend cannot train convolutions (no Conv2DBackpropFilter kernel): say so in the results.
    results.cnn_tfjs_wasm_samples_per_s = `unsupported: ${(e as Error).message}`;
  }

  console.log("MLP trained centrally on 60k MNIST for 3 epochs…");
  const [full, test] = [await loadMnist("train"), await loadMnist("test")];
  const t = await Trainer.create(MLP, { batch: B, steps: 50, optimizer: { kind: "sgd", lr: LR, momentum: MOMENTUM } });
  const t0 = performance.now();
  await t.train(full, {
    epochs: 3,
    seed: 1,
    onProgress: (done, total, loss) => {
      if (done % 500 === 0 || done === total) process.stdout.write(`\r  step ${done}/${total}  loss ${loss.toFixed(4)}   `);
    },
  });
  process.stdout.write("\n");
  results.mlp_3epoch_train_s = Math.round((performance.now() - t0) / 100) / 10;
  results.mlp_3epoch_test_acc = Math.round((await evaluate(MLP, t.params, test)).accuracy * 10000) / 10000;

  console.log("\n key                          value");
  for (const [k, v] of Object.entries(results)) console.log(` ${k.padEnd(28)} ${v}`);
  const file = join(benchOutDir(OUT), "train.json");
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${shown(file)}`);
}

await main();
