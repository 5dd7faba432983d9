/**
 * End to end on a real `hardhat node` (127.0.0.1), with real worker and validator processes, each with
 * its own key and embedded IPFS node: 3 workers (one malicious), 2 validators, 3 rounds on MNIST.
 * Runs the demo itself (`scripts/demo.ts`) and checks what it reports and what the chain says: rounds,
 * slashes (burned, all of them), and that every node settled after the job, leaving no
 * stake locked and no committee bond held. Then one round again on Foundry's Anvil, whose blocks batch
 * transactions as public chains do (a second EVM node: what Hardhat's automining hides shows there).
 */
import { expect } from "chai";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");

interface Round {
  round: number;
  outcome: string;
  modelCid: string | null;
  testAccuracy: number | null;
  heldOut: { accuracy: number | null; loss: number; reporters: number } | null;
  updates: { name: string; malicious: boolean; accepted: boolean; reason: string; scores: Record<string, Record<string, number>> }[];
  attestations: { validator: string; digest: string }[];
  slashes: { account: string; reason: string; amount: string }[];
}

interface Ledger {
  chainAheadS: number;
  supply: number;
  burned: number;
  slashed: number;
  balanced: boolean;
  nodesSettled: number;
  nodes: number;
}

/** Runs the demo with `args` (its data under `home`) to the end, its output echoed; what it reported. */
async function runDemo(home: string, args: string[]) {
  const child = spawn(process.execPath, [join(ROOT, "scripts/demo.ts"), "--port", "0", ...args], {
    cwd: ROOT,
    env: { ...process.env, FEDSTAKE_HOME: home },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout!.on("data", (d: Buffer) => {
    output += d.toString();
    process.stdout.write(d.toString().replace(/^/gm, "      "));
  });
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  expect(code, output).to.equal(0);
  const dir = realpathSync(join(home, "runs/latest"));
  const read = <T>(f: string): T => JSON.parse(readFileSync(join(dir, f), "utf8")) as T;
  return { output, dir, rounds: read<Round[]>("rounds.json"), accounts: read<{ name: string; malicious: boolean; stake: number; free: number; balance: number }[]>("accounts.json"), ledger: read<Ledger>("ledger.json") };
}

describe("end to end: 3 workers (one malicious), 2 validators, 3 rounds, two crashes and two faults at protocol steps", function () {
  this.timeout(900_000);
  let rounds: Round[];
  let accounts: { name: string; malicious: boolean; stake: number; free: number; balance: number }[];
  let ledger: Ledger;
  let crashes: { node: string; killedAfter: string }[];
  let faults: { fired: { node: string; event: string; round: number | null; kind: string; recoverMs?: number }[]; notFired: string[] };
  let output = "";

  // The demo writes its run under the data directory: a fresh one, so that the checkout stays clean.
  const home = mkdtempSync(join(tmpdir(), "fedstake-e2e-"));
  after(() => rmSync(home, { recursive: true, force: true }));

  before(async function () {
    const run = await runDemo(home, ["--workers", "3", "--validators", "2", "--rounds", "3", "--crash", "worker-0,validator-0", "--fault", "worker-1@revealed#2:stop=5,validator-1@aggregated#2:kill"]);
    ({ output, rounds, accounts, ledger } = run);
    crashes = JSON.parse(readFileSync(join(run.dir, "crashes.json"), "utf8"));
    faults = JSON.parse(readFileSync(join(run.dir, "faults.json"), "utf8"));
  });

  it("decides every round, rejects the malicious update and accepts every honest one", function () {
    expect(rounds.map((r) => r.outcome)).to.deep.equal(["decided", "decided", "decided"]);
    for (const r of rounds) {
      expect(r.updates.length, `round ${r.round}`).to.equal(3);
      for (const u of r.updates) {
        expect(u.accepted, `round ${r.round}, ${u.name}: ${u.reason}`).to.equal(!u.malicious);
        // Every validator's scores for it: at least the first rule's, whatever the rules are.
        expect(Object.keys(u.scores), u.name).to.have.length(2);
        for (const s of Object.values(u.scores)) expect(s).to.have.property("maxSimilarity");
      }
    }
  });

  it("every validator attests the same model CID, and accuracy rises", function () {
    for (const r of rounds) {
      expect(r.attestations.length, `round ${r.round}`).to.be.at.least(1);
      expect(new Set(r.attestations.map((a) => a.digest)).size, `round ${r.round}`).to.equal(1);
      expect(r.modelCid).to.be.a("string");
    }
    const acc = rounds.map((r) => r.testAccuracy!);
    expect(acc[acc.length - 1]!).to.be.above(acc[0]! - 0.02);
    expect(acc[acc.length - 1]!).to.be.above(0.8);
    // Each attester reported its held-out score of the model on chain; the median tracks the test accuracy.
    for (const r of rounds) {
      expect(r.heldOut?.reporters, `round ${r.round}`).to.be.at.least(1);
      expect(Math.abs(r.heldOut!.accuracy! - r.testAccuracy!), `round ${r.round}: held-out ${r.heldOut!.accuracy} vs test ${r.testAccuracy}`).to.be.below(0.1);
    }
  });

  it("a worker and a validator killed right after committing restart and reveal in time", function () {
    expect(crashes.map((c) => `${c.node}:${c.killedAfter}`).sort()).to.deep.equal(["validator-0:vote-committed", "worker-0:committed"]);
    // worker-0's update was accepted in every round (checked above), so it was revealed after the restart;
    // validator-0 attested every round, which the contract allows only to validators that revealed.
    const v0 = accounts.find((a) => a.name === "validator-0")!;
    expect(rounds.every((r) => r.attestations.length === 2), JSON.stringify(rounds.map((r) => r.attestations))).to.equal(true);
    expect(v0.balance).to.be.above(0);
  });

  it("faults at protocol steps: a worker stopped after its reveal and a validator killed after aggregating recover, and lose nothing", function () {
    expect(faults.notFired).to.deep.equal([]);
    const fired = faults.fired.map((f) => `${f.node}@${f.event}#${f.round}:${f.kind}`).sort();
    expect(fired).to.include.members(["validator-1@aggregated#2:kill", "worker-1@revealed#2:stop"]);
    for (const f of faults.fired) expect(f.recoverMs, `${f.node}: recovered`).to.be.a("number");
    // validator-1 restarted and attested round 2 (checked above: every round has both attestations);
    // worker-1, paused after revealing, was paid like the other honest worker.
    const [w1] = accounts.filter((a) => a.name === "worker-1");
    expect(w1!.stake).to.equal(100);
    expect(w1!.balance).to.be.above(0);
  });

  it("slashes the malicious worker and pays the honest ones", function () {
    const evil = accounts.find((a) => a.malicious)!;
    expect(evil.stake).to.be.below(100);
    expect(rounds.flatMap((r) => r.slashes).some((s) => s.account === evil.name)).to.equal(true);
    for (const a of accounts.filter((x) => x.name.startsWith("worker") && !x.malicious)) {
      expect(a.stake, a.name).to.equal(100);
      expect(a.balance, a.name).to.be.above(0); // rewards claimed (they staked everything they had)
    }
    for (const a of accounts.filter((x) => x.name.startsWith("validator"))) expect(a.balance, a.name).to.be.above(0);
  });

  it("burns slashed stake, and every node settles: no lock or bond is left", function () {
    const slashes = rounds.flatMap((r) => r.slashes);
    const evil = new Set(accounts.filter((a) => a.malicious).map((a) => a.name));
    expect(slashes.every((s) => evil.has(s.account) && s.reason === "rejected update"), JSON.stringify(slashes)).to.equal(true);
    expect(ledger.slashed).to.be.above(0);
    // (plain comparison: the Hardhat chai plugin turns closeTo into a bigint matcher)
    expect(Math.abs(ledger.burned - ledger.slashed)).to.be.below(1e-9);
    expect(ledger.balanced, JSON.stringify(ledger)).to.equal(true);
    expect(ledger.nodesSettled).to.equal(ledger.nodes);
    for (const a of accounts.filter((x) => x.name !== "sponsor")) expect(a.free, `${a.name}: free stake`).to.equal(a.stake);
  });

  it("served the live dashboard on loopback and printed its URL", function () {
    expect(output).to.match(/^dashboard: http:\/\/127\.0\.0\.1:\d+\/ \(follows the job live\)$/m);
  });

  it("ran on the chain `npm run node` starts, which keeps time by itself: no helper mined, and its clock did not run ahead", function () {
    // The demo's devnet is `hardhat node` as the README starts it (worker/chain/devnet.ts mines nothing);
    // three rounds with hundreds of transactions used to push block time 20 s and more ahead of the wall clock.
    expect(ledger.chainAheadS, JSON.stringify(ledger)).to.be.at.most(1);
  });
});

describe("end to end on Anvil: one round, 3 workers (one malicious), 2 validators", function () {
  this.timeout(600_000);
  const home = mkdtempSync(join(tmpdir(), "fedstake-e2e-anvil-"));
  after(() => rmSync(home, { recursive: true, force: true }));
  let run: Awaited<ReturnType<typeof runDemo>>;

  before(async function () {
    run = await runDemo(home, ["--chain", "anvil", "--workers", "3", "--validators", "2", "--rounds", "1", "--train-samples", "3000"]);
  });

  it("decides the round: the malicious update rejected, the honest ones accepted, one model attested by both validators", function () {
    expect(run.output).to.match(/^chain: anvil at http:\/\/127\.0\.0\.1:\d+$/m);
    const [r] = run.rounds;
    expect([run.rounds.length, r!.outcome]).to.deep.equal([1, "decided"]);
    for (const u of r!.updates) expect(u.accepted, `${u.name}: ${u.reason}`).to.equal(!u.malicious);
    expect(r!.attestations.map((a) => a.digest)).to.have.length(2);
    expect(new Set(r!.attestations.map((a) => a.digest)).size).to.equal(1);
  });

  it("every node settles, the ledger balances, and no node retried or failed a transaction", function () {
    expect(run.ledger.balanced, JSON.stringify(run.ledger)).to.equal(true);
    expect(run.ledger.nodesSettled).to.equal(run.ledger.nodes);
    // The deployment file records its block: event queries start there.
    expect(JSON.parse(readFileSync(join(run.dir, "deployment.json"), "utf8")).deployBlock).to.be.a("number");
    const nodes = join(run.dir, "nodes");
    const bad = readdirSync(nodes).flatMap((n) => {
      const f = join(nodes, n, "events.jsonl");
      if (!existsSync(f)) return [];
      return readFileSync(f, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { event: string })
        // The demo's sponsor publishes no endpoint, so dialing it fails harmlessly.
        .filter((e) => ["retry", "error", "fatal", "reveal-refused", "vote-abstained", "attest-late"].includes(e.event) || (e.event.endsWith("-failed") && e.event !== "dial-failed"))
        .map((e) => `${n}: ${JSON.stringify(e)}`);
    });
    expect(bad, bad.join("\n")).to.deep.equal([]);
  });
});
