/**
 * The `fedstake` command line (run with `npm run fedstake -- <command>`). Implemented so far:
 *
 *   deploy     --rpc URL [--unbonding SECONDS] [--out deployment.json]   (key: FEDSTAKE_PRIVATE_KEY)
 *   status     --rpc URL --deployment FILE --job ID [--json]
 *   worker     CONFIG.json      run a worker daemon
 *   validator  CONFIG.json      run a validator daemon
 *   demo       [demo options]   the one-command local network demo
 *
 * Not yet: stake/unstake/withdraw, job create/show, vote evaluate/commit/reveal, round finalize,
 * model attest, claim (see README, "What is missing").
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { JsonRpcProvider, Wallet, type EventLog } from "ethers";
import { attach, deployProtocol, revealedUpdates, type Deployment } from "../worker/chain/client.ts";
import { hasBit, Outcome, phaseName } from "../worker/chain/protocol.ts";
import { cidFromChain } from "../worker/storage/store.ts";

const ROOT = resolve(import.meta.dirname, "..");
const [command, ...rest] = process.argv.slice(2);
const HELP = readFileSync(import.meta.filename, "utf8").split("*/")[0]!.replace(/^\/\*\*|^ \* ?/gm, "");

function fail(message: string): never {
  console.error(`fedstake ${command ?? ""}: ${message}`);
  process.exit(2);
}

async function main() {
  switch (command) {
    case "deploy": {
      const { values } = parseArgs({ args: rest, options: { rpc: { type: "string", default: "http://127.0.0.1:8545" }, unbonding: { type: "string", default: "604800" }, out: { type: "string", default: "deployment.json" } } });
      const key = process.env.FEDSTAKE_PRIVATE_KEY ?? fail("set FEDSTAKE_PRIVATE_KEY to the deployer's private key");
      const wallet = new Wallet(key, new JsonRpcProvider(values.rpc));
      const dep = await deployProtocol(wallet, { unbondingPeriod: Number(values.unbonding) });
      writeFileSync(values.out!, JSON.stringify(dep, null, 2) + "\n");
      console.log(`deployed on chain ${dep.chainId}: token ${dep.token}, stake manager ${dep.stakeManager}, coordinator ${dep.coordinator} → ${values.out}`);
      return;
    }
    case "status": {
      const { values } = parseArgs({ args: rest, options: { rpc: { type: "string", default: "http://127.0.0.1:8545" }, deployment: { type: "string" }, job: { type: "string", default: "1" }, json: { type: "boolean", default: false } } });
      if (!values.deployment) fail("--deployment FILE is required (written by `fedstake deploy` or the demo)");
      const dep = JSON.parse(readFileSync(values.deployment, "utf8")) as Deployment;
      const { coord, token } = attach(dep, new JsonRpcProvider(values.rpc));
      const jobId = BigInt(values.job!);
      const [round, phase] = await coord.getFunction("phaseOf")(jobId);
      const st = await coord.getFunction("jobState")(jobId);
      const rounds = [];
      for (let r = 1n; r <= BigInt(round); r++) {
        const res = await coord.getFunction("roundResult")(jobId, r);
        const reveals = await revealedUpdates(coord, jobId, r);
        const votes = (await coord.queryFilter(coord.filters.VoteRevealed!(jobId, r), 0)) as EventLog[];
        const zero = "0x" + "0".repeat(64);
        rounds.push({
          round: Number(r),
          outcome: ["pending", "no quorum", "voided", "decided"][Number(res.outcome)],
          base: (await cidFromChain(res.baseDigest, Number(res.baseCodec))).toString(),
          model: res.modelDigest === zero ? null : (await cidFromChain(res.modelDigest, Number(res.modelCodec))).toString(),
          updates: reveals.map(({ index, worker }) => ({ index, worker, accepted: Number(res.outcome) === Outcome.Quorum ? hasBit(res.acceptedBitmap, index) : null })),
          votes: votes.map((e) => ({ validator: e.args.validator as string, bitmap: "0x" + BigInt(e.args.acceptBitmap).toString(16) })),
        });
      }
      const status = {
        job: jobId.toString(),
        round: Number(round),
        phase: phaseName(phase),
        completedRounds: Number(st.completedRounds),
        rewardPool: ((await coord.getFunction("rewardPool")(jobId)) as bigint).toString(),
        coordinatorBalance: ((await token.getFunction("balanceOf")(dep.coordinator)) as bigint).toString(),
        rounds,
      };
      if (values.json) {
        console.log(JSON.stringify(status, null, 2));
        return;
      }
      console.log(`job ${status.job}: round ${status.round}, phase ${status.phase}, ${status.completedRounds} paid rounds, pool ${Number(status.rewardPool) / 1e18}`);
      console.log(" round  outcome    updates  accepted  votes  model");
      for (const r of rounds) {
        const acc = r.updates.filter((u) => u.accepted).length;
        console.log(` ${String(r.round).padStart(5)}  ${r.outcome!.padEnd(9)}  ${String(r.updates.length).padStart(7)}  ${String(acc).padStart(8)}  ${String(r.votes.length).padStart(5)}  ${r.model ?? "-"}`);
      }
      return;
    }
    case "worker":
    case "validator":
    case "demo": {
      const script = command === "demo" ? join(ROOT, "scripts/demo.ts") : join(ROOT, "worker/node/main.ts");
      const r = spawnSync(process.execPath, [script, ...rest], { stdio: "inherit" });
      process.exit(r.status ?? 1);
      return;
    }
    case undefined:
    case "help":
    case "--help":
      console.log(HELP);
      return;
    default:
      fail(`unknown command "${command}"\n${HELP}`);
  }
}

main().catch((e) => fail((e as Error).message));
