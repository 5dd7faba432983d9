/** The daemons: `worker CONFIG.json`, `validator CONFIG.json`. */
import type { Command } from "commander";
import { runDaemon } from "../../worker/node/daemon.ts";
import { nodeContext, nodeOptions, option, type NodeOpts } from "./common.ts";

const EXIT_WHEN_DONE = "exit (status 0) once the job has ended and this node has settled, instead of serving its artifacts until stopped";

export function registerNode(program: Command): void {
  nodeOptions(
    program
      .command("worker")
      .summary("runs a worker daemon")
      .description(
        "Runs a worker daemon: trains each round, pins its update, commits, reveals, claims, releases its stake locks; prints a progress line per phase (who acted, when it closes). " +
          "After the job it says so and keeps serving its artifacts until stopped, or exits with --exit-when-done.",
      )
      .addOption(option("--exit-when-done", EXIT_WHEN_DONE)),
    { round: false },
  ).action(async (file: string, o: NodeOpts & { exitWhenDone?: boolean }) => runDaemon(await nodeContext(o, file, undefined, { logTo: "stdout", purpose: "the worker daemon" }), {}, { exitWhenSettled: o.exitWhenDone }));

  nodeOptions(
    program
      .command("validator")
      .summary("runs a validator daemon")
      .description(
        "Runs a validator daemon: evaluates, votes (by the job's policy, its own, or its config's decision hook), finalizes, aggregates, attests, slashes (rejected updates, missed reveals, withheld votes), " +
          "evicts absent members, claims, and leaves the committee when the job ends; prints a progress line per phase. After the job it keeps serving what it attested (it may hold the only copy of the final model) until stopped, or exits with --exit-when-done.",
      )
      .addOption(option("--exit-when-done", EXIT_WHEN_DONE)),
    { round: false },
  ).action(async (file: string, o: NodeOpts & { exitWhenDone?: boolean }) => runDaemon(await nodeContext(o, file, "validator", { logTo: "stdout", purpose: "the validator daemon" }), {}, { exitWhenSettled: o.exitWhenDone }));
}
