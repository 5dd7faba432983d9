/** Settling: `claim CONFIG.json`. */
import type { Command } from "commander";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { WorkerRole } from "../../worker/node/workerRole.ts";
import { nodeContext, nodeOptions, withNode, type NodeOpts } from "./common.ts";

export function registerClaim(program: Command): void {
  nodeOptions(
    program
      .command("claim")
      .summary("settles a node's decided rounds: rewards, locks, slashes")
      .description(
        "A worker claims its accepted updates' rewards and releases the stake locks of its decided updates that earned nothing; " +
          "a validator slashes missed reveals, rejected updates and withheld votes still in their window, evicts absent members, " +
          "claims its vote rewards, and leaves the committee once the job has ended.",
      ),
  ).action(async (file: string, o: NodeOpts) => {
    const ctx = await nodeContext(o, file);
    await withNode(ctx, o, (round) => (ctx.cfg.role === "worker" ? new WorkerRole(ctx) : new ValidatorRole(ctx)).settle(round));
  });
}
