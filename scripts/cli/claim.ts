/** Settling: `claim CONFIG.json`. */
import type { Command } from "commander";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { WorkerRole } from "../../worker/node/workerRole.ts";
import { eventsFrom, fmt, jsonOption, nodeContext, nodeOptions, printJson, withNode, type NodeOpts } from "./common.ts";

/** "+33.3", "-10.0", "0.0": a change of a token amount. */
const signed = (x: bigint) => (x > 0n ? `+${fmt(x)}` : x < 0n ? `-${fmt(-x)}` : fmt(0n));

export function registerClaim(program: Command): void {
  nodeOptions(
    program
      .command("claim")
      .summary("settles a node's decided rounds: rewards, locks, slashes")
      .description(
        "A worker claims its accepted updates' rewards and releases the stake locks of its decided updates that earned nothing; " +
          "a validator slashes missed reveals, rejected updates and withheld votes still in their window, evicts absent members, " +
          "claims its vote rewards, and leaves the committee once the job has ended. Prints the account's balance and stake after, with what changed, " +
          "and (--json) every step taken, as the node logs it.",
      )
      .addOption(jsonOption()),
  ).action(async (file: string, o: NodeOpts & { json?: boolean }) => {
    const ctx = await nodeContext(o, file);
    const { token, stake } = ctx.chain;
    const who = ctx.wallet.address;
    const account = async () => {
      const [balance, staked, free] = await Promise.all([
        token.getFunction("balanceOf")(who) as Promise<bigint>,
        stake.getFunction("stakeOf")(who) as Promise<bigint>,
        stake.getFunction("freeStakeOf")(who) as Promise<bigint>,
      ]);
      return { balance, staked, free };
    };
    const before = await account();
    const events = eventsFrom(ctx);
    let settled = 0n;
    await withNode(ctx, o, async (round) => {
      settled = round;
      await (ctx.cfg.role === "worker" ? new WorkerRole(ctx) : new ValidatorRole(ctx)).settle(round);
    });
    const after = await account();
    const result = {
      node: ctx.cfg.name,
      role: ctx.cfg.role,
      address: who,
      job: ctx.jobId.toString(),
      round: Number(settled),
      balance: fmt(after.balance),
      balanceChange: signed(after.balance - before.balance),
      stake: fmt(after.staked),
      stakeChange: signed(after.staked - before.staked),
      freeStake: fmt(after.free),
      freeStakeChange: signed(after.free - before.free),
      steps: events(),
    };
    if (o.json) return printJson(result);
    console.log(
      `${result.node} settled job ${result.job} up to round ${result.round}: balance ${result.balance} (${result.balanceChange}), ` +
        `stake ${result.stake} (${result.stakeChange}), free ${result.freeStake} (${result.freeStakeChange}); ${result.steps.length} step${result.steps.length === 1 ? "" : "s"} logged`,
    );
  });
}
