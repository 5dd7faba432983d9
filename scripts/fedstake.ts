#!/usr/bin/env node
/**
 * The `fedstake` command line: `npx fedstake <command> [options]` (package.json "bin"; Node ≥ 22.18
 * runs this TypeScript file directly), or `npm run fedstake -- …`, or `node scripts/fedstake.ts …`.
 * `fedstake help` lists the commands, `fedstake <command> --help` prints one command's options; the
 * commands live in scripts/cli/, one file per group.
 */
import { run } from "./cli/program.ts";

// `npm run fedstake -- …` runs this in the package's folder; relative paths the user typed (--spec,
// --out, CONFIG.json…) mean the folder they typed them in, which npm passes as INIT_CWD.
if (process.env.npm_lifecycle_event === "fedstake" && process.env.INIT_CWD) process.chdir(process.env.INIT_CWD);

const code = await run(process.argv.slice(2));
// Commands that finished exit now: an embedded IPFS node or an RPC provider must not keep the process alive.
// The demo (code undefined) stops its own processes and exits by itself.
if (code !== undefined) process.exit(code);
