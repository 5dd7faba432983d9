/**
 * A malicious worker daemon for simulations: `node sim/adversary.ts ATTACK CONFIG.json` runs the
 * ordinary worker daemon (the same as `fedstake worker CONFIG.json`) with the hooks of the named attack
 * (sim/attacks/). Its knowledge is what a lone attacker can read: its own update (colluders = [own]),
 * the previous round's revealed updates (chain events, then IPFS), and this round's commitments on chain.
 * The demo starts its attackers this way (`npm run demo -- --attack NAME --attackers K`).
 */
import { decodeArtifact, type Tensor } from "../worker/artifacts/index.ts";
import { revealedUpdates } from "../worker/chain/client.ts";
import { readConfig } from "../worker/node/config.ts";
import { NodeContext } from "../worker/node/context.ts";
import { runDaemon } from "../worker/node/daemon.ts";
import { cidFromChain } from "../worker/storage/store.ts";
import { ATTACKS, attackByName, hooksFor, type AttackSources } from "./attacks/index.ts";
import { queryEvents } from "../worker/chain/events.ts";

/** How long one previous-round update may take to fetch before it is left out. */
export const PREVIOUS_FETCH_TIMEOUT_MS = 15_000;
/** How often a copier looks for another worker's commitment while it waits for one. */
export const COPY_POLL_MS = 500;
/** A copier stops waiting for a commitment to copy this many seconds before the commit phase ends. */
export const COPY_MARGIN_S = 2n;

const ZERO_COMMITMENT = "0x" + "0".repeat(64);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sources of a lone attacker running as its own daemon, reading the chain and IPFS through `ctx`. */
export function daemonSources(ctx: NodeContext): AttackSources {
  const coord = ctx.chain.coord;
  const self = ctx.wallet.address;
  const isSelf = (a: string) => a.toLowerCase() === self.toLowerCase();
  const commitmentOf = async (round: bigint, worker: string) => (await coord.getFunction("updateCommitmentOf")(ctx.jobId, round, worker)) as string;
  return {
    self,
    // Deterministic per attacker: its address.
    seed: Number.parseInt(self.slice(2, 10), 16),
    colluders: async (_round, _base, own) => [own],
    async previous(round) {
      if (round <= 1) return [];
      const revealed = await revealedUpdates(coord, ctx.jobId, BigInt(round - 1), ctx.jobBlock);
      await ctx.dialAccounts([...new Set(revealed.map((u) => u.worker).filter((w) => !isSelf(w)))]);
      const out: { worker: string; delta: Tensor[] }[] = [];
      for (const u of revealed) {
        try {
          const cid = await cidFromChain(u.digest, u.codec);
          const a = decodeArtifact(await ctx.store.get(cid, { timeoutMs: PREVIOUS_FETCH_TIMEOUT_MS }));
          if (a.header.kind !== "update") throw new Error(`${cid} is a ${a.header.kind}, not an update`);
          out.push({ worker: u.worker, delta: a.tensors });
        } catch (e) {
          ctx.log("adversary-fetch-failed", { round: round - 1, worker: u.worker, error: (e as Error).message.slice(0, 200) });
        }
      }
      return out;
    },
    /**
     * The first (in event order) other worker's commitment of `round`. The copier does not train, so it
     * is usually first to commit: it waits for one until COPY_MARGIN_S before the commit phase ends, then
     * gives up (undefined: it commits its own). After a restart it returns what it already committed.
     */
    async copyCommitment(round) {
      const r = BigInt(round);
      const mine = await commitmentOf(r, self);
      if (mine !== ZERO_COMMITMENT) return mine;
      const { commitPeriod } = await ctx.config();
      const commitEnd = BigInt((await coord.getFunction("roundResult")(ctx.jobId, r)).start) + commitPeriod;
      for (;;) {
        const events = await queryEvents(coord, coord.filters.UpdateCommitted!(ctx.jobId, r), ctx.jobBlock);
        const other = events.find((e) => !isSelf(e.args.worker as string));
        if (other) {
          const worker = other.args.worker as string;
          ctx.log("adversary-copied-commitment", { round, from: worker });
          return commitmentOf(r, worker);
        }
        if ((await ctx.chainNow()) + COPY_MARGIN_S >= commitEnd) {
          ctx.log("adversary-nothing-to-copy", { round });
          return undefined;
        }
        await sleep(COPY_POLL_MS);
      }
    },
  };
}

async function main(argv: string[]): Promise<void> {
  const [name, file] = argv;
  if (!name || !file || argv.length > 2) {
    console.error(`usage: node sim/adversary.ts ATTACK CONFIG.json\n  ATTACK: ${Object.keys(ATTACKS).join(", ")}`);
    process.exit(2);
  }
  let attack;
  try {
    attack = attackByName(name);
  } catch (e) {
    console.error((e as Error).message);
    process.exit(2);
  }
  const cfg = readConfig(file);
  if (cfg.role !== "worker") {
    console.error(`${file} is a ${cfg.role}'s config; an adversary runs a worker's`);
    process.exit(2);
  }
  const ctx = await NodeContext.create(cfg);
  ctx.log("adversary", { attack: attack.name, summary: attack.summary });
  await runDaemon(ctx, { worker: hooksFor(attack, daemonSources(ctx)) });
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(`adversary failed: ${(e as Error).stack ?? e}`);
    process.exit(1);
  });
}
