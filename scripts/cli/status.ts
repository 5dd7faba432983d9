/** `status`: every round of a job as the chain recorded it. */
import type { Command } from "commander";
import { parseUnits, type EventLog } from "ethers";
import { revealedUpdates } from "../../worker/chain/client.ts";
import { hasBit, JobStatus, Outcome, outcomeName, phaseName } from "../../worker/chain/protocol.ts";
import { cidFromChain } from "../../worker/storage/store.ts";
import { chainOptions, fmt, nameOf, option, positiveId, reader, slashReasonName, type ChainOpts } from "./common.ts";

const ZERO_DIGEST = "0x" + "0".repeat(64);

export function registerStatus(program: Command): void {
  chainOptions(
    program
      .command("status")
      .summary("every round: outcome, updates, votes, slashes, CIDs")
      .description("Every round: outcome, commitments, updates, accepted set, votes, withheld votes, slashes (reason, amount), evictions, base and model CIDs.")
      .addOption(option("--job <ID>", "the job id", positiveId).default(1n, "1"))
      .addOption(option("--json", "print JSON")),
    { key: "none" },
  ).action(async (o: ChainOpts & { job: bigint; json?: boolean }) => {
    const { dep, coord, token } = reader(o);
    const jobId = o.job;
    const [round, phase] = await coord.getFunction("phaseOf")(jobId);
    const st = await coord.getFunction("jobState")(jobId);
    const rounds = [];
    for (let r = 1n; r <= BigInt(round); r++) {
      const res = await coord.getFunction("roundResult")(jobId, r);
      const reveals = await revealedUpdates(coord, jobId, r);
      const votes = (await coord.queryFilter(coord.filters.VoteRevealed!(jobId, r), 0)) as EventLog[];
      const commits = (await coord.queryFilter(coord.filters.UpdateCommitted!(jobId, r), 0)) as EventLog[];
      const slashes = (await coord.queryFilter(coord.filters.SlashApplied!(jobId, r), 0)) as EventLog[];
      const evicted = (await coord.queryFilter(coord.filters.MemberEvicted!(jobId, r), 0)) as EventLog[];
      const withheld = (await coord.queryFilter(coord.filters.VoteWithheld!(jobId, r), 0)) as EventLog[];
      rounds.push({
        round: Number(r),
        outcome: outcomeName(res.outcome),
        base: (await cidFromChain(res.baseDigest, Number(res.baseCodec))).toString(),
        model: res.modelDigest === ZERO_DIGEST ? null : (await cidFromChain(res.modelDigest, Number(res.modelCodec))).toString(),
        committed: commits.length,
        updates: reveals.map(({ index, worker }) => ({ index, worker, accepted: Number(res.outcome) === Outcome.Quorum ? hasBit(res.acceptedBitmap, index) : null })),
        votes: votes.map((e) => ({ validator: e.args.validator as string, bitmap: "0x" + BigInt(e.args.acceptBitmap).toString(16) })),
        slashes: slashes.map((e) => ({ account: e.args.account as string, reason: slashReasonName(e.args.reason), amount: fmt(e.args.amount) })),
        withheld: withheld.map((e) => e.args.validator as string),
        evicted: evicted.map((e) => e.args.validator as string),
      });
    }
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
    console.log(" round  outcome     commits  updates  accepted  votes  slashed  model");
    for (const r of rounds) {
      const acc = r.updates.filter((u) => u.accepted).length;
      const slashed = r.slashes.reduce((a, x) => a + parseUnits(x.amount, 18), 0n);
      console.log(
        ` ${String(r.round).padStart(5)}  ${r.outcome.padEnd(10)}  ${String(r.committed).padStart(7)}  ${String(r.updates.length).padStart(7)}  ${String(acc).padStart(8)}  ${String(r.votes.length).padStart(5)}  ${(r.slashes.length ? fmt(slashed) : "-").padStart(7)}  ${r.model ?? "-"}`,
      );
    }
  });
}
