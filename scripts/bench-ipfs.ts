/**
 * `npm run bench:ipfs` — artifact transfer between two embedded Helia nodes, each in its own process on
 * loopback, against the ceiling of a plain Node TCP socket between two processes copying the same bytes
 * in the same run; plus the compressed size of an MNIST-MLP-shaped update per encoding.
 * Writes ipfs.json to bench/results/local/ (--update: the committed bench/results/; --out DIR).
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchOutDir, outFromArgv, shown } from "./bench-out.ts";
import { encodeArtifact, type EncodeOptions, type Tensor } from "../worker/artifacts/index.ts";
import { HeliaPeerProcess, seededBytes } from "../worker/storage/heliaPeerProcess.ts";

const MB = 1e6;
const SIZES_MB = (process.env.BENCH_IPFS_SIZES ?? "1,10,100").split(",").map(Number);
const REPEATS = Number(process.env.BENCH_IPFS_REPEATS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

// ---------------------------------------------------------------- TCP ceiling (child sends, parent receives)
if (process.argv[2] === "tcp-sender") {
  const [port, bytes] = [Number(process.argv[3]), Number(process.argv[4])];
  const payload = seededBytes(bytes, 1);
  const s = connect(port, "127.0.0.1", () => s.end(payload));
  s.on("close", () => process.exit(0));
} else {
  await main();
}

async function tcpMBps(bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let received = 0;
    let t0 = 0;
    const server = createServer((sock) => {
      sock.on("data", (d) => {
        if (received === 0) t0 = performance.now();
        received += d.length;
      });
      sock.on("end", () => {
        const s = (performance.now() - t0) / 1000;
        server.close();
        resolve(bytes / MB / s);
      });
    });
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      const child = fork(fileURLToPath(import.meta.url), ["tcp-sender", String(port), String(bytes)], { execPath: process.execPath });
      child.on("error", reject);
    });
  });
}

/** An update shaped like the MNIST MLP 784-256-128-10 (about 235k parameters), small Gaussian values. */
function mlpUpdate(): Tensor[] {
  const shapes: [string, number[]][] = [
    ["fc1.weight", [256, 784]],
    ["fc1.bias", [256]],
    ["fc2.weight", [128, 256]],
    ["fc2.bias", [128]],
    ["fc3.weight", [10, 128]],
    ["fc3.bias", [10]],
  ];
  let seed = 12345;
  const gauss = () => {
    // Box-Muller over a small LCG: deterministic.
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const u = (seed + 1) / 2 ** 31;
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const v = seed / 2 ** 31;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  return shapes.map(([name, shape]) => ({ name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => gauss() * 1e-3) }));
}

async function main() {
  // --out DIR or --update (see bench-out.ts), checked before anything runs.
  const OUT = outFromArgv();
  const results: Record<string, number | string> = {};
  const dirs = [mkdtempSync(join(tmpdir(), "fedstake-bench-a-")), mkdtempSync(join(tmpdir(), "fedstake-bench-b-"))];
  const a = await HeliaPeerProcess.spawn({ dataDir: dirs[0]! });
  const b = await HeliaPeerProcess.spawn({ dataDir: dirs[1]! });
  try {
    const { addrs = [] } = await a.call({ cmd: "addrs" });
    await b.call({ cmd: "dial", addr: addrs[0]! });
    // Warm-up: connection, identify, protocol negotiation.
    const warm = await a.call({ cmd: "addRandom", bytes: 100_000, seed: 999 });
    await b.call({ cmd: "get", cid: warm.cid! });
    console.log(" size     add MB/s   fetch MB/s   (median of %d; each fetch a fresh CID)", REPEATS);
    for (const size of SIZES_MB) {
      const adds: number[] = [];
      const fetches: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        const added = await a.call({ cmd: "addRandom", bytes: size * MB, seed: size * 100 + r });
        if (!added.ok) throw new Error(added.error);
        const got = await b.call({ cmd: "get", cid: added.cid!, timeoutMs: 300_000, maxBytes: 512 * MB });
        if (!got.ok || got.sha256 !== added.sha256) throw new Error(`fetch of ${added.cid} failed: ${got.error ?? "bytes differ"}`);
        adds.push(size / (added.ms! / 1000));
        fetches.push(size / (got.ms! / 1000));
      }
      results[`add_mb_per_s_${size}mb`] = Math.round(median(adds) * 10) / 10;
      results[`fetch_mb_per_s_${size}mb`] = Math.round(median(fetches) * 10) / 10;
      console.log(` ${String(size).padStart(3)} MB  ${median(adds).toFixed(1).padStart(9)}  ${median(fetches).toFixed(1).padStart(11)}`);
    }
  } finally {
    await a.stop();
    await b.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  const tcp: number[] = [];
  for (let r = 0; r < REPEATS; r++) tcp.push(await tcpMBps(100 * MB));
  results.tcp_mb_per_s = Math.round(median(tcp));
  const fetch10 = results.fetch_mb_per_s_10mb as number | undefined;
  if (fetch10 !== undefined) results.fetch_10mb_fraction_of_tcp = Math.round((fetch10 / median(tcp)) * 1000) / 1000;
  console.log(` TCP ceiling (plain Node socket, 100 MB, two processes): ${median(tcp).toFixed(0)} MB/s`);

  // Compression of an MLP-shaped update, per encoding, vs f32.
  const update = mlpUpdate();
  const header = { kind: "update" as const, jobId: 1n, round: 1, baseModelCid: new Uint8Array(36), worker: new Uint8Array(20), numSamples: 1000n };
  const f32 = encodeArtifact(header, update, { encoding: "f32" }).length;
  const encodings: [string, EncodeOptions][] = [
    ["f16", { encoding: "f16" }],
    ["int8", { encoding: "int8" }],
    ["topk10pct_int8", { encoding: "topk", fraction: 0.1 }],
    ["topk1pct_int8", { encoding: "topk", fraction: 0.01 }],
    ["topk0.1pct_int8", { encoding: "topk", fraction: 0.001 }],
  ];
  results.f32_bytes = f32;
  for (const [name, opts] of encodings) {
    const n = encodeArtifact(header, update, opts).length;
    results[`ratio_${name}`] = Math.round((f32 / n) * 10) / 10;
    console.log(` ${name.padEnd(16)} ${String(n).padStart(8)} bytes  ratio ${(f32 / n).toFixed(1)}`);
  }
  results.update_values = "synthetic Gaussian (σ=1e-3) in the MNIST MLP 784-256-128-10 shapes";
  const file = join(benchOutDir(OUT), "ipfs.json");
  writeFileSync(file, JSON.stringify(results, null, 2) + "\n");
  console.log(`\nwrote ${shown(file)}`);
}
