/**
 * A HeliaStore in its own process, driven over IPC: used by the two-process tests and by
 * `npm run bench:ipfs` so that both ends of a transfer have their own event loop and core.
 *
 *   const peer = await HeliaPeerProcess.spawn({ dataDir });
 *   const { cid } = await peer.call({ cmd: "addRandom", bytes: 10e6, seed: 1 });
 */
import { fork, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { CID } from "multiformats/cid";
import { HeliaStore, type HeliaStoreOptions } from "./heliaStore.ts";

export type PeerRequest =
  | { cmd: "addrs" }
  | { cmd: "dial"; addr: string }
  | { cmd: "addRandom"; bytes: number; seed: number }
  | { cmd: "get"; cid: string; timeoutMs?: number; maxBytes?: number }
  | { cmd: "pins" }
  | { cmd: "stop" };

export interface PeerResponse {
  ok: boolean;
  error?: string;
  code?: string;
  addrs?: string[];
  cid?: string;
  ms?: number;
  length?: number;
  sha256?: string;
  pins?: string[];
}

/** Deterministic pseudo-random bytes (fast xorshift), so both sides can check content by hash. */
export function seededBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  const v = new Uint32Array(out.buffer, 0, Math.floor(n / 4));
  let x = seed | 0 || 1;
  for (let i = 0; i < v.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = x >>> 0;
  }
  for (let i = v.length * 4; i < n; i++) out[i] = i & 0xff;
  return out;
}

export const sha256hex = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

export class HeliaPeerProcess {
  private readonly child: ChildProcess;
  private pending = new Map<number, (r: PeerResponse) => void>();
  private nextId = 1;

  private constructor(child: ChildProcess) {
    this.child = child;
    child.on("message", (m: { id: number; res: PeerResponse }) => {
      this.pending.get(m.id)?.(m.res);
      this.pending.delete(m.id);
    });
    child.on("exit", (code) => {
      for (const done of this.pending.values()) done({ ok: false, error: `peer process exited with code ${code}` });
      this.pending.clear();
    });
  }

  static async spawn(opts: HeliaStoreOptions): Promise<HeliaPeerProcess> {
    const child = fork(fileURLToPath(import.meta.url), [JSON.stringify(opts)], {
      execPath: process.execPath,
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const peer = new HeliaPeerProcess(child);
    await new Promise<void>((resolve, reject) => {
      child.once("message", (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new Error(m.error))));
      child.once("exit", (code) => reject(new Error(`peer process exited with code ${code} before it was ready`)));
    });
    return peer;
  }

  call(req: PeerRequest): Promise<PeerResponse> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.send({ id, req });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once("exit", r));
    await this.call({ cmd: "stop" });
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}

async function serve(opts: HeliaStoreOptions) {
  const store = await HeliaStore.create(opts);
  const handle = async (req: PeerRequest): Promise<PeerResponse> => {
    switch (req.cmd) {
      case "addrs":
        return { ok: true, addrs: store.multiaddrs() };
      case "dial":
        await store.dial(req.addr);
        return { ok: true };
      case "addRandom": {
        const bytes = seededBytes(req.bytes, req.seed);
        const t = performance.now();
        const cid = await store.add(bytes);
        return { ok: true, cid: cid.toString(), ms: performance.now() - t, sha256: sha256hex(bytes) };
      }
      case "get": {
        const t = performance.now();
        const bytes = await store.get(CID.parse(req.cid), { timeoutMs: req.timeoutMs, maxBytes: req.maxBytes });
        return { ok: true, ms: performance.now() - t, length: bytes.length, sha256: sha256hex(bytes) };
      }
      case "pins":
        return { ok: true, pins: (await store.listPins()).map(String) };
      case "stop":
        await store.stop();
        setImmediate(() => process.exit(0));
        return { ok: true };
    }
  };
  process.on("message", (m: { id: number; req: PeerRequest }) => {
    handle(m.req).then(
      (res) => process.send!({ id: m.id, res }),
      (e: Error & { code?: string }) => process.send!({ id: m.id, res: { ok: false, error: e.message, code: e.code } }),
    );
  });
  process.on("disconnect", () => void store.stop().finally(() => process.exit(0)));
  process.send!({ ready: true });
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) {
  serve(JSON.parse(process.argv[2]!) as HeliaStoreOptions).catch((e: Error) => {
    process.send!({ error: e.message });
    process.exit(1);
  });
}
