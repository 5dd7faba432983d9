/**
 * The validator daemon's round logic: after the reveal phase fetch every revealed update (timeouts,
 * size caps), check and evaluate each on the held-out data, commit the accept bitmap and reveal it;
 * finalize when nobody else has; compute the aggregate of the accepted updates, pin it and attest
 * its CID; slash rejected updates; claim rewards. Every decision is logged with its reason.
 */
import { getBytes } from "ethers";
import { decodeArtifact, type Tensor } from "../artifacts/index.ts";
import { aggregate, applyDelta } from "../aggregation/strategies.ts";
import { ChainError, revealedUpdates } from "../chain/client.ts";
import { hasBit, Phase, randomSalt, voteCommitment } from "../chain/protocol.ts";
import type { Dataset } from "../data/dataset.ts";
import { cidFromChain, cidToChain } from "../storage/store.ts";
import { evaluate } from "../training/trainer.ts";
import { decideRound, type Revealed } from "../validation/validate.ts";
import { modelArtifact, type NodeContext } from "./context.ts";
import { paramsOf } from "../training/model.ts";

export class ValidatorRole {
  private readonly ctx: NodeContext;
  private holdout?: Dataset;
  /** Accepted deltas of the round being decided (index → delta, samples), kept for aggregation. */
  private readonly deltas = new Map<string, Map<number, { delta: Tensor[]; numSamples: number }>>();

  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  async tick(round: bigint, phase: number): Promise<void> {
    const st = this.ctx.state.round(round);
    if (phase === Phase.VoteCommit && !st.committed) await this.vote(round);
    else if (phase === Phase.VoteReveal && st.committed && !st.revealed) await this.reveal(round);
    else if (phase === Phase.Finalize) await this.anyone("finalizeRound", round);
    else if (phase === Phase.Attest && !st.attested) await this.attest(round);
    else if (phase === Phase.AttestExpired) await this.anyone("skipAttestation", round);
    await this.slashAndClaim(round);
  }

  private async vote(round: bigint): Promise<void> {
    const ctx = this.ctx;
    let st = ctx.state.round(round);
    if (st.bitmap === undefined) {
      this.holdout ??= await ctx.dataset();
      const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
      const updates = await revealedUpdates(ctx.chain.coord, ctx.jobId, round);
      await ctx.dialAccounts(updates.map((u) => u.worker));
      const revealed: Revealed[] = [];
      for (const u of updates) {
        const cid = await cidFromChain(u.digest, u.codec);
        const bytes = await ctx.store.get(cid, { timeoutMs: 15_000, maxBytes: 64 * 1024 * 1024 }).catch((e: Error) => ({ error: e.message }));
        revealed.push({ index: u.index, jobId: ctx.jobId, round: Number(round), baseModelCid: baseCid.bytes, worker: getBytes(u.worker), numSamples: u.numSamples, bytes });
      }
      const spec = ctx.cfg.spec;
      const params = (ts: Tensor[]) => new Map(ts.map((t) => [t.name, t.data]));
      const baseEval = await evaluate(spec, params(base), this.holdout);
      const policy = { model: paramsOf(spec), ...ctx.cfg.policy! };
      const { bitmap, decisions } = await decideRound(revealed, policy, {
        baseLoss: baseEval.loss,
        lossOf: async (d) => (await evaluate(spec, params(applyDelta(base, d)), this.holdout!)).loss,
      });
      const kept = new Map<number, { delta: Tensor[]; numSamples: number }>();
      for (const d of decisions) {
        const u = updates.find((x) => x.index === d.index)!;
        ctx.log("decision", { round, index: d.index, worker: u.worker, accept: d.accept, reason: d.reason });
        if (d.delta) kept.set(d.index, { delta: d.delta, numSamples: Number(u.numSamples) });
      }
      this.deltas.set(String(round), kept);
      ctx.state.save(round, { bitmap: "0x" + bitmap.toString(16), salt: randomSalt() });
      st = ctx.state.round(round);
    }
    const commitment = voteCommitment({ jobId: ctx.jobId, round, validator: ctx.wallet.address, bitmap: BigInt(st.bitmap!), salt: st.salt! });
    const rc = await ctx.send("commitVote", [ctx.jobId, round, commitment]);
    ctx.state.save(round, { committed: true });
    ctx.log("vote-committed", { round, bitmap: st.bitmap, tx: rc.hash });
  }

  private async reveal(round: bigint): Promise<void> {
    const st = this.ctx.state.round(round);
    const rc = await this.ctx.send("revealVote", [this.ctx.jobId, round, BigInt(st.bitmap!), st.salt!]);
    this.ctx.state.save(round, { revealed: true });
    this.ctx.log("vote-revealed", { round, tx: rc.hash });
  }

  /** A permissionless step: whoever is first does it; the others see it already done. */
  private async anyone(method: "finalizeRound" | "skipAttestation", round: bigint): Promise<void> {
    try {
      const rc = await this.ctx.send(method, [this.ctx.jobId, round]);
      this.ctx.log(method, { round, tx: rc.hash });
    } catch (e) {
      if (e instanceof ChainError && (e.errorName === "WrongPhase" || e.errorName === "WrongRound" || e.errorName === "JobNotActive")) return;
      throw e;
    }
  }

  /** Aggregates the accepted updates (the chain's accepted set, in index order) and attests the CID. */
  private async attest(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const res = await ctx.chain.coord.getFunction("roundResult")(ctx.jobId, round);
    const accepted = BigInt(res.acceptedBitmap);
    const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
    const have = this.deltas.get(String(round)) ?? new Map();
    const contributions = [];
    for (const u of await revealedUpdates(ctx.chain.coord, ctx.jobId, round)) {
      if (!hasBit(accepted, u.index)) continue;
      let c = have.get(u.index);
      if (!c) {
        // Not in memory (restarted, or this validator rejected it): fetch and decode it now.
        const a = decodeArtifact(await ctx.store.get(await cidFromChain(u.digest, u.codec), { timeoutMs: 15_000 }));
        c = { delta: a.tensors, numSamples: Number(u.numSamples) };
      }
      contributions.push(c);
    }
    const next = aggregate({ kind: "fedavg" }, base, contributions);
    const total = contributions.reduce((s, c) => s + BigInt(c.numSamples), 0n);
    const cid = await ctx.store.add(modelArtifact(ctx.jobId, Number(round), baseCid.bytes, next, total));
    const { digest, codec } = cidToChain(cid);
    ctx.state.save(round, { modelCid: cid.toString() });
    try {
      const rc = await ctx.send("attestModel", [ctx.jobId, round, digest, codec]);
      ctx.log("attested", { round, model: cid.toString(), updates: contributions.length, tx: rc.hash });
    } catch (e) {
      if (!(e instanceof ChainError && e.errorName === "WrongRound")) throw e;
      ctx.log("attest-late", { round, model: cid.toString() });
    }
    ctx.state.save(round, { attested: true });
  }

  /** Slashes supermajority-rejected updates of decided rounds, and claims accrued validator rewards. */
  private async slashAndClaim(current: bigint): Promise<void> {
    const ctx = this.ctx;
    for await (const { round, res } of ctx.decidedUnsettled(current)) {
      const slashable = BigInt(res.slashableBitmap);
      for (let i = 0; i < 256; i++) {
        if (!hasBit(slashable, i)) continue;
        try {
          const rc = await ctx.send("slashRejectedUpdate", [ctx.jobId, round, i]);
          ctx.log("slashed", { round, index: i, tx: rc.hash });
        } catch (e) {
          if (!(e instanceof ChainError && e.errorName === "NothingToSlash")) throw e;
        }
      }
      ctx.state.save(round, { claimed: true });
    }
    const owed = (await ctx.chain.coord.getFunction("memberOf")(ctx.jobId, ctx.wallet.address)).owed as bigint;
    if (owed > 0n) {
      const rc = await ctx.send("claimVoteReward", [ctx.jobId]);
      ctx.log("claimed", { amount: owed, tx: rc.hash });
    }
  }
}
