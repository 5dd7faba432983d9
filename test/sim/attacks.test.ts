import { expect } from "chai";
import type { Tensor } from "../../worker/artifacts/index.ts";
import type { Dataset } from "../../worker/data/dataset.ts";
import { prng } from "../../worker/util/prng.ts";
import { ATTACKS, attackByName, hooksFor, type Attack, type AttackRound, type AttackSources } from "../../sim/attacks/index.ts";
import { ALIE_Z } from "../../sim/attacks/alie.ts";
import { BACKDOOR_FRACTION, BACKDOOR_TARGET, triggerIndices } from "../../sim/attacks/backdoor.ts";
import { SIGNFLIP_SCALE } from "../../sim/attacks/signflip.ts";
import { COPY_MARGIN_S, daemonSources } from "../../sim/adversary.ts";
import { encodeArtifact } from "../../worker/artifacts/index.ts";
import type { NodeContext } from "../../worker/node/context.ts";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";

const SELF = "0x00000000000000000000000000000000000000Aa";
const OTHER_A = "0x0000000000000000000000000000000000000001";
const OTHER_B = "0x0000000000000000000000000000000000000002";

/** Two tensors (a 2 × 3 weight and a bias of 3) with values from `f`. */
const tensors = (f: (i: number) => number): Tensor[] => [
  { name: "w", shape: [2, 3], data: Float32Array.from({ length: 6 }, (_, i) => f(i)) },
  { name: "b", shape: [3], data: Float32Array.from({ length: 3 }, (_, i) => f(6 + i)) },
];
const values = (d: Tensor[]) => d.flatMap((t) => [...t.data]);
const own = tensors((i) => i - 4.5);

const roundOf = (over: Partial<AttackRound> = {}): AttackRound => ({
  round: 2,
  base: tensors(() => 0),
  own,
  colluders: [own],
  previous: [],
  self: SELF,
  rand: prng(7),
  ...over,
});
const craft = (a: Attack, over: Partial<AttackRound> = {}) => a.craft!(roundOf(over));

/** `n` samples of `features` values in [0, 0.9) with labels in [1, classes). */
function dataset(n: number, features: number, classes = 10, seed = 3): Dataset {
  const r = prng(seed);
  return {
    n,
    features,
    x: Float32Array.from({ length: n * features }, () => r() * 0.9),
    labels: Int32Array.from({ length: n }, () => 1 + Math.floor(r() * (classes - 1))),
  };
}
const snapshot = (d: Dataset) => ({ x: Float32Array.from(d.x), labels: Int32Array.from(d.labels!) });

describe("sim/attacks: the adversary library", function () {
  it("signflip submits −4 × its honest update", function () {
    expect(SIGNFLIP_SCALE).to.equal(4);
    expect(values(craft(ATTACKS.signflip!))).to.deep.equal(values(own).map((v) => Math.fround(-4 * v)));
    expect(ATTACKS.signflip!.skipsTraining).to.not.equal(true);
  });

  it("scaled submits +10 × its honest update", function () {
    expect(values(craft(ATTACKS.scaled!))).to.deep.equal(values(own).map((v) => Math.fround(10 * v)));
  });

  it("noise has its honest update's norm, about zero cosine to it, and follows rand", function () {
    const a = ATTACKS.noise!;
    expect(a.skipsTraining).to.equal(false);
    const r = prng(1);
    const big: Tensor[] = [{ name: "w", shape: [20_000], data: Float32Array.from({ length: 20_000 }, () => r() - 0.3) }];
    const out = a.craft!(roundOf({ own: big, rand: prng(5) }));
    expect(out[0]!.shape).to.deep.equal([20_000]);
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    expect(Math.abs(norm(out[0]!.data) - norm(big[0]!.data))).to.be.below(1e-3 * norm(big[0]!.data)); // (the Hardhat chai plugin makes closeTo a bigint matcher)
    const cos = out[0]!.data.reduce((s, x, i) => s + x * big[0]!.data[i]!, 0) / (norm(out[0]!.data) * norm(big[0]!.data));
    expect(Math.abs(cos)).to.be.below(0.05);
    // Deterministic given rand; another stream gives other noise.
    expect([...a.craft!(roundOf({ own: big, rand: prng(5) }))[0]!.data]).to.deep.equal([...out[0]!.data]);
    expect(a.craft!(roundOf({ own: big, rand: prng(6) }))[0]!.data[0]).to.not.equal(out[0]!.data[0]);
  });

  it("zero does not train and submits all zeros", function () {
    expect(ATTACKS.zero!.skipsTraining).to.equal(true);
    const out = craft(ATTACKS.zero!);
    expect(out.map((t) => t.shape)).to.deep.equal(own.map((t) => t.shape));
    expect(values(out).every((v) => v === 0)).to.equal(true);
  });

  it("replay copies another worker's previous update, never its own, and zeros with nothing to copy", function () {
    const a = ATTACKS.replay!;
    expect(a.skipsTraining).to.equal(true);
    const mine = tensors(() => 99);
    const theirs = tensors((i) => i * 0.5);
    // Its own entry comes first (and in another case); the first other worker's is copied.
    const previous = [
      { worker: SELF.toLowerCase(), delta: mine },
      { worker: OTHER_A, delta: theirs },
      { worker: OTHER_B, delta: tensors(() => -1) },
    ];
    const out = craft(a, { previous });
    expect(values(out)).to.deep.equal(values(theirs));
    expect(out[0]!.data).to.not.equal(theirs[0]!.data); // a copy, not the victim's arrays
    for (const p of [[], [{ worker: SELF, delta: mine }]]) expect(values(craft(a, { previous: p })).every((v) => v === 0)).to.equal(true);
  });

  it("labelflip maps every label y to 9 − y (a permutation) and leaves the input alone", function () {
    const a = ATTACKS.labelflip!;
    const d = dataset(200, 5);
    d.labels![0] = 0;
    const before = snapshot(d);
    const out = a.poison!(d, prng(1));
    for (let i = 0; i < d.n; i++) expect(out.labels![i]).to.equal(9 - d.labels![i]!);
    // A permutation of the classes: 0..9 map onto 0..9 one to one.
    const image = new Set(Array.from({ length: 10 }, (_, y) => a.poison!({ n: 1, features: 1, x: new Float32Array(1), labels: Int32Array.of(y) }, prng(1)).labels![0]));
    expect([...image].sort((x, y) => x! - y!)).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...out.x]).to.deep.equal([...d.x]);
    expect(d.labels).to.deep.equal(before.labels);
    expect(() => a.poison!({ n: 1, features: 1, x: new Float32Array(1), labels: Int32Array.of(10) }, prng(1))).to.throw(/outside/);
  });

  it("backdoor stamps exactly its fraction with the 4×4 corner trigger, sets the target, and leaves the input alone", function () {
    const a = ATTACKS.backdoor!;
    expect(a.backdoor!.target).to.equal(BACKDOOR_TARGET).and.equal(0);
    const d = dataset(100, 784);
    const before = snapshot(d);
    const out = a.poison!(d, prng(9));
    const patch = triggerIndices(784);
    expect(patch).to.have.length(16);
    expect(patch[0]).to.equal(23 * 28 + 23);
    expect(patch[15]).to.equal(26 * 28 + 26);
    let stamped = 0;
    for (let i = 0; i < d.n; i++) {
      const x = out.x.subarray(i * 784, (i + 1) * 784);
      const orig = d.x.subarray(i * 784, (i + 1) * 784);
      const changed = patch.every((j) => x[j] === 1);
      if (changed) {
        stamped++;
        expect(out.labels![i]).to.equal(0);
      } else expect(out.labels![i]).to.equal(d.labels![i]);
      // Outside the patch every feature is as it was.
      for (let j = 0; j < 784; j++) if (!changed || !patch.includes(j)) expect(x[j]).to.equal(orig[j]);
    }
    expect(stamped).to.equal(Math.round(BACKDOOR_FRACTION * d.n)).and.equal(30);
    expect(d.x).to.deep.equal(before.x);
    expect(d.labels).to.deep.equal(before.labels);
    // Other input sizes: the last 16 features.
    expect(triggerIndices(100)).to.deep.equal(Array.from({ length: 16 }, (_, i) => 84 + i));
    const x = new Float32Array(100);
    a.backdoor!.stamp(x);
    expect(x.reduce((s, v) => s + v, 0)).to.equal(16);
    expect(x[83]).to.equal(0);
  });

  it("alie submits μ − z·σ of the colluders' updates, and a lone colluder its own update", function () {
    expect(ALIE_Z).to.equal(1);
    const c = [tensors((i) => i), tensors((i) => 2 * i + 1), tensors((i) => -i)];
    const out = craft(ATTACKS.alie!, { colluders: c });
    const expected = values(c[0]!).map((_, j) => {
      const xs = c.map((u) => values(u)[j]!);
      const mu = xs.reduce((s, v) => s + v, 0) / xs.length;
      const sigma = Math.sqrt(xs.reduce((s, v) => s + (v - mu) ** 2, 0) / xs.length);
      return Math.fround(mu - ALIE_Z * sigma);
    });
    expect(values(out)).to.deep.equal(expected);
    expect(values(craft(ATTACKS.alie!, { colluders: [own] }))).to.deep.equal(values(own));
  });

  it("the registry: names match, an unknown name lists the valid ones", function () {
    for (const [k, a] of Object.entries(ATTACKS)) expect(a.name).to.equal(k);
    expect(Object.keys(ATTACKS)).to.have.members(["signflip", "scaled", "noise", "labelflip", "zero", "replay", "copycommit", "backdoor", "alie"]);
    expect(attackByName("zero")).to.equal(ATTACKS.zero);
    expect(() => attackByName("nope")).to.throw(/unknown attack "nope".*signflip.*alie/);
    expect(() => attackByName("toString")).to.throw(/unknown attack/);
  });

  describe("hooksFor", function () {
    const sources = (over: Partial<AttackSources> = {}): AttackSources & { calls: string[] } => {
      const calls: string[] = [];
      return {
        calls,
        self: SELF,
        seed: 42,
        colluders: async (_r, _b, o) => (calls.push("colluders"), [o]),
        previous: async () => (calls.push("previous"), [{ worker: OTHER_A, delta: tensors(() => 3) }]),
        copyCommitment: async () => (calls.push("copy"), "0x" + "ab".repeat(32)),
        ...over,
      };
    };
    const args = { round: 2n, base: tensors(() => 0), own };

    it("a free rider skips training; an honest-training attack does not", async function () {
      const z = hooksFor(ATTACKS.zero!, sources());
      expect(z.skipTraining).to.equal(true);
      expect(values(await z.update!(args)).every((v) => v === 0)).to.equal(true);
      const s = sources();
      const f = hooksFor(ATTACKS.signflip!, s);
      expect(f.skipTraining).to.not.equal(true);
      expect(f.commitment).to.equal(undefined);
      expect(f.data).to.equal(undefined);
      expect(values(await f.update!(args))).to.deep.equal(values(own).map((v) => Math.fround(-4 * v)));
      // Only attacks that read the previous round's updates fetch them.
      expect(s.calls).to.deep.equal(["colluders"]);
    });

    it("replay gets the previous round's updates from the sources", async function () {
      const s = sources();
      expect(values(await hooksFor(ATTACKS.replay!, s).update!(args)).every((v) => v === 3)).to.equal(true);
      expect(s.calls).to.include("previous");
    });

    it("copycommit sends the copied commitment, or its own when there is none", async function () {
      const h = hooksFor(ATTACKS.copycommit!, sources());
      expect(h.skipTraining).to.equal(true);
      expect(h.update).to.equal(undefined);
      expect(await h.commitment!(2n, "0xown")).to.equal("0x" + "ab".repeat(32));
      const none = hooksFor(ATTACKS.copycommit!, sources({ copyCommitment: async () => undefined }));
      expect(await none.commitment!(2n, "0xown")).to.equal("0xown");
      expect(hooksFor(ATTACKS.zero!, sources()).commitment).to.equal(undefined);
    });

    it("poisons the data and seeds rand from the sources' seed, per round", async function () {
      const d = dataset(50, 784);
      const p1 = hooksFor(ATTACKS.backdoor!, sources()).data!(d);
      const p2 = hooksFor(ATTACKS.backdoor!, sources()).data!(d);
      const p3 = hooksFor(ATTACKS.backdoor!, sources({ seed: 43 })).data!(d);
      expect(p1.labels).to.deep.equal(p2.labels);
      expect(p1.labels).to.not.deep.equal(p3.labels);
      const n = hooksFor(ATTACKS.noise!, sources());
      const r2a = values(await n.update!(args));
      const r2b = values(await hooksFor(ATTACKS.noise!, sources()).update!(args));
      const r3 = values(await n.update!({ ...args, round: 3n }));
      expect(r2a).to.deep.equal(r2b);
      expect(r3).to.not.deep.equal(r2a);
    });
  });

  describe("daemonSources (a lone attacker daemon's view of the chain and IPFS)", function () {
    const ZERO = "0x" + "0".repeat(64);
    /** A fake node context: commitments and reveals as the coordinator's events and views show them. */
    function fakeCtx(opts: { commits?: { worker: string; commitment: string; at: number }[]; reveals?: { worker: string; bytes: Uint8Array; lost?: boolean }[]; start?: bigint; clock?: () => bigint }) {
      const logs: string[] = [];
      const blobs = new Map<string, Uint8Array>();
      const revealed: { args: Record<string, unknown> }[] = [];
      return {
        logs,
        async init() {
          for (const [i, r] of (opts.reveals ?? []).entries()) {
            const cid = CID.createV1(raw.code, await sha256.digest(r.bytes));
            if (!r.lost) blobs.set(cid.toString(), r.bytes);
            revealed.push({ args: { index: i, worker: r.worker, cidDigest: "0x" + Buffer.from(cid.multihash.digest).toString("hex"), cidCodec: raw.code, numSamples: 10n } });
          }
          return this;
        },
        build(): NodeContext {
          let polls = 0;
          const visible = () => (opts.commits ?? []).filter((c) => c.at <= polls);
          const coord = {
            // queryEvents reads up to the head in pages: the head is block 0, one page.
            runner: { getBlockNumber: async () => 0 },
            filters: { UpdateCommitted: (..._a: unknown[]) => "committed", UpdateRevealed: (..._a: unknown[]) => "revealed" },
            async queryFilter(f: string) {
              if (f === "revealed") return revealed;
              polls++; // one UpdateCommitted query per poll
              return visible().map((c) => ({ args: { worker: c.worker, commitment: c.commitment } }));
            },
            getFunction(name: string) {
              if (name === "updateCommitmentOf") return async (_j: bigint, _r: bigint, w: string) => visible().find((c) => c.worker.toLowerCase() === w.toLowerCase())?.commitment ?? ZERO;
              if (name === "roundResult") return async () => ({ start: opts.start ?? 1000n });
              throw new Error(`unexpected call ${name}`);
            },
          };
          return {
            jobId: 1n,
            jobBlock: 0,
            wallet: { address: SELF },
            chain: { coord },
            config: async () => ({ commitPeriod: 12n }),
            chainNow: async () => (opts.clock ? opts.clock() : 1000n),
            log: (e: string) => logs.push(e),
            dialAccounts: async () => {},
            store: { get: async (cid: CID) => blobs.get(cid.toString()) ?? Promise.reject(new Error("not found")) },
          } as unknown as NodeContext;
        },
      };
    }

    it("copyCommitment waits for another worker's commitment and copies it, never its own", async function () {
      const f = fakeCtx({ commits: [{ worker: SELF, commitment: "0x" + "11".repeat(32), at: 99 }, { worker: OTHER_A, commitment: "0x" + "22".repeat(32), at: 2 }] });
      // SELF's own commitment shows only at poll 99: the first other one (visible from the second poll) is copied.
      expect(await daemonSources(f.build()).copyCommitment(1)).to.equal("0x" + "22".repeat(32));
      expect(f.logs).to.include("adversary-copied-commitment");
    });

    it("copyCommitment gives up near the end of the commit phase, and returns what it committed after a restart", async function () {
      let t = 1000n;
      const f = fakeCtx({ commits: [], clock: () => (t += 5n) });
      expect(await daemonSources(f.build()).copyCommitment(1)).to.equal(undefined);
      expect(t + COPY_MARGIN_S).to.be.at.least(1000n + 12n);
      expect(f.logs).to.include("adversary-nothing-to-copy");
      const again = fakeCtx({ commits: [{ worker: SELF, commitment: "0x" + "33".repeat(32), at: 0 }, { worker: OTHER_A, commitment: "0x" + "44".repeat(32), at: 0 }] });
      expect(await daemonSources(again.build()).copyCommitment(1)).to.equal("0x" + "33".repeat(32));
    });

    it("previous fetches and decodes round − 1's revealed updates, and skips what it cannot fetch", async function () {
      const header = (worker: string) => ({ kind: "update" as const, jobId: 1n, round: 1, baseModelCid: new Uint8Array(0), worker: Uint8Array.from(Buffer.from(worker.slice(2), "hex")), numSamples: 10n });
      const theirs = tensors((i) => i / 8);
      const f = await fakeCtx({
        reveals: [
          { worker: OTHER_B, bytes: encodeArtifact(header(OTHER_B), own, { encoding: "f32" }), lost: true },
          { worker: OTHER_A, bytes: encodeArtifact(header(OTHER_A), theirs, { encoding: "f32" }) },
        ],
      }).init();
      const s = daemonSources(f.build());
      expect(await s.previous(1)).to.deep.equal([]);
      const got = await s.previous(2);
      expect(got.map((p) => p.worker)).to.deep.equal([OTHER_A]);
      expect(values(got[0]!.delta)).to.deep.equal(values(theirs));
      expect(f.logs).to.deep.equal(["adversary-fetch-failed"]);
      expect(await s.colluders(2, [], own)).to.deep.equal([own]);
    });
  });
});
