/**
 * The validator daemon's round logic: after the reveal phase fetch every revealed update (timeouts,
 * size caps), check and evaluate each on the held-out data, commit the accept bitmap and reveal it;
 * finalize when nobody else has; compute the aggregate of the accepted updates, pin it and attest
 * its CID; slash rejected updates; claim rewards. Every decision is logged with its reason.
 */
import { getBytes } from "ethers";
import type { CID } from "multiformats/cid";
import { decodeArtifact, type Tensor } from "../artifacts/index.ts";
import { aggregate, applyDelta, type Contribution } from "../aggregation/strategies.ts";
import { ChainError, revealedUpdates } from "../chain/client.ts";
import { hasBit, Phase, randomSalt, voteCommitment } from "../chain/protocol.ts";
import type { Dataset } from "../data/dataset.ts";
import { cidFromChain, cidToChain } from "../storage/store.ts";
import { evaluate } from "../training/trainer.ts";
import { decideRound, type Decision, type Revealed } from "../validation/validate.ts";
import { modelArtifact, type NodeContext } from "./context.ts";
import { paramsOf } from "../training/model.ts";

/** The largest update artifact a validator fetches. */
const MAX_UPDATE_BYTES = 64 * 1024 * 1024;

/** One update's decision, with what the chain says of it (for `fedstake vote evaluate`). */
export type EvaluatedUpdate = Decision & { worker: string; numSamples: bigint; baseLoss: number };

export class ValidatorRole {
  private readonly ctx: NodeContext;
  private holdout?: Dataset;
  /** Update artifacts fetched while the reveal phase is still open (round → CID → bytes). */
  private readonly prefetched = new Map<string, Map<string, Uint8Array>>();
  /** Accepted deltas of the round being decided (index → delta, samples), kept for aggregation. */
  private readonly deltas = new Map<string, Map<number, Contribution>>();

  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  /** Loads the held-out data before the first round needs it. */
  async prepare(): Promise<Dataset> {
    return (this.holdout ??= await this.ctx.dataset());
  }

  async tick(round: bigint, phase: number): Promise<void> {
    const st = this.ctx.state.round(round);
    if (phase === Phase.Reveal) await this.prefetch(round);
    else if (phase === Phase.VoteCommit && !st.committed) await this.commitVote(round);
    else if (phase === Phase.VoteReveal && st.committed && !st.revealed) await this.revealVote(round);
    else if (phase === Phase.Finalize) await this.anyone("finalizeRound", round);
    else if (phase === Phase.Attest && !st.attested) await this.attest(round);
    else if (phase === Phase.AttestExpired) await this.anyone("skipAttestation", round);
    await this.settle(round);
  }

  /** One update artifact, with the validator's fetch timeout and the size cap. */
  private fetchUpdate(cid: CID): Promise<Uint8Array> {
    return this.ctx.store.get(cid, { timeoutMs: this.ctx.cfg.fetchTimeoutMs ?? 15_000, maxBytes: MAX_UPDATE_BYTES });
  }

  /**
   * Fetches the updates revealed so far, while the reveal phase is open, so that the vote-commit window
   * is spent evaluating rather than fetching. A fetch that fails here is simply tried again by `evaluate`.
   */
  async prefetch(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const have = this.prefetched.get(String(round)) ?? new Map<string, Uint8Array>();
    this.prefetched.set(String(round), have);
    const fresh = [];
    for (const u of await revealedUpdates(ctx.chain.coord, ctx.jobId, round)) {
      const cid = await cidFromChain(u.digest, u.codec);
      if (!have.has(cid.toString())) fresh.push({ cid, worker: u.worker });
    }
    if (fresh.length === 0) return;
    await ctx.dialAccounts(fresh.map((f) => f.worker));
    await Promise.all(
      fresh.map(async ({ cid }) => {
        const bytes = await this.fetchUpdate(cid).catch(() => undefined);
        if (bytes) have.set(cid.toString(), bytes);
      }),
    );
  }

  /**
   * Fetches, checks and evaluates every update revealed in `round`, logs each decision with its reason,
   * and records the accept bitmap (with a fresh salt) in the state file unless a vote was already
   * committed. Returns the decisions in index order.
   */
  async evaluate(round: bigint): Promise<EvaluatedUpdate[]> {
    const ctx = this.ctx;
    const holdout = await this.prepare();
    const t0 = performance.now();
    const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
    const updates = await revealedUpdates(ctx.chain.coord, ctx.jobId, round);
    const have = this.prefetched.get(String(round)) ?? new Map<string, Uint8Array>();
    this.prefetched.delete(String(round));
    const cids = await Promise.all(updates.map((u) => cidFromChain(u.digest, u.codec)));
    await ctx.dialAccounts(updates.filter((_, i) => !have.has(cids[i]!.toString())).map((u) => u.worker));
    const revealed: Revealed[] = [];
    for (const [i, u] of updates.entries()) {
      const cid = cids[i]!;
      const bytes =
        have.get(cid.toString()) ??
        (await this.fetchUpdate(cid).catch((e: Error) => ({ error: e.message })));
      revealed.push({ index: u.index, jobId: ctx.jobId, round: Number(round), baseModelCid: baseCid.bytes, worker: getBytes(u.worker), numSamples: u.numSamples, bytes });
    }
    const t1 = performance.now();
    const spec = ctx.spec;
    const params = (ts: Tensor[]) => new Map(ts.map((t) => [t.name, t.data]));
    const baseEval = await evaluate(spec, params(base), holdout);
    const { bitmap, decisions } = await decideRound(revealed, { model: paramsOf(spec), ...ctx.policy }, {
      baseLoss: baseEval.loss,
      lossOf: async (d) => (await evaluate(spec, params(applyDelta(base, d)), holdout)).loss,
    });
    const kept = new Map<number, Contribution>();
    const out: EvaluatedUpdate[] = [];
    for (const d of decisions) {
      const u = updates.find((x) => x.index === d.index)!;
      ctx.log("decision", { round, index: d.index, worker: u.worker, accept: d.accept, reason: d.reason });
      if (d.delta) kept.set(d.index, { delta: d.delta, numSamples: Number(u.numSamples) });
      out.push({ ...d, worker: u.worker, numSamples: u.numSamples, baseLoss: baseEval.loss });
    }
    this.deltas.set(String(round), kept);
    ctx.log("evaluated", { round, updates: updates.length, fetchMs: Math.round(t1 - t0), evalMs: Math.round(performance.now() - t1) });
    if (!ctx.state.round(round).committed) ctx.state.save(round, { bitmap: "0x" + bitmap.toString(16), salt: randomSalt() });
    return out;
  }

  /**
   * Commits the round's vote: `bitmap` when given (a validator voting by hand), else the one recorded by
   * `evaluate` (run now if there is none). Bitmap and salt are on disk before the transaction is sent.
   */
  async commitVote(round: bigint, bitmap?: bigint): Promise<void> {
    const ctx = this.ctx;
    if (ctx.state.round(round).committed) throw new Error(`round ${round}: this validator already committed its vote`);
    if (bitmap !== undefined) ctx.state.save(round, { bitmap: "0x" + bitmap.toString(16), salt: randomSalt() });
    else if (ctx.state.round(round).bitmap === undefined) await this.evaluate(round);
    const st = ctx.state.round(round);
    const commitment = voteCommitment({ jobId: ctx.jobId, round, validator: ctx.wallet.address, bitmap: BigInt(st.bitmap!), salt: st.salt! });
    const rc = await ctx.send("commitVote", [ctx.jobId, round, commitment]);
    ctx.state.save(round, { committed: true });
    ctx.log("vote-committed", { round, bitmap: st.bitmap, tx: rc.hash });
  }

  async revealVote(round: bigint): Promise<void> {
    const st = this.ctx.state.round(round);
    if (!st.committed || st.bitmap === undefined) throw new Error(`round ${round}: this validator has no committed vote to reveal (state file ${this.ctx.cfg.dataDir}/state.json)`);
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
  async attest(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const res = await ctx.chain.coord.getFunction("roundResult")(ctx.jobId, round);
    const accepted = BigInt(res.acceptedBitmap);
    const t0 = performance.now();
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
    const next = aggregate(ctx.job.aggregation, base, contributions);
    const total = contributions.reduce((s, c) => s + BigInt(c.numSamples), 0n);
    const t1 = performance.now();
    const cid = await ctx.store.add(modelArtifact(ctx.jobId, Number(round), baseCid.bytes, next, total));
    ctx.log("aggregated", { round, updates: contributions.length, aggregateMs: Math.round(t1 - t0), pinMs: Math.round(performance.now() - t1) });
    const { digest, codec } = cidToChain(cid);
    ctx.state.save(round, { modelCid: cid.toString() });
    try {
      const rc = await ctx.send("attestModel", [ctx.jobId, round, digest, codec]);
      ctx.log("attested", { round, model: cid.toString(), updates: contributions.length, tx: rc.hash });
    } catch (e) {
      // Enough others attested first: the round (or the whole job) moved on without this attestation.
      if (!(e instanceof ChainError && (e.errorName === "WrongRound" || e.errorName === "JobNotActive"))) throw e;
      ctx.log("attest-late", { round, model: cid.toString() });
    }
    ctx.state.save(round, { attested: true });
  }

  /** Slashes supermajority-rejected updates of decided rounds, and claims accrued validator rewards. */
  async settle(current: bigint): Promise<void> {
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
