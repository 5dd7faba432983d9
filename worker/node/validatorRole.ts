/**
 * The validator daemon's round logic: after the reveal phase fetch every revealed update (timeouts,
 * size caps), check and evaluate each on the held-out data, commit the accept bitmap and reveal it;
 * finalize when nobody else has; compute the aggregate of the accepted updates, pin it and attest
 * its CID; once a round's vote reveal is over and before its slash deadline, slash the workers that
 * committed and never revealed, the updates a supermajority rejected and the votes committed and
 * withheld; evict members absent for maxMissedRounds decided rounds; claim rewards; after the job
 * ends, leave the committee to release the seat's bond. Every decision is logged with its reason.
 */
import { dirname } from "node:path";
import { getBytes } from "ethers";
import type { CID } from "multiformats/cid";
import { aggregate, type Contribution } from "../aggregation/index.ts";
import type { Tensor } from "../artifacts/index.ts";
import { ChainError, revealedUpdates } from "../chain/client.ts";
import { hasBit, Outcome, Phase, phaseName, randomSalt, roundDeadlines, scoreOnChain, SlashReason, voteCommitment } from "../chain/protocol.ts";
import { cidFromChain, cidToChain } from "../storage/store.ts";
import { deltaOf, flatten } from "../training/delta.ts";
import { l2 } from "../validation/rule.ts";
import { HeldOutSet } from "../validation/evaluation.ts";
import { ReplayMemory } from "../validation/memory.ts";
import { acceptedIndices, chainTime, roundEvaluation, type DecideFn, type RoundEvaluation } from "../validation/roundEvaluation.ts";
import { checkStructure, decideRound, type Decision, type Revealed } from "../validation/validate.ts";
import { modelArtifact, type NodeContext, type RoundResultView } from "./context.ts";
import { checkHookProgram, runHookProgram, withTimeout } from "./decide.ts";
import { TooLateError } from "./errors.ts";
import { paramsOf } from "../training/model.ts";
import { queryEvents } from "../chain/events.ts";
import { isSealed, SealError, unseal } from "../privacy/sealed.ts";

/** The largest update artifact a validator fetches. */
const MAX_UPDATE_BYTES = 64 * 1024 * 1024;

/** A worker's commitment slot holds small states (revealed, slashed…) at or below this, else the commitment. */
const SLOT_STATE_MAX = 15n;
/** Update record flag: slashed already. */
const UPDATE_SLASHED = 2n;
/**
 * Reverts a slash may meet that are nobody's fault: too early, too late, the round was voided or full
 * (the worker could not reveal), or another validator was first. Not logged as failures.
 */
const SLASH_EXPECTED = new Set(["RevealNotOver", "SlashWindowOver", "RoundVoided", "RoundWasFull", "NothingToSlash"]);

/** One update's decision, with what the chain says of it (for `fedstake vote evaluate`). */
export type EvaluatedUpdate = Decision & { worker: string; numSamples: bigint };

/** What `evaluate` found: the built-in decisions, the round's evaluation document, and the vote it recorded. */
export interface RoundVerdict {
  rows: EvaluatedUpdate[];
  /** The evaluation a decision hook sees (built when there is a hook, or when asked). */
  evaluation?: RoundEvaluation;
  /** The bitmap recorded for `vote commit` (undefined: none recorded, see `note`). */
  recorded?: string;
  /** Why nothing was recorded, or by whom the bitmap was decided. */
  note: string;
}

/** How a validator's vote is decided instead of by the built-in policy (worker/node/decide.ts). */
export interface ValidatorHooks {
  decide?: DecideFn;
  /** How long the hook may take (default 30 s; never past the vote-commit deadline less a margin). */
  timeoutMs?: number;
  /** A failing or late hook: no vote this round ("abstain", the default) or the built-in policy's vote. */
  onFailure?: "abstain" | "builtin";
}

/** The default time a decision hook may take. */
const HOOK_TIMEOUT_MS = 30_000;
/** What a hook must leave of the vote-commit window for the commitment to be sent and mined. */
const HOOK_MARGIN_S = 3;

export class ValidatorRole {
  private readonly ctx: NodeContext;
  private holdout?: HeldOutSet;
  /** Deltas of the job's recent rounds, for the duplicate rule's replay test. */
  private readonly memory = new ReplayMemory();
  /** Update artifacts fetched while the reveal phase is still open (round → CID → bytes). */
  private readonly prefetched = new Map<string, Map<string, Uint8Array>>();
  /** Accepted deltas of the round being decided (index → delta, samples), kept for aggregation. */
  private readonly deltas = new Map<string, Map<number, Contribution>>();
  /** Set by `settle`: the job has ended and nothing is left to slash, claim or release. */
  settled = false;
  /** The last decided round after which absent members were looked for. */
  private evictionsChecked = 0n;

  /**
   * The decision hook, if any: a function given in code (it wins), else the node config's `decide`
   * program; called with the round's evaluation and how long it may take.
   */
  private readonly decide?: (evaluation: RoundEvaluation, timeoutMs: number) => Promise<unknown>;
  private readonly hookTimeoutMs: number;
  private readonly onFailure: "abstain" | "builtin";
  /** Rounds in a row this validator abstained in (its hook failed), for the warning. */
  private abstainedInARow = 0;

  constructor(ctx: NodeContext, hooks: ValidatorHooks = {}) {
    this.ctx = ctx;
    const cmd = ctx.cfg.decide;
    const fn = hooks.decide;
    if (fn) this.decide = (ev, ms) => withTimeout(Promise.resolve().then(() => fn(ev)), ms, "the decision hook");
    else if (cmd) this.decide = (ev, ms) => runHookProgram(cmd.command, ev, ms, { cwd: ctx.cfg.file ? dirname(ctx.cfg.file) : undefined });
    this.hookTimeoutMs = hooks.timeoutMs ?? (fn ? undefined : cmd?.timeoutMs) ?? HOOK_TIMEOUT_MS;
    this.onFailure = hooks.onFailure ?? cmd?.onFailure ?? "abstain";
  }

  /** Loads the held-out data before the first round needs it; checks that the hook program can run. */
  async prepare(): Promise<HeldOutSet> {
    // The policy is parsed (a validator's own `policy` included), the held-out set and the hook program
    // checked here, at start: an error found at vote time would cost the vote and, round after round, the
    // seat's bond.
    if (!this.holdout && this.ctx.cfg.decide) checkHookProgram(this.ctx.cfg.decide.command[0]!);
    return (this.holdout ??= new HeldOutSet(this.ctx.spec, await this.ctx.dataset(), this.ctx.policy.reference, { threads: this.ctx.cfg.train?.threads ?? 1 }));
  }

  /**
   * A commitment this node sent, that was mined, and that it did not get to record (the receipt was lost,
   * or it crashed in between): the chain's vote slot holds exactly the commitment of its saved bitmap
   * and salt. Recorded now, so that the vote is revealed rather than withheld (and slashed).
   */
  private async recoverCommit(round: bigint): Promise<boolean> {
    const ctx = this.ctx;
    const st = ctx.state.round(round);
    if (st.committed || st.bitmap === undefined || st.salt === undefined) return false;
    const commitment = voteCommitment({ jobId: ctx.jobId, round, validator: ctx.wallet.address, bitmap: BigInt(st.bitmap), salt: st.salt });
    if ((await ctx.chain.coord.getFunction("voteSlotOf")(ctx.jobId, ctx.wallet.address)) !== commitment) return false;
    ctx.state.save(round, { committed: true });
    ctx.log("vote-committed", { round, bitmap: st.bitmap, tx: "(mined earlier, recorded now)" });
    return true;
  }

  async tick(round: bigint, phase: number): Promise<void> {
    const st = this.ctx.state.round(round);
    if (phase === Phase.Reveal) await this.prefetch(round);
    else if (phase === Phase.VoteCommit && !st.committed && st.abstained === undefined && !(await this.recoverCommit(round))) await this.commitVote(round);
    else if (phase === Phase.VoteReveal && !st.revealed && (st.committed || (await this.recoverCommit(round)))) await this.revealVote(round);
    else if (phase === Phase.Finalize) {
      // The aggregate's attestation comes next, on the round's critical path: slashes wait a tick.
      await this.anyone("finalizeRound", round);
      return;
    } else if (phase === Phase.Attest && !st.attested && st.revealed) {
      await this.attest(round).catch((e: unknown) => {
        if (!(e instanceof TooLateError)) throw e;
        this.ctx.log("attest-skipped", { round, reason: e.message });
      });
    }
    else if (phase === Phase.AttestExpired) await this.anyone("skipAttestation", round);
    await this.settle(round, phase);
  }

  /** One update artifact, with the validator's fetch timeout and the size cap. */
  private fetchUpdate(cid: CID): Promise<Uint8Array> {
    return this.ctx.store.get(cid, { timeoutMs: this.ctx.cfg.fetchTimeoutMs ?? 15_000, maxBytes: MAX_UPDATE_BYTES });
  }

  /**
   * An update's artifact as this validator reads it. In a job whose updates are sealed to the committee
   * (worker/privacy/sealed.ts): opened with this validator's key; an update sent in the clear, not
   * sealed to this validator, or failing authentication is not readable, with the reason as its
   * rejection. Otherwise the bytes as fetched.
   */
  private async readable(bytes: Uint8Array | { error: string }): Promise<Uint8Array | { error: string; code: string }> {
    const ctx = this.ctx;
    if (!(bytes instanceof Uint8Array) || ctx.job.encryption?.updates !== "committee") return bytes as Uint8Array | { error: string; code: string };
    if (!isSealed(bytes)) return { error: "sent in the clear: the job seals updates to its committee", code: "not-sealed" };
    // Recipients beyond the committee are not refused: members join, leave and are evicted between a
    // worker's commitment and the vote, so the committee now is not the one the worker sealed to.
    try {
      return await unseal(bytes, { address: ctx.wallet.address, keys: await ctx.sealKeys() });
    } catch (e) {
      if (e instanceof SealError) return { error: `sealed update: ${e.message}`, code: `sealed-${e.code}` };
      throw e;
    }
  }

  /**
   * Fetches the updates revealed so far, while the reveal phase is open, so that the vote-commit window
   * is spent evaluating rather than fetching. A fetch that fails here is simply tried again by `evaluate`.
   */
  async prefetch(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const have = this.prefetched.get(String(round)) ?? new Map<string, Uint8Array>();
    this.prefetched.set(String(round), have);
    // Rounds this validator never evaluated (it started late, or skipped them) are of no more use.
    for (const r of this.prefetched.keys()) if (BigInt(r) < round) this.prefetched.delete(r);
    const fresh = [];
    for (const u of await revealedUpdates(ctx.chain.coord, ctx.jobId, round, ctx.jobBlock)) {
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

  /** The job's current round and phase (authoritative: phases may close before their deadlines). */
  private async phaseNow(): Promise<{ round: bigint; phase: number }> {
    const [round, phase] = (await this.ctx.chain.coord.getFunction("phaseOf")(this.ctx.jobId)) as [bigint, bigint];
    return { round, phase: Number(phase) };
  }

  /**
   * Fetches, checks and evaluates every update revealed in `round` and logs each built-in decision with
   * its reason. Then decides the vote — by the decision hook when there is one (given the round's
   * evaluation; a failing hook means abstaining, or the built-in vote if so configured), else by the
   * built-in policy — and records its bitmap (with a fresh salt) in the state file for `commitVote`,
   * unless a vote was committed already or the reveal phase is still open (the update count is not final
   * then: nothing is recorded). `document`: build the evaluation even without a hook (`vote evaluate --json`).
   */
  async evaluate(round: bigint, opts: { document?: boolean } = {}): Promise<RoundVerdict> {
    const ctx = this.ctx;
    const holdout = await this.prepare();
    const t0 = performance.now();
    const now = await this.phaseNow();
    const final = now.round > round || (now.round === round && now.phase >= Phase.VoteCommit);
    const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
    const updates = await revealedUpdates(ctx.chain.coord, ctx.jobId, round, ctx.jobBlock);
    const have = this.prefetched.get(String(round)) ?? new Map<string, Uint8Array>();
    if (final) this.prefetched.delete(String(round));
    const cids = await Promise.all(updates.map((u) => cidFromChain(u.digest, u.codec)));
    await ctx.dialAccounts(updates.filter((_, i) => !have.has(cids[i]!.toString())).map((u) => u.worker));
    const revealed: Revealed[] = [];
    for (const [i, u] of updates.entries()) {
      const cid = cids[i]!;
      const bytes = await this.readable(have.get(cid.toString()) ?? (await this.fetchUpdate(cid).catch((e: Error) => ({ error: e.message }))));
      revealed.push({ index: u.index, jobId: ctx.jobId, round: Number(round), baseModelCid: baseCid.bytes, worker: getBytes(u.worker), numSamples: u.numSamples, bytes });
    }
    const t1 = performance.now();
    const policy = ctx.policy;
    const document = opts.document || this.decide !== undefined;
    const evaluation = holdout.round(base, Number(round));
    const { bitmap, decisions, candidates, verdicts } = await decideRound(revealed, { model: paramsOf(ctx.spec), rules: policy.rules }, evaluation, {
      round: Number(round),
      history: this.memory.before(Number(round)),
      independent: document,
    });
    this.memory.remember(Number(round), candidates.map((c) => ({ round: Number(round), source: `the update of ${c.worker}`, flat: c.flat, norm: c.norm })));
    const kept = new Map<number, Contribution>();
    const rows: EvaluatedUpdate[] = [];
    for (const d of decisions) {
      const u = updates.find((x) => x.index === d.index)!;
      ctx.log("decision", { round, index: d.index, worker: u.worker, accept: d.accept, code: d.code, reason: d.reason, metrics: d.metrics });
      // Kept for aggregation: every decodable update (the chain's accepted set may differ from this vote).
      if (d.delta) kept.set(d.index, { delta: d.delta, numSamples: Number(u.numSamples) });
      rows.push({ ...d, worker: u.worker, numSamples: u.numSamples });
    }
    this.deltas.set(String(round), kept);
    for (const r of this.deltas.keys()) if (BigInt(r) < round - 1n) this.deltas.delete(r);
    // The evaluation document: what `vote evaluate --json` prints and a hook decides on. For a hook, a
    // failure to build it is the hook's failure (onFailure applies), not a failed tick to run again.
    const buildDocument = async (): Promise<RoundEvaluation> => {
      const res = (await ctx.chain.coord.getFunction("roundResult")(ctx.jobId, round)) as RoundResultView;
      const d = roundDeadlines(res.start, await ctx.config());
      return roundEvaluation({
        job: ctx.jobId,
        round: Number(round),
        phase: now.round === round ? phaseName(now.phase) : `over (the job is in round ${now.round})`,
        baseModel: baseCid.toString(),
        deadlines: { commit: chainTime(d.commit), reveal: chainTime(d.reveal), voteCommit: chainTime(d.voteCommit), voteReveal: chainTime(d.voteReveal) },
        updates: updates.map((u, i) => ({ index: u.index, worker: u.worker, numSamples: u.numSamples, cid: cids[i]!.toString() })),
        decisions,
        candidates,
        verdicts: verdicts!,
        evaluation,
        heldOutSamples: holdout.data.n,
      });
    };
    let doc = opts.document ? await buildDocument() : undefined;
    ctx.log("evaluated", { round, updates: updates.length, fetchMs: Math.round(t1 - t0), evalMs: Math.round(performance.now() - t1) });

    const st = ctx.state.round(round);
    if (st.committed) return { rows, evaluation: doc, note: "a vote is committed already: nothing recorded" };
    if (!final) return { rows, evaluation: doc, note: `the reveal phase is still open (phase ${phaseName(now.phase)}): nothing recorded, since more updates may be revealed` };
    let vote: bigint | undefined = bitmap;
    let note = "decided by the built-in policy";
    if (this.decide && updates.length === 0) {
      // Nothing to decide: the empty vote, without asking the hook (a hook that trips over an empty round
      // must not make this validator absent).
      vote = 0n;
      note = "no revealed updates: the empty vote, without the hook";
    } else if (this.decide) {
      try {
        doc ??= await buildDocument();
        // Never past the vote-commit deadline, less the time the commitment needs to be mined.
        const left = Number(BigInt(doc.deadlines.voteCommit.at) - (await ctx.chainNow())) - HOOK_MARGIN_S;
        const ms = Math.max(1000, Math.min(this.hookTimeoutMs, left * 1000));
        const accepted = acceptedIndices(await this.decide(doc, ms), updates.length);
        vote = accepted.reduce((b, i) => b | (1n << BigInt(i)), 0n);
        note = "decided by the decision hook";
        this.abstainedInARow = 0;
        ctx.log("hook-decided", { round, accepted });
      } catch (e) {
        const reason = (e as Error).message.slice(0, 300);
        if (this.onFailure === "builtin") {
          note = `the decision hook failed (${reason}): the built-in policy's vote instead, as configured`;
          ctx.log("hook-failed", { round, reason, fallback: "builtin" });
        } else {
          vote = undefined;
          this.abstainedInARow++;
          note = `the decision hook failed (${reason}): abstaining this round, as configured`;
          ctx.log("hook-failed", { round, reason, fallback: "abstain" });
          ctx.state.save(round, { abstained: reason });
          const { maxMissedRounds } = await ctx.config();
          ctx.say(
            `round ${round}: NO VOTE — the decision hook failed (${reason}); ${this.abstainedInARow} round${this.abstainedInARow === 1 ? "" : "s"} in a row without a vote: ` +
              `after ${maxMissedRounds} this validator is evicted and its bond slashed (fix the hook, or set "onFailure": "builtin")`,
            { round },
          );
        }
      }
    }
    if (vote === undefined) return { rows, evaluation: doc, note };
    const recorded = "0x" + vote.toString(16);
    ctx.state.save(round, { bitmap: recorded, salt: randomSalt(), abstained: undefined });
    return { rows, evaluation: doc, recorded, note };
  }

  /**
   * Commits the round's vote: `bitmap` when given (a validator voting by hand), else the one recorded by
   * `evaluate` (run now if there is none). Bitmap and salt are on disk before the transaction is sent.
   * Refused before anything is saved: outside the round's vote-commit phase (after it: TooLateError),
   * a vote committed already (TooLateError), and a bitmap naming an update the round does not have
   * (the reveal would revert and the vote be slashed as withheld). A validator whose hook abstained
   * commits nothing.
   */
  async commitVote(round: bigint, bitmap?: bigint): Promise<{ bitmap: string; tx: string } | undefined> {
    const ctx = this.ctx;
    if (ctx.state.round(round).committed) throw new TooLateError(`round ${round}: this validator already committed its vote`);
    if (await this.recoverCommit(round)) throw new TooLateError(`round ${round}: this validator's vote was committed already (mined before it could be recorded; recorded now)`);
    const now = await this.phaseNow();
    if (now.round > round || (now.round === round && now.phase > Phase.VoteCommit)) {
      throw new TooLateError(`round ${round}'s vote-commit phase is over (the job is in round ${now.round}, phase ${phaseName(now.phase)})`);
    }
    if (now.round < round || now.phase < Phase.VoteCommit) throw new Error(`round ${round}'s vote-commit phase has not opened yet (the job is in round ${now.round}, phase ${phaseName(now.phase)})`);
    if (bitmap !== undefined) {
      const count = (await revealedUpdates(ctx.chain.coord, ctx.jobId, round, ctx.jobBlock)).length;
      const beyond = [];
      for (let i = count; BigInt(i) < BigInt(bitmap.toString(2).length); i++) if (hasBit(bitmap, i)) beyond.push(i);
      if (beyond.length) throw new RangeError(`round ${round} has ${count} revealed update${count === 1 ? "" : "s"} (indices 0…${count - 1}): cannot accept ${beyond.join(", ")}`);
      ctx.state.save(round, { bitmap: "0x" + bitmap.toString(16), salt: randomSalt(), abstained: undefined });
    } else if (ctx.state.round(round).bitmap === undefined) await this.evaluate(round);
    const st = ctx.state.round(round);
    if (st.bitmap === undefined) {
      ctx.log("vote-abstained", { round, reason: st.abstained ?? "no vote was decided" });
      return undefined;
    }
    const commitment = voteCommitment({ jobId: ctx.jobId, round, validator: ctx.wallet.address, bitmap: BigInt(st.bitmap!), salt: st.salt! });
    let tx: string;
    try {
      tx = (await ctx.send("commitVote", [ctx.jobId, round, commitment])).hash;
    } catch (e) {
      // Mined before a crash kept this node from recording it: the chain holds this very commitment.
      if (!(e instanceof ChainError && e.errorName === "AlreadyCommitted" && (await ctx.chain.coord.getFunction("voteSlotOf")(ctx.jobId, ctx.wallet.address)) === commitment)) throw e;
      tx = "(mined earlier)";
    }
    ctx.state.save(round, { committed: true });
    ctx.log("vote-committed", { round, bitmap: st.bitmap, tx });
    return { bitmap: st.bitmap, tx };
  }

  async revealVote(round: bigint): Promise<{ bitmap: string; tx: string }> {
    const st = this.ctx.state.round(round);
    if (st.revealed) throw new TooLateError(`round ${round}: this validator already revealed its vote`);
    if (!st.committed || st.bitmap === undefined) throw new Error(`round ${round}: this validator has no committed vote to reveal (state file ${this.ctx.state.file})`);
    let tx: string;
    try {
      tx = (await this.ctx.send("revealVote", [this.ctx.jobId, round, BigInt(st.bitmap!), st.salt!])).hash;
    } catch (e) {
      // Mined before a crash kept this node from recording it.
      if (!(e instanceof ChainError && e.errorName === "AlreadyRevealed")) throw e;
      tx = "(mined earlier)";
    }
    this.ctx.state.save(round, { revealed: true });
    this.ctx.log("vote-revealed", { round, tx });
    return { bitmap: st.bitmap, tx };
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

  /**
   * Aggregates the accepted updates (the chain's accepted set, in index order) and attests the CID.
   * Throws before any work when the round is not finalized yet (naming its phase), and TooLateError
   * when the round's attestation is over or this validator's attestation came too late or twice.
   */
  async attest(round: bigint): Promise<void> {
    const ctx = this.ctx;
    const now = await this.phaseNow();
    if (now.round === round && now.phase < Phase.Attest) throw new Error(`round ${round} is not finalized yet: it is in phase ${phaseName(now.phase)}`);
    if (now.round !== round || now.phase !== Phase.Attest) {
      throw new TooLateError(`round ${round}'s attestation is over (the job is in round ${now.round}, phase ${phaseName(now.phase)})`);
    }
    const res = await ctx.chain.coord.getFunction("roundResult")(ctx.jobId, round);
    const accepted = BigInt(res.acceptedBitmap);
    const t0 = performance.now();
    const { cid: baseCid, tensors: base } = await ctx.baseModel(round);
    const have = this.deltas.get(String(round)) ?? new Map();
    const contributions = [];
    for (const u of await revealedUpdates(ctx.chain.coord, ctx.jobId, round, ctx.jobBlock)) {
      if (!hasBit(accepted, u.index)) continue;
      let c = have.get(u.index);
      if (!c) {
        // Not in memory (restarted, or this validator rejected it): fetch it (size cap, timeout) and check it now.
        const bytes = await this.readable(await this.fetchUpdate(await cidFromChain(u.digest, u.codec)));
        if (!(bytes instanceof Uint8Array)) throw new Error(`round ${round}: accepted update ${u.index} cannot be aggregated: ${bytes.error}`);
        const d = checkStructure({ index: u.index, jobId: ctx.jobId, round: Number(round), baseModelCid: baseCid.bytes, worker: getBytes(u.worker), numSamples: u.numSamples, bytes }, { model: paramsOf(ctx.spec) });
        if (!d.delta) throw new Error(`round ${round}: accepted update ${u.index} cannot be aggregated: ${d.reason}`);
        c = { delta: d.delta, numSamples: Number(u.numSamples) };
      }
      contributions.push(c);
    }
    // A private job weighs every update equally: the declared sample counts are not protected by the
    // noise, and weights from them would give one worker more than the clip norm's say.
    const next = aggregate(ctx.job.aggregation, base, ctx.job.privacy ? contributions.map((c) => ({ ...c, numSamples: 1 })) : contributions);
    // The step this round applies: sent back next round, it is a replay.
    const step = flatten(deltaOf(next, base));
    this.memory.remember(Number(round), [{ round: Number(round), source: "the aggregate step", flat: step, norm: l2(step) }]);
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
      // Enough others attested first: the round (or the whole job) moved on without this attestation;
      // or this validator may not attest it (it revealed no vote in the round, or attested already).
      const expected = e instanceof ChainError && ["WrongRound", "WrongPhase", "JobNotActive", "NotVoted", "AlreadyAttested"].includes(e.errorName ?? "");
      // Attestations sent at the same time race: one estimated before another was mined may end up the one
      // that crosses the threshold and run out of gas opening the next round, or be mined after the round
      // moved on and revert. If the round moved on meanwhile, this one is simply late; else the next tick
      // tries again (the state file does not say attested).
      const [now, phase] = (await ctx.chain.coord.getFunction("phaseOf")(ctx.jobId)) as [bigint, bigint];
      const movedOn = now !== round || Number(phase) !== Phase.Attest;
      if (!expected && !movedOn) throw e;
      const reason = expected ? (e as ChainError).errorName : (e as Error).message.slice(0, 120);
      ctx.log("attest-late", { round, model: cid.toString(), reason });
      ctx.state.save(round, { attested: true });
      this.deltas.delete(String(round));
      throw new TooLateError(`round ${round}: the attestation of ${cid} came too late (${reason})`);
    }
    ctx.state.save(round, { attested: true });
    this.deltas.delete(String(round));
    await this.reportScore(round, cid, next);
  }

  /**
   * Scores the model this validator attested on its held-out data, logs it and publishes it on chain
   * (reportModelScore), so `fedstake status` and the dashboard show an accuracy curve. The score is
   * information only: a failure to compute or publish it is logged and costs nothing (it is never
   * taken for a failed attestation, and never retried).
   */
  private async reportScore(round: bigint, cid: CID, model: Tensor[]): Promise<void> {
    const ctx = this.ctx;
    try {
      const s = await (await this.prepare()).score(model);
      ctx.log("scored", { round, model: cid.toString(), loss: Number(s.loss.toFixed(6)), accuracy: s.accuracy === null ? null : Number(s.accuracy.toFixed(4)), samples: s.samples });
      await ctx.send("reportModelScore", [ctx.jobId, round, ...scoreOnChain(s)]);
    } catch (e) {
      ctx.log("score-report-failed", { round, reason: e instanceof ChainError ? (e.errorName ?? e.message) : (e as Error).message.slice(0, 120) });
    }
  }

  /**
   * Executes the slashes of every round whose vote reveal is over and whose slash deadline has not
   * passed (workers that committed and did not reveal, updates a supermajority rejected, votes committed
   * and withheld), evicts absent members while the job is active, claims accrued validator rewards,
   * and, once the job has ended, leaves the committee to release the seat's bond.
   * `phase` is the current round's phase, when the caller knows it. A failing call is logged and tried
   * again on the next tick. Sets `settled` when the job has ended and nothing is left.
   */
  async settle(current: bigint, phase?: number): Promise<void> {
    const ctx = this.ctx;
    const coord = ctx.chain.coord;
    if (phase === undefined) phase = Number(((await coord.getFunction("phaseOf")(ctx.jobId)) as [bigint, bigint])[1]);
    let pending = false;
    let now: bigint | undefined;
    for (let round = 1n; round <= current; round++) {
      if (ctx.state.round(round).slashed) continue;
      // The current round's vote reveal is over once it is in (or past) its finalize phase.
      if (round === current && phase < Phase.Finalize) {
        pending = true;
        continue;
      }
      now ??= await ctx.chainNow();
      if (await this.slashRound(round, now, phase >= Phase.Completed)) ctx.state.save(round, { slashed: true });
      else pending = true;
    }
    // Completed, Cancelled and Expired are the phases of a job that is no longer active.
    const ended = phase >= Phase.Completed;
    // The last round with an outcome: the current one once finalized, else the one before.
    if (!ended) await this.evictAbsent(phase >= Phase.Attest ? current : current - 1n);
    const member = await coord.getFunction("memberOf")(ctx.jobId, ctx.wallet.address);
    const owed = member.owed as bigint;
    if (owed > 0n) {
      const rc = await ctx.send("claimVoteReward", [ctx.jobId]);
      ctx.log("claimed", { amount: owed, tx: rc.hash });
    }
    if (ended && Number(member.position) !== 0) {
      const { absenceSlashAmount } = await ctx.config();
      try {
        const rc = await ctx.send("leaveCommittee", [ctx.jobId]);
        ctx.log("left-committee", { bondReleased: absenceSlashAmount, tx: rc.hash });
      } catch (e) {
        if (!(e instanceof ChainError && e.errorName === "NotInCommittee")) throw e;
      }
    }
    this.settled = ended && !pending;
  }

  /**
   * Evicts (`evictAbsentMember`, which slashes the bond and frees the seat) every other member that
   * revealed no vote in the last maxMissedRounds decided rounds; such members no longer count towards
   * quorum. Looked for once per decided round.
   */
  private async evictAbsent(decided: bigint): Promise<void> {
    if (decided <= this.evictionsChecked) return;
    const ctx = this.ctx;
    const coord = ctx.chain.coord;
    const max = BigInt((await ctx.config()).maxMissedRounds);
    let done = true;
    for (const a of (await coord.getFunction("committeeOf")(ctx.jobId)) as string[]) {
      if (a === ctx.wallet.address) continue;
      const m = await coord.getFunction("memberOf")(ctx.jobId, a);
      // Committee.missedRounds: rounds in a row, up to `decided`, in which an eligible member revealed no vote.
      const lastActive = BigInt(m.revealRound) > BigInt(m.eligibleFrom) - 1n ? BigInt(m.revealRound) : BigInt(m.eligibleFrom) - 1n;
      const missed = decided > lastActive ? decided - lastActive : 0n;
      if (missed < max) continue;
      try {
        const rc = await ctx.send("evictAbsentMember", [ctx.jobId, a]);
        ctx.log("evicted", { validator: a, missedRounds: missed, tx: rc.hash });
      } catch (e) {
        // Back in time, or evicted (or gone) already.
        if (e instanceof ChainError && (e.errorName === "NotAbsent" || e.errorName === "NotInCommittee")) continue;
        done = false;
        ctx.log("evict-failed", { validator: a, error: (e as Error).message.slice(0, 300) });
      }
    }
    if (done) this.evictionsChecked = decided;
  }

  /**
   * The slashes of one round: once it is decided (finalized, which early-closing phases make long before
   * the vote reveal's deadline), `slashRejectedUpdate` for every update a supermajority rejected and
   * `slashWithheldVote` for every vote committed and withheld (VoteWithheld events, recorded by
   * finalize); once the vote reveal's deadline has passed, `slashMissedReveal` for every worker that
   * committed (UpdateCommitted events) and never revealed. Returns true when nothing
   * is left to do in it (all executed, or refused for good, or its slash deadline passed).
   */
  private async slashRound(round: bigint, now: bigint, jobEnded: boolean): Promise<boolean> {
    const ctx = this.ctx;
    const coord = ctx.chain.coord;
    const res = (await coord.getFunction("roundResult")(ctx.jobId, round)) as RoundResultView;
    const { voteReveal: voteRevealEnd, slash: slashDeadline } = roundDeadlines(res.start, await ctx.config());
    if (now >= slashDeadline) return true;
    const committed = await queryEvents(coord, coord.filters.UpdateCommitted!(ctx.jobId, round), ctx.jobBlock);
    // A round that never got a commitment has nothing to slash once decided, or once the job is over.
    if (committed.length === 0 && (Number(res.outcome) !== Outcome.Pending || jobEnded)) return true;
    const outcome = Number(res.outcome);
    // Rejected updates and withheld votes can be slashed once the round is decided — with early-closing
    // phases, long before the vote reveal's deadline; missed reveals only after that deadline (the
    // contract's RevealNotOver), which is also when an undecided round may be finalized.
    if (now < voteRevealEnd && outcome === Outcome.Pending) return false;
    let done = true;
    // Missed reveals: committed, and the slot still holds the commitment (not revealed, not slashed).
    for (const e of committed) {
      const worker = e.args.worker as string;
      const unrevealed = async () => BigInt(await coord.getFunction("updateCommitmentOf")(ctx.jobId, round, worker)) > SLOT_STATE_MAX;
      if (!(await unrevealed())) continue;
      if (now < voteRevealEnd) {
        done = false; // its turn comes at the vote reveal's deadline
        continue;
      }
      const r = await this.trySlash("missed-reveal", "slashMissedReveal", [ctx.jobId, round, worker], { round, worker }, async () => !(await unrevealed()));
      if (r === "final") break; // refused for the whole round (voided, full, window over)
      if (r === "retry") done = false;
    }
    // Rejected updates and withheld votes: once the round is decided.
    if (outcome === Outcome.Pending) return false;
    const withheld = await queryEvents(coord, coord.filters.VoteWithheld!(ctx.jobId, round), ctx.jobBlock);
    for (const e of withheld) {
      const validator = e.args.validator as string;
      const slashedAlready = async () =>
        (await queryEvents(coord, coord.filters.SlashApplied!(ctx.jobId, round, validator), ctx.jobBlock)).some((x) => Number(x.args.reason) === SlashReason.MissedVoteReveal);
      const r = await this.trySlash("withheld-vote", "slashWithheldVote", [ctx.jobId, round, validator], { round, validator }, slashedAlready);
      if (r === "final") break;
      if (r === "retry") done = false;
    }
    if (outcome === Outcome.Quorum) {
      const slashable = BigInt(res.slashableBitmap);
      for (let i = 0; i < Number(res.updateCount); i++) {
        if (!hasBit(slashable, i)) continue;
        const isSlashed = async () => (BigInt((await coord.getFunction("updateAt")(ctx.jobId, round, i)).flags) & UPDATE_SLASHED) !== 0n;
        if (await isSlashed()) continue;
        const r = await this.trySlash("rejected-update", "slashRejectedUpdate", [ctx.jobId, round, i], { round, index: i }, isSlashed);
        if (r === "final") break;
        if (r === "retry") done = false;
      }
    }
    return done;
  }

  /**
   * Sends one slash. "done": executed, or another validator was first; "final": refused for the whole
   * round (voided, full, window over); "retry": try again on the next tick (too early, or it failed).
   * Expected refusals are logged as `slash-skipped`, anything else as `slash-failed`.
   */
  private async trySlash(
    kind: string,
    method: "slashMissedReveal" | "slashRejectedUpdate" | "slashWithheldVote",
    args: unknown[],
    fields: Record<string, unknown>,
    slashedMeanwhile: () => Promise<boolean>,
  ): Promise<"done" | "final" | "retry"> {
    const ctx = this.ctx;
    try {
      const rc = await ctx.send(method, args);
      ctx.log("slashed", { kind, ...fields, tx: rc.hash });
      return "done";
    } catch (e) {
      const name = e instanceof ChainError ? e.errorName : undefined;
      if (name === "NothingToSlash") return "done"; // someone else executed it
      if (name && SLASH_EXPECTED.has(name)) {
        if (name === "RevealNotOver") return "retry";
        ctx.log("slash-skipped", { kind, ...fields, reason: name });
        return "final";
      }
      // Two validators sending the same slash in one block: the second is mined reverted.
      if (await slashedMeanwhile().catch(() => false)) return "done";
      ctx.log("slash-failed", { kind, ...fields, error: (e as Error).message.slice(0, 300) });
      return "retry";
    }
  }
}
