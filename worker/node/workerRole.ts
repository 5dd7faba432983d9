/**
 * The worker daemon's round logic: in the commit phase fetch the base model, train on local data,
 * build, compress and pin the update, record it, commit; in the reveal phase reveal; once the round is
 * decided claim the reward. Every step checks the state file first, so a restart resumes, never repeats.
 */
import { encodeArtifact, type Tensor } from "../artifacts/index.ts";
import { deltaOf } from "../aggregation/strategies.ts";
import { hasBit, Outcome, Phase, randomSalt, updateCommitment } from "../chain/protocol.ts";
import type { Dataset } from "../data/dataset.ts";
import { Trainer } from "../training/trainer.ts";
import { initParams } from "../training/model.ts";
import { cidToChain } from "../storage/store.ts";
import type { NodeContext } from "./context.ts";
import { CID } from "multiformats/cid";
import { getBytes } from "ethers";

export class WorkerRole {
  private readonly ctx: NodeContext;
  private data?: Dataset;
  private trainer?: Trainer;

  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /** Loads the local data and builds the training session, so that round 1 does not pay for it. */
  async prepare(): Promise<{ data: Dataset; trainer: Trainer }> {
    const cfg = this.ctx.cfg.train!;
    this.data ??= await this.ctx.dataset();
    this.trainer ??= await Trainer.create(this.ctx.spec, { batch: cfg.batch, steps: 16, threads: cfg.threads, optimizer: { kind: "sgd", lr: cfg.lr, momentum: cfg.momentum } }, initParams(this.ctx.spec));
    return { data: this.data, trainer: this.trainer };
  }

  async tick(round: bigint, phase: number): Promise<void> {
    const st = this.ctx.state.round(round);
    if (phase === Phase.Commit && !st.committed) await this.commit(round);
    else if (phase === Phase.Reveal && st.committed && !st.revealed) await this.reveal(round);
    await this.settle(round);
  }

  private async commit(round: bigint): Promise<void> {
    const ctx = this.ctx;
    let st = ctx.state.round(round);
    if (!st.cid) {
      const cfg = ctx.cfg.train!;
      const t0 = performance.now();
      const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
      const t1 = performance.now();
      const params = new Map(base.map((t) => [t.name, Float32Array.from(t.data)]));
      const { data, trainer } = await this.prepare();
      trainer.params = params;
      trainer.resetOptimizer();
      const losses = await trainer.train(data, { epochs: cfg.epochs, seed: Number(round) });
      const t2 = performance.now();
      let delta: Tensor[] = deltaOf(base.map((t) => ({ ...t, data: trainer.params.get(t.name)! })), base);
      if (ctx.cfg.attack) {
        const k = -ctx.cfg.attack.scale;
        delta = delta.map((t) => ({ ...t, data: Float32Array.from(t.data, (v) => v * k) }));
      }
      const bytes = encodeArtifact(
        { kind: "update", jobId: ctx.jobId, round: Number(round), baseModelCid: baseCid.bytes, worker: getBytes(ctx.wallet.address), numSamples: BigInt(data.n) },
        delta,
        { encoding: "int8" },
      );
      const t3 = performance.now();
      const cid = await ctx.store.add(bytes);
      ctx.state.save(round, { cid: cid.toString(), salt: randomSalt(), numSamples: String(data.n) });
      const ms = { fetchMs: Math.round(t1 - t0), trainMs: Math.round(t2 - t1), encodeMs: Math.round(t3 - t2), pinMs: Math.round(performance.now() - t3) };
      ctx.log("trained", { round, samples: data.n, loss: losses[losses.length - 1]!.toFixed(4), cid: cid.toString(), bytes: bytes.length, attack: ctx.cfg.attack?.kind ?? "none", ...ms });
      st = ctx.state.round(round);
    }
    const { digest, codec } = cidToChain(CID.parse(st.cid!));
    const commitment = updateCommitment({ jobId: ctx.jobId, round, worker: ctx.wallet.address, cidDigest: digest, cidCodec: codec, numSamples: BigInt(st.numSamples!), salt: st.salt! });
    const rc = await ctx.send("commitUpdate", [ctx.jobId, round, commitment]);
    ctx.state.save(round, { committed: true });
    ctx.log("committed", { round, tx: rc.hash });
  }

  private async reveal(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const st = ctx.state.round(round);
    const { digest, codec } = cidToChain(CID.parse(st.cid!));
    const rc = await ctx.send("revealUpdate", [ctx.jobId, round, digest, codec, BigInt(st.numSamples!), st.salt!]);
    ctx.state.save(round, { revealed: true });
    ctx.log("revealed", { round, tx: rc.hash });
  }

  /** Claims every decided round's reward this worker earned and has not claimed. */
  async settle(current: bigint): Promise<void> {
    const ctx = this.ctx;
    for await (const { round, res } of ctx.decidedUnsettled(current)) {
      if (Number(res.outcome) !== Outcome.Quorum) {
        ctx.state.save(round, { claimed: true });
        continue;
      }
      const n = Number(res.updateCount);
      for (let i = 0; i < n; i++) {
        const u = await ctx.chain.coord.getFunction("updateAt")(ctx.jobId, round, i);
        if (u.worker !== ctx.wallet.address) continue;
        if (hasBit(res.acceptedBitmap, i) && res.workerRewardEach > 0n) {
          const rc = await ctx.send("claimUpdateReward", [ctx.jobId, round, i]);
          ctx.log("claimed", { round, index: i, amount: res.workerRewardEach, tx: rc.hash });
        } else {
          ctx.log("not-accepted", { round, index: i });
        }
      }
      ctx.state.save(round, { claimed: true });
    }
  }
}
