/** `status`: every round of a job as the chain recorded it. */
import type { Command } from "commander";
import { parseUnits } from "ethers";
import { JobStatus, outcomeName } from "../../worker/chain/protocol.ts";
import { readRounds, roundScore } from "../../worker/dashboard/rounds.ts";
import { readTiming, timingLines, tokensText } from "./watch.ts";
import { chainOptions, fmt, jsonOption, printJson, nameOf, option, positiveId, reader, slashReasonName, type ChainOpts } from "./common.ts";

export function registerStatus(program: Command): void {
  chainOptions(
    program
      .command("status")
      .summary("every round: outcome, updates, votes, slashes, accuracy, CIDs")
      .description(
        "Every round: outcome, commitments, updates, accepted set, votes, withheld votes, slashes (reason, amount), evictions, base and model CIDs, " +
          "and the model's held-out accuracy and loss: the stake-weighted median of the scores the validators that attested it report on chain, each on its own data (unverifiable by anyone else); " +
          "and the current round's start and phase deadlines in chain time with the seconds left (the latest each phase can end: phases close early, `phase` says where the round is). " +
          "Amounts in tokens (--json: exact decimal strings).",
      )
      .addOption(option("--job <ID>", "the job id", positiveId).default(1n, "1"))
      .addOption(jsonOption()),
    { key: "none" },
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { dep, coord, token, provider, fromBlock } = await reader(o);
    const jobId = o.job;
    const timing = await readTiming(coord, provider, jobId);
    const at = { blockTag: timing.block };
    const st = await coord.getFunction("jobState").staticCall(jobId, at);
    const rounds = (await readRounds(coord, jobId, BigInt(timing.round), fromBlock)).map((r) => ({
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
      round: timing.round,
      status: nameOf(JobStatus, st.status),
      phase: timing.phase,
      completedRounds: Number(st.completedRounds),
      rewardPool: fmt(await coord.getFunction("rewardPool").staticCall(jobId, at)),
      coordinatorBalance: fmt(await token.getFunction("balanceOf").staticCall(dep.coordinator, at)),
      timing,
      rounds,
    };
    provider.destroy();
    if (o.json) return printJson(status);
    const tokens = (s: string) => tokensText(parseUnits(s, 18));
    console.log(`job ${status.job} (${status.status}): round ${status.round}, phase ${status.phase}, ${status.completedRounds} paid rounds, pool ${tokens(status.rewardPool)}, coordinator holds ${tokens(status.coordinatorBalance)}`);
    for (const line of timingLines(timing)) console.log(line);
    console.log(" round  outcome     commits  updates  accepted  votes  slashed  accuracy  model");
    for (const r of rounds) {
      const acc = r.updates.filter((u) => u.accepted).length;
      const slashed = r.slashes.reduce((a, x) => a + parseUnits(x.amount, 18), 0n);
      console.log(
        ` ${String(r.round).padStart(5)}  ${r.outcome.padEnd(10)}  ${String(r.committed).padStart(7)}  ${String(r.updates.length).padStart(7)}  ${String(acc).padStart(8)}  ${String(r.votes.length).padStart(5)}  ${(r.slashes.length ? tokensText(slashed) : "-").padStart(7)}  ${accuracyText(r.score).padStart(8)}  ${r.model ?? "-"}`,
      );
    }
  });
}

/** The round's held-out accuracy (roundScore) as a percentage ("-" if none was reported; the loss for a regression job). */
function accuracyText(s: ReturnType<typeof roundScore>): string {
  if (!s) return "-";
  return s.accuracy === null ? `loss ${s.loss.toPrecision(3)}` : `${(100 * s.accuracy).toFixed(1)}%`;
}
