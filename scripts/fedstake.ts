/**
 * The `fedstake` command line: `npm run fedstake -- <command> [options]`, or `npx fedstake …`.
 * `fedstake <command> --help` prints one command's options.
 *
 * Chain commands take --rpc URL (default $FEDSTAKE_RPC or http://127.0.0.1:8545), --deployment FILE
 * (default $FEDSTAKE_DEPLOYMENT or ./deployment.json) and a signing key: --keystore FILE (an encrypted
 * JSON keystore; password in $FEDSTAKE_KEYSTORE_PASSWORD) or $FEDSTAKE_PRIVATE_KEY. Node commands take
 * the node's CONFIG.json (the same file the daemons run from) and accept --rpc and --keystore overrides.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { formatUnits, isAddress, JsonRpcProvider, parseUnits, Wallet, ZeroAddress, type EventLog } from "ethers";
import { attach, deployProtocol, revealedUpdates, sendTx, type Deployment } from "../worker/chain/client.ts";
import { loadWallet, PASSWORD_ENV, writeKeystore } from "../worker/chain/keys.ts";
import { bitmapOf, defaultJobParams, hasBit, JobStatus, Outcome, outcomeName, phaseName, SlashReason, type JobParams } from "../worker/chain/protocol.ts";
import { NodeContext, readConfig, modelArtifact } from "../worker/node/context.ts";
import { runDaemon } from "../worker/node/daemon.ts";
import { jobCreated, parseJobSpec } from "../worker/node/jobSpec.ts";
import { decisionTable } from "../worker/validation/report.ts";
import { ValidatorRole } from "../worker/node/validatorRole.ts";
import { WorkerRole } from "../worker/node/workerRole.ts";
import { HeliaStore } from "../worker/storage/heliaStore.ts";
import { cidFromChain, cidToChain } from "../worker/storage/store.ts";
import { initParams, paramsOf } from "../worker/training/model.ts";

const ROOT = resolve(import.meta.dirname, "..");
type Options = NonNullable<ParseArgsConfig["options"]>;

const CHAIN: Options = {
  rpc: { type: "string", default: process.env.FEDSTAKE_RPC ?? "http://127.0.0.1:8545" },
  deployment: { type: "string", default: process.env.FEDSTAKE_DEPLOYMENT ?? "deployment.json" },
  keystore: { type: "string" },
};
const NODE: Options = { rpc: { type: "string" }, keystore: { type: "string" }, round: { type: "string" } };

interface Command {
  usage: string;
  about: string;
  options: Options;
  positionals?: number;
  run(v: Record<string, string | boolean | undefined>, args: string[]): Promise<void>;
}

class UsageError extends Error {}
const need = (v: Record<string, unknown>, k: string): string => {
  if (typeof v[k] !== "string" || v[k] === "") throw new UsageError(`--${k} is required`);
  return v[k] as string;
};
const tokens = (s: string, what: string): bigint => {
  try {
    return parseUnits(s, 18);
  } catch {
    throw new UsageError(`${what} must be a token amount like 100 or 2.5, got "${s}"`);
  }
};
const fmt = (x: bigint) => formatUnits(x, 18);
const nameOf = (o: Record<string, number>, v: number | bigint): string => Object.keys(o).find((k) => o[k] === Number(v)) ?? String(v);
/** How `status` names a slash's reason. */
const slashReasonName = (r: number | bigint): string =>
  ({ RejectedUpdate: "rejected update", MissedUpdateReveal: "missed update reveal", MissedVoteReveal: "missed vote reveal", Absence: "absence" })[
    nameOf(SlashReason, r)
  ] ?? `reason ${r}`;

function readDeployment(file: string): Deployment {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Deployment;
  } catch (e) {
    throw new UsageError(`deployment ${file}: ${(e as Error).message} (write one with \`fedstake deploy\`)`);
  }
}
const providerOf = (rpc: string) => new JsonRpcProvider(rpc, undefined, { staticNetwork: true, pollingInterval: 250 });
async function signer(v: Record<string, unknown>) {
  const wallet = await loadWallet({ keystore: v.keystore as string | undefined }, providerOf(v.rpc as string));
  const dep = readDeployment(v.deployment as string);
  return { wallet, dep, ...attach(dep, wallet) };
}
function reader(v: Record<string, unknown>) {
  const dep = readDeployment(v.deployment as string);
  return { dep, ...attach(dep, providerOf(v.rpc as string)) };
}

/** A node's context from its config file, with --rpc / --keystore overrides. */
async function nodeContext(v: Record<string, unknown>, file: string | undefined, role?: "validator"): Promise<NodeContext> {
  if (!file) throw new UsageError("CONFIG.json (the node's config file) is required");
  const cfg = readConfig(file);
  if (role && cfg.role !== role) throw new UsageError(`${file} is a ${cfg.role}'s config; this command needs a ${role}'s`);
  if (v.rpc) cfg.rpc = v.rpc as string;
  if (v.keystore) cfg.keystore = v.keystore as string;
  return NodeContext.create(cfg);
}
async function roundOf(ctx: { chain: { coord: { getFunction(n: string): (...a: unknown[]) => Promise<unknown> } }; jobId: bigint }, v: Record<string, unknown>) {
  if (v.round) return BigInt(v.round as string);
  const [round] = (await ctx.chain.coord.getFunction("phaseOf")(ctx.jobId)) as [bigint];
  return round;
}
/** Runs `f` with a node context and stops its IPFS node afterwards. */
async function withNode(ctx: NodeContext, f: () => Promise<void>) {
  try {
    await f();
  } finally {
    await ctx.store.stop().catch(() => {});
  }
}

/** A command that runs one step of a validator's round from its node config. */
function validatorStep(usage: string, about: string, step: (role: ValidatorRole, round: bigint) => Promise<void>): Command {
  return {
    usage,
    about,
    options: NODE,
    positionals: 1,
    async run(v, [file]) {
      const ctx = await nodeContext(v, file, "validator");
      await withNode(ctx, async () => step(new ValidatorRole(ctx), await roundOf(ctx, v)));
    },
  };
}

const COMMANDS: Record<string, Command> = {
  deploy: {
    usage: "deploy [--unbonding SECONDS] [--guardian ADDRESS] [--out FILE]",
    about:
      "deploys the stake token, stake manager and coordinator (the coordinator becomes the stake manager's only locker and slasher); writes the addresses to --out.\n" +
      "--guardian may pause the coordinator for a bounded time (default: the deploying account; 'none' or the zero address: nobody ever can)",
    options: { ...CHAIN, unbonding: { type: "string", default: "604800" }, guardian: { type: "string" }, out: { type: "string", default: "deployment.json" } },
    async run(v) {
      const unbonding = Number(v.unbonding);
      if (!Number.isInteger(unbonding) || unbonding < 1) throw new UsageError(`--unbonding must be a positive number of seconds, got "${v.unbonding}"`);
      let guardian = v.guardian as string | undefined;
      if (guardian === "none") guardian = ZeroAddress;
      if (guardian !== undefined && !isAddress(guardian)) throw new UsageError(`--guardian must be an address (or "none"), got "${guardian}"`);
      const wallet = await loadWallet({ keystore: v.keystore as string | undefined }, providerOf(v.rpc as string));
      const dep = await deployProtocol(wallet, { unbondingPeriod: unbonding, guardian });
      writeFileSync(v.out as string, JSON.stringify(dep, null, 2) + "\n");
      const g = guardian ?? wallet.address;
      console.log(
        `deployed on chain ${dep.chainId}: token ${dep.token}, stake manager ${dep.stakeManager}, coordinator ${dep.coordinator}, ` +
          `guardian ${g === ZeroAddress ? "none (pausing disabled)" : g} → ${v.out}`,
      );
    },
  },
  mint: {
    usage: "mint --to ADDRESS --amount TOKENS",
    about: "mints stake tokens (devnets; needs the token's MINTER_ROLE)",
    options: { ...CHAIN, to: { type: "string" }, amount: { type: "string" } },
    async run(v) {
      const { wallet, token } = await signer(v);
      const rc = await sendTx(wallet, token, "mint", [need(v, "to"), tokens(need(v, "amount"), "--amount")]);
      console.log(`minted ${v.amount} to ${v.to}: tx ${rc.hash}`);
    },
  },
  "keystore create": {
    usage: "keystore create --out FILE",
    about: `encrypts $FEDSTAKE_PRIVATE_KEY (or a new random key) into a keystore file with $${PASSWORD_ENV}`,
    options: { out: { type: "string" } },
    async run(v) {
      const password = process.env[PASSWORD_ENV];
      if (!password) throw new UsageError(`set ${PASSWORD_ENV} to the password to encrypt with`);
      const key = process.env.FEDSTAKE_PRIVATE_KEY;
      const wallet = key ? new Wallet(key) : (Wallet.createRandom() as unknown as Wallet);
      await writeKeystore(wallet, need(v, "out"), password);
      console.log(`${key ? "encrypted" : "created"} ${wallet.address} → ${v.out}`);
    },
  },
  stake: {
    usage: "stake --amount TOKENS",
    about: "approves and stakes tokens in the stake manager",
    options: { ...CHAIN, amount: { type: "string" } },
    async run(v) {
      const { wallet, dep, token, stake } = await signer(v);
      const amount = tokens(need(v, "amount"), "--amount");
      await sendTx(wallet, token, "approve", [dep.stakeManager, amount]);
      const rc = await sendTx(wallet, stake, "stake", [amount]);
      console.log(`staked ${v.amount}; stake now ${fmt(await stake.getFunction("stakeOf")(wallet.address))}: tx ${rc.hash}`);
    },
  },
  unstake: {
    usage: "unstake --amount TOKENS",
    about: "starts unbonding stake (withdrawable after the unbonding period)",
    options: { ...CHAIN, amount: { type: "string" } },
    async run(v) {
      const { wallet, stake } = await signer(v);
      const rc = await sendTx(wallet, stake, "requestUnstake", [tokens(need(v, "amount"), "--amount")]);
      const [amount, release] = (await stake.getFunction("unbondingOf")(wallet.address)) as [bigint, bigint];
      console.log(`unbonding ${fmt(amount)}, withdrawable from ${new Date(Number(release) * 1000).toISOString()}: tx ${rc.hash}`);
    },
  },
  withdraw: {
    usage: "withdraw",
    about: "withdraws unbonded stake whose unbonding period is over",
    options: CHAIN,
    async run(v) {
      const { wallet, token, stake } = await signer(v);
      const rc = await sendTx(wallet, stake, "withdraw", []);
      console.log(`withdrawn; balance ${fmt(await token.getFunction("balanceOf")(wallet.address))}: tx ${rc.hash}`);
    },
  },
  "job create": {
    usage: "job create --spec JOB.json [--ipfs-dir DIR] [--serve]",
    about:
      "pins the job spec and the initial model on this machine's IPFS node, publishes its endpoint, escrows the reward and creates the job;\n" +
      "--serve keeps the node running so workers can fetch them (they must stay reachable until round 1's base model is fetched)",
    options: { ...CHAIN, spec: { type: "string" }, "ipfs-dir": { type: "string", default: "sponsor-ipfs" }, serve: { type: "boolean", default: false } },
    async run(v) {
      const file = need(v, "spec");
      let raw: Record<string, unknown>;
      try {
        raw = JSON.parse(readFileSync(file, "utf8"));
      } catch (e) {
        throw new UsageError(`${file}: ${(e as Error).message}`);
      }
      const { job: jobSection, ...specPart } = raw;
      const spec = parseJobSpec(specPart);
      const job = (jobSection ?? {}) as Record<string, unknown>;
      const { wallet, dep, coord, token, stake } = await signer(v);
      // The "job" section is checked before anything is pinned (the CIDs are filled in below).
      const draft = jobParams(job, 0, { digest: "0x", codec: 0 }, { digest: "0x", codec: 0 });
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
      const store = await HeliaStore.create({ dataDir: resolve(v["ipfs-dir"] as string) });
      try {
        const init = initParams(spec.model);
        const tensors = paramsOf(spec.model).map((p) => ({ name: p.name, shape: p.shape, data: init.get(p.name)! }));
        const modelCid = await store.add(modelArtifact(0n, 0, new Uint8Array(0), tensors, 0n));
        const specCid = await store.add(new TextEncoder().encode(JSON.stringify(spec)));
        const now = (await wallet.provider!.getBlock("latest"))!.timestamp;
        const params = jobParams(job, now, cidToChain(modelCid), cidToChain(specCid));
        await sendTx(wallet, stake, "setEndpoint", [Buffer.from(store.multiaddrs().join("\n"))]);
        await sendTx(wallet, token, "approve", [dep.coordinator, params.rewardPerRound * BigInt(params.numRounds)]);
        const rc = await sendTx(wallet, coord, "createJob", [params]);
        const jobId = (await coord.getFunction("jobCount")()) as bigint;
        console.log(`job ${jobId} created: spec ${specCid}, initial model ${modelCid}, round 1 opens at ${new Date(Number(params.startTime) * 1000).toISOString()}: tx ${rc.hash}`);
        if (v.serve) {
          console.log(`serving the spec and the initial model at ${store.multiaddrs().join(", ")} — Ctrl-C to stop`);
          await new Promise((r) => (process.once("SIGINT", r), process.once("SIGTERM", r)));
        }
      } finally {
        await store.stop();
      }
    },
  },
  "job join": {
    usage: "job join --job ID",
    about:
      "joins the job's validator committee: holds the job's absenceSlashAmount of free stake as a bond until it leaves;\n" +
      "votes count from the first round that opens after joining (join before the start time to vote in round 1)",
    options: { ...CHAIN, job: { type: "string" } },
    async run(v) {
      const { wallet, coord } = await signer(v);
      const jobId = BigInt(need(v, "job"));
      const rc = await sendTx(wallet, coord, "joinCommittee", [jobId]);
      const c = await coord.getFunction("jobConfig")(jobId);
      console.log(`joined job ${v.job}'s committee (bond ${fmt(c.absenceSlashAmount)} held): tx ${rc.hash}`);
    },
  },
  "job leave": {
    usage: "job leave --job ID",
    about:
      "leaves the job's validator committee and releases its bond (not while a vote of the current round is pending; a member of an active job\n" +
      "that revealed no vote in the last maxMissedRounds − 1 decided rounds forfeits it); credited rewards stay claimable",
    options: { ...CHAIN, job: { type: "string" } },
    async run(v) {
      const { wallet, coord } = await signer(v);
      const jobId = BigInt(need(v, "job"));
      const rc = await sendTx(wallet, coord, "leaveCommittee", [jobId]);
      const c = await coord.getFunction("jobConfig")(jobId);
      console.log(`left job ${v.job}'s committee (bond ${fmt(c.absenceSlashAmount)} released): tx ${rc.hash}`);
    },
  },
  "job show": {
    usage: "job show --job ID [--json]",
    about: "a job's parameters, spec and initial model CIDs, committee and live state",
    options: { ...CHAIN, job: { type: "string" }, json: { type: "boolean", default: false } },
    async run(v) {
      const { coord } = reader(v);
      const jobId = BigInt(need(v, "job"));
      const [c, s, created, committee, [round, phase]] = await Promise.all([
        coord.getFunction("jobConfig")(jobId),
        coord.getFunction("jobState")(jobId),
        jobCreated(coord, jobId),
        coord.getFunction("committeeOf")(jobId),
        coord.getFunction("phaseOf")(jobId),
      ]);
      const show = {
        job: jobId.toString(),
        sponsor: created.sponsor,
        spec: created.specCid.toString(),
        initialModel: created.initialModelCid.toString(),
        status: nameOf(JobStatus, s.status),
        round: Number(round),
        phase: phaseName(phase),
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
        maxSamplesPerUpdate: BigInt(c.maxSamplesPerUpdate).toString(),
        maxValidators: Number(c.maxValidators),
        liveness: { maxMissedRounds: Number(c.maxMissedRounds), maxIdleRounds: Number(c.maxIdleRounds) },
        minStake: { worker: fmt(c.minWorkerStake), validator: fmt(c.minValidatorStake) },
        slash: { rejected: fmt(c.rejectSlashAmount), missedReveal: fmt(c.missedRevealSlashAmount), absence: fmt(c.absenceSlashAmount) },
        workerLock: fmt(c.workerLock),
        rewardPool: fmt(await coord.getFunction("rewardPool")(jobId)),
        guardian: (await coord.getFunction("guardian")()) as string,
        paused: (await coord.getFunction("paused")()) as boolean,
        committee: [...(committee as string[])],
      };
      if (v.json) return console.log(JSON.stringify(show, null, 2));
      for (const [k, val] of Object.entries(show)) console.log(`${k.padEnd(20)} ${typeof val === "object" ? JSON.stringify(val) : val}`);
    },
  },
  status: {
    usage: "status --job ID [--json]",
    about: "every round: outcome, commitments, updates, accepted set, votes, withheld votes, slashes (reason, amount), evictions, base and model CIDs",
    options: { ...CHAIN, job: { type: "string", default: "1" }, json: { type: "boolean", default: false } },
    async run(v) {
      const { dep, coord, token } = reader(v);
      const jobId = BigInt(v.job as string);
      const [round, phase] = await coord.getFunction("phaseOf")(jobId);
      const st = await coord.getFunction("jobState")(jobId);
      const rounds = [];
      for (let r = 1n; r <= BigInt(round); r++) {
        const res = await coord.getFunction("roundResult")(jobId, r);
        const reveals = await revealedUpdates(coord, jobId, r);
        const votes = (await coord.queryFilter(coord.filters.VoteRevealed!(jobId, r), 0)) as EventLog[];
        const commits = (await coord.queryFilter(coord.filters.UpdateCommitted!(jobId, r), 0)) as EventLog[];
        const slashes = (await coord.queryFilter(coord.filters.SlashApplied!(jobId, r), 0)) as EventLog[];
        const evicted = (await coord.queryFilter(coord.filters.MemberEvicted!(jobId, r), 0)) as EventLog[];
        const withheld = (await coord.queryFilter(coord.filters.VoteWithheld!(jobId, r), 0)) as EventLog[];
        const zero = "0x" + "0".repeat(64);
        rounds.push({
          round: Number(r),
          outcome: outcomeName(res.outcome),
          base: (await cidFromChain(res.baseDigest, Number(res.baseCodec))).toString(),
          model: res.modelDigest === zero ? null : (await cidFromChain(res.modelDigest, Number(res.modelCodec))).toString(),
          committed: commits.length,
          updates: reveals.map(({ index, worker }) => ({ index, worker, accepted: Number(res.outcome) === Outcome.Quorum ? hasBit(res.acceptedBitmap, index) : null })),
          votes: votes.map((e) => ({ validator: e.args.validator as string, bitmap: "0x" + BigInt(e.args.acceptBitmap).toString(16) })),
          slashes: slashes.map((e) => ({ account: e.args.account as string, reason: slashReasonName(e.args.reason), amount: fmt(e.args.amount) })),
          withheld: withheld.map((e) => e.args.validator as string),
          evicted: evicted.map((e) => e.args.validator as string),
        });
      }
      const status = {
        job: jobId.toString(),
        round: Number(round),
        status: nameOf(JobStatus, st.status),
        phase: phaseName(phase),
        completedRounds: Number(st.completedRounds),
        rewardPool: fmt(await coord.getFunction("rewardPool")(jobId)),
        coordinatorBalance: fmt(await token.getFunction("balanceOf")(dep.coordinator)),
        rounds,
      };
      if (v.json) return console.log(JSON.stringify(status, null, 2));
      console.log(`job ${status.job} (${status.status}): round ${status.round}, phase ${status.phase}, ${status.completedRounds} paid rounds, pool ${status.rewardPool}`);
      console.log(" round  outcome     commits  updates  accepted  votes  slashed  model");
      for (const r of rounds) {
        const acc = r.updates.filter((u) => u.accepted).length;
        const slashed = r.slashes.reduce((a, x) => a + parseUnits(x.amount, 18), 0n);
        console.log(
          ` ${String(r.round).padStart(5)}  ${r.outcome.padEnd(10)}  ${String(r.committed).padStart(7)}  ${String(r.updates.length).padStart(7)}  ${String(acc).padStart(8)}  ${String(r.votes.length).padStart(5)}  ${(r.slashes.length ? fmt(slashed) : "-").padStart(7)}  ${r.model ?? "-"}`,
        );
      }
    },
  },
  worker: {
    usage: "worker CONFIG.json [--rpc URL] [--keystore FILE]",
    about: "runs a worker daemon: trains each round, pins, commits, reveals, claims, releases its stake locks",
    options: NODE,
    positionals: 1,
    run: async (v, [file]) => runDaemon(await nodeContext(v, file)),
  },
  validator: {
    usage: "validator CONFIG.json [--rpc URL] [--keystore FILE]",
    about:
      "runs a validator daemon: evaluates, votes, finalizes, aggregates, attests, slashes (rejected updates, missed reveals, withheld votes),\n" +
      "evicts absent members, claims, and leaves the committee when the job ends",
    options: NODE,
    positionals: 1,
    run: async (v, [file]) => runDaemon(await nodeContext(v, file, "validator")),
  },
  "vote evaluate": {
    usage: "vote evaluate CONFIG.json [--round R] [--json]",
    about: "fetches and checks every revealed update, evaluates it on the validator's held-out data, prints the table; records the bitmap `vote commit` will send",
    options: { ...NODE, json: { type: "boolean", default: false } },
    positionals: 1,
    async run(v, [file]) {
      const ctx = await nodeContext(v, file, "validator");
      await withNode(ctx, async () => {
        const round = await roundOf(ctx, v);
        const rows = await new ValidatorRole(ctx).evaluate(round);
        if (v.json) {
          console.log(JSON.stringify(rows.map(({ delta: _, ...r }) => r), (_, x) => (typeof x === "bigint" ? x.toString() : x), 2));
          return;
        }
        console.log(`round ${round}: ${rows.length} revealed updates`);
        for (const line of decisionTable(rows)) console.log(" " + line);
        console.log(`bitmap ${ctx.state.round(round).bitmap} recorded in ${ctx.cfg.dataDir}/state.json (\`vote commit\` sends it; --accept overrides)`);
      });
    },
  },
  "vote commit": {
    usage: "vote commit CONFIG.json [--round R] [--accept I,J,…]",
    about: "commits the vote: the evaluated bitmap, or the update indices given with --accept ('' rejects all); the salt is saved first",
    options: { ...NODE, accept: { type: "string" } },
    positionals: 1,
    async run(v, [file]) {
      const ctx = await nodeContext(v, file, "validator");
      await withNode(ctx, async () => {
        const round = await roundOf(ctx, v);
        const parse = (s: string) => s.split(",").filter((x) => x.trim() !== "").map((x) => {
          if (!/^\d+$/.test(x.trim())) throw new UsageError(`--accept takes update indices like 0,2,5; got "${x}"`);
          return Number(x);
        });
        await new ValidatorRole(ctx).commitVote(round, v.accept === undefined ? undefined : bitmapOf(parse(v.accept as string)));
      });
    },
  },
  "vote reveal": validatorStep("vote reveal CONFIG.json [--round R]", "reveals the committed vote (bitmap and salt from the node's state file)", (role, round) => role.revealVote(round)),
  "round finalize": {
    usage: "round finalize --job ID [--round R]",
    about: "finalizes a round whose vote reveal is over (anyone may)",
    options: { ...CHAIN, job: { type: "string" }, round: { type: "string" } },
    async run(v) {
      const { wallet, coord } = await signer(v);
      const jobId = BigInt(need(v, "job"));
      const round = v.round ? BigInt(v.round as string) : ((await coord.getFunction("phaseOf")(jobId)) as [bigint])[0];
      const rc = await sendTx(wallet, coord, "finalizeRound", [jobId, round]);
      const res = await coord.getFunction("roundResult")(jobId, round);
      console.log(`round ${round} finalized: ${outcomeName(res.outcome)}, accepted bitmap 0x${BigInt(res.acceptedBitmap).toString(16)}: tx ${rc.hash}`);
    },
  },
  "model attest": validatorStep(
    "model attest CONFIG.json [--round R]",
    "aggregates the round's accepted updates with the job's policy, pins the model and attests its CID",
    (role, round) => role.attest(round),
  ),
  claim: {
    usage: "claim CONFIG.json",
    about:
      "a worker claims its accepted updates' rewards and releases the stake locks of its decided updates that earned nothing;\n" +
      "a validator slashes missed reveals, rejected updates and withheld votes still in their window, evicts absent members,\n" +
      "claims its vote rewards, and leaves the committee once the job has ended",
    options: NODE,
    positionals: 1,
    async run(v, [file]) {
      const ctx = await nodeContext(v, file);
      await withNode(ctx, async () => {
        const round = await roundOf(ctx, v);
        await (ctx.cfg.role === "worker" ? new WorkerRole(ctx) : new ValidatorRole(ctx)).settle(round);
      });
    },
  },
  demo: {
    usage: "demo [--workers N] [--validators M] [--rounds R] [--attack NAME|none] [--attackers K] [--crash NODE,…]",
    about: "the one-command local network demo (same as npm run demo)",
    options: {},
    async run() {
      throw new Error("unreachable");
    },
  },
};

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
 * JSON numbers (maxSamplesPerUpdate, a uint64, also as a string of digits), `startIn` in seconds from now.
 * The contract checks the rest (and names the parameter it refuses).
 */
function jobParams(j: Record<string, unknown>, now: number, model: { digest: string; codec: number }, spec: { digest: string; codec: number }): JobParams {
  const d = defaultJobParams();
  const known = new Set([...Object.keys(d), "startIn"]);
  for (const k of Object.keys(j)) if (!known.has(k) || k.endsWith("Digest") || k.endsWith("Codec") || k === "startTime") throw new UsageError(`job spec: "job.${k}" is not a job parameter`);
  const out: Record<string, unknown> = { ...d };
  for (const [k, val] of Object.entries(j)) {
    if (k === "startIn") continue;
    if ((AMOUNTS as readonly string[]).includes(k)) {
      out[k] = tokens(String(val), `job.${k}`);
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

function help(): string {
  const head = readFileSync(import.meta.filename, "utf8").split("*/")[0]!.replace(/^\/\*\*\n?|^ \* ?/gm, "");
  return `${head}\nCommands:\n${Object.values(COMMANDS).map((c) => `  ${c.usage}\n      ${c.about.replace(/\n/g, "\n      ")}`).join("\n")}\n`;
}

async function main(argv: string[]): Promise<void> {
  const two = argv.slice(0, 2).join(" ");
  const name = COMMANDS[two] ? two : argv[0];
  if (name === undefined || name === "help" || name === "--help" || name === "-h") return void console.log(help());
  if (name === "demo") {
    // The demo starts and stops its own processes; run it as its own program.
    process.argv = [process.argv[0]!, join(ROOT, "scripts/demo.ts"), ...argv.slice(1)];
    await import("./demo.ts");
    return;
  }
  const cmd = COMMANDS[name];
  if (!cmd) throw new UsageError(`unknown command "${argv.slice(0, 2).join(" ")}" (fedstake help lists them)`);
  const rest = argv.slice(name.split(" ").length);
  if (rest.includes("--help") || rest.includes("-h")) {
    const opts = Object.entries(cmd.options).map(([k, o]) => `--${k}${o.type === "string" ? " VALUE" : ""}${o.default !== undefined ? ` (default ${o.default})` : ""}`);
    return void console.log(`fedstake ${cmd.usage}\n  ${cmd.about}\n  options: ${opts.join(", ") || "none"}`);
  }
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: cmd.options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split("\n")[0]}\nusage: fedstake ${cmd.usage}`);
  }
  if (parsed.positionals.length > (cmd.positionals ?? 0)) throw new UsageError(`unexpected argument "${parsed.positionals[cmd.positionals ?? 0]}"\nusage: fedstake ${cmd.usage}`);
  await cmd.run(parsed.values as Record<string, string | boolean | undefined>, parsed.positionals);
}

const argv = process.argv.slice(2);
main(argv).then(
  () => {
    if (argv[0] !== "demo") process.exit(0);
  },
  (e) => {
    console.error(`fedstake ${argv.slice(0, 2).filter((a) => !a.startsWith("-")).join(" ")}: ${(e as Error).message}`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
