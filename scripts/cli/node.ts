/** The daemons: `worker CONFIG.json`, `validator CONFIG.json`. */
import type { Command } from "commander";
import { runDaemon } from "../../worker/node/daemon.ts";
import { nodeContext, nodeOptions, type NodeOpts } from "./common.ts";

export function registerNode(program: Command): void {
  nodeOptions(
    program
      .command("worker")
      .summary("runs a worker daemon")
      .description("Runs a worker daemon: trains each round, pins its update, commits, reveals, claims, releases its stake locks."),
    { round: false },
  ).action(async (file: string, o: NodeOpts) => runDaemon(await nodeContext(o, file)));

  nodeOptions(
    program
      .command("validator")
      .summary("runs a validator daemon")
      .description(
        "Runs a validator daemon: evaluates, votes, finalizes, aggregates, attests, slashes (rejected updates, missed reveals, withheld votes), " +
          "evicts absent members, claims, and leaves the committee when the job ends.",
      ),
    { round: false },
  ).action(async (file: string, o: NodeOpts) => runDaemon(await nodeContext(o, file, "validator")));
}
