/**
 * The worker and validator daemon loop (`fedstake worker|validator CONFIG`): polls the job's phase and
 * acts once per phase; SIGTERM or SIGINT stops it cleanly (its state file lets a restart resume); an
 * uncaught exception or unhandled rejection makes it exit with status 70, to be restarted.
 * After the job ends it settles (claims, lock releases, slashes still in their window, leaving the
 * committee), then keeps serving the artifacts it holds until stopped.
 */
import { Phase, phaseName } from "../chain/protocol.ts";
import type { NodeContext } from "./context.ts";
import { ValidatorRole } from "./validatorRole.ts";
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

/** `workerHooks`: only simulations pass them (sim/attacks/); a node config cannot. */
export async function runDaemon(ctx: NodeContext, workerHooks: WorkerHooks = {}): Promise<never> {
  exitOnUncaught(ctx);
  await ctx.publishEndpoint();
  ctx.log("started", { role: ctx.cfg.role, address: ctx.wallet.address, ipfs: ctx.store.multiaddrs()[0] });
  const role = ctx.cfg.role === "worker" ? new WorkerRole(ctx, workerHooks) : new ValidatorRole(ctx);
  await role.prepare();
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
  for (;;) {
    try {
      const [round, phase] = await ctx.chain.coord.getFunction("phaseOf")(ctx.jobId);
      if (`${round}/${phase}` !== shown) {
        shown = `${round}/${phase}`;
        ctx.log("phase", { round, phase: phaseName(phase) });
      }
      // After the job ends the role still has duties (last claims, lock releases, slashes within their
      // window, leaving the committee): it ticks until it says it is settled.
      if (!settled) await role.tick(round, Number(phase));
      if (!ended && Number(phase) >= Phase.Completed) {
        ended = true;
        ctx.log("job-ended", { status: Number((await ctx.chain.coord.getFunction("jobState")(ctx.jobId)).status), phase: phaseName(phase) });
      }
      if (ended && !settled && role.settled) {
        // Keep serving the artifacts this node holds until stopped.
        settled = true;
        ctx.log("settled", {});
      }
    } catch (e) {
      // One failed step (an RPC hiccup, a revert) is logged and tried again on the next tick.
      ctx.log("error", { message: (e as Error).message.slice(0, 300) });
    }
    await new Promise((r) => setTimeout(r, settled ? 2000 : 500));
  }
}
