/**
 * Node config files (worker/node/config.ts: readConfig) and the data directory (worker/node/home.ts):
 * a config may name its deployment file instead of pasting the addresses; every mistake names its field,
 * all of them in one message, and a key the schema does not know is refused.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { readConfig } from "../../worker/node/config.ts";
import { fedstakeHome } from "../../worker/node/home.ts";

const DEP = { chainId: 31337, token: "0x" + "11".repeat(20), stakeManager: "0x" + "22".repeat(20), coordinator: "0x" + "33".repeat(20) };

describe("node config", function () {
  const dir = mkdtempSync(join(tmpdir(), "fedstake-config-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, o: object) => {
    const f = join(dir, name);
    writeFileSync(f, JSON.stringify(o));
    return f;
  };
  const base = { role: "validator", name: "v", rpc: "http://127.0.0.1:8545", jobId: "1", dataDir: "data", data: { dataset: "csv", file: "held.csv", label: "label" } };
  const TRAIN = { epochs: 1, batch: 32, lr: 0.03, momentum: 0.9 };
  const MNIST = { dataset: "mnist", split: "train", limit: 100, partition: { kind: "iid" }, parties: 2, index: 1, seed: 3 };
  let n = 0;
  /** readConfig of `o` (with the addresses inline unless `o` names them), or its error message. */
  const read = (o: object) => readConfig(write(`c${n++}.json`, { deployment: DEP, ...base, ...o }));
  const problem = (o: object): string => {
    try {
      read(o);
    } catch (e) {
      return (e as Error).message;
    }
    return expect.fail(`expected ${JSON.stringify(o)} to be refused`);
  };

  it("takes the addresses, or the path of a deployment file relative to the config", function () {
    expect(readConfig(write("inline.json", { ...base, deployment: DEP })).deployment).to.deep.equal(DEP);
    write("deployment.json", DEP);
    const cfg = readConfig(write("bypath.json", { ...base, deployment: "deployment.json" }));
    expect(cfg.deployment).to.deep.equal(DEP);
    expect(cfg.dataDir).to.equal(join(dir, "data"));
  });

  it("takes a time budget for training: seconds or \"auto\", with an optional epoch cap", function () {
    expect(read({ role: "worker", data: MNIST, train: { ...TRAIN, budget: "auto", maxEpochs: 4 } }).train).to.include({ budget: "auto", maxEpochs: 4 });
    expect(read({ role: "worker", data: MNIST, train: { ...TRAIN, budget: 7.5 } }).train?.budget).to.equal(7.5);
    expect(problem({ role: "worker", data: MNIST, train: { ...TRAIN, budget: 0 } })).to.match(/train\.budget must be a number of seconds > 0 or "auto" \(got 0\)/);
    expect(problem({ role: "worker", data: MNIST, train: { ...TRAIN, maxEpochs: 3 } })).to.match(/train\.maxEpochs takes effect only with train\.budget/);
    expect(problem({ role: "worker", data: MNIST, train: { ...TRAIN, epochs: 3, budget: 5, maxEpochs: 2 } })).to.match(/train\.maxEpochs must be at least train\.epochs \(3\)/);
  });

  it("names the problem: a deployment file that cannot be read, an address that is not one", function () {
    expect(() => readConfig(write("missing.json", { ...base, deployment: "nowhere.json" }))).to.throw(/: deployment names .*nowhere\.json, which cannot be read/);
    expect(() => readConfig(write("bad.json", { ...base, deployment: { ...DEP, coordinator: "0x12" } }))).to.throw(/: deployment\.coordinator must be an address \(got "0x12"\)$/);
    expect(() => readConfig(write("null.json", { ...base, deployment: null }))).to.throw(/: deployment must be the contracts' addresses or the path of a deployment file \(got null\)$/);
    // A deployment file is held to the same schema as addresses written inline.
    write("short.json", { ...DEP, chainId: undefined, token: "0x1" });
    expect(() => readConfig(write("short-ref.json", { ...base, deployment: "short.json" }))).to.throw(/: deployment file .*short\.json: chainId is missing; token must be an address \(got "0x1"\)$/);
  });

  it("names every problem's field and the value found, all in one message", function () {
    const msg = problem({ role: "worker", jobId: 7, rpc: "localhost:8545", peers: ["/ip4/127.0.0.1/tcp/1", "nonsense"], data: { ...MNIST, limit: -3 }, train: { ...TRAIN, lr: 0, momentum: 1, threads: 1.5 } });
    expect(msg).to.match(/^node config .*c\d+\.json: /);
    expect(msg).to.include("data.limit must be a positive integer (got -3)");
    expect(msg).to.include('jobId must be a positive integer in a string, like "1" (got 7)');
    expect(msg).to.include('rpc must be an http(s) URL (got "localhost:8545")');
    expect(msg).to.include('peers[1] must be a multiaddr (got "nonsense")');
    expect(msg).to.include("train.lr must be a positive number (got 0)");
    expect(msg).to.include("train.momentum must be in [0, 1) (got 1)");
    expect(msg).to.include("train.threads must be a positive integer (got 1.5)");
    expect(msg.split("; ")).to.have.length(7);
    expect(problem({ name: undefined, role: "sponsor" })).to.match(/: role must be "worker" or "validator" \(got "sponsor"\); name is missing$/);
    expect(() => readConfig(write("array.json", [base]))).to.throw(/: the file must be a JSON object/);
    writeFileSync(join(dir, "text.json"), "{");
    expect(() => readConfig(join(dir, "text.json"))).to.throw(/^node config .*text\.json: .*JSON/);
  });

  it("refuses keys it does not know, naming them (a typo is never ignored)", function () {
    expect(problem({ dataset: "csv" })).to.match(/: unknown field "dataset" \(a node config has: role, name, .*storage\)$/);
    expect(problem({ data: { ...MNIST, shards: 4, part: 1 } })).to.match(/: data: unknown fields "shards", "part"$/);
    expect(problem({ storage: { kind: "helia", repo: "x" } })).to.match(/: storage: unknown field "repo"$/);
    expect(problem({ train: { ...TRAIN, epoch: 2 } })).to.match(/: train: unknown field "epoch"$/);
  });

  it("reads each data variant, and names what is wrong in one", function () {
    expect(read({ data: { dataset: "idx", images: "i.idx3", labels: "l.idx1" } }).data).to.deep.equal({ dataset: "idx", images: "i.idx3", labels: "l.idx1" });
    expect(read({ data: { dataset: "csv", file: "f.csv", label: "y", scale: "standard" } }).data).to.deep.include({ scale: "standard" });
    expect(read({ data: MNIST }).data).to.deep.equal(MNIST);
    expect(read({ data: { ...MNIST, offset: 50, partition: { kind: "dirichlet", alpha: 0.5 } } }).data).to.deep.include({ offset: 50, partition: { kind: "dirichlet", alpha: 0.5 } });
    expect(problem({ data: { dataset: "parquet" } })).to.match(/: data\.dataset must be "idx", "csv" or "mnist" \(got "parquet"\)$/);
    expect(problem({ data: { dataset: "idx", images: "" } })).to.match(/: data\.images must be a file path \(got ""\); data\.labels is missing$/);
    expect(problem({ data: { dataset: "csv", file: "f.csv", label: "y", scale: "log" } })).to.match(/: data\.scale must be "minmax", "standard" or "none" \(got "log"\)$/);
    expect(problem({ data: { ...MNIST, split: "val", partition: { kind: "dirichlet", alpha: 0 } } })).to.match(/: data\.split must be "train" or "test" \(got "val"\); data\.partition\.alpha must be a positive number \(got 0\)$/);
    expect(problem({ data: { ...MNIST, index: 2 } })).to.match(/: data\.index must be below parties \(got 2\)$/);
  });

  it("takes the storage kinds: none (the embedded node), helia, kubo with its RPC URL", function () {
    expect(read({}).storage).to.equal(undefined);
    expect(read({ storage: { kind: "helia" } }).storage).to.deep.equal({ kind: "helia" });
    expect(read({ storage: { kind: "kubo", url: "http://127.0.0.1:5001" } }).storage).to.deep.equal({ kind: "kubo", url: "http://127.0.0.1:5001" });
    expect(problem({ storage: { kind: "kubo" } })).to.match(/: storage\.url is missing$/);
    expect(problem({ storage: { kind: "kubo", url: "/ip4/127.0.0.1/tcp/5001" } })).to.match(/: storage\.url must be an http\(s\) URL/);
    expect(problem({ storage: { kind: "s3" } })).to.match(/: storage\.kind must be "helia" or "kubo" \(got "s3"\)$/);
  });

  it("holds each role to its fields: a worker trains, a validator's settings are not a worker's", function () {
    const worker = read({ role: "worker", train: { ...TRAIN, threads: 2 } });
    expect(worker.train).to.deep.equal({ ...TRAIN, threads: 2 });
    expect(worker.peers).to.deep.equal([]);
    expect(problem({ role: "worker" })).to.match(/: train is required for a worker/);
    expect(problem({ role: "worker", train: TRAIN, policy: {}, fetchTimeoutMs: 1000 })).to.match(/: policy is a validator's setting, not a worker's \(got \{\}\); fetchTimeoutMs is a validator's setting, not a worker's \(got 1000\)$/);
    const v = read({ policy: { reference: { epochs: 2 } }, fetchTimeoutMs: 5000 });
    expect(v.policy).to.deep.equal({ reference: { epochs: 2 } });
    // The policy is checked by the job spec's own parser, at start.
    expect(problem({ policy: { reference: { lr: -1 } } })).to.match(/: policy\.reference\.lr must be a positive number$/);
    expect(problem({ fetchTimeoutMs: 0 })).to.match(/: fetchTimeoutMs must be a positive integer \(got 0\)$/);
  });

  it("never repeats a private key in an error", function () {
    const key = "0x" + "ab".repeat(31);
    const msg = problem({ privateKey: key });
    expect(msg).to.match(/: privateKey must be a 0x-prefixed 32-byte hex key$/);
    expect(msg).to.not.include("abab");
    expect(read({ privateKey: "0x" + "ab".repeat(32) }).privateKey).to.equal("0x" + "ab".repeat(32));
  });

  it("the data directory is $FEDSTAKE_HOME, else ~/.fedstake", function () {
    expect(fedstakeHome({ FEDSTAKE_HOME: dir })).to.equal(dir);
    expect(fedstakeHome({})).to.equal(join(homedir(), ".fedstake"));
  });
});
