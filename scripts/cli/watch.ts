/**
 * Timing without guessing: `wait` (returns when a phase opens, exit 3 when it was missed) and `watch`
 * (the job's chain events as they happen, NDJSON with --json), both following the chain block by block
 * so that no phase is missed, however short; and the round timetable `job show` and `status` print.
 */
import type { Command } from "commander";
import { formatUnits, parseUnits, Result, toBeHex, zeroPadValue, type Contract, type Log, type Provider } from "ethers";
import { isFinalPhase, Outcome, parsePhaseName, Phase, phaseName, roundDeadlines, SlashReason, type PhaseName, type RoundDeadlines } from "../../worker/chain/protocol.ts";
import { TooLateError } from "../../worker/node/errors.ts";
import { cidFromChain } from "../../worker/storage/store.ts";
import { chainOptions, fmt, isoTime, nameOf, option, positiveId, printJson, reader, wholeNumber, type ChainOpts } from "./common.ts";

/** How often the chain's head is asked for (every block up to it is then examined, none skipped). */
const HEAD_POLL_MS = 250;
/** Blocks per log query and per batch of phase reads when catching up on history. */
const LOG_PAGE = 2000;
const PHASE_BATCH = 50;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A token amount for people: in tokens, cut after 6 decimals ("100", "2.5", "13.333333…"), amounts below
 * 10⁻⁶ tokens in base units ("1 base unit"); JSON keeps formatUnits' exact decimal string.
 */
export function tokensText(x: bigint): string {
  const neg = x < 0n;
  const v = neg ? -x : x;
  const exact = formatUnits(v, 18).replace(/\.0$/, "");
  const [whole, frac = ""] = exact.split(".");
  let out: string;
  if (frac.length <= 6) out = exact;
  else if (v < 10n ** 12n) out = `${v} base unit${v === 1n ? "" : "s"}`;
  else out = `${whole}.${frac.slice(0, 6)}…`;
  return (neg ? "-" : "") + out;
}

/**
 * One deadline: chain time (unix seconds), as an ISO date, the seconds left at the latest block (0 once
 * passed) and whether it is behind the round: its phase is over (also when it closed early, by phaseOf)
 * or its time has passed.
 */
export interface Deadline {
  at: number;
  iso: string;
  secondsLeft: number;
  closed: boolean;
}

/** What `job show` and `status` print of the current round's timing (all read at one block). */
export interface RoundTiming {
  /** The block everything was read at (the latest) and its timestamp: "now" in chain time. */
  block: number;
  chainTime: number;
  chainTimeIso: string;
  round: number;
  /** The current phase (phaseOf: authoritative; phases close early, the deadlines are the latest they end). */
  phase: PhaseName;
  roundStart: Deadline;
  deadlines: { commit: Deadline; reveal: Deadline; voteCommit: Deadline; voteReveal: Deadline; slash: Deadline; attest: Deadline & { final: boolean } };
}

/** The current round's start and deadlines, read at the latest block; seconds left count from its timestamp. */
export async function readTiming(coord: Contract, provider: Provider, jobId: bigint): Promise<RoundTiming> {
  const head = (await provider.getBlock("latest"))!;
  const at = { blockTag: head.number };
  const [[round, phase], c, s] = await Promise.all([
    coord.getFunction("phaseOf").staticCall(jobId, at) as Promise<[bigint, bigint]>,
    coord.getFunction("jobConfig").staticCall(jobId, at),
    coord.getFunction("jobState").staticCall(jobId, at),
  ]);
  const d: RoundDeadlines = roundDeadlines(s.roundStart, c, s.finalized ? s.finalizedAt : 0);
  const now = head.timestamp;
  const current = Number(phase);
  // A phase's deadline is behind the round once phaseOf has moved past the phase (the slash deadline has no phase: time only).
  const one = (t: number, of?: number): Deadline => ({ at: t, iso: isoTime(t), secondsLeft: Math.max(0, t - now), closed: t <= now || (of !== undefined && current > of) });
  return {
    block: head.number,
    chainTime: now,
    chainTimeIso: isoTime(now),
    round: Number(round),
    phase: phaseName(phase),
    roundStart: one(d.start, Phase.NotStarted),
    deadlines: {
      commit: one(d.commit, Phase.Commit),
      reveal: one(d.reveal, Phase.Reveal),
      voteCommit: one(d.voteCommit, Phase.VoteCommit),
      voteReveal: one(d.voteReveal, Phase.VoteReveal),
      slash: one(d.slash),
      attest: { ...one(d.attest, Phase.Attest), final: d.attestFinal },
    },
  };
}

/** The timetable as text lines (`job show`, `status`). */
export function timingLines(t: RoundTiming): string[] {
  const left = (x: Deadline) => (!x.closed ? `in ${x.secondsLeft} s` : x.secondsLeft > 0 ? "closed early" : "passed");
  const names: [keyof RoundTiming["deadlines"], string][] = [
    ["commit", "commit closes"],
    ["reveal", "reveal closes"],
    ["voteCommit", "vote commit closes"],
    ["voteReveal", "vote reveal closes"],
    ["slash", "slash deadline"],
    ["attest", "attestation closes"],
  ];
  return [
    `chain time ${t.chainTimeIso} (block ${t.block}); round ${t.round}, phase ${t.phase}; ` +
      (isFinalPhase(Phase[t.phase]) ? "the job has ended, in this round:" : "each deadline is the latest its phase can end (phases close early once everyone has acted):"),
    `  ${"round start".padEnd(20)} ${t.roundStart.iso}  ${t.roundStart.closed ? "started" : `in ${t.roundStart.secondsLeft} s`}`,
    ...names.map(([k, label]) => {
      const x = t.deadlines[k];
      const note = k === "attest" && !t.deadlines.attest.final && !x.closed ? " (at the latest: finalize sets it)" : "";
      return `  ${label.padEnd(20)} ${x.iso}  ${left(x)}${note}`;
    }),
  ];
}

/**
 * When phase `expected` of the current round opens, for a call refused as too early (WrongPhase with
 * the job before `expected`): the deadline of the phase before it — the latest it opens, sooner when that
 * phase closes early — and the `wait` command that returns when it does. Undefined for a phase that no
 * deadline opens (a later round's, or the job's end).
 */
export function phaseOpensText(t: RoundTiming, job: bigint, expected: number): string | undefined {
  const opensAt: Partial<Record<number, [Deadline, string]>> = {
    [Phase.Commit]: [t.roundStart, "when the round starts"],
    [Phase.Reveal]: [t.deadlines.commit, "sooner if the commit phase closes early (minUpdates commitments)"],
    [Phase.VoteCommit]: [t.deadlines.reveal, "sooner once every commitment is revealed"],
    [Phase.VoteReveal]: [t.deadlines.voteCommit, "sooner once every committee member has voted"],
    [Phase.Finalize]: [t.deadlines.voteReveal, "sooner once every vote is revealed"],
  };
  const wait = `fedstake wait --job ${job} --phase ${phaseName(expected)}`;
  if (expected === Phase.Attest) return `Attest opens when the round is finalized (finalizing opens at ${t.deadlines.voteReveal.iso} at the latest, in ${t.deadlines.voteReveal.secondsLeft} s); \`${wait}\` returns then`;
  const at = opensAt[expected];
  if (!at) return undefined;
  const [d, sooner] = at;
  return `round ${t.round}'s ${phaseName(expected)} opens at ${d.iso} at the latest (in ${d.secondsLeft} s; ${sooner}); \`${wait}\` returns then`;
}

const PHASE_NAMES = (Object.keys(Phase) as PhaseName[]).join(", ");

/** A --phase value: a phase name as `phaseName` gives it, any case, or kebab/snake case (vote-commit). */
const phaseArg = (s: string): PhaseName => {
  const p = parsePhaseName(s);
  if (!p) throw new Error(`must be a phase (${PHASE_NAMES}; any case, or kebab-case like vote-commit), got "${s}"`);
  return p;
};

/** phaseOf at a block, or undefined where the job (or the coordinator) did not exist yet. */
async function phaseAt(coord: Contract, jobId: bigint, block: number): Promise<{ round: number; phase: number } | undefined> {
  try {
    const [round, phase] = (await coord.getFunction("phaseOf").staticCall(jobId, { blockTag: block })) as [bigint, bigint];
    return { round: Number(round), phase: Number(phase) };
  } catch (e) {
    const m = (e as Error).message;
    if (/UnknownJob|could not decode result data|BAD_DATA|execution reverted/i.test(m)) return undefined;
    throw e;
  }
}

/** Where a round's phase stands against the one awaited. */
type Verdict = { kind: "wait" } | { kind: "reached" } | { kind: "missed"; why: string };

function judge(seen: { round: number; phase: number }, target: number, round: number | undefined): Verdict {
  const now = `job is in round ${seen.round}, phase ${phaseName(seen.phase)}`;
  if (isFinalPhase(target)) {
    if (seen.phase === target && (round === undefined || seen.round >= round)) return { kind: "reached" };
    if (isFinalPhase(seen.phase)) return { kind: "missed", why: `the job ended ${phaseName(seen.phase)} in round ${seen.round}` };
    if (round !== undefined && seen.round > round) return { kind: "missed", why: `round ${round} is over: the ${now}` };
    return { kind: "wait" };
  }
  const r = round ?? seen.round;
  if (seen.round < r) return { kind: "wait" };
  if (seen.round > r) return { kind: "missed", why: `round ${r} is over: the ${now}` };
  if (seen.phase === target) return { kind: "reached" };
  if (isFinalPhase(seen.phase)) return { kind: "missed", why: `the job ended ${phaseName(seen.phase)} in round ${seen.round}` };
  if (seen.phase > target) return { kind: "missed", why: `round ${r} is past ${phaseName(target)} (closed or skipped): the ${now}` };
  return { kind: "wait" };
}

type WaitOpts = ChainOpts & { job: bigint; phase: PhaseName; round?: bigint; timeout?: number; json?: boolean };
type WatchOpts = ChainOpts & { job: bigint; fromBlock?: number; json?: boolean };

export function registerWatch(program: Command): void {
  chainOptions(
    program
      .command("wait")
      .summary("returns when a phase of a round opens (exit 3 if it was missed)")
      .description(
        "Follows the chain block by block (phaseOf at every block, so no phase is missed however short, attestation included) and returns when the job's round is in --phase: " +
          "exit 0 when it opens (or is open now), 3 when the round is already past it (it closed, or was skipped: a round with no commitment has no reveal phase, " +
          "a round without accepted updates no attestation) or the job ended, 1 on --timeout. Without --round: the job's current round; " +
          "Completed, Cancelled and Expired wait for the job's end, whatever the round.",
      )
      .addOption(option("--job <ID>", "the job id", positiveId).makeOptionMandatory())
      .addOption(option("--phase <NAME>", `the phase: ${PHASE_NAMES} (any case; vote-commit works too)`, phaseArg).makeOptionMandatory())
      .addOption(option("--round <R>", "the round (default: the job's current round)", positiveId))
      .addOption(option("--timeout <S>", "give up after S seconds (exit 1); default: wait as long as it takes", wholeNumber(0)))
      .addOption(option("--json", "print one JSON document on stdout: {job, round, phase, block, timestamp}")),
    { key: "none" },
  ).action(async (o: WaitOpts) => {
    const { coord, provider } = await reader(o);
    try {
      const target = Phase[o.phase];
      const round = o.round === undefined ? undefined : Number(o.round);
      const until = o.timeout === undefined ? Infinity : Date.now() + o.timeout * 1000;
      let next = await provider.getBlockNumber();
      if ((await phaseAt(coord, o.job, next)) === undefined) throw new Error(`job ${o.job} does not exist on this coordinator`);
      for (;;) {
        const head = await provider.getBlockNumber();
        for (; next <= head; next++) {
          const seen = (await phaseAt(coord, o.job, next))!;
          const v = judge(seen, target, round);
          if (v.kind === "missed") {
            const hint = round === undefined && !isFinalPhase(target) && !isFinalPhase(seen.phase) ? `; --round ${seen.round + 1} waits for the next round's` : "";
            throw new TooLateError(`${phaseName(target)} missed: ${v.why} (block ${next})${hint}`);
          }
          if (v.kind === "reached") {
            const { timestamp } = (await provider.getBlock(next))!;
            const doc = { job: o.job.toString(), round: seen.round, phase: phaseName(seen.phase), block: next, timestamp };
            if (o.json) printJson(doc);
            else console.log(`job ${doc.job} round ${doc.round}: ${doc.phase} at block ${next} (${isoTime(timestamp)})`);
            return;
          }
        }
        if (Date.now() >= until) {
          const seen = await phaseAt(coord, o.job, head);
          throw new Error(`timed out after ${o.timeout} s waiting for ${o.phase}${round ? ` of round ${round}` : ""}: the job is in round ${seen?.round}, phase ${phaseName(seen?.phase ?? -1)}`);
        }
        await sleep(Math.min(HEAD_POLL_MS, Math.max(0, until - Date.now())));
      }
    } finally {
      provider.destroy();
    }
  });

  chainOptions(
    program
      .command("watch")
      .summary("streams the job's chain events (NDJSON with --json) until it ends")
      .description(
        "Prints the job's chain events from --from-block (default 0) and follows new blocks until the job ends (exit 0) or Ctrl-C: " +
          "phase changes (phaseOf read at every block: a \"Phase\" event after the block's own events), round openings, commitments, reveals, votes committed and revealed, " +
          "finalize, withheld votes, attestations, accepted models, scores, slashes, evictions, rewards credited and claimed, committee changes, pauses. " +
          "--json prints one JSON object per line: {event, job, round, block, timestamp, tx, logIndex, …the event's arguments} (token amounts in tokens and other integers " +
          "as exact decimal strings, bitmaps as 0x hex, digest and codec also as a CID, enums by name).",
      )
      .addOption(option("--job <ID>", "the job id", positiveId).makeOptionMandatory())
      .addOption(option("--from-block <N>", "the first block to print events of (default: the deployment's)", wholeNumber(0)))
      .addOption(option("--json", "one JSON object per event and line (NDJSON)")),
    { key: "none" },
  ).action(async (o: WatchOpts) => {
    const { coord, provider, fromBlock } = await reader(o);
    try {
      await watch(coord, provider, o.job, o.fromBlock ?? fromBlock, (e) => console.log(o.json ? JSON.stringify(e) : eventLine(e)));
    } finally {
      provider.destroy();
    }
  });
}

/** One event of `watch`: what the chain logged, or a phase change (event "Phase"). */
export type WatchEvent = { event: string; job: string; round: number | null; block: number; timestamp: number; tx?: string; logIndex?: number } & Record<string, unknown>;

/**
 * Calls `emit` with every event of the job from `from` on, block by block and in log order, the block's
 * phase change (if any) after its logs; returns once the job has ended.
 */
export async function watch(coord: Contract, provider: Provider, jobId: bigint, from: number, emit: (e: WatchEvent) => void): Promise<void> {
  const address = await coord.getAddress();
  const jobTopic = zeroPadValue(toBeHex(jobId), 32);
  const pauseTopics = ["Paused", "Unpaused"].map((n) => coord.interface.getEvent(n)?.topicHash).filter((t): t is string => !!t);
  const times = new Map<number, number>();
  const timeOf = async (n: number) => {
    let t = times.get(n);
    if (t === undefined) {
      t = (await provider.getBlock(n))!.timestamp;
      times.set(n, t);
      if (times.size > 1000) times.delete(times.keys().next().value!);
    }
    return t;
  };
  if ((await phaseAt(coord, jobId, await provider.getBlockNumber())) === undefined) throw new Error(`job ${jobId} does not exist on this coordinator`);
  let prev: { round: number; phase: number } | undefined;
  let next = from;
  for (;;) {
    const head = await provider.getBlockNumber();
    while (next <= head) {
      const to = Math.min(head, next + LOG_PAGE - 1);
      const [own, pauses] = await Promise.all([
        provider.getLogs({ address, fromBlock: next, toBlock: to, topics: [null, jobTopic] }),
        pauseTopics.length ? provider.getLogs({ address, fromBlock: next, toBlock: to, topics: [pauseTopics] }) : Promise.resolve([] as Log[]),
      ]);
      const logs = [...own, ...pauses].sort((a, b) => a.blockNumber - b.blockNumber || a.index - b.index);
      const byBlock = new Map<number, Log[]>();
      for (const l of logs) byBlock.set(l.blockNumber, [...(byBlock.get(l.blockNumber) ?? []), l]);
      for (let start = next; start <= to; start += PHASE_BATCH) {
        const blocks = Array.from({ length: Math.min(PHASE_BATCH, to - start + 1) }, (_, i) => start + i);
        const phases = await Promise.all(blocks.map((n) => phaseAt(coord, jobId, n)));
        for (const [i, n] of blocks.entries()) {
          for (const l of byBlock.get(n) ?? []) {
            const e = await logEvent(coord, l, jobId, await timeOf(n));
            if (e) emit(e);
          }
          const p = phases[i];
          if (p && (!prev || p.round !== prev.round || p.phase !== prev.phase)) {
            prev = p;
            emit({ event: "Phase", job: jobId.toString(), round: p.round, block: n, timestamp: await timeOf(n), phase: phaseName(p.phase) });
            if (isFinalPhase(p.phase)) return;
          }
        }
      }
      next = to + 1;
    }
    await sleep(HEAD_POLL_MS);
  }
}

/** Argument (and JobParams) names whose values are token amounts: in tokens, exact decimal strings ("8.0"), as `status --json` prints them. */
const AMOUNTS = new Set([
  "amount",
  "stake",
  "stakeFor",
  "committeeStake",
  "committedStake",
  "revealedStake",
  "workerRewardEach",
  "validatorPool",
  "rewardPerRound",
  "minWorkerStake",
  "minValidatorStake",
  "rejectSlashAmount",
  "missedRevealSlashAmount",
  "absenceSlashAmount",
]);
const BITMAPS = new Set(["acceptBitmap", "acceptedBitmap", "slashableBitmap"]);
/** (digest, codec) argument pairs and the name their CID gets. */
const CIDS: [string, string, string][] = [
  ["digest", "codec", "cid"],
  ["cidDigest", "cidCodec", "cid"],
  ["baseDigest", "baseCodec", "baseCid"],
];

/** Ethers values as JSON: bigints as decimal strings, structs as objects, arrays as arrays. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Result) {
    const keys = (() => {
      try {
        const o = v.toObject();
        return Object.keys(o).some((k) => !/^_/.test(k)) && Object.keys(o).length === v.length ? Object.keys(o) : undefined;
      } catch {
        return undefined;
      }
    })();
    return keys ? Object.fromEntries(keys.map((k, i) => [k, plain(v[i])])) : [...v].map(plain);
  }
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

async function logEvent(coord: Contract, l: Log, jobId: bigint, timestamp: number): Promise<WatchEvent | undefined> {
  let parsed;
  try {
    parsed = coord.interface.parseLog(l);
  } catch {
    parsed = null;
  }
  if (!parsed) return undefined;
  const e: WatchEvent = { event: parsed.name, job: jobId.toString(), round: null, block: l.blockNumber, timestamp, tx: l.transactionHash, logIndex: l.index };
  const args: Record<string, unknown> = {};
  parsed.fragment.inputs.forEach((input, i) => (args[input.name] = parsed.args[i]));
  for (const [k, v] of Object.entries(args)) {
    if (k === "jobId") continue;
    if (k === "round" || (k === "finalRound" && e.round === null)) e.round = Number(v);
    if (k === "round") continue;
    if (BITMAPS.has(k)) e[k] = "0x" + (v as bigint).toString(16);
    else if (k === "outcome") e[k] = nameOf(Outcome, v as bigint);
    else if (k === "reason") e[k] = nameOf(SlashReason, v as bigint);
    else if (AMOUNTS.has(k) && typeof v === "bigint") e[k] = fmt(v);
    else if (k === "params") e[k] = Object.fromEntries(Object.entries(plain(v) as Record<string, unknown>).map(([pk, pv]) => [pk, AMOUNTS.has(pk) && typeof pv === "string" ? fmt(BigInt(pv)) : pv]));
    else e[k] = plain(v);
  }
  for (const [d, c, name] of CIDS) {
    if (typeof args[d] === "string" && args[c] !== undefined && /^0x[0-9a-f]{64}$/i.test(args[d] as string) && BigInt(args[d] as string) !== 0n) {
      e[name] = (await cidFromChain(args[d] as string, Number(args[c]))).toString();
    }
  }
  return e;
}

/** A watch event as one readable line: block, chain time, round, event, arguments (amounts in tokens). */
export function eventLine(e: WatchEvent): string {
  const { event, job: _job, round, block, timestamp, tx: _tx, logIndex: _i, ...rest } = e;
  const head = `block ${String(block).padStart(6)}  ${isoTime(timestamp)}  ${round === null ? "" : `round ${round}  `}`;
  if (event === "Phase") return `${head}phase ${rest.phase as string}`;
  if (event === "RoundOpened" && typeof rest.start === "string") rest.start = isoTime(Number(rest.start));
  const args = Object.entries(rest)
    .filter(([k]) => k !== "params")
    .map(([k, v]) => `${k}=${AMOUNTS.has(k) && typeof v === "string" ? tokensText(parseUnits(v, 18)) : typeof v === "object" ? JSON.stringify(v) : String(v)}`);
  return `${head}${event}${args.length ? " " + args.join(" ") : ""}`;
}
