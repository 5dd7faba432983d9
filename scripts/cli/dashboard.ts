/** `dashboard`: a local web page that follows a job live from the chain (worker/dashboard/). */
import type { Command } from "commander";
import { resolve } from "node:path";
import { startDashboard } from "../../worker/dashboard/server.ts";
import { chainOptions, jsonOption, option, printJson, UsageError, positiveId, reader, repeatable, wholeNumber, type ChainOpts } from "./common.ts";

const port = (s: string): number => {
  const n = wholeNumber()(s);
  if (n > 65535) throw new Error(`must be a port number from 0 to 65535, got "${s}"`);
  return n;
};

export function registerDashboard(program: Command): void {
  chainOptions(
    program
      .command("dashboard")
      .summary("a local web page that follows a job live: rounds, phases, votes, slashes, validators, CIDs")
      .description(
        "Serves a web page on 127.0.0.1 that follows the job from the chain every 2 s: the round and phase with its countdown (chain time), " +
          "every update with its outcome, votes, reward and slash, the validators' stake and agreement with the accepted sets, and each round's base and model CIDs. " +
          "GET /api/job returns the same as JSON. --log adds a validator's decisions and reasons from its events.jsonl.",
      )
      .addOption(option("--job <ID>", "the job id", positiveId).default(1n, "1"))
      .addOption(option("--port <N>", "the port on 127.0.0.1 (0: any free port)", port).default(8080))
      .addOption(repeatable("--log <FILE>", "a validator's events.jsonl: its decisions and reasons per update (repeatable)", (s) => resolve(s)))
      .addOption(jsonOption()),
    { key: "none" },
  ).action(async (o: ChainOpts & { job: bigint; port: number; log: string[]; json?: boolean }) => {
    const { coord, stake, provider, fromBlock } = await reader(o);
    const jobs = (await coord.getFunction("jobCount")()) as bigint;
    if (o.job > jobs) throw new UsageError(`there is no job ${o.job} on this chain (${jobs} job${jobs === 1n ? "" : "s"}; \`fedstake job create\` creates one)`);
    const d = await startDashboard({ coord, stake, provider, fromBlock, jobId: o.job, port: o.port, decisionLogs: o.log });
    if (o.json) printJson({ job: o.job.toString(), url: d.url, api: `${d.url}api/job` });
    else console.log(`dashboard for job ${o.job} at ${d.url} (JSON: ${d.url}api/job) — Ctrl-C to stop`);
    await new Promise((r) => (process.once("SIGINT", r), process.once("SIGTERM", r)));
    await d.close();
  });
}
