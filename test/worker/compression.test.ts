/**
 * Update compression in the worker: the job spec's "compression" object, and the error-feedback residual
 * a WorkerRole keeps in its data directory across restarts (worker/node/residual.ts). The worker runs its
 * real commit step against a stand-in context (no chain: its transactions succeed, its store keeps bytes
 * by CID); the update it submits comes from a hook, so the true update of every round is known.
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { decodeArtifact, ErrorFeedback, type Tensor } from "../../worker/artifacts/index.ts";
import { Phase } from "../../worker/chain/protocol.ts";
import type { Dataset } from "../../worker/data/dataset.ts";
import type { NodeContext } from "../../worker/node/context.ts";
import { DEFAULT_COMPRESSION, encodingOf, parseCompression, parseJobSpec, type Compression } from "../../worker/node/jobSpec.ts";
import { StateFile } from "../../worker/node/state.ts";
import { WorkerRole } from "../../worker/node/workerRole.ts";
import { initParams, paramsOf } from "../../worker/training/model.ts";
import { MNIST_MLP } from "../../worker/training/presets.ts";
import type { ModelSpec } from "../../worker/training/spec.ts";
import { prng } from "../../worker/util/prng.ts";

describe("job spec: compression", function () {
  it("defaults to int8, parses every kind, and writes back to itself", function () {
    expect(parseCompression(undefined)).to.deep.equal({ kind: "int8" });
    expect(parseJobSpec({ model: MNIST_MLP }).compression).to.deep.equal(DEFAULT_COMPRESSION);
    for (const kind of ["none", "f16", "int8"] as const) expect(parseCompression({ kind })).to.deep.equal({ kind });
    expect(parseCompression({ kind: "topk", fraction: 0.01, bits: 2 })).to.deep.equal({ kind: "topk", fraction: 0.01, bits: 2 });
    expect(parseCompression({ kind: "topk" })).to.deep.equal({ kind: "topk", fraction: 0.01, bits: 8 });
    const spec = parseJobSpec({ model: MNIST_MLP, compression: { kind: "topk", fraction: 0.05, bits: 4 } });
    expect(parseJobSpec(JSON.parse(JSON.stringify(spec)))).to.deep.equal(spec);
  });

  it("maps each kind to its encoding; only 'none' is lossless", function () {
    expect(encodingOf({ kind: "none" })).to.deep.equal({ options: { encoding: "f32" }, lossy: false });
    expect(encodingOf({ kind: "int8" })).to.deep.equal({ options: { encoding: "int8" }, lossy: true });
    expect(encodingOf({ kind: "f16" })).to.deep.equal({ options: { encoding: "f16" }, lossy: true });
    expect(encodingOf({ kind: "topk", fraction: 0.02, bits: 8 })).to.deep.equal({ options: { encoding: "topk", fraction: 0.02, across: "update" }, lossy: true });
    expect(encodingOf({ kind: "topk", fraction: 0.02, bits: 4 }).options.encoding).to.equal("topk4");
    expect(encodingOf({ kind: "topk", fraction: 0.02, bits: 2 }).options.encoding).to.equal("topk2");
  });

  it("refuses bad values with errors that name the field", function () {
    const bad = (c: unknown) => () => parseJobSpec({ model: MNIST_MLP, compression: c });
    expect(bad("topk")).to.throw(/job spec: compression must be an object/);
    expect(bad({ kind: "zstd" })).to.throw(/job spec: compression\.kind must be one of "none", "f16", "int8", "topk", got "zstd"/);
    expect(bad({})).to.throw(/compression\.kind must be one of .* got nothing/);
    expect(bad({ kind: "topk", fraction: 0 })).to.throw(/compression\.fraction must be a number in \(0, 1\], got 0/);
    expect(bad({ kind: "topk", fraction: 1.5 })).to.throw(/compression\.fraction must be a number in \(0, 1\]/);
    expect(bad({ kind: "topk", bits: 3 })).to.throw(/compression\.bits must be 2, 4 or 8, got 3/);
    expect(bad({ kind: "topk", k: 10 })).to.throw(/compression\.k is not a parameter of "topk" \(it takes fraction, bits\)/);
    expect(bad({ kind: "int8", bits: 8 })).to.throw(/compression\.bits is not a parameter of "int8" \(it takes none\)/);
  });
});

/** A small model: 40 inputs → 3 classes, so a round is quick and top-1% still keeps a few values per tensor. */
const SPEC: ModelSpec = { input: [40], classes: 3, seed: 3, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 30 }, { type: "relu" }, { type: "dense", units: 3 }] };
const WORKER = "0x00000000000000000000000000000000000000aa";
const JOB = 7n;
const data: Dataset = { n: 8, features: 40, x: new Float32Array(8 * 40), labels: Int32Array.from({ length: 8 }, (_, i) => i % 3) };
const base: Tensor[] = paramsOf(SPEC).map((p) => ({ name: p.name, shape: p.shape, data: initParams(SPEC).get(p.name)! }));
const baseCid = CID.create(1, raw.code, await sha256.digest(new Uint8Array([1])));

/** The true update of round r (the same for every run): a steady drift plus round-to-round noise. */
function trueUpdate(r: number): Tensor[] {
  const drift = prng(1);
  const noise = prng(100 + r);
  return base.map((t) => ({ name: t.name, shape: t.shape, data: Float32Array.from(t.data, () => (drift() - 0.5) * 0.01 + (noise() - 0.5) * 0.01) }));
}

/** A worker process on `dir`: a new WorkerRole and context each call (what a restart gives). */
function workerOn(dir: string, compression: Compression, blobs: Map<string, Uint8Array>, events: { event: string; reason?: string }[]) {
  const ctx = {
    cfg: { name: "w", dataDir: dir, train: { epochs: 1, batch: 4, lr: 0.1, momentum: 0, threads: 1 } },
    jobId: JOB,
    wallet: { address: WORKER },
    spec: SPEC,
    job: { model: SPEC, compression },
    state: new StateFile(dir, "test"),
    store: {
      add: async (b: Uint8Array) => {
        const cid = CID.create(1, raw.code, await sha256.digest(b));
        blobs.set(cid.toString(), b);
        return cid;
      },
    },
    baseModel: async () => ({ cid: baseCid, tensors: base }),
    config: async () => ({ maxSamplesPerUpdate: 1000n }),
    dataset: async () => data,
    log: (event: string, fields: Record<string, unknown> = {}) => events.push({ event, ...fields }),
    send: async () => ({ hash: "0x01" }),
    decidedUnsettled: async function* () {},
  } as unknown as NodeContext;
  return { role: new WorkerRole(ctx, { skipTraining: true, update: async ({ round }) => trueUpdate(Number(round)) }), ctx };
}

/** Runs rounds `from`..`to` in one process; returns what it sent each round (decoded, end to end). */
async function run(dir: string, compression: Compression, from: number, to: number, events: { event: string; reason?: string }[] = []) {
  const blobs = new Map<string, Uint8Array>();
  const { role, ctx } = workerOn(dir, compression, blobs, events);
  const sent: { bytes: Uint8Array; values: Float64Array }[] = [];
  for (let r = from; r <= to; r++) {
    await role.tick(BigInt(r), Phase.Commit);
    const bytes = blobs.get(ctx.state.round(r).cid!)!;
    sent.push({ bytes, values: Float64Array.from(decodeArtifact(bytes).tensors.flatMap((t) => [...t.data])) });
  }
  return sent;
}

const flatTrue = (r: number) => Float64Array.from(trueUpdate(r).flatMap((t) => [...t.data]));
const sum = (vs: Float64Array[]) => vs.reduce((acc, v) => acc.map((a, i) => a + v[i]!), new Float64Array(vs[0]!.length));
const norm = (v: Float64Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const residualFile = (dir: string) => join(dir, `residual-${JOB}.fstk`);
const residualOn = (dir: string) => {
  const { header, feedback } = ErrorFeedback.load(readFileSync(residualFile(dir)));
  return { header, residual: Float64Array.from(feedback.tensors.flatMap((t) => [...t.data])) };
};
/** Cumulative true − cumulative sent over the rounds `sent` covers (from round 1). */
const gapOf = (sent: { values: Float64Array }[]) => {
  const truth = sum(sent.map((_, r) => flatTrue(r + 1)));
  const total = sum(sent.map((s) => s.values));
  return truth.map((v, i) => v - total[i]!);
};

describe("worker: error feedback across restarts", function () {
  this.timeout(120_000);
  const TOPK: Compression = { kind: "topk", fraction: 0.05, bits: 2 };
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "fedstake-residual-"));
    dirs.push(d);
    return d;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  let uninterrupted: Awaited<ReturnType<typeof run>>;
  before(async () => {
    uninterrupted = await run(tmp(), TOPK, 1, 6);
  });

  it("a restarted worker sends what it would have sent without the restart, and stays within one round's compression error", async function () {
    const dir = tmp();
    const sent = [...(await run(dir, TOPK, 1, 3)), ...(await run(dir, TOPK, 4, 6))];
    for (let r = 0; r < 6; r++) expect(Buffer.from(sent[r]!.bytes).equals(Buffer.from(uninterrupted[r]!.bytes)), `round ${r + 1}`).to.equal(true);
    // Cumulative true − cumulative sent is exactly the residual on disk: round 6's compression error.
    const { header, residual } = residualOn(dir);
    expect(header.round).to.equal(6);
    const gap = gapOf(sent);
    expect(norm(gap.map((g, i) => g - residual[i]!))).to.be.below(1e-5 * norm(gap));
  });

  it("without the residual file the restart loses what compression held back", async function () {
    const dir = tmp();
    const events: { event: string; reason?: string }[] = [];
    const first = await run(dir, TOPK, 1, 3);
    const lost = residualOn(dir).residual;
    rmSync(residualFile(dir));
    const sent = [...first, ...(await run(dir, TOPK, 4, 6, events))];
    expect(events.find((e) => e.event === "residual-discarded")?.reason).to.match(/residual-7\.fstk is missing \(the update of round 3 left one\)/);
    expect(Buffer.from(sent[3]!.bytes).equals(Buffer.from(uninterrupted[3]!.bytes))).to.equal(false);
    // The sent updates now fall short of the true ones by the lost residual, for good.
    const { residual } = residualOn(dir);
    const shortfall = gapOf(sent).map((g, i) => g - residual[i]!);
    expect(norm(lost)).to.be.above(0.1 * norm(flatTrue(3)));
    expect(norm(shortfall.map((v, i) => v - lost[i]!))).to.be.below(1e-5 * norm(lost));
  });

  it("reports and discards a corrupt residual, another job's, and one the state file never recorded", async function () {
    const cases: [string, (dir: string) => void, RegExp][] = [
      ["corrupt", (dir) => writeFileSync(residualFile(dir), readFileSync(residualFile(dir)).subarray(0, 100)), /is corrupt: TRUNCATED/],
      [
        "another job's",
        (dir) => {
          const { header, feedback } = ErrorFeedback.load(readFileSync(residualFile(dir)));
          writeFileSync(residualFile(dir), feedback.save({ ...header, jobId: 8n }));
        },
        /is for job 8, not 7/,
      ],
      [
        // A crash after the residual was written and before the update was recorded.
        "unrecorded",
        (dir) => {
          const state = JSON.parse(readFileSync(join(dir, "state.json"), "utf8"));
          delete state.jobs.test.rounds["3"];
          writeFileSync(join(dir, "state.json"), JSON.stringify(state));
        },
        /was left by round 3's update, the last recorded update is round 2's/,
      ],
    ];
    for (const [what, spoil, reason] of cases) {
      const dir = tmp();
      await run(dir, TOPK, 1, 3);
      spoil(dir);
      const events: { event: string; reason?: string }[] = [];
      const next = await run(dir, TOPK, 4, 4, events);
      expect(events.filter((e) => e.event === "residual-discarded").map((e) => e.reason), what).to.have.length(1);
      expect(events.find((e) => e.event === "residual-discarded")!.reason, what).to.match(reason);
      // Discarded, not used: round 4 is what a worker with no residual sends.
      const fresh = new ErrorFeedback().encode(decodeArtifact(next[0]!.bytes).header, trueUpdate(4), encodingOf(TOPK).options).bytes;
      expect(Buffer.from(next[0]!.bytes).equals(Buffer.from(fresh)), what).to.equal(true);
    }
  });

  it("keeps no residual for uncompressed updates", async function () {
    const dir = tmp();
    const sent = await run(dir, { kind: "none" }, 1, 2);
    expect([...sent[1]!.values]).to.deep.equal([...flatTrue(2)].map(Math.fround));
    expect(() => readFileSync(residualFile(dir))).to.throw(/ENOENT/);
  });
});
