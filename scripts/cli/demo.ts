/** `demo`: the one-command local network (scripts/demo.ts), every argument passed through. */
import { join, resolve } from "node:path";
import type { Command } from "commander";

const ROOT = resolve(import.meta.dirname, "../..");

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .summary("the one-command local network demo (npm run demo)")
    .description(
      "The one-command local network demo, the same as `npm run demo`: every argument after `demo` is passed to scripts/demo.ts, which parses " +
        "and checks them; `fedstake demo --help` lists them.",
    )
    .argument("[options...]", "the demo's options")
    // The demo owns its options, --help included (generated from them): nothing after `demo` is parsed here.
    .helpOption(false)
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (args: string[]) => {
      // The demo starts and stops its own processes and exits by itself; it runs as its own program.
      process.argv = [process.argv[0]!, join(ROOT, "scripts/demo.ts"), ...args];
      await import("../demo.ts");
    });
}
