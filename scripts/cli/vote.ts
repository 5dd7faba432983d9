/** A validator's vote by hand: `vote evaluate`, `vote commit`, `vote reveal`. */
import type { Command } from "commander";
import { bitmapOf } from "../../worker/chain/protocol.ts";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { decisionTable } from "../../worker/validation/report.ts";
import { nodeContext, nodeOptions, option, withNode, type NodeOpts } from "./common.ts";

/** --accept: update indices "0,2,5" ("" accepts none). */
const indices = (s: string): bigint =>
  bitmapOf(
    s
      .split(",")
      .filter((x) => x.trim() !== "")
      .map((x) => {
        if (!/^\d+$/.test(x.trim())) throw new Error(`takes update indices like 0,2,5; got "${x}"`);
        return Number(x);
      }),
  );

export function registerVote(program: Command): void {
  const vote = program.command("vote").summary("a validator's vote by hand").description("A validator's vote by hand, from its node config: evaluate, commit, reveal.");

  nodeOptions(
    vote
      .command("evaluate")
      .summary("fetches, checks and evaluates every revealed update; records the bitmap")
      .description("Fetches and checks every revealed update, judges it with the validator's acceptance policy on its held-out data, prints the table; records the bitmap `vote commit` sends.")
      .addOption(option("--json", "print JSON")),
  ).action(async (file: string, o: NodeOpts & { json?: boolean }) => {
    const ctx = await nodeContext(o, file, "validator");
    await withNode(ctx, o, async (round) => {
      const rows = await new ValidatorRole(ctx).evaluate(round);
      if (o.json) {
        console.log(JSON.stringify(rows.map(({ delta: _, ...r }) => r), (_, x) => (typeof x === "bigint" ? x.toString() : x), 2));
        return;
      }
      console.log(`round ${round}: ${rows.length} revealed updates`);
      for (const line of decisionTable(rows)) console.log(" " + line);
      console.log(`bitmap ${ctx.state.round(round).bitmap} recorded in ${ctx.cfg.dataDir}/state.json (\`vote commit\` sends it; --accept overrides)`);
    });
  });

  nodeOptions(
    vote
      .command("commit")
      .summary("commits the evaluated bitmap or the indices given")
      .description("Commits the vote: the bitmap `vote evaluate` recorded, or the update indices given with --accept ('' rejects all); bitmap and salt are saved before sending.")
      .addOption(option("--accept <I,J,…>", "the indices of the updates to accept, e.g. 0,2,5", indices)),
  ).action(async (file: string, o: NodeOpts & { accept?: bigint }) => {
    const ctx = await nodeContext(o, file, "validator");
    await withNode(ctx, o, (round) => new ValidatorRole(ctx).commitVote(round, o.accept));
  });

  nodeOptions(
    vote.command("reveal").summary("reveals the committed vote").description("Reveals the committed vote (bitmap and salt from the node's state file)."),
  ).action(async (file: string, o: NodeOpts) => {
    const ctx = await nodeContext(o, file, "validator");
    await withNode(ctx, o, (round) => new ValidatorRole(ctx).revealVote(round));
  });
}
