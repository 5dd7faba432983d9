// The dashboard page: polls /api/job (the job as the chain records it) every 2 s and renders it.
"use strict";
const POLL_MS = 2000;
const PHASES = ["NotStarted", "Commit", "Reveal", "VoteCommit", "VoteReveal", "Finalize", "Attest"];
let data = null;
let fetchedAt = 0;
let chart = null;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}
const short = (a) => (a && a.length > 14 ? a.slice(0, 8) + "…" + a.slice(-4) : a);
const addr = (a) => el("span", { class: "mono", title: a }, short(a));
// Token amounts come exact (18 decimals); the page rounds them, with the exact value as the title.
const tok = (x) => (x === null || x === undefined ? "–" : el("span", { title: x }, String(Number(Number(x).toFixed(4)))));
const pct = (x) => (x === null || x === undefined ? "–" : (100 * x).toFixed(0) + " %");
const dur = (s) => {
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
};

function renderPhase() {
  if (!data) return;
  const box = document.getElementById("phase");
  box.replaceChildren();
  box.append(el("span", {}, `Round ${data.round} of ${data.numRounds}: `), el("strong", { id: "phase-name" }, data.phase));
  if (data.phaseEndsAt !== null) {
    // Chain time: the latest block's timestamp when fetched, advanced by the time since then.
    const now = data.chainTime + (Date.now() - fetchedAt) / 1000;
    box.append(" — ends in at most ", el("span", { class: "countdown", id: "countdown" }, dur(data.phaseEndsAt - now)), el("span", { class: "note" }, ` (earlier once everyone expected in it has acted; deadline in chain time ${new Date(data.phaseEndsAt * 1000).toISOString()}; latest block ${data.block} at ${new Date(data.chainTime * 1000).toISOString()})`));
  }
  const tl = document.getElementById("timeline");
  tl.replaceChildren();
  const at = PHASES.indexOf(data.phase);
  for (const [i, p] of PHASES.entries()) tl.append(el("li", { class: at < 0 ? "" : i < at ? "done" : i === at ? "now" : "" }, p));
  if (at < 0) tl.append(el("li", { class: "now" }, data.phase));
}

function renderChart() {
  const labels = data.rounds.map((r) => "round " + r.round);
  const count = (r, s) => r.updates.filter((u) => u.status === s).length;
  const acc = new Map(data.accuracy.points.map((p) => [p.round, p.accuracy]));
  const test = new Map(data.testAccuracy.points.map((p) => [p.round, p.accuracy]));
  const curves = data.accuracy.available || test.size > 0;
  const datasets = [
    { type: "bar", label: "accepted updates", data: data.rounds.map((r) => count(r, "accepted")), backgroundColor: "#2da44e", yAxisID: "y", stack: "u" },
    { type: "bar", label: "rejected updates", data: data.rounds.map((r) => count(r, "rejected")), backgroundColor: "#cf222e", yAxisID: "y", stack: "u" },
    { type: "bar", label: "undecided updates", data: data.rounds.map((r) => count(r, "undecided") + count(r, "pending")), backgroundColor: "#d4a72c", yAxisID: "y", stack: "u" },
    { type: "line", label: "votes revealed", data: data.rounds.map((r) => r.votes.length), borderColor: "#0969da", backgroundColor: "#0969da", yAxisID: "y" },
  ];
  if (data.accuracy.available) datasets.push({ type: "line", label: "held-out accuracy (validators, stake-weighted median)", data: data.rounds.map((r) => acc.get(r.round) ?? null), borderColor: "#8250df", backgroundColor: "#8250df", yAxisID: "acc", spanGaps: true });
  if (test.size) datasets.push({ type: "line", label: "test accuracy", data: data.rounds.map((r) => test.get(r.round) ?? null), borderColor: "#bf3989", backgroundColor: "#bf3989", borderDash: [6, 3], yAxisID: "acc", spanGaps: true });
  const scales = { x: { stacked: true }, y: { beginAtZero: true, stacked: false, ticks: { precision: 0 }, title: { display: true, text: "count" } } };
  if (curves) scales.acc = { position: "right", min: 0, max: 1, title: { display: true, text: "accuracy" }, grid: { drawOnChartArea: false } };
  if (typeof Chart === "undefined") return;
  if (!chart) {
    chart = new Chart(document.getElementById("chart"), { data: { labels, datasets }, options: { animation: false, maintainAspectRatio: false, scales } });
  } else {
    chart.data.labels = labels;
    chart.data.datasets = datasets;
    chart.options.scales = scales;
    chart.update();
  }
  document.getElementById("chart").dataset.rounds = String(data.rounds.length);
  document.getElementById("accuracy-note").textContent = data.accuracy.available ? data.accuracy.note : "Accuracy: " + data.accuracy.note + ".";
}

function renderValidators() {
  const body = document.querySelector("#validators tbody");
  body.replaceChildren(
    ...data.validators.map((v) =>
      el("tr", { class: "validator" }, el("td", {}, addr(v.address)), el("td", {}, v.inCommittee ? "yes" : "no"), el("td", { class: "num" }, tok(v.stake)), el("td", { class: "num" }, v.votes), el("td", { class: "num" }, v.withheld), el("td", { class: "num", title: `${v.agreedUpdates} of ${v.judgedUpdates} decided updates` }, pct(v.agreement)), el("td", { class: "num" }, tok(v.rewards)), el("td", { class: "num" }, tok(v.slashed))),
    ),
  );
}

function renderRounds() {
  const box = document.getElementById("rounds");
  const hasLogs = data.decisionLogs > 0;
  box.replaceChildren(
    ...[...data.rounds].reverse().map((r) => {
      const ups = el("table", { class: "updates" }, el("thead", {}, el("tr", {}, ["#", "worker", "samples", "outcome", "votes accept", "votes reject", "reward", "slashed", hasLogs ? "validators' reasons" : "update CID"].map((h) => el("th", {}, h)))),
        el("tbody", {}, r.updates.map((u) => el("tr", { class: "update" }, el("td", { class: "num" }, u.index), el("td", {}, addr(u.worker)), el("td", { class: "num" }, u.numSamples), el("td", { class: u.status }, u.status), el("td", {}, u.votesFor.length, " ", u.votesFor.map((a) => el("span", { class: "tag mono", title: a }, short(a)))), el("td", {}, u.votesAgainst.length, " ", u.votesAgainst.map((a) => el("span", { class: "tag mono", title: a }, short(a)))), el("td", { class: "num" }, tok(u.reward)), el("td", { class: "num" }, tok(u.slashed)),
          el("td", {}, hasLogs ? u.decisions.map((d) => el("div", {}, el("span", { class: d.accept ? "accepted" : "rejected" }, d.node + ": " + (d.accept ? "accept" : "reject")), " ", d.reason)) : el("span", { class: "mono" }, u.cid))))));
      const votes = el("ul", { class: "votes" }, r.votes.map((v) => el("li", { class: "vote" }, addr(v.validator), ` accepts [${v.accepts.join(", ")}] (${v.bitmap})`, v.agreesWithAccepted === null ? "" : v.agreesWithAccepted ? " — matches the accepted set" : " — differs from the accepted set")));
      const slashes = r.slashes.length ? el("ul", { class: "slashes" }, r.slashes.map((s) => el("li", { class: "slash" }, addr(s.account), " slashed ", tok(s.amount), ` (${s.reason})`))) : el("p", { class: "note" }, "no slashes");
      return el("div", { class: "round", id: "round-" + r.round },
        el("h3", {}, `Round ${r.round}: `, el("span", { class: "outcome" }, r.outcome), ` — ${r.committed} committed, ${r.updates.length} revealed, ${r.votes.length} votes`),
        el("div", {}, "base ", el("span", { class: "mono cid-base" }, r.base)),
        el("div", {}, "model ", el("span", { class: "mono cid-model" }, r.model ?? "not attested")),
        r.score ? el("div", { class: "score" }, "held-out score: ", r.score.accuracy === null ? "" : `accuracy ${pct(r.score.accuracy)}, `, `loss ${r.score.loss.toFixed(4)} (stake-weighted median of ${r.score.reporters}: `, r.scores.map((x) => el("span", { class: "tag", title: x.validator }, `${short(x.validator)} ${x.accuracy === null ? "" : pct(x.accuracy) + " "}on ${x.samples}`)), ")") : "",
        el("div", { class: "note" }, "worker reward each ", tok(r.rewards.workerRewardEach), ", validator pool ", tok(r.rewards.validatorPool), "; stake: committee ", tok(r.stake.committee), ", committed ", tok(r.stake.committed), ", revealed ", tok(r.stake.revealed)),
        r.updates.length ? ups : el("p", { class: "note" }, "no updates revealed"),
        el("div", {}, el("strong", {}, "Votes (on chain)"), r.votes.length ? votes : el("p", { class: "note" }, "no votes revealed")),
        r.withheld.length ? el("div", {}, "withheld votes: ", r.withheld.map(addr)) : "",
        r.evicted.length ? el("div", {}, "evicted: ", r.evicted.map(addr)) : "",
        el("div", {}, el("strong", {}, "Slashes"), slashes),
      );
    }),
  );
}

function render() {
  document.getElementById("job").textContent = "job " + data.job;
  document.getElementById("summary").textContent = `${data.status}: round ${data.round} of ${data.numRounds}, ${data.completedRounds} paid rounds, reward pool ${Number(Number(data.rewardPool).toFixed(4))} (${data.rewardPerRound} per round)`;
  renderPhase();
  renderChart();
  renderValidators();
  renderRounds();
  document.getElementById("footer").textContent = `read from the chain at block ${data.block}; ${streaming ? "pushed on every new block" : `refreshed every ${POLL_MS / 1000} s`}` + (data.decisionLogs ? `; ${data.decisionLogs} validator decision log(s)` : "; no validator decision log given: votes as revealed on chain");
  document.body.dataset.loaded = "true";
}

/** A snapshot from the server (pushed or fetched): shown, and the error box hidden. */
function show(body) {
  data = body;
  fetchedAt = Date.now();
  document.getElementById("error").hidden = true;
  render();
}

function showError(message) {
  const box = document.getElementById("error");
  box.hidden = false;
  box.textContent = "could not read the job: " + message;
}

/** Fallback while the event stream is down: one read of /api/job every POLL_MS. */
async function poll() {
  if (streaming) return;
  try {
    const res = await fetch("/api/job", { cache: "no-store" });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    show(body);
  } catch (e) {
    showError(e.message);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

// The server pushes a snapshot on every new block (server-sent events); the browser reconnects by itself.
let streaming = false;
const events = new EventSource("/api/events");
events.onopen = () => (streaming = true);
events.onmessage = (e) => show(JSON.parse(e.data));
events.addEventListener("failure", (e) => showError(JSON.parse(e.data).error));
events.onerror = () => {
  if (!streaming) return;
  streaming = false;
  poll();
};

setInterval(renderPhase, 1000);
poll();
