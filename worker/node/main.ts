/**
 * A worker or validator daemon: `node worker/node/main.ts <config.json>`. Polls the job's phase and
 * acts once per phase; SIGTERM stops it cleanly (its state file lets a restart resume).
 */
import { JobStatus } from "../chain/protocol.ts";
import { NodeContext, readConfig } from "./context.ts";
import { ValidatorRole } from "./validatorRole.ts";
import { WorkerRole } from "./workerRole.ts";

const cfg = readConfig(process.argv[2]!);
// A peer that drops a connection mid-handshake must not take the daemon down.
process.on("uncaughtException", (e) => console.error(`[${cfg.name}] uncaught: ${e.message}`));
process.on("unhandledRejection", (e) => console.error(`[${cfg.name}] unhandled: ${(e as Error)?.message ?? e}`));
const ctx = await NodeContext.create(cfg);
await ctx.publishEndpoint();
ctx.log("started", { role: cfg.role, address: ctx.wallet.address, ipfs: ctx.store.multiaddrs()[0] });
const role = cfg.role === "worker" ? new WorkerRole(ctx) : new ValidatorRole(ctx);
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
while (!stopping) {
  try {
    const [round, phase] = await ctx.chain.coord.getFunction("phaseOf")(ctx.jobId);
    const st = await ctx.chain.coord.getFunction("jobState")(ctx.jobId);
    if (!ended) await role.tick(round, Number(phase));
    if (!ended && Number(st.status) !== JobStatus.Active) {
      // Last claims are done; keep serving the artifacts this node holds until stopped.
      ended = true;
      ctx.log("job-ended", { status: Number(st.status) });
    }
  } catch (e) {
    ctx.log("error", { message: (e as Error).message.slice(0, 300) });
  }
  await new Promise((r) => setTimeout(r, ended ? 2000 : 500));
}
