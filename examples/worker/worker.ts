/**
 * A worker started from code: the node config is an object built here rather than a file, and
 * `runWorker` runs the fedstake worker daemon with it, as `fedstake worker CONFIG.json` would: each
 * round it trains on its local data from the round's base model, pins its update, commits, reveals and
 * claims its reward.
 *
 * Run: FEDSTAKE_PRIVATE_KEY=0x… FEDSTAKE_DEPLOYMENT=deployment.json node worker.ts [JOB_ID]
 * (FEDSTAKE_RPC defaults to http://127.0.0.1:8545).
 */
import { readFileSync } from "node:fs";
import { runWorker, type Deployment, type NodeConfig } from "fedstake";

const deployment = JSON.parse(readFileSync(process.env.FEDSTAKE_DEPLOYMENT ?? "deployment.json", "utf8")) as Deployment;

const config: NodeConfig = {
  role: "worker",
  name: "worker-from-code",
  rpc: process.env.FEDSTAKE_RPC ?? "http://127.0.0.1:8545",
  deployment,
  jobId: process.argv[2] ?? "1",
  dataDir: "worker-data",
  peers: [],
  // Its local data: one third of 1,800 MNIST training images. A real worker names its own files:
  // { "dataset": "idx", "images": "…", "labels": "…" } or { "dataset": "csv", "file": "…", "label": "…" }.
  data: { dataset: "mnist", split: "train", limit: 1800, partition: { kind: "iid" }, parties: 3, index: 2, seed: 11 },
  train: { epochs: 1, batch: 32, lr: 0.05, momentum: 0.9 },
};

await runWorker(config);
