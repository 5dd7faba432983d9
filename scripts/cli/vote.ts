/** A validator's vote by hand: `vote evaluate`, `vote commit`, `vote reveal`. */
import type { Command } from "commander";
import { bitmapOf } from "../../worker/chain/protocol.ts";
import { ValidatorRole } from "../../worker/node/validatorRole.ts";
import { decisionTable } from "../../worker/validation/report.ts";
import { jsonOption, nodeContext, nodeOptions, option, printJson, UsageError, withNode, type NodeOpts } from "./common.ts";

/** --accept: update indices "0,2,5" ("" accepts none), each once (a repeated one is a typo: refused). */
const indices = (s: string): bigint => {
  const list = s
    .split(",")
    .filter((x) => x.trim() !== "")
    .map((x) => {
      if (!/^\d+$/.test(x.trim())) throw new Error(`takes update indices like 0,2,5; got "${x}"`);
      return Number(x);
    });
  const twice = list.find((x, i) => list.indexOf(x) !== i);
  if (twice !== undefined) throw new Error(`lists index ${twice} twice (a typo? each index once, like 0,2,5)`);
  return bitmapOf(list);
};

export function registerVote(program: Command): void {
  const vote = program.command("vote").summary("a validator's vote by hand").description("A validator's vote by hand, from its node config: evaluate, commit, reveal.");

  nodeOptions(
    vote
      .command("evaluate")
      .summary("fetches, checks and evaluates every revealed update; records the bitmap")
      .description(
        "Fetches and checks every revealed update, judges it with the validator's acceptance policy (or its decision hook) on its held-out data and prints the table; " +
          "once the reveal phase is over, records the bitmap `vote commit` sends (before, nothing is recorded: more updates may come). " +
          "--json prints the round's evaluation document, the one a decision hook receives: every decodable update's norm, cosine to the round's coordinate median, " +
          "held-out loss and accuracy, each rule's verdict and metrics, and the built-in verdict.",
      )
      .addOption(jsonOption()),
  ).action(async (file: string, o: NodeOpts & { json?: boolean }) => {
    const ctx = await nodeContext(o, file, "validator");
    await withNode(ctx, o, async (round) => {
      const v = await new ValidatorRole(ctx).evaluate(round, { document: o.json });
      if (o.json) return printJson({ ...v.evaluation!, recorded: v.recorded ?? null, note: v.note });
      console.log(`round ${round}: ${v.rows.length} revealed updates`);
      for (const line of decisionTable(v.rows)) console.log(" " + line);
      console.log(v.recorded ? `bitmap ${v.recorded} (${v.note}) recorded in ${ctx.state.file} (\`vote commit\` sends it; --accept overrides)` : v.note);
    });
  });

  nodeOptions(
    vote
      .command("commit")
      .summary("commits the evaluated bitmap or the indices given")
      .description(
        "Commits the vote: the bitmap `vote evaluate` recorded, or the update indices given with --accept ('' rejects all); bitmap and salt are saved before sending. " +
          "Refused before anything is saved outside the vote-commit phase, after a vote was committed (exit 3), and for an index the round does not have (exit 2).",
      )
      .addOption(option("--accept <I,J,…>", "the indices of the updates to accept, e.g. 0,2,5", indices))
      .addOption(jsonOption()),
  ).action(async (file: string, o: NodeOpts & { accept?: bigint; json?: boolean }) => {
    const ctx = await nodeContext(o, file, "validator");
    await withNode(ctx, o, async (round) => {
      let r;
      try {
        r = await new ValidatorRole(ctx).commitVote(round, o.accept);
      } catch (e) {
        if (e instanceof RangeError) throw new UsageError(`--accept: ${e.message}`);
        throw e;
      }
      const doc = { job: ctx.jobId.toString(), round: Number(round), committed: r !== undefined, bitmap: r?.bitmap ?? null, tx: r?.tx ?? null, ...(r ? {} : { abstained: ctx.state.round(round).abstained ?? "no vote was decided" }) };
      if (o.json) return printJson(doc);
      console.log(r ? `round ${round}: vote ${r.bitmap} committed: tx ${r.tx}` : `round ${round}: no vote committed (${doc.abstained})`);
    });
  });

  nodeOptions(
    vote.command("reveal").summary("reveals the committed vote").description("Reveals the committed vote (bitmap and salt from the node's state file); exit 3 if it was revealed already.").addOption(jsonOption()),
  ).action(async (file: string, o: NodeOpts & { json?: boolean }) => {
    const ctx = await nodeContext(o, file, "validator");
    await withNode(ctx, o, async (round) => {
      const r = await new ValidatorRole(ctx).revealVote(round);
      if (o.json) return printJson({ job: ctx.jobId.toString(), round: Number(round), bitmap: r.bitmap, tx: r.tx });
      console.log(`round ${round}: vote ${r.bitmap} revealed: tx ${r.tx}`);
    });
  });
}
