/**
 * The worker daemon's round logic: in the commit phase fetch the base model, train on local data,
 * build, compress (the job's compression, with error feedback: worker/node/residual.ts) and pin the
 * update, record it, commit (which locks part of its stake until the
 * round's slash deadline); in the reveal phase reveal; once the round is decided claim the reward
 * (which releases the lock), or release the lock of an update that earned nothing and is not slashable,
 * so that the stake is free for the next round. Every step checks the state file first, so a restart
 * resumes, never repeats.
 */
import { encodeArtifact, type ErrorFeedback, type Tensor } from "../artifacts/index.ts";
import { ChainError } from "../chain/client.ts";
import { hasBit, JobStatus, Outcome, Phase, phaseName, randomSalt, updateCommitment } from "../chain/protocol.ts";
import type { Dataset } from "../data/dataset.ts";
import { localUpdate, Trainer } from "../training/trainer.ts";
import { zerosLike } from "../training/delta.ts";
import { initParams, paramsOf } from "../training/model.ts";
import { cidToChain } from "../storage/store.ts";
import type { NodeContext, RoundResultView } from "./context.ts";
import { DEFAULT_COMPRESSION, encodingOf } from "./jobSpec.ts";
import { ResidualFile } from "./residual.ts";
import { CID } from "multiformats/cid";
import { getBytes } from "ethers";
import { queryEvents } from "../chain/events.ts";
import { privatizeTensors } from "../privacy/mechanism.ts";
import { epsilonSpent } from "../privacy/policy.ts";
import { seal } from "../privacy/sealed.ts";
import { publishedEndpoint } from "./providers.ts";

/** Reverts that mean this reveal can never succeed: retrying is pointless (the lock expires on its own). */
const REVEAL_REFUSED = new Set(["TooManyUpdates", "DuplicateUpdate", "TooManySamples", "ZeroSamples", "InvalidDigest", "RevealMismatch"]);

/**
 * What a simulation may change in a worker (sim/attacks/ turns an attack into these): the data it trains
 * on, whether it trains, the update it submits and the commitment it sends. Production daemons run with
 * none; nothing in a node config can set them.
 */
export interface WorkerHooks {
  /** The data set trained on, from the one loaded. */
  data?(d: Dataset): Dataset;
  /** Submit without training: the update passed to `update` is then all zeros. */
  skipTraining?: boolean;
  /** The update to submit, from the round's base model and what local training produced. */
  update?(r: { round: bigint; base: Tensor[]; own: Tensor[] }): Promise<Tensor[]>;
  /** The commitment to send instead of this worker's own (a copier's attempt). */
  commitment?(round: bigint, own: string): Promise<string>;
}

export class WorkerRole {
  private readonly ctx: NodeContext;
  private readonly hooks: WorkerHooks;
  private data?: Dataset;
  private trainer?: Trainer;
  private residualFile?: ResidualFile;
  /** What compression has not sent yet (error feedback), as the last recorded update left it. */
  private feedback?: ErrorFeedback;
  /** Set by `settle`: nothing is left to claim or release (the daemon stops once the job has ended). */
  settled = false;
  /** Rounds whose commit phase this worker missed, once said. */
  private readonly missed = new Set<bigint>();

  constructor(ctx: NodeContext, hooks: WorkerHooks = {}) {
    this.ctx = ctx;
    this.hooks = hooks;
  }

  /**
   * Loads the local data, the error-feedback residual and builds the training session, so that round 1
   * does not pay for it.
   */
  async prepare(): Promise<{ data: Dataset; trainer: Trainer }> {
    const cfg = this.ctx.cfg.train!;
    if (!this.residualFile) {
      this.residualFile = new ResidualFile(this.ctx.cfg.dataDir, { jobId: this.ctx.jobId, worker: getBytes(this.ctx.wallet.address) });
      const recorded = Object.entries(this.ctx.state.state.rounds).filter(([, st]) => st.cid).map(([r]) => Number(r));
      const { feedback, discarded } = this.residualFile.load(paramsOf(this.ctx.spec), recorded.length ? Math.max(...recorded) : undefined);
      if (discarded) this.ctx.log("residual-discarded", { reason: discarded });
      this.feedback = feedback;
    }
    if (!this.data) {
      const loaded = await this.ctx.dataset();
      this.data = this.hooks.data ? this.hooks.data(loaded) : loaded;
    }
    this.trainer ??= await Trainer.create(this.ctx.spec, { batch: cfg.batch, steps: 16, threads: cfg.threads, optimizer: { kind: "sgd", lr: cfg.lr, momentum: cfg.momentum } }, initParams(this.ctx.spec));
    return { data: this.data, trainer: this.trainer };
  }

  async tick(round: bigint, phase: number): Promise<void> {
    // Settle first: the previous round's lock must be released before this round's commitment locks again.
    await this.settle(round, phase);
    // A commitment mined before a crash kept this node from recording it (killed between sending it and
    // saving): the chain holds it, so it is recorded now and revealed, not missed (and slashed for it).
    if (phase > Phase.Commit && phase < Phase.Completed) await this.recoverCommit(round);
    const st = this.ctx.state.round(round);
    if (st.withheld) return;
    if (phase > Phase.Commit && phase < Phase.Completed && !st.committed && !this.missed.has(round)) {
      // Said once per round: a worker that started late, or trained past the commit window, is not silent.
      this.missed.add(round);
      this.ctx.say(`round ${round}: its commit phase closed (the round is in ${phaseName(phase)}) before this worker committed${st.cid ? " (its update was trained too late)" : ""}; it joins round ${round + 1n}`, { round, phase: phaseName(phase) });
    }
    if (phase === Phase.Commit && !st.committed && !st.cid && this.privacyBudgetSpent(round)) return;
    if (phase === Phase.Commit && !st.committed) await this.commit(round);
    else if (phase === Phase.Reveal && st.committed && !st.revealed && !st.revealRefused) await this.reveal(round);
  }

  /**
   * When time-budgeted training must stop (performance.now() time; undefined: train.epochs exactly):
   * `budget` seconds from now, or for "auto" what is left of the round's commit window less a margin for
   * encoding, pinning and the commitment (a fifth of the window, at least 2 s). The minimum of
   * train.epochs is trained even when nothing is left.
   */
  private async trainingDeadline(round: bigint): Promise<number | undefined> {
    const budget = this.ctx.cfg.train!.budget;
    if (budget === undefined) return undefined;
    if (budget !== "auto") return performance.now() + budget * 1000;
    const ctx = this.ctx;
    const res = (await ctx.chain.coord.getFunction("roundResult")(ctx.jobId, round)) as { start: bigint };
    const c = await ctx.config();
    const margin = Math.max(2, Number(c.commitPeriod) / 5);
    // The later of chain time and this machine's clock: a chain that mines on demand lags behind.
    const now = Math.max(Number(await ctx.chainNow()), Math.floor(Date.now() / 1000));
    const left = Number(BigInt(res.start) + c.commitPeriod) - now - margin;
    return performance.now() + Math.max(0, left) * 1000;
  }

  /**
   * A private job (worker/privacy/policy.ts): whether one more update would take this worker past the
   * job's ε. Every update it recorded counts as released (pinned, whether or not its commitment made it);
   * if so, the round is withheld (recorded, said once) and nothing is trained or sent.
   */
  private privacyBudgetSpent(round: bigint): boolean {
    const privacy = this.ctx.job.privacy;
    if (!privacy) return false;
    const released = this.releasedUpdates(round);
    const next = epsilonSpent(privacy, released + 1);
    if (next <= privacy.epsilon * (1 + 1e-9)) return false;
    const spent = epsilonSpent(privacy, released);
    const why = `privacy budget: ${released} update${released === 1 ? "" : "s"} released spend ε = ${spent.toFixed(3)}; one more would spend ${next.toFixed(3)}, above the job's ε = ${privacy.epsilon} (δ = ${privacy.delta})`;
    this.ctx.state.save(round, { withheld: why });
    this.ctx.log("withheld", { round, reason: why, released, epsilon: Number(spent.toFixed(4)) });
    return true;
  }

  /**
   * A job whose updates are read by its committee only: the artifact sealed to every member that
   * published a sealing key (worker/privacy/sealed.ts). Members without one are named in the log (they
   * cannot read it, and will reject it); with no member able to read it, nothing is sent.
   */
  private async sealForCommittee(round: bigint, plain: Uint8Array): Promise<Uint8Array> {
    const ctx = this.ctx;
    const committee = (await ctx.chain.coord.getFunction("committeeOf")(ctx.jobId)) as string[];
    const keys = await Promise.all(committee.map(async (address) => ({ address, publicKey: (await publishedEndpoint(ctx.chain.stake, address)).sealKey })));
    const without = keys.filter((k) => !k.publicKey).map((k) => k.address);
    if (without.length) ctx.log("sealed-without", { round, members: without, reason: "no sealing key published: they cannot read this update" });
    const recipients = keys.flatMap((k) => (k.publicKey ? [{ address: k.address, publicKey: k.publicKey }] : []));
    if (recipients.length === 0) throw new Error(`round ${round}: no member of the committee (${committee.length}) published a sealing key: the update cannot be sealed to anyone`);
    return seal(plain, recipients);
  }

  /** This worker's commitment of `round` as its state file can rebuild it (its CID, samples and salt). */
  private ownCommitment(round: bigint): string | undefined {
    const st = this.ctx.state.round(round);
    if (!st.cid || !st.salt || !st.numSamples) return undefined;
    const { digest, codec } = cidToChain(CID.parse(st.cid));
    return updateCommitment({ jobId: this.ctx.jobId, round, worker: this.ctx.wallet.address, cidDigest: digest, cidCodec: codec, numSamples: BigInt(st.numSamples), salt: st.salt });
  }

  /** Records a commitment of `round` the chain holds but the state file does not (see tick); whether it did. */
  private async recoverCommit(round: bigint): Promise<boolean> {
    const ctx = this.ctx;
    if (ctx.state.round(round).committed) return false;
    const own = this.ownCommitment(round);
    if (!own || (await ctx.chain.coord.getFunction("updateCommitmentOf")(ctx.jobId, round, ctx.wallet.address)) !== own) return false;
    ctx.state.save(round, { committed: true });
    ctx.log("committed", { round, tx: "(mined earlier, recorded now)" });
    return true;
  }

  /** The updates this worker recorded (pinned) for the job in rounds other than `round`. */
  private releasedUpdates(round: bigint): number {
    return Object.entries(this.ctx.state.state.rounds).filter(([r, st]) => st.cid && r !== String(round)).length;
  }

  private async commit(round: bigint): Promise<void> {
    const ctx = this.ctx;
    let st = ctx.state.round(round);
    if (!st.cid) {
      const cfg = ctx.cfg.train!;
      const t0 = performance.now();
      const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
      const t1 = performance.now();
      const { data, trainer } = await this.prepare();
      const until = await this.trainingDeadline(round);
      const { delta: own, losses } = this.hooks.skipTraining ? { delta: zerosLike(base), losses: [] } : await localUpdate(trainer, base, data, { epochs: cfg.epochs, seed: Number(round), until, maxEpochs: cfg.maxEpochs });
      const t2 = performance.now();
      // The chain refuses a reveal declaring more than the job's maxSamplesPerUpdate: declare at most that
      // (the header and the reveal must agree, and FedAvg weighs by the declared count).
      const { maxSamplesPerUpdate } = await ctx.config();
      const declared = BigInt(data.n) < BigInt(maxSamplesPerUpdate) ? BigInt(data.n) : BigInt(maxSamplesPerUpdate);
      const trained = this.hooks.update ? await this.hooks.update({ round, base, own }) : own;
      // A private job: clipped to C and noised before anything leaves (worker/privacy/mechanism.ts); what
      // compression and error feedback do after that is post-processing, which costs no privacy.
      const privacy = ctx.job.privacy;
      const dp = privacy ? privatizeTensors(trained, privacy) : undefined;
      const delta = dp ? dp.delta : trained;
      const header = { kind: "update", jobId: ctx.jobId, round: Number(round), baseModelCid: baseCid.bytes, worker: getBytes(ctx.wallet.address), numSamples: declared } as const;
      const { options, lossy } = encodingOf(ctx.job.compression ?? DEFAULT_COMPRESSION);
      const { bytes: plain, next } = lossy ? this.feedback!.encode(header, delta, options) : { bytes: encodeArtifact(header, delta, options), next: undefined };
      const bytes = ctx.job.encryption?.updates === "committee" ? await this.sealForCommittee(round, plain) : plain;
      const t3 = performance.now();
      const cid = await ctx.store.add(bytes);
      // Adopted only once the update is pinned (a failed add re-encodes from the old residual), and on disk
      // before the update is recorded: after a crash in between, the file is a round ahead of the state
      // file, so the restart discards it (reported) and encodes this round again without it.
      if (next) {
        this.residualFile!.save(Number(round), next);
        this.feedback = next;
      }
      ctx.state.save(round, { cid: cid.toString(), salt: randomSalt(), numSamples: String(declared) });
      const ms = { fetchMs: Math.round(t1 - t0), trainMs: Math.round(t2 - t1), encodeMs: Math.round(t3 - t2), pinMs: Math.round(performance.now() - t3) };
      const perEpoch = Math.floor(data.n / cfg.batch);
      ctx.log("trained", { round, samples: data.n, declared, steps: losses.length, epochs: Number((losses.length / perEpoch).toFixed(2)), loss: losses.length ? losses[losses.length - 1]!.toFixed(4) : "untrained", cid: cid.toString(), bytes: bytes.length, ...ms, ...(dp && privacy ? { preClipNorm: Number(dp.preClipNorm.toPrecision(4)), clipped: dp.clipped, noiseStd: Number(dp.sigma.toPrecision(4)), epsilon: Number(epsilonSpent(privacy, this.releasedUpdates(round) + 1).toFixed(4)) } : {}) });
      st = ctx.state.round(round);
    }
    const honest = this.ownCommitment(round)!;
    const commitment = this.hooks.commitment ? await this.hooks.commitment(round, honest) : honest;
    let tx: string;
    try {
      tx = (await ctx.send("commitUpdate", [ctx.jobId, round, commitment])).hash;
    } catch (e) {
      // Mined before a crash kept this node from recording it: the chain holds this very commitment.
      if (!(e instanceof ChainError && e.errorName === "AlreadyCommitted" && (await ctx.chain.coord.getFunction("updateCommitmentOf")(ctx.jobId, round, ctx.wallet.address)) === commitment)) throw e;
      tx = "(mined earlier)";
    }
    ctx.state.save(round, { committed: true });
    ctx.log("committed", { round, tx });
  }

  private async reveal(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const st = ctx.state.round(round);
    const { digest, codec } = cidToChain(CID.parse(st.cid!));
    let tx: string;
    try {
      tx = (await ctx.send("revealUpdate", [ctx.jobId, round, digest, codec, BigInt(st.numSamples!), st.salt!])).hash;
    } catch (e) {
      if (e instanceof ChainError && e.errorName === "AlreadyRevealed") {
        // Mined before a crash kept this node from recording it.
        ctx.state.save(round, { revealed: true });
        ctx.log("revealed", { round, tx: "(mined earlier)" });
        return;
      }
      if (!(e instanceof ChainError && e.errorName && REVEAL_REFUSED.has(e.errorName))) throw e;
      // E.g. the round's slots were all taken by earlier reveals: not slashable (RoundWasFull), and the
      // commitment's lock expires at the round's slash deadline.
      ctx.state.save(round, { revealRefused: e.errorName });
      ctx.log("reveal-refused", { round, reason: e.message });
      return;
    }
    ctx.state.save(round, { revealed: true });
    ctx.log("revealed", { round, tx });
  }

  /**
   * Settles every decided round this worker revealed in: claims the reward of each accepted update
   * (which releases its stake lock), and releases the lock of each update that earned nothing and is
   * not slashable (any outcome but a decided round's supermajority rejection; those are left to the
   * validators' slash, which releases the lock too, or to the lock's expiry). One failing update is
   * logged and tried again on the next tick; the others go on. Sets `settled` when nothing is left and
   * the job has ended.
   */
  async settle(current: bigint, phase?: number): Promise<void> {
    const ctx = this.ctx;
    let left = false;
    for await (const { round, res } of ctx.decidedUnsettled(current)) {
      const mine = await queryEvents(ctx.chain.coord, ctx.chain.coord.filters.UpdateRevealed!(ctx.jobId, round, ctx.wallet.address), ctx.jobBlock);
      let done = true;
      for (const e of mine) {
        const i = Number(e.args.index);
        try {
          await this.settleUpdate(round, i, res);
        } catch (err) {
          done = false;
          ctx.log("settle-failed", { round, index: i, error: (err as Error).message.slice(0, 300) });
        }
      }
      if (done) ctx.state.save(round, { claimed: true });
      else left = true;
    }
    const ended = phase !== undefined ? phase >= Phase.Completed : Number((await ctx.chain.coord.getFunction("jobState")(ctx.jobId)).status) !== JobStatus.Active;
    this.settled = ended && !left && !Object.values(ctx.state.state.rounds).some((st) => st.revealed && !st.claimed);
  }

  /** Claims or releases one own update of a decided round. */
  private async settleUpdate(round: bigint, i: number, res: RoundResultView): Promise<void> {
    const ctx = this.ctx;
    const decided = Number(res.outcome) === Outcome.Quorum;
    if (decided && hasBit(res.acceptedBitmap, i) && res.workerRewardEach > 0n) {
      try {
        const rc = await ctx.send("claimUpdateReward", [ctx.jobId, round, i]);
        ctx.log("claimed", { round, index: i, amount: res.workerRewardEach, tx: rc.hash });
      } catch (e) {
        // Claimed already (a run that stopped before recording it).
        if (!(e instanceof ChainError && e.errorName === "AlreadyClaimed")) throw e;
      }
      return;
    }
    if (decided && hasBit(res.slashableBitmap, i)) {
      // Rejected by a supermajority: the lock stays until a validator slashes it (or it expires).
      ctx.log("not-accepted", { round, index: i, slashable: true });
      return;
    }
    if (decided && hasBit(res.acceptedBitmap, i)) ctx.log("zero-reward", { round, index: i });
    else if (decided) ctx.log("not-accepted", { round, index: i, slashable: false });
    try {
      const rc = await ctx.send("releaseUpdateLock", [ctx.jobId, round, i]);
      ctx.log("lock-released", { round, index: i, outcome: Number(res.outcome), tx: rc.hash });
    } catch (e) {
      // Released already (by anyone: the call is permissionless), or slashed meanwhile.
      if (!(e instanceof ChainError && e.errorName === "NothingToClaim")) throw e;
    }
  }
}
