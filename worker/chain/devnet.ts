/**
 * A local chain for the demo, the benchmarks and the end-to-end tests: `hardhat node` on 127.0.0.1
 * (never another interface), started exactly as `npm run node` starts it. The chain keeps time by itself
 * (hardhat.config.ts, network `node`: a block every second, timestamps that follow the wall clock), so
 * nothing here mines: what runs against this chain runs against the README's.
 *
 * Or Foundry's Anvil (npm `@foundry-rs/anvil-linux-amd64`, an optional dependency on Linux x64), a
 * second EVM node that behaves as public chains do where Hardhat's hides it: blocks every second that
 * batch the transactions sent meanwhile (no automining), pending transactions that hold their nonce
 * ("replacement transaction underpriced"), and its own error texts. Same chain id (31337) and test
 * accounts as Hardhat's.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join, resolve } from "node:path";
import { JsonRpcProvider, type Wallet } from "ethers";
import { attach, sendTx, type Deployment } from "./client.ts";

const ROOT = resolve(import.meta.dirname, "../..");
/** Child tools (hardhat's `#!/usr/bin/env node` scripts) must run on this Node, not the machine's. */
export const CHILD_ENV = { ...process.env, PATH: `${dirname(process.execPath)}:${join(ROOT, "node_modules/.bin")}:${process.env.PATH}` };

export interface Devnet {
  url: string;
  provider: JsonRpcProvider;
  stop(): void;
}

/** A free TCP port on 127.0.0.1: `preferred` if it is free, else one the OS picks. */
export async function freePort(preferred = 0): Promise<number> {
  const tryPort = (p: number) =>
    new Promise<number>((res, rej) => {
      const s = createServer().once("error", rej).listen(p, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => res(port));
      });
    });
  return tryPort(preferred).catch(() => tryPort(0));
}

/** Compiles the contracts if their artifacts are missing. */
export function ensureBuilt(): void {
  if (existsSync(join(ROOT, "artifacts/contracts/TrainingCoordinator.sol/TrainingCoordinator.json"))) return;
  const r = spawnSync(join(ROOT, "node_modules/.bin/hardhat"), ["build"], { cwd: ROOT, env: CHILD_ENV, stdio: "inherit" });
  if (r.status !== 0) throw new Error("contract build failed");
}

/** The local EVM nodes startDevnet can run. */
export const DEVNET_NODES = ["hardhat", "anvil"] as const;
export type DevnetNode = (typeof DEVNET_NODES)[number];

/** Anvil's binary as its npm package installs it (npm skips it, an optional dependency, off Linux x64). */
export const ANVIL_BIN = join(ROOT, "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");

export async function startDevnet(opts: { port?: number; node?: DevnetNode } = {}): Promise<Devnet> {
  ensureBuilt();
  const node = opts.node ?? "hardhat";
  const port = await freePort(opts.port ?? 0);
  if (node === "anvil" && !existsSync(ANVIL_BIN)) {
    throw new Error(`Anvil is not installed (${ANVIL_BIN} is missing): npm installs its optional package @foundry-rs/anvil-linux-amd64 on Linux x64 only`);
  }
  const child =
    node === "anvil"
      ? spawn(ANVIL_BIN, ["--host", "127.0.0.1", "--port", String(port), "--block-time", "1", "--chain-id", "31337", "--accounts", "20", "--balance", "10000"], {
          cwd: ROOT,
          stdio: ["ignore", "pipe", "inherit"],
        })
      : spawn(join(ROOT, "node_modules/.bin/hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
          cwd: ROOT,
          env: CHILD_ENV,
          stdio: ["ignore", "pipe", "inherit"],
        });
  const url = `http://127.0.0.1:${port}`;
  const listening = node === "anvil" ? `Listening on 127.0.0.1:${port}` : `JSON-RPC server at ${url}/`;
  let provider: JsonRpcProvider | undefined;
  const stop = () => {
    provider?.destroy();
    if (child.exitCode === null) child.kill("SIGTERM");
  };
  // Ready when *this* node says it listens: the port was free when chosen, but another process may take
  // it before the node binds, and then an RPC probe of the URL would be answered by someone else's chain.
  const ready = await new Promise<boolean>((res) => {
    let seen = "";
    const timer = setTimeout(() => res(false), 60_000);
    child.stdout!.on("data", (d: Buffer) => {
      if (seen.length < 65536) seen += d.toString();
      if (seen.includes(listening)) {
        clearTimeout(timer);
        res(true);
      }
    });
    child.once("exit", () => {
      clearTimeout(timer);
      res(false);
    });
  });
  // The node logs every request to stdout: drain it, or the pipe fills and the node stalls.
  child.stdout!.resume();
  if (!ready) {
    stop();
    throw new Error(`${node === "anvil" ? "anvil" : "hardhat node"} did not start on ${url}${child.exitCode !== null ? ` (it exited with ${child.exitCode}: is the port taken?)` : ""}`);
  }
  provider = new JsonRpcProvider(url, undefined, { staticNetwork: true, pollingInterval: 250 });
  return { url, provider, stop };
}

/**
 * On a devnet, where the deployer is the token's minter: mints each participant its amount (base units)
 * and has it stake all of it, one participant after another (each signs its own approve and stake).
 */
export async function mintAndStake(admin: Wallet, dep: Deployment, stakes: readonly (readonly [Wallet, bigint])[]): Promise<void> {
  const { token } = attach(dep, admin);
  for (const [w, amount] of stakes) {
    await sendTx(admin, token, "mint", [w.address, amount]);
    await sendTx(w, attach(dep, w).token, "approve", [dep.stakeManager, amount]);
    await sendTx(w, attach(dep, w).stake, "stake", [amount]);
  }
}
