/**
 * A real IPFS RPC server for KuboStore's tests: the js-ipfs daemon (npm `ipfs`, deprecated but a real
 * implementation of the Kubo RPC API), installed on first use into .cache/jsipfs (outside the project's
 * dependencies: it is 1,000 packages) and started offline, without preload, API on 127.0.0.1 only.
 * Set FEDSTAKE_KUBO_API to test against a Kubo daemon you run instead.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const JS_IPFS_VERSION = "0.66.1";
const CACHE = resolve(import.meta.dirname, "../../.cache/jsipfs");
const BIN = join(CACHE, "node_modules/ipfs/src/cli.js");
const run = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export interface RpcServer {
  url: string;
  stop(): Promise<void>;
}

export async function startIpfsRpcServer(log: (m: string) => void = () => {}): Promise<RpcServer> {
  if (process.env.FEDSTAKE_KUBO_API) return { url: process.env.FEDSTAKE_KUBO_API, stop: async () => {} };
  if (!existsSync(BIN)) {
    log(`installing ipfs@${JS_IPFS_VERSION} into .cache/jsipfs (first run only, a few minutes)…`);
    await run("npm", ["install", "--prefix", CACHE, `ipfs@${JS_IPFS_VERSION}`, "--no-audit", "--no-fund", "--loglevel=error"], {
      maxBuffer: 64 * 1024 * 1024,
    });
  }
  const repo = await mkdtemp(join(tmpdir(), "fedstake-jsipfs-"));
  const env = { ...process.env, IPFS_PATH: repo };
  await run(process.execPath, [BIN, "init", "--profile", "test", "--empty-repo"], { env });
  const port = await freePort();
  const cfgPath = join(repo, "config");
  const cfg = JSON.parse(await readFile(cfgPath, "utf8"));
  // Loopback API only; no swarm, gateway or RPC listeners; no bootstrap peers, no mDNS.
  cfg.Addresses = { ...cfg.Addresses, API: `/ip4/127.0.0.1/tcp/${port}`, Gateway: "", RPC: "", Swarm: [] };
  cfg.Bootstrap = [];
  cfg.Discovery = { MDNS: { Enabled: false }, webRTCStar: { Enabled: false } };
  await writeFile(cfgPath, JSON.stringify(cfg));
  const child: ChildProcess = spawn(process.execPath, [BIN, "daemon", "--offline", "--enable-preload=false"], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`js-ipfs daemon did not start in 60 s:\n${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes("Daemon is ready")) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`js-ipfs daemon exited with ${code}:\n${out}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null) child.kill("SIGKILL");
      await rm(repo, { recursive: true, force: true });
    },
  };
}
