/** `account [ADDRESS]`: an account's stake, unbonding, balance, rewards owed and slashes, from the chain. */
import type { Command } from "commander";
import type { Contract, EventLog } from "ethers";
import { KEY_ENV, loadWallet } from "../../worker/chain/keys.ts";
import { hasBit, Outcome } from "../../worker/chain/protocol.ts";
import { address, argument, chainOptions, fmt, isoTime, jsonOption, printJson, providerOf, reader, slashReasonName, UsageError, type ChainOpts } from "./common.ts";
import { queryEvents } from "../../worker/chain/events.ts";

/** `Update.flags` bit the coordinator sets once an update's reward is paid (CoordinatorBase.UPDATE_CLAIMED). */
const UPDATE_CLAIMED = 1;

/** What `account` reports for one job the account took part in. */
interface JobShare {
  job: string;
  committeeMember: boolean;
  /** Vote rewards credited by finalize and not claimed yet (Committee.Member.owed). */
  voteRewardsOwed: string;
  /** Accepted updates of decided rounds whose reward is not claimed yet. */
  unclaimedUpdates: { round: number; index: number; amount: string }[];
  updateRewardsOwed: string;
  claimed: string;
}



/** The protocol's events matching a filter (from the deployment's block). */
type Events = (c: Contract, filter: unknown) => Promise<EventLog[]>;

/** The jobs the account joined, submitted to, was paid by or was slashed in, with what each owes it. */
async function jobShares(coord: Contract, who: string, events: Events): Promise<JobShare[]> {
  const [joined, revealed, claims, slashed] = await Promise.all([
    events(coord, coord.filters.CommitteeJoined!(null, who)),
    events(coord, coord.filters.UpdateRevealed!(null, null, who)),
    events(coord, coord.filters.RewardClaimed!(null, null, who)),
    events(coord, coord.filters.SlashApplied!(null, null, who)),
  ]);
  const ids = [...new Set([...joined, ...revealed, ...claims, ...slashed].map((e) => BigInt(e.args.jobId)))].sort((a, b) => (a < b ? -1 : 1));
  const out: JobShare[] = [];
  for (const job of ids) {
    const member = await coord.getFunction("memberOf")(job, who);
    const unclaimed: { round: number; index: number; amount: bigint }[] = [];
    for (const e of revealed.filter((x) => BigInt(x.args.jobId) === job)) {
      const [round, index] = [BigInt(e.args.round), Number(e.args.index)];
      const res = await coord.getFunction("roundResult")(job, round);
      if (Number(res.outcome) !== Outcome.Quorum || !hasBit(res.acceptedBitmap, index) || BigInt(res.workerRewardEach) === 0n) continue;
      const u = await coord.getFunction("updateAt")(job, round, index);
      if ((Number(u.flags) & UPDATE_CLAIMED) === 0) unclaimed.push({ round: Number(round), index, amount: BigInt(res.workerRewardEach) });
    }
    const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
    out.push({
      job: job.toString(),
      committeeMember: Number(member.position) !== 0,
      voteRewardsOwed: fmt(BigInt(member.owed)),
      unclaimedUpdates: unclaimed.map((u) => ({ ...u, amount: fmt(u.amount) })),
      updateRewardsOwed: fmt(sum(unclaimed.map((u) => u.amount))),
      claimed: fmt(sum(claims.filter((x) => BigInt(x.args.jobId) === job).map((x) => BigInt(x.args.amount)))),
    });
  }
  return out;
}

export function registerAccount(program: Command): void {
  chainOptions(
    program
      .command("account")
      .summary("stake, unbonding, balance, rewards owed and slashes of an account")
      .description(
        "An account's token balance, stake (free, held as committee bonds, locked behind open commitments), unbonding (amount, release time), " +
          "per job: committee seat, vote rewards owed, accepted updates whose reward is unclaimed, rewards claimed; and every slash it suffered.",
      )
      .addArgument(argument("[ADDRESS]", "the account (default: the key's: --keystore or $" + KEY_ENV + ")", address))
      .addOption(jsonOption()),
    { key: "optional" },
  ).action(async (who: string | undefined, o: ChainOpts & { json?: boolean }) => {
    const { token, stake, coord, provider, fromBlock } = await reader(o);
    const events: Events = (c, filter) => queryEvents(c, filter as never, fromBlock);
    if (who === undefined) {
      if (!o.keystore && !process.env[KEY_ENV]) throw new UsageError(`give the ADDRESS, or the account's key (--keystore FILE or $${KEY_ENV})`);
      who = (await loadWallet({ keystore: o.keystore }, providerOf(o.rpc))).address;
    }
    const now = BigInt((await provider.getBlock("latest"))!.timestamp);
    const [balance, staked, free, [held, locked, until], [unbonding, release]] = await Promise.all([
      token.getFunction("balanceOf")(who) as Promise<bigint>,
      stake.getFunction("stakeOf")(who) as Promise<bigint>,
      stake.getFunction("freeStakeOf")(who) as Promise<bigint>,
      stake.getFunction("locksOf")(who) as Promise<[bigint, bigint, bigint]>,
      stake.getFunction("unbondingOf")(who) as Promise<[bigint, bigint]>,
    ]);
    // The stake manager's Slashed event carries the amount taken; the coordinator's SlashApplied, logged
    // in the same transaction, says which job, round and reason.
    const applied = await events(coord, coord.filters.SlashApplied!(null, null, who));
    const slashes = (await events(stake, stake.filters.Slashed!(who))).map((e) => {
      const why = applied.find((a) => a.transactionHash === e.transactionHash);
      return {
        job: why ? BigInt(why.args.jobId).toString() : null,
        round: why ? Number(why.args.round) : null,
        reason: why ? slashReasonName(why.args.reason) : "unknown",
        amount: fmt(BigInt(e.args.slashed)),
        tx: e.transactionHash,
      };
    });
    const account = {
      address: who,
      chainTime: isoTime(now),
      balance: fmt(balance),
      stake: fmt(staked),
      freeStake: fmt(free),
      held: fmt(held),
      locked: { amount: fmt(locked), until: locked > 0n ? isoTime(until) : null },
      unbonding: { amount: fmt(unbonding), releaseTime: unbonding > 0n ? isoTime(release) : null, withdrawable: unbonding > 0n && now >= release },
      jobs: await jobShares(coord, who, events),
      slashes,
    };
    if (o.json) return printJson(account);
    console.log(`account ${account.address} (chain time ${account.chainTime})`);
    console.log(`  balance    ${account.balance}`);
    console.log(`  stake      ${account.stake} (free ${account.freeStake}, held as bonds ${account.held}, locked ${account.locked.amount}${account.locked.until ? ` until ${account.locked.until}` : ""})`);
    const u = account.unbonding;
    console.log(`  unbonding  ${u.amount}${u.releaseTime ? `, ${u.withdrawable ? "withdrawable since" : "withdrawable from"} ${u.releaseTime}` : ""}`);
    for (const j of account.jobs) {
      const updates = j.unclaimedUpdates.map((x) => `round ${x.round} #${x.index} ${x.amount}`).join(", ");
      console.log(
        `  job ${j.job}: ${j.committeeMember ? "committee member, " : ""}vote rewards owed ${j.voteRewardsOwed}, update rewards owed ${j.updateRewardsOwed}${updates ? ` (${updates})` : ""}, claimed ${j.claimed}`,
      );
    }
    if (!slashes.length) console.log("  slashes    none");
    for (const s of slashes) console.log(`  slashed ${s.amount}${s.job ? ` in job ${s.job} round ${s.round}` : ""}: ${s.reason} (tx ${s.tx})`);
  });
}
