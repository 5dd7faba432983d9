/** `status`: every round of a job as the chain recorded it. */
import type { Command } from "commander";
import { parseUnits } from "ethers";
import { JobStatus, outcomeName, phaseName } from "../../worker/chain/protocol.ts";
import { readRounds, roundScore } from "../../worker/dashboard/rounds.ts";
import { chainOptions, fmt, nameOf, option, positiveId, reader, slashReasonName, type ChainOpts } from "./common.ts";

export function registerStatus(program: Command): void {
  chainOptions(
    program
      .command("status")
      .summary("every round: outcome, updates, votes, slashes, accuracy, CIDs")
      .description(
        "Every round: outcome, commitments, updates, accepted set, votes, withheld votes, slashes (reason, amount), evictions, base and model CIDs, " +
          "and the model's held-out accuracy and loss: the stake-weighted median of the scores the validators that attested it report on chain, each on its own data (unverifiable by anyone else).",
      )
      .addOption(option("--job <ID>", "the job id", positiveId).default(1n, "1"))
      .addOption(option("--json", "print JSON")),
    { key: "none" },
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { dep, coord, token } = reader(o);
    const jobId = o.job;
    const [round, phase] = await coord.getFunction("phaseOf")(jobId);
    const st = await coord.getFunction("jobState")(jobId);
    const rounds = (await readRounds(coord, jobId, round)).map((r) => ({
      round: r.round,
      outcome: outcomeName(r.outcome),
      base: r.base,
      model: r.model,
      committed: r.committed,
      updates: r.updates.map(({ index, worker, accepted }) => ({ index, worker, accepted })),
      votes: r.votes.map((v) => ({ validator: v.validator, bitmap: "0x" + v.bitmap.toString(16) })),
      slashes: r.slashes.map((x) => ({ account: x.account, reason: slashReasonName(x.reason), amount: fmt(x.amount) })),
      withheld: r.withheld,
      evicted: r.evicted,
      score: roundScore(r),
      scores: r.scores,
    }));
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
    if (o.json) return console.log(JSON.stringify(status, null, 2));
    console.log(`job ${status.job} (${status.status}): round ${status.round}, phase ${status.phase}, ${status.completedRounds} paid rounds, pool ${status.rewardPool}`);
    console.log(" round  outcome     commits  updates  accepted  votes  slashed  accuracy  model");
    for (const r of rounds) {
      const acc = r.updates.filter((u) => u.accepted).length;
      const slashed = r.slashes.reduce((a, x) => a + parseUnits(x.amount, 18), 0n);
      console.log(
        ` ${String(r.round).padStart(5)}  ${r.outcome.padEnd(10)}  ${String(r.committed).padStart(7)}  ${String(r.updates.length).padStart(7)}  ${String(acc).padStart(8)}  ${String(r.votes.length).padStart(5)}  ${(r.slashes.length ? fmt(slashed) : "-").padStart(7)}  ${accuracyText(r.score).padStart(8)}  ${r.model ?? "-"}`,
      );
    }
  });
}

/** The round's held-out accuracy (roundScore) as a percentage ("-" if none was reported; the loss for a regression job). */
function accuracyText(s: ReturnType<typeof roundScore>): string {
  if (!s) return "-";
  return s.accuracy === null ? `loss ${s.loss.toPrecision(3)}` : `${(100 * s.accuracy).toFixed(1)}%`;
}
