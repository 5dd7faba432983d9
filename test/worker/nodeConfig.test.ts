/**
 * Node config files (worker/node/context.ts: readConfig) and the data directory (worker/node/home.ts):
 * a config may name its deployment file instead of pasting the addresses; mistakes name the field.
 */
import { expect } from "chai";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { readConfig } from "../../worker/node/context.ts";
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

  it("takes the addresses, or the path of a deployment file relative to the config", function () {
    expect(readConfig(write("inline.json", { ...base, deployment: DEP })).deployment).to.deep.equal(DEP);
    write("deployment.json", DEP);
    const cfg = readConfig(write("bypath.json", { ...base, deployment: "deployment.json" }));
    expect(cfg.deployment).to.deep.equal(DEP);
    expect(cfg.dataDir).to.equal(join(dir, "data"));
  });

  it("names the problem: a deployment file that cannot be read, an address that is not one", function () {
    expect(() => readConfig(write("missing.json", { ...base, deployment: "nowhere.json" }))).to.throw(/"deployment" names .*nowhere\.json, which cannot be read/);
    expect(() => readConfig(write("bad.json", { ...base, deployment: { ...DEP, coordinator: "0x12" } }))).to.throw(/deployment\.coordinator must be an address, got "0x12"/);
    expect(() => readConfig(write("null.json", { ...base, deployment: null }))).to.throw(/"deployment" must be the contracts' addresses or the path of a deployment file/);
  });

  it("the data directory is $FEDSTAKE_HOME, else ~/.fedstake", function () {
    expect(fedstakeHome({ FEDSTAKE_HOME: dir })).to.equal(dir);
    expect(fedstakeHome({})).to.equal(join(homedir(), ".fedstake"));
  });
});
