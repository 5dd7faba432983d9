/**
 * `fedstake dashboard` (worker/dashboard/) against the in-process network: a two-round job played by
 * hand (round 1 rejects and slashes one of three updates, round 2 accepts all), the dashboard server
 * started on the same provider and contracts, and its /api/job checked for rounds, phases with their
 * deadlines, votes, rewards, slashes, validators' agreement, decision-log reasons and CIDs. Then, where
 * Debian's Chromium is installed, a headless browser (playwright-core) loads the page while round 2 is
 * played, checks that the rounds, votes and chart appear and that the page asks nothing of any other
 * origin, and saves a screenshot.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { network } from "hardhat";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/types";
import { as, createJob, deployProtocol, playRound, submission, toPhase, vote, type Protocol } from "./helpers/fixture.ts";
import { Codec, Phase } from "../worker/chain/protocol.ts";
import { cidFromChain } from "../worker/storage/store.ts";
import { roundScore, type ChainRound } from "../worker/dashboard/rounds.ts";
import { startDashboard, type Dashboard } from "../worker/dashboard/server.ts";
import type { Snapshot } from "../worker/dashboard/snapshot.ts";

const { ethers, networkHelpers: helpers } = await network.create();
const CHROMIUM = "/usr/bin/chromium";

describe("fedstake dashboard", function () {
  this.timeout(180_000);
  let p: Protocol;
  let jobId: bigint;
  let dash: Dashboard;
  let dir: string;
  let v: HardhatEthersSigner[];
  const get = async (path: string) => fetch(new URL(path, dash.url));
  const job = async (): Promise<Snapshot> => {
    const res = await get("/api/job");
    expect(res.status).to.equal(200);
    return (await res.json()) as Snapshot;
  };
  // The held-out accuracy (bps) each attester reports of the model it attested, per round: medians 82 % and 91 %.
  const SCORES: Record<string, [number, number]> = { "1": [8000, 8400], "2": [9000, 9200] };
  const attest = async (round: bigint, tag: string) => {
    // Two thirds of the revealed stake reach attestBps (66 %): the model is accepted and the next round opens.
    for (const [i, x] of v.slice(0, 2).entries()) {
      await as(p.coord, x).attestModel(jobId, round, ethers.id(tag), Codec.raw);
      await as(p.coord, x).reportModelScore(jobId, round, SCORES[String(round)]![i]!, 500_000n + round, 1000);
    }
  };
  // Round 1: three updates; update 2 is accepted only by v[2] (a third of the stake): rejected, and slashable.
  const round1 = async () => {
    const subs = p.workers.map((w, i) => submission(w, `r1-u${i}`));
    await playRound(p, helpers, jobId, subs, () => [vote(v[0]!, 0b011n), vote(v[1]!, 0b011n), vote(v[2]!, 0b111n)]);
    await p.coord.slashRejectedUpdate(jobId, 1n, 2n);
    await attest(1n, "model 1");
  };
  const round2 = async () => {
    const subs = p.workers.map((w, i) => submission(w, `r2-u${i}`));
    await playRound(p, helpers, jobId, subs, () => v.map((x) => vote(x, 0b111n)));
    await attest(2n, "model 2");
  };

  before(async function () {
    p = await deployProtocol(ethers, { workers: 3, validators: 3 });
    v = p.validators;
    jobId = await createJob(p, helpers, { numRounds: 2 });
    dir = mkdtempSync(join(tmpdir(), "fedstake-dashboard-"));
    // A validator's decision log, as its daemon writes events.jsonl.
    const log = join(dir, "events.jsonl");
    writeFileSync(
      log,
      [
        { t: "2026-01-01T00:00:00Z", node: "validator-0", event: "phase", round: 1, phase: "Reveal" },
        { t: "2026-01-01T00:00:01Z", node: "validator-0", event: "decision", round: 1, index: 2, worker: p.workers[2]!.address, accept: false, code: "norm", reason: "norm 9.1 is over 4 × the median", metrics: { norm: 9.1 } },
        { t: "2026-01-01T00:00:01Z", node: "validator-0", event: "decision", round: 1, index: 0, worker: p.workers[0]!.address, accept: true, code: "accepted", reason: "passed every rule", metrics: { norm: 1.2 } },
      ]
        .map((l) => JSON.stringify(l))
        .join("\n") + "\nnot json\n",
    );
    dash = await startDashboard({ coord: p.coord, stake: p.stake, provider: ethers.provider, jobId, port: 0, cacheMs: 0, decisionLogs: [log] });
  });

  after(async function () {
    await dash?.close();
  });

  it("listens on 127.0.0.1 only and serves the page, its script and the chart library from this origin", async function () {
    expect(dash.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect((dash.server.address() as { address: string }).address).to.equal("127.0.0.1");
    const page = await get("/");
    expect(page.status).to.equal(200);
    expect(page.headers.get("content-security-policy")).to.include("default-src 'self'");
    const html = await page.text();
    expect(html).to.include('src="/chart.umd.min.js"').and.include('src="/app.js"');
    expect(html).not.to.match(/(src|href)="(https?:)?\/\//);
    const chart = await get("/chart.umd.min.js");
    expect([chart.status, (await chart.text()).length > 100_000]).to.deep.equal([200, true]);
    expect((await get("/app.js")).status).to.equal(200);
    expect((await get("/nope")).status).to.equal(404);
    // DNS rebinding: a request naming another host (a page whose name resolves to 127.0.0.1) is refused.
    const port = new URL(dash.url).port;
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => request({ host: "127.0.0.1", port, path: "/api/job", headers: { host } }, (res) => resolve(res.statusCode ?? 0)).on("error", reject).end());
    expect(await status("evil.example")).to.equal(421);
    expect(await status(`localhost:${port}`)).to.equal(200);
  });

  it("pushes the snapshot as server-sent events: at once, then on every new block", async function () {
    const ctl = new AbortController();
    const res = await fetch(new URL("/api/events", dash.url), { signal: ctl.signal });
    expect(res.headers.get("content-type")).to.equal("text/event-stream");
    const reader = res.body!.getReader();
    let buffer = "";
    const nextSnapshot = async (): Promise<Snapshot> => {
      for (;;) {
        const at = buffer.indexOf("\n\n");
        if (at >= 0) {
          const message = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const data = message.split("\n").find((l) => l.startsWith("data: "));
          if (data) return JSON.parse(data.slice(6)) as Snapshot;
          continue;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error("the event stream ended");
        buffer += new TextDecoder().decode(value);
      }
    };
    try {
      const first = await nextSnapshot();
      await helpers.mine();
      const second = await nextSnapshot();
      expect(second.block).to.be.above(first.block);
    } finally {
      ctl.abort();
    }
  });

  it("shows the phase with its deadline in chain time before the job starts and during round 1", async function () {
    let s = await job();
    const cfg = await p.coord.jobConfig(jobId);
    const st = await p.coord.jobState(jobId);
    expect(s).to.include({ job: jobId.toString(), status: "Active", round: 1, phase: "NotStarted", numRounds: 2, phaseEndsAt: Number(st.roundStart) });
    expect(s.phaseEndsIn).to.equal(Number(st.roundStart) - s.chainTime);
    expect(s.rounds).to.have.length(1);
    expect(s.rounds[0]!.base).to.equal((await cidFromChain((await p.coord.roundResult(jobId, 1n)).baseDigest, Codec.raw)).toString());
    expect(s.accuracy).to.include({ available: false });
    expect(s.accuracy.note).to.match(/no validator has reported a held-out score yet/);
    await toPhase(p, helpers, jobId, Phase.Commit);
    await helpers.mine();
    s = await job();
    expect(s.phase).to.equal("Commit");
    expect(s.phaseEndsAt).to.equal(Number(st.roundStart) + Number(cfg.commitPeriod));
    expect(s.periods).to.include({ commitPeriod: Number(cfg.commitPeriod), revealPeriod: Number(cfg.revealPeriod) });
    expect(s.chainTime).to.equal(await helpers.time.latest());
  });

  it("after two rounds: every round's outcome, updates with votes, rewards and slashes, validators' agreement and CIDs", async function () {
    await round1();
    await round2();
    const s = await job();
    expect(s).to.include({ status: "Completed", phase: "Completed", round: 2, completedRounds: 2, phaseEndsAt: null });
    expect(s.rounds.map((r) => r.outcome)).to.deep.equal(["decided", "decided"]);
    const [r1, r2] = s.rounds as [Snapshot["rounds"][number], Snapshot["rounds"][number]];
    expect(r1.committed).to.equal(3);
    expect(r1.updates.map((u) => u.status)).to.deep.equal(["accepted", "accepted", "rejected"]);
    expect(r1.updates[2]!.votesFor).to.deep.equal([v[2]!.address]);
    expect(r1.updates[2]!.votesAgainst).to.have.members([v[0]!.address, v[1]!.address]);
    expect(r1.updates[2]).to.include({ slashable: true, slashed: "5.0", reward: null, worker: p.workers[2]!.address });
    expect(r1.updates[0]!.reward).to.equal(r1.rewards.workerRewardEach);
    expect(Number(r1.rewards.workerRewardEach)).to.be.greaterThan(0);
    expect(r1.votes.map((x) => [x.validator, x.bitmap, x.accepts, x.agreesWithAccepted])).to.deep.equal([
      [v[0]!.address, "0x3", [0, 1], true],
      [v[1]!.address, "0x3", [0, 1], true],
      [v[2]!.address, "0x7", [0, 1, 2], false],
    ]);
    expect(r1.slashes).to.deep.equal([{ account: p.workers[2]!.address, reason: "rejected update", amount: "5.0" }]);
    expect(r1.rewards.validators.map((x) => x.validator)).to.have.members(v.map((x) => x.address));
    // The validator's decision log: its reasons beside the update it judged.
    expect(r1.updates[2]!.decisions).to.deep.equal([{ node: "validator-0", accept: false, code: "norm", reason: "norm 9.1 is over 4 × the median", metrics: { norm: 9.1 } }]);
    expect(r1.updates[1]!.decisions).to.deep.equal([]);
    expect(s.decisionLogs).to.equal(1);
    // CIDs: round 2 opens on round 1's model.
    const cid = async (tag: string) => (await cidFromChain(ethers.id(tag), Codec.raw)).toString();
    expect([r1.model, r2.base, r2.model]).to.deep.equal([await cid("model 1"), await cid("model 1"), await cid("model 2")]);
    expect(r1.attestations.map((a) => [a.validator, a.cid])).to.deep.equal(v.slice(0, 2).map((x) => [x.address, r1.model]));
    expect(r2.updates.map((u) => u.status)).to.deep.equal(["accepted", "accepted", "accepted"]);
    expect(r2.slashes).to.deep.equal([]);
    // The attesters' held-out scores as reported on chain, their median the round's point of the accuracy curve.
    expect(r1.scores.map((x) => [x.validator, x.accuracy, x.loss, x.samples])).to.deep.equal([
      [v[0]!.address, 0.8, 0.500001, 1000],
      [v[1]!.address, 0.84, 0.500001, 1000],
    ]);
    expect({ ...r1.score, accuracy: Math.round(r1.score!.accuracy! * 1e4) }).to.deep.equal({ accuracy: 8200, loss: 0.500001, reporters: 2 });
    expect(s.accuracy.available).to.equal(true);
    expect(s.accuracy.points.map((x) => [x.round, Math.round(x.accuracy * 1e4)])).to.deep.equal([[1, 8200], [2, 9100]]);
    // Agreement with the accepted sets: v[2] disagreed on one of six decided updates.
    const byAddr = new Map(s.validators.map((x) => [x.address, x]));
    expect(byAddr.get(v[0]!.address)).to.include({ votes: 2, agreedUpdates: 6, judgedUpdates: 6, agreement: 1, slashed: "0.0" });
    expect(byAddr.get(v[2]!.address)).to.include({ votes: 2, agreedUpdates: 5, judgedUpdates: 6 });
    expect(Math.abs(byAddr.get(v[2]!.address)!.agreement! - 5 / 6)).to.be.lessThan(1e-9);
    expect(Number(byAddr.get(v[0]!.address)!.stake)).to.be.greaterThan(0);
    expect(Number(byAddr.get(v[0]!.address)!.rewards)).to.be.greaterThan(0);
  });

  it("in headless Chromium: the page shows the rounds, votes and chart, follows a round live and loads nothing from elsewhere", async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      (skipped: ${CHROMIUM} is missing; install Debian's Chromium with \`apt-get install chromium\` to run this test)`);
      this.skip();
    }
    // A fresh job on the same chain, so that the page is open while its rounds are played.
    jobId = await createJob(p, helpers, { numRounds: 2 });
    await dash.close();
    dash = await startDashboard({ coord: p.coord, stake: p.stake, provider: ethers.provider, jobId, port: 0, cacheMs: 0, decisionLogs: [join(dir, "events.jsonl")] });
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
      const foreign: string[] = [];
      const errors: string[] = [];
      page.on("request", (r) => {
        if (!r.url().startsWith(dash.url)) foreign.push(r.url());
      });
      page.on("pageerror", (e) => errors.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      await round1();
      await page.goto(dash.url);
      await page.waitForSelector("body[data-loaded=true]");
      expect(await page.locator("#job").textContent()).to.equal(`job ${jobId}`);
      expect(await page.locator("#round-1 .outcome").textContent()).to.equal("decided");
      expect(await page.locator("#round-1 .vote").count()).to.equal(3);
      expect(await page.locator("#round-1 .slash").textContent()).to.include("rejected update");
      expect(await page.locator("#round-1 .cid-model").textContent()).to.match(/^bafk/);
      // The decision log's reason beside the update it judged.
      expect(await page.locator("#round-1 .update").nth(2).textContent()).to.include("validator-0: reject").and.include("norm 9.1 is over 4 × the median");
      // Round 2 is open: the page names its phase and counts down to its end.
      expect(await page.locator("#phase-name").textContent()).to.equal("Commit");
      expect(await page.locator("#countdown").textContent()).to.match(/\d+s$/);
      // The page follows the server's event stream (no polling while it is up).
      await page.waitForFunction(`document.getElementById("footer")?.textContent.includes("pushed on every new block")`, undefined, { timeout: 10_000 });
      // Round 2 played while the page is open: it appears as its blocks are pushed.
      await round2();
      await page.waitForSelector("#round-2 .vote", { timeout: 15_000 });
      await page.waitForFunction(`document.getElementById("phase-name")?.textContent === "Completed"`, undefined, { timeout: 15_000 });
      expect(await page.locator("#round-2 .vote").count()).to.equal(3);
      expect(await page.locator("#round-2 .update .accepted").count()).to.equal(3);
      expect(await page.locator("#validators tbody tr").count()).to.equal(3);
      // The chart: Chart.js drew on the canvas, one group of bars per round.
      await page.waitForFunction(`document.getElementById("chart")?.dataset.rounds === "2"`, undefined, { timeout: 10_000 });
      // (A string: the test's TypeScript has no DOM types.)
      const chart = (await page.evaluate(`(() => {
        const c = document.getElementById("chart");
        const g = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < g.length; i += 4) if (g[i] > 0) painted++;
        return { width: c.width, painted, labels: Chart.getChart(c)?.data.labels ?? null };
      })()`)) as { width: number; painted: number; labels: string[] | null };
      expect(chart.labels).to.deep.equal(["round 1", "round 2"]);
      expect(chart.width).to.be.greaterThan(100);
      expect(chart.painted).to.be.greaterThan(1000);
      // The accuracy curve from the validators' scores on chain, and each round's median beside its model.
      expect(await page.locator("#accuracy-note").textContent()).to.match(/validators' own held-out data/);
      expect(await page.locator("#round-1 .score").textContent()).to.include("accuracy 82 %").and.include("median of 2");
      const curve = (await page.evaluate(`Chart.getChart(document.getElementById("chart")).data.datasets.find((d) => d.label.startsWith("held-out accuracy"))?.data ?? null`)) as number[] | null;
      expect(curve?.map((x) => Math.round(x * 1e4))).to.deep.equal([8200, 9100]);
      const shot = join(dir, "dashboard.png");
      await page.screenshot({ path: shot, fullPage: true });
      console.log(`      screenshot: ${shot}`);
      expect(existsSync(shot)).to.equal(true);
      expect(foreign).to.deep.equal([]);
      expect(errors).to.deep.equal([]);
    } finally {
      await browser.close();
    }
  });

  it("a round's score is the stake-weighted median of its model's attesters only", function () {
    const att = (validator: string, cid: string, stakeFor: bigint) => ({ validator, cid, stakeFor });
    const score = (validator: string, accuracy: number | null, loss: number) => ({ validator, accuracy, loss, samples: 100 });
    const r = {
      model: "good",
      // Running tallies per CID: a holds 600, b 300, c 100 behind "good"; d attested a losing CID.
      attestations: [att("a", "good", 600n), att("d", "bad", 5000n), att("b", "good", 900n), att("c", "good", 1000n)],
      scores: [score("a", 0.9, 0.3), score("b", 0.5, 0.9), score("c", 0.1, 2), score("d", 0.0, 9), score("e", 0.0, 9)],
    } as unknown as ChainRound;
    // a's 600 of 1000 is over half: its score is the median, whatever b, c, d (a losing CID) or e (no attestation) say.
    expect(roundScore(r)).to.deep.equal({ accuracy: 0.9, loss: 0.3, reporters: 3 });
    // Equal halves: the mean of the two either side; a regression job reports no accuracy.
    const even = { ...r, attestations: [att("a", "good", 500n), att("b", "good", 1000n)], scores: [score("a", null, 1), score("b", null, 3)] } as unknown as ChainRound;
    expect(roundScore(even)).to.deep.equal({ accuracy: null, loss: 2, reporters: 2 });
    expect(roundScore({ ...r, scores: [score("d", 0.5, 1)] } as unknown as ChainRound)).to.equal(null);
  });
});
