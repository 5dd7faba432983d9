/**
 * One line that says what a job's network is doing while a person waits for it: the round, the phase,
 * who has acted in it out of whom, and when it closes at the latest (`round 2 · vote commit · 3/5
 * validators committed · closes in 12 s`). The daemons print it as phases change and while they wait;
 * the demo prints it between its round lines. Counts and deadlines are the chain's (jobState, phaseOf,
 * the job's phase lengths, the latest block's time): a phase may close before its deadline once
 * everybody acted.
 */
import type { Contract } from "ethers";
import { Phase, phaseName, roundDeadlines, type PhasePeriods } from "../chain/protocol.ts";

export interface PhaseProgress {
  round: number;
  phase: number;
  /** Who acted in the phase and out of how many (undefined for phases without a count). */
  done?: number;
  of?: number;
  /** Seconds until the phase's deadline (chain time; undefined when it has none). */
  closesIn?: number;
  text: string;
}

/** "VoteCommit" → "vote commit". */
const words = (name: string) => name.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();

/** The job's progress now. `periods`: the job's phase lengths (jobConfig), read once by the caller. */
export async function phaseProgress(coord: Contract, jobId: bigint, periods: PhasePeriods, known?: { round: bigint; phase: bigint | number }): Promise<PhaseProgress> {
  // `known`: the phaseOf its caller just read (one call fewer per line).
  const [roundBig, phaseBig] = known ? [known.round, known.phase] : ((await coord.getFunction("phaseOf")(jobId)) as [bigint, bigint]);
  const round = Number(roundBig);
  const phase = Number(phaseBig);
  const st = await coord.getFunction("jobState")(jobId);
  const provider = coord.runner!.provider!;
  const now = (await provider.getBlock("latest"))!.timestamp;
  const d = roundDeadlines(st.roundStart, periods, st.finalized ? st.finalizedAt : 0);
  const parts = [`round ${round}`, words(phaseName(phase))];
  let done: number | undefined;
  let of: number | undefined;
  let deadline: number | undefined;
  if (phase === Phase.NotStarted) {
    deadline = d.start;
    parts[1] = "starts";
  } else if (phase === Phase.Commit) {
    done = Number(st.commitCount);
    deadline = d.commit;
    parts.push(`${done} update${done === 1 ? "" : "s"} committed`);
  } else if (phase === Phase.Reveal) {
    [done, of] = [Number(st.revealCount), Number(st.commitCount)];
    deadline = d.reveal;
    parts.push(`${done}/${of} revealed`);
  } else if (phase === Phase.VoteCommit) {
    done = Number(st.voteCommitCount);
    of = ((await coord.getFunction("committeeOf")(jobId)) as string[]).length;
    deadline = d.voteCommit;
    parts.push(`${done}/${of} validators committed`);
  } else if (phase === Phase.VoteReveal) {
    [done, of] = [Number(st.voteRevealCount), Number(st.voteCommitCount)];
    deadline = d.voteReveal;
    parts.push(`${done}/${of} votes revealed`);
  } else if (phase === Phase.Finalize) {
    deadline = d.slash;
    parts.push("waiting for anyone to finalize");
  } else if (phase === Phase.Attest) {
    deadline = d.attest;
    parts.push("validators attesting the aggregate");
  }
  const closesIn = deadline === undefined ? undefined : Math.max(0, deadline - now);
  if (closesIn !== undefined) parts.push(phase === Phase.NotStarted ? `in ${closesIn} s` : `closes in ${closesIn} s`);
  return { round, phase, done, of, closesIn, text: parts.join(" · ") };
}
