/**
 * The worker and validator daemon loop (`fedstake worker|validator CONFIG`): polls the job's phase and
 * acts once per phase; SIGTERM or SIGINT stops it cleanly (its state file lets a restart resume); an
 * uncaught exception or unhandled rejection makes it exit with status 70, to be restarted.
 * After the job ends it settles (claims, lock releases, slashes still in their window, leaving the
 * committee), then keeps serving the artifacts it holds until stopped.
 */
import { ChainError } from "../chain/client.ts";
import { JobStatus, Phase, phaseName } from "../chain/protocol.ts";
import { readConfig, type NodeConfig } from "./config.ts";
import { NodeContext } from "./context.ts";
import { phaseProgress } from "./progress.ts";
import { ValidatorRole, type ValidatorHooks } from "./validatorRole.ts";
import { WorkerRole, type WorkerHooks } from "./workerRole.ts";

/** Exit status of a daemon stopped by an exception nothing caught or a rejection nothing handled. */
export const EXIT_UNCAUGHT = 70;

/**
 * An exception nothing caught, or a promise rejection nothing handled, leaves the node in a state nobody
 * knows (a half-done step, a library's internals mid-update): carrying on could sign transactions from it.
 * So the daemon logs the error and exits with a non-zero status, and whoever supervises it (systemd's
 * `Restart=on-failure`, the demo, an operator) starts it again. A restart is safe: everything the node must
 * not forget (salts, commitments, the artifacts it committed to, what it claimed) is in its state file,
 * written atomically before the transaction that depends on it, so the new process resumes the round
 * where this one stood, as after a SIGKILL (the demo's `--crash` test).
 */
export function exitOnUncaught(ctx: Pick<NodeContext, "cfg" | "log">): void {
  const fatal = (kind: string) => (e: unknown) => {
    const message = e instanceof Error ? e.message : String(e);
    // A peer that drops or resets a connection mid-handshake or mid-transfer surfaces inside the libp2p
    // stack as an error no caller can catch. That says nothing about this node's own state: log it, go on.
    if (isPeerNetworkError(e)) {
      try {
        ctx.log("peer-error", { kind, message: message.slice(0, 300) });
      } catch {
        // logging is a courtesy
      }
      return;
    }
    console.error(`[${ctx.cfg.name}] ${kind}, exiting (status ${EXIT_UNCAUGHT}); a restart resumes from the state file:`, e);
    try {
      ctx.log("fatal", { kind, message: message.slice(0, 300) });
    } catch {
      // The event log is a courtesy here: exit regardless.
    }
    process.exit(EXIT_UNCAUGHT);
  };
  process.on("uncaughtException", fatal("uncaught exception"));
  process.on("unhandledRejection", fatal("unhandled rejection"));
}

/** Connection-level errors of the peer-to-peer stack (a peer hung up, reset or timed out a stream). */
const PEER_ERROR_NAMES = new Set(["AbortError", "TimeoutError", "StreamResetError", "StreamStateError", "StreamClosedError", "ConnectionClosedError", "MuxerClosedError", "UnexpectedEOFError"]);
const PEER_ERROR_CODES = /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ERR_STREAM_(RESET|PREMATURE_CLOSE|DESTROYED|WRITE_AFTER_END)|ERR_CONNECTION_CLOSED|ERR_MUXER_CLOSED|ERR_ENCRYPTION_FAILED|ERR_UNEXPECTED_EOF)$/;
export function isPeerNetworkError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  const code = (e as { code?: unknown }).code;
  return PEER_ERROR_NAMES.has(e.name) || (typeof code === "string" && PEER_ERROR_CODES.test(code));
}

/**
 * What a daemon's caller may change in code: a validator's decision hook (worker/node/decide.ts; a node
 * config names a program instead), and a worker's update transform, which only simulations pass
 * (sim/attacks/: a node config cannot turn a worker into an attacker).
 */
export interface DaemonHooks {
  validator?: ValidatorHooks;
  worker?: WorkerHooks;
}

/** While a phase lasts, its progress line is repeated this often, and whenever its count changes. */
const PROGRESS_EVERY_MS = 15_000;
/** How often the progress is read from the chain besides at a phase change (a few calls: kept off every tick). */
const PROGRESS_READ_MS = 5_000;

/**
 * Runs the daemon of the node `ctx` is for, until SIGTERM or SIGINT; with `exitWhenSettled`, it exits
 * (status 0) once the job has ended and the node has settled, else it keeps serving the artifacts it
 * holds (a validator may hold the only copy of the final model) until stopped.
 */
export async function runDaemon(ctx: NodeContext, hooks: DaemonHooks = {}, opts: { exitWhenSettled?: boolean } = {}): Promise<never> {
  exitOnUncaught(ctx);
  await startupStep(ctx, "publishing the endpoint", () => ctx.publishEndpoint());
  ctx.log("started", { role: ctx.cfg.role, address: ctx.wallet.address, ipfs: ctx.store.multiaddrs()[0] });
  const role = ctx.cfg.role === "worker" ? new WorkerRole(ctx, hooks.worker) : new ValidatorRole(ctx, hooks.validator);
  await startupStep<unknown>(ctx, "preparing", () => role.prepare());
  ctx.log("ready", {});
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await ctx.store.stop().catch(() => {});
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  let ended = false;
  let settled = false;
  let shown = "";
  let said = { text: "", at: 0 };
  let progressRead = 0;
  for (;;) {
    try {
      const [round, phase] = await ctx.chain.coord.getFunction("phaseOf")(ctx.jobId);
      let changed = false;
      if (`${round}/${phase}` !== shown) {
        shown = `${round}/${phase}`;
        changed = true;
        ctx.log("phase", { round, phase: phaseName(phase) });
      }
      // After the job ends the role still has duties (last claims, lock releases, slashes within their
      // window, leaving the committee): it ticks until it says it is settled.
      if (!settled) await role.tick(round, Number(phase));
      if (Number(phase) < Phase.Completed && (changed || Date.now() - progressRead >= PROGRESS_READ_MS)) {
        progressRead = Date.now();
        // A person watching sees the phase, who acted, and the countdown, not silence (read after the
        // node's own step, which must not wait for it).
        const p = await phaseProgress(ctx.chain.coord, ctx.jobId, await ctx.config(), { round, phase });
        const key = p.text.replace(/ · closes in \d+ s$| · in \d+ s$/, "");
        if (key !== said.text || Date.now() - said.at >= PROGRESS_EVERY_MS) {
          ctx.say(p.text, { round: p.round, phase: phaseName(p.phase) });
          said = { text: key, at: Date.now() };
        }
      }
      if (!ended && Number(phase) >= Phase.Completed) {
        ended = true;
        ctx.log("job-ended", { status: Number((await ctx.chain.coord.getFunction("jobState")(ctx.jobId)).status), phase: phaseName(phase) });
      }
      if (ended && !settled && role.settled) {
        settled = true;
        ctx.log("settled", {});
        const status = nameOfStatus(Number((await ctx.chain.coord.getFunction("jobState")(ctx.jobId)).status));
        if (opts.exitWhenSettled) {
          ctx.say(`job ${ctx.jobId} ${status}: this node has settled (rewards claimed, locks and bonds released); exiting`);
          await ctx.store.stop().catch(() => {});
          process.exit(0);
        }
        ctx.say(`job ${ctx.jobId} ${status}: this node has settled (rewards claimed, locks and bonds released); serving its artifacts until stopped (Ctrl-C)`);
      }
    } catch (e) {
      // One failed step (an RPC hiccup, a revert) is logged and tried again on the next tick.
      ctx.log("error", { message: (e as Error).message.slice(0, 300) });
    }
    await new Promise((r) => setTimeout(r, settled ? 2000 : 500));
  }
}

/**
 * A start-up step that reads or writes the chain, tried again like the loop's steps: one failed read (an
 * endpoint down for a few seconds, a "header not found") must not end the process. A revert, or what
 * still fails after ~1 min, does: it will not change by waiting.
 */
async function startupStep<T>(ctx: NodeContext, what: string, f: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      if ((e instanceof ChainError && e.errorName) || attempt >= 7) throw e;
      const wait = Math.min(500 * 2 ** attempt, 16_000);
      ctx.log("retry", { message: `${what}: ${(e as Error).message.split("\n")[0]!.slice(0, 160)}; again in ${wait} ms` });
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** A node config from a file path (read and checked) or as an object already read. */
function configOf(config: string | NodeConfig, role: NodeConfig["role"]): NodeConfig {
  const cfg = typeof config === "string" ? readConfig(config) : config;
  if (cfg.role !== role) throw new Error(`${cfg.file ?? cfg.name} is a ${cfg.role}'s config, not a ${role}'s`);
  return cfg;
}

/**
 * Runs a validator from code, as `fedstake validator CONFIG` does, with its vote decided by
 * `hooks.decide` (given the round's evaluation, it returns the indices to accept) instead of the
 * built-in policy; everything else (prefetch, finalize, aggregate, attest, slash, claim) is the daemon's.
 */
export async function runValidator(config: string | NodeConfig, hooks: ValidatorHooks = {}, opts: { exitWhenSettled?: boolean } = {}): Promise<never> {
  return runDaemon(await NodeContext.create(configOf(config, "validator"), { purpose: "a validator daemon (runValidator)" }), { validator: hooks }, opts);
}

/** Runs a worker from code, as `fedstake worker CONFIG` does. */
export async function runWorker(config: string | NodeConfig, opts: { exitWhenSettled?: boolean } = {}): Promise<never> {
  return runDaemon(await NodeContext.create(configOf(config, "worker"), { purpose: "a worker daemon (runWorker)" }), {}, opts);
}

/** "completed", "cancelled", "expired": how a job ended, in words. */
const nameOfStatus = (s: number): string => (Object.keys(JobStatus) as (keyof typeof JobStatus)[]).find((k) => JobStatus[k] === s)?.toLowerCase() ?? `ended (status ${s})`;
