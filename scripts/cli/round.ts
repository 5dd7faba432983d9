/** Rounds: `round finalize`. */
import type { Command } from "commander";
import { sendTx } from "../../worker/chain/client.ts";
import { outcomeName } from "../../worker/chain/protocol.ts";
import { chainOptions, currentRound, jsonOption, option, positiveId, printJson, signer, type ChainOpts } from "./common.ts";

export function registerRound(program: Command): void {
  const round = program.command("round").summary("round transitions anyone may send").description("Round transitions anyone may send.");
  chainOptions(
    round
      .command("finalize")
      .summary("tallies a round whose vote reveal is over")
      .description("Finalizes (tallies) a round whose vote reveal is over; anyone may.")
      .addOption(option("--job <ID>", "the job id", positiveId).makeOptionMandatory())
      .addOption(option("--round <R>", "the round (default: the job's current round)", positiveId))
      .addOption(jsonOption()),
  ).action(async (o: ChainOpts & { job: bigint; round?: bigint; json?: boolean }) => {
    const { wallet, coord } = await signer(o);
    const r = o.round ?? (await currentRound(coord, o.job));
    const rc = await sendTx(wallet, coord, "finalizeRound", [o.job, r]);
    const res = await coord.getFunction("roundResult")(o.job, r);
    const bitmap = `0x${BigInt(res.acceptedBitmap).toString(16)}`;
    if (o.json) return printJson({ job: o.job.toString(), round: Number(r), outcome: outcomeName(res.outcome), acceptedBitmap: bitmap, tx: rc.hash });
    console.log(`round ${r} finalized: ${outcomeName(res.outcome)}, accepted bitmap ${bitmap}: tx ${rc.hash}`);
  });
}
