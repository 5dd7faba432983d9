/** Jobs: `job create`, `job join`, `job leave`, `job show`. */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { parseUnits, ZeroAddress } from "ethers";
import { sendTx } from "../../worker/chain/client.ts";
import { defaultJobParams, JobStatus, type JobParams } from "../../worker/chain/protocol.ts";
import { modelArtifact } from "../../worker/node/context.ts";
import { jobCreated, parseJobSpec } from "../../worker/node/jobSpec.ts";
import { completePrivacy } from "../../worker/privacy/policy.ts";
import { HeliaStore } from "../../worker/storage/heliaStore.ts";
import { cidToChain } from "../../worker/storage/store.ts";
import { initParams, paramsOf } from "../../worker/training/model.ts";
import { inHome } from "../../worker/node/home.ts";
import { readTiming, timingLines, tokensText } from "./watch.ts";
import { chainOptions, fmt, jsonOption, printJson, isoTime, named, nameOf, option, positiveId, reader, signer, tokenAmount, UsageError, type ChainOpts } from "./common.ts";

const jobOption = () => option("--job <ID>", "the job id", positiveId).makeOptionMandatory();

export function registerJob(program: Command): void {
  const job = program.command("job").summary("create, join, leave, inspect and wind up jobs").description("Training jobs: create one, join or leave its validator committee, show it; the sponsor cancels it or withdraws what it did not pay out.");

  chainOptions(
    job
      .command("create")
      .summary("pins the spec and initial model, escrows rewards, creates the job")
      .description(
        "Pins the job spec and the seeded initial model on this machine's IPFS node, publishes its endpoint on chain, escrows rewardPerRound × numRounds and creates the job. " +
          "The job file's `startIn` counts from the chain's latest block time, not this machine's clock. " +
          "--serve keeps the node running so that nodes can fetch the spec and the initial model (it must stay reachable until round 1's base model is fetched).",
      )
      .addOption(option("--spec <JOB.json>", "the job file: the job spec and the on-chain parameters under \"job\"").makeOptionMandatory())
      .addOption(option("--ipfs-dir <DIR>", "the sponsor's IPFS repository").default(inHome("sponsor-ipfs"), "$FEDSTAKE_HOME/sponsor-ipfs"))
      .addOption(option("--serve", "keep serving the spec and the initial model until Ctrl-C"))
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { spec: string; ipfsDir: string; serve?: boolean; json?: boolean }) => {
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(readFileSync(o.spec, "utf8"));
    } catch (e) {
      throw new UsageError(`${o.spec}: ${(e as Error).message}`);
    }
    const { job: jobSection, ...specPart } = raw;
    const section = (jobSection ?? {}) as Record<string, unknown>;
    // The "job" section is checked before the chain is asked anything or anything is pinned (the CIDs are filled in below).
    const draft = jobParams(section, 0, { digest: "0x", codec: 0 }, { digest: "0x", codec: 0 });
    // A privacy section gets its noise multiplier for the job's rounds (and k, for distributed noise) before it is pinned.
    if (specPart.privacy !== undefined && typeof specPart.privacy === "object" && specPart.privacy !== null) {
      specPart.privacy = completePrivacy(specPart.privacy as Record<string, unknown>, { rounds: draft.numRounds, minUpdates: draft.minUpdates });
    }
    const spec = parseJobSpec(specPart);
    const { wallet, dep, coord, token, stake } = await signer(o);
    // The contract refuses rounds that outlast unbonding (stake read at round start must stay slashable).
    const unbonding = Number(await stake.getFunction("unbondingPeriod")());
    const span = draft.commitPeriod + draft.revealPeriod + draft.voteCommitPeriod + draft.voteRevealPeriod + draft.slashWindow + draft.attestPeriod;
    if (span >= unbonding) {
      throw new UsageError(`job spec: a round (commit + reveal + voteCommit + voteReveal + slashWindow + attest = ${span} s) must be shorter than the stake manager's unbonding period (${unbonding} s)`);
    }
    // With a guardian, a round as long as the pause cooldown could be voided every time.
    const cooldown = Number(await coord.getFunction("PAUSE_COOLDOWN")());
    if ((await coord.getFunction("guardian")()) !== ZeroAddress && span >= cooldown) {
      throw new UsageError(`job spec: a round (${span} s) must be shorter than the coordinator's pause cooldown (${cooldown} s)`);
    }
    // minUpdates commitments close the commit phase; the contract wants shutting it that way to cost at
    // least the round's worker reward (the cheaper of the two worker slashes, once per commitment).
    if (draft.minUpdates > 0) {
      const workerReward = draft.rewardPerRound - (draft.rewardPerRound * BigInt(draft.validatorShareBps)) / 10_000n;
      const cheaper = draft.missedRevealSlashAmount < draft.rejectSlashAmount ? draft.missedRevealSlashAmount : draft.rejectSlashAmount;
      if (draft.minUpdates > draft.maxUpdates) throw new UsageError(`job spec: "job.minUpdates" (${draft.minUpdates}) must be at most "job.maxUpdates" (${draft.maxUpdates})`);
      if (cheaper * BigInt(draft.minUpdates) < workerReward) {
        throw new UsageError(
          `job spec: "job.minUpdates" × min(missedRevealSlashAmount, rejectSlashAmount) = ${draft.minUpdates} × ${fmt(cheaper)} = ${fmt(cheaper * BigInt(draft.minUpdates))} must be at least the round's worker reward, ${fmt(workerReward)} ` +
            `(rewardPerRound less the validators' share): raise the slashes or minUpdates, or lower rewardPerRound`,
        );
      }
    }
    const store = await HeliaStore.create({ dataDir: resolve(o.ipfsDir) });
    try {
      const init = initParams(spec.model);
      const tensors = paramsOf(spec.model).map((p) => ({ name: p.name, shape: p.shape, data: init.get(p.name)! }));
      const modelCid = await store.add(modelArtifact(0n, 0, new Uint8Array(0), tensors, 0n));
      const specCid = await store.add(new TextEncoder().encode(JSON.stringify(spec)));
      const now = (await wallet.provider!.getBlock("latest"))!.timestamp;
      const params = jobParams(section, now, cidToChain(modelCid), cidToChain(specCid));
      await sendTx(wallet, stake, "setEndpoint", [Buffer.from(store.multiaddrs().join("\n"))]);
      await sendTx(wallet, token, "approve", [dep.coordinator, params.rewardPerRound * BigInt(params.numRounds)]);
      const rc = await sendTx(wallet, coord, "createJob", [params]);
      const jobId = (await coord.getFunction("jobCount")()) as bigint;
      if (o.json) printJson({ job: jobId.toString(), spec: specCid.toString(), initialModel: modelCid.toString(), startTime: Number(params.startTime), startIso: isoTime(params.startTime), tx: rc.hash });
      else console.log(`job ${jobId} created: spec ${specCid}, initial model ${modelCid}, round 1 opens at ${isoTime(params.startTime)}: tx ${rc.hash}`);
      if (o.serve) {
        // With --json, stdout holds the one document: the serving line goes to stderr.
        (o.json ? console.error : console.log)(`serving the spec and the initial model at ${store.multiaddrs().join(", ")} — Ctrl-C to stop`);
        await new Promise((r) => (process.once("SIGINT", r), process.once("SIGTERM", r)));
      }
    } finally {
      await store.stop();
    }
  });

  chainOptions(
    job
      .command("join")
      .summary("joins the validator committee (holds the absence bond)")
      .description(
        "Joins the job's validator committee: holds the job's absenceSlashAmount of free stake as a bond until it leaves. " +
          "Votes count from the first round that opens after joining (join before the start time to vote in round 1).",
      )
      .addOption(jobOption())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { wallet, coord } = await signer(o);
    const rc = await sendTx(wallet, coord, "joinCommittee", [o.job]);
    const c = await coord.getFunction("jobConfig")(o.job);
    if (o.json) return printJson({ job: o.job.toString(), joined: wallet.address, bond: fmt(c.absenceSlashAmount), tx: rc.hash });
    console.log(`joined job ${o.job}'s committee (bond ${fmt(c.absenceSlashAmount)} held): tx ${rc.hash}`);
  });

  chainOptions(
    job
      .command("leave")
      .summary("leaves the committee and releases the bond")
      .description(
        "Leaves the job's validator committee and releases its bond (not while a vote of the current round is pending; a member of an active job " +
          "that revealed no vote in the last maxMissedRounds − 1 decided rounds forfeits it); credited rewards stay claimable.",
      )
      .addOption(jobOption())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { wallet, coord } = await signer(o);
    const rc = await sendTx(wallet, coord, "leaveCommittee", [o.job]);
    const c = await coord.getFunction("jobConfig")(o.job);
    if (o.json) return printJson({ job: o.job.toString(), left: wallet.address, bondReleased: fmt(c.absenceSlashAmount), tx: rc.hash });
    console.log(`left job ${o.job}'s committee (bond ${fmt(c.absenceSlashAmount)} released): tx ${rc.hash}`);
  });

  chainOptions(
    job
      .command("cancel")
      .summary("sponsor: cancels a job no worker has committed to, refunding its escrow")
      .description("The sponsor cancels a job whose current round has no commitment yet (the commit phase at the latest); the escrow is then withdrawn with `job withdraw`.")
      .addOption(jobOption())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { wallet, coord } = await signer(o);
    const rc = await sendTx(wallet, coord, "cancelJob", [o.job]);
    if (o.json) return printJson({ job: o.job.toString(), cancelled: true, tx: rc.hash });
    console.log(`job ${o.job} cancelled: tx ${rc.hash}`);
  });

  chainOptions(
    job
      .command("withdraw")
      .summary("sponsor: takes back what an ended job did not pay out")
      .description("Once a job is completed, cancelled or expired, its sponsor withdraws what is left in its reward pool (unpaid rounds, unpayable shares, rounding).")
      .addOption(jobOption())
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { wallet, coord } = await signer(o);
    const amount = (await coord.getFunction("rewardPool")(o.job)) as bigint;
    const rc = await sendTx(wallet, coord, "withdrawRemainder", [o.job]);
    if (o.json) return printJson({ job: o.job.toString(), withdrawn: fmt(amount), tx: rc.hash });
    console.log(`withdrew ${fmt(amount)} from job ${o.job}'s pool: tx ${rc.hash}`);
  });

  chainOptions(
    job
      .command("show")
      .summary("parameters, CIDs, committee, phase, round timing, status, reward pool")
      .description(
        "A job's parameters (slash window, liveness, bonds, guardian), spec and initial model CIDs, committee and live state, and the current round's timing: " +
          "its start and every phase's deadline in chain time (unix seconds and ISO dates) with the seconds left at the latest block's timestamp. " +
          "A deadline is the latest its phase can end: phases close early once everyone expected has acted, so `phase` (phaseOf) says where the round is.",
      )
      .addOption(jobOption())
      .addOption(jsonOption()),
    { key: "none" },
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { coord, provider, fromBlock } = await reader(o);
    const jobId = o.job;
    const created = await jobCreated(coord, jobId, fromBlock);
    const timing = await readTiming(coord, provider, jobId);
    // Everything read at the block the timing was read at.
    const at = { blockTag: timing.block };
    const [c, s, committee] = await Promise.all([
      coord.getFunction("jobConfig").staticCall(jobId, at),
      coord.getFunction("jobState").staticCall(jobId, at),
      coord.getFunction("committeeOf").staticCall(jobId, at),
    ]);
    const show = {
      job: jobId.toString(),
      sponsor: created.sponsor,
      spec: created.specCid.toString(),
      initialModel: created.initialModelCid.toString(),
      status: nameOf(JobStatus, s.status),
      round: timing.round,
      phase: timing.phase,
      completedRounds: Number(s.completedRounds),
      idleRounds: Number(s.idleRounds),
      numRounds: Number(c.numRounds),
      rewardPerRound: fmt(c.rewardPerRound),
      periods: {
        commit: Number(c.commitPeriod),
        reveal: Number(c.revealPeriod),
        voteCommit: Number(c.voteCommitPeriod),
        voteReveal: Number(c.voteRevealPeriod),
        slashWindow: Number(c.slashWindow),
        attest: Number(c.attestPeriod),
      },
      thresholdsBps: {
        quorum: Number(c.quorumBps),
        accept: Number(c.acceptBps),
        attest: Number(c.attestBps),
        rejectSlash: Number(c.rejectSlashBps),
        validatorShare: Number(c.validatorShareBps),
        missedVoteSlash: Number(c.missedVoteSlashBps),
      },
      maxUpdates: Number(c.maxUpdates),
      minUpdates: Number(c.minUpdates),
      maxSamplesPerUpdate: BigInt(c.maxSamplesPerUpdate).toString(),
      maxValidators: Number(c.maxValidators),
      liveness: { maxMissedRounds: Number(c.maxMissedRounds), maxIdleRounds: Number(c.maxIdleRounds) },
      minStake: { worker: fmt(c.minWorkerStake), validator: fmt(c.minValidatorStake) },
      slash: { rejected: fmt(c.rejectSlashAmount), missedReveal: fmt(c.missedRevealSlashAmount), absence: fmt(c.absenceSlashAmount) },
      workerLock: fmt(c.workerLock),
      rewardPool: fmt(await coord.getFunction("rewardPool").staticCall(jobId, at)),
      guardian: (await coord.getFunction("guardian").staticCall(at)) as string,
      paused: (await coord.getFunction("paused").staticCall(at)) as boolean,
      committee: [...(committee as string[])],
      timing,
    };
    provider.destroy();
    if (o.json) return printJson(show);
    const { timing: _t, rewardPool, ...rest } = show;
    for (const [k, val] of Object.entries(rest)) console.log(`${k.padEnd(20)} ${typeof val === "object" ? JSON.stringify(val) : val}`);
    console.log(`${"rewardPool".padEnd(20)} ${tokensText(parseUnits(rewardPool, 18))}`);
    for (const line of timingLines(timing)) console.log(line);
  });
}

/** The job parameters that are unsigned integers, by bit width (the token amounts are parsed apart). */
const UINT_BITS: Partial<Record<keyof JobParams, number>> = {
  numRounds: 32,
  commitPeriod: 32,
  revealPeriod: 32,
  voteCommitPeriod: 32,
  voteRevealPeriod: 32,
  attestPeriod: 32,
  slashWindow: 32,
  maxUpdates: 16,
  minUpdates: 16,
  maxSamplesPerUpdate: 64,
  maxValidators: 16,
  quorumBps: 16,
  acceptBps: 16,
  attestBps: 16,
  rejectSlashBps: 16,
  validatorShareBps: 16,
  missedVoteSlashBps: 16,
  maxMissedRounds: 16,
  maxIdleRounds: 16,
};
const AMOUNTS = ["rewardPerRound", "minWorkerStake", "minValidatorStake", "rejectSlashAmount", "missedRevealSlashAmount", "absenceSlashAmount"] as const;

/**
 * JobParams from the job file's "job" section: token amounts in whole tokens ("100", "2.5"), integers as
 * JSON numbers (maxSamplesPerUpdate, a uint64, also as a string of digits), `startIn` in seconds from
 * `now` (the chain's latest block time). The contract checks the rest (and names the parameter it refuses).
 */
function jobParams(j: Record<string, unknown>, now: number, model: { digest: string; codec: number }, spec: { digest: string; codec: number }): JobParams {
  const d = defaultJobParams();
  const known = new Set([...Object.keys(d), "startIn"]);
  for (const k of Object.keys(j)) if (!known.has(k) || k.endsWith("Digest") || k.endsWith("Codec") || k === "startTime") throw new UsageError(`job spec: "job.${k}" is not a job parameter`);
  const out: Record<string, unknown> = { ...d };
  for (const [k, val] of Object.entries(j)) {
    if (k === "startIn") continue;
    if ((AMOUNTS as readonly string[]).includes(k)) {
      out[k] = named(`job.${k}`, tokenAmount)(String(val));
      continue;
    }
    const bits = UINT_BITS[k as keyof JobParams] ?? 256;
    const ok = (Number.isSafeInteger(val) && (val as number) >= 0) || (bits === 64 && typeof val === "string" && /^\d+$/.test(val));
    const n = ok ? BigInt(val as number | string) : -1n;
    if (n < 0n || n >= 1n << BigInt(bits)) throw new UsageError(`job spec: "job.${k}" must be an integer in [0, 2^${bits})`);
    out[k] = bits === 64 ? n : Number(n);
  }
  const startIn = j.startIn === undefined ? 60 : Number(j.startIn);
  if (!Number.isInteger(startIn) || startIn < 1) throw new UsageError(`job spec: "job.startIn" must be a positive number of seconds`);
  return { ...(out as unknown as JobParams), initialModelDigest: model.digest, initialModelCodec: model.codec, specDigest: spec.digest, specCodec: spec.codec, startTime: BigInt(now + startIn) };
}
