/**
 * Chain-endpoint faults (issue 18, sim/faults/rpcProxy.ts). First the proxy itself, against a fake
 * JSON-RPC upstream on loopback; then the transaction sender (worker/chain/client.ts: sendTx) through it,
 * against a real `hardhat node` (worker/chain/devnet.ts), once automining (the devnet as the demo runs it:
 * a transaction is mined before its broadcast is answered) and once mining on the 1 s interval only (as a
 * real chain does: a transaction waits in the pool until the next block, so an answer lost or falsified
 * after the chain took it leaves it pending — the worst case for a client).
 *
 * For every fault one token transfer is sent through the proxy, and on chain: the call is applied at most
 * once, the sender's nonce advances by exactly the number of transfers applied, the chain never saw two
 * transactions at two different nonces for the call, and if sendTx threw, nothing was applied (a caller
 * told "failed" retries: a failure that was in fact applied is applied twice).
 *
 * Five of these cases found bugs in sendTx when they were written (a call applied twice after
 * "underpriced"; an error reported for a call that was applied: a cut answer, "header not found", a
 * failed receipt poll; a re-signature above a nonce nobody mined): every case must hold.
 */
import { expect } from "chai";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HDNodeWallet, JsonRpcProvider, Mnemonic, Transaction, type EventLog, type Wallet } from "ethers";
import { attach, deployProtocol, sendTx, sendValue, type Deployment } from "../../worker/chain/client.ts";
import { mintAndStake, startDevnet, type Devnet } from "../../worker/chain/devnet.ts";
import { Outcome, Phase } from "../../worker/chain/protocol.ts";
import type { NodeConfig } from "../../worker/node/config.ts";
import type { ModelSpec } from "../../worker/training/spec.ts";
import { assertLoopbackUpstream, RpcProxy, type Fault } from "../../sim/faults/rpcProxy.ts";
import { NodeProcesses, removeTree } from "../helpers/processes.ts";

const SEND = "eth_sendRawTransaction";

/** POSTs `body` to `url` (loopback), resolving with the status and body, or the socket error's message. */
function post(url: string, body: unknown): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const data = Buffer.from(JSON.stringify(body));
    const req = request(url, { method: "POST", headers: { "content-type": "application/json", "content-length": data.length }, agent: false }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on("error", (e) => resolve({ error: e.message }));
    });
    req.on("error", (e) => resolve({ error: `${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`.trim() }));
    req.end(data);
  });
}

/** A fake chain: answers every call with `method#n` (n counts the calls it received) and records them. */
async function fakeUpstream(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    let text = "";
    req.on("data", (c) => (text += c));
    req.on("end", () => {
      const parsed = JSON.parse(text) as { id: number; method: string } | { id: number; method: string }[];
      const answer = (c: { id: number; method: string }) => (seen.push(c.method), { jsonrpc: "2.0", id: c.id, result: `${c.method}#${seen.length}` });
      const out = JSON.stringify(Array.isArray(parsed) ? parsed.map(answer) : answer(parsed));
      res.writeHead(200, { "content-type": "application/json" }).end(out);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen, server };
}

const call = (id: number, method: string) => ({ jsonrpc: "2.0", id, method, params: [] });

describe("rpc proxy (sim/faults/rpcProxy.ts): loopback, seeded, per call", function () {
  this.timeout(30_000);
  let up: Awaited<ReturnType<typeof fakeUpstream>>;
  let proxy: RpcProxy;
  const lines: string[] = [];

  beforeEach(async function () {
    up = await fakeUpstream();
    lines.length = 0;
    proxy = await RpcProxy.start({ upstream: up.url, seed: 5, log: (l) => lines.push(l) });
  });
  afterEach(async function () {
    await proxy.stop();
    up.server.close();
  });

  it("forwards only to a loopback http upstream, and listens on 127.0.0.1", async function () {
    for (const bad of ["http://10.0.0.1:8545", "https://127.0.0.1:8545", "http://example.com:8545", "http://127.0.0.1.example.com/", "ws://127.0.0.1:8545", "nonsense"]) {
      expect(() => assertLoopbackUpstream(bad), bad).to.throw(/rpc proxy: (refusing upstream|upstream .* is not a URL)/);
      await RpcProxy.start({ upstream: bad }).then(
        (p) => (void p.stop(), expect.fail(`${bad} accepted`)),
        (e: Error) => expect(e.message).to.match(/rpc proxy/),
      );
    }
    for (const good of ["http://127.0.0.1:8545", "http://localhost:8545/", "http://[::1]:8545"]) expect(() => assertLoopbackUpstream(good)).to.not.throw();
    expect(proxy.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("forwards single calls and batches unchanged when no fault is set, and counts them", async function () {
    expect(await post(proxy.url, call(1, "eth_chainId"))).to.deep.include({ status: 200, body: JSON.stringify({ jsonrpc: "2.0", id: 1, result: "eth_chainId#1" }) });
    const r = (await post(proxy.url, [call(2, "eth_blockNumber"), call(3, "eth_gasPrice")])) as { body: string };
    expect(JSON.parse(r.body)).to.deep.equal([
      { jsonrpc: "2.0", id: 2, result: "eth_blockNumber#2" },
      { jsonrpc: "2.0", id: 3, result: "eth_gasPrice#3" },
    ]);
    expect(proxy.stats()).to.deep.equal({ requests: 2, calls: 3, fired: {}, total: 0 });
  });

  it("answers one call of a batch with a JSON-RPC error, forwarding the others (or all, with forward)", async function () {
    proxy.set({ kind: "rpcError", methods: ["eth_blockNumber"] });
    const r = (await post(proxy.url, [call(1, "eth_chainId"), call(2, "eth_blockNumber"), call(3, "eth_gasPrice")])) as { body: string };
    expect(JSON.parse(r.body)).to.deep.equal([
      { jsonrpc: "2.0", id: 1, result: "eth_chainId#1" },
      { jsonrpc: "2.0", id: 2, error: { code: -32000, message: "header not found" } },
      { jsonrpc: "2.0", id: 3, result: "eth_gasPrice#2" },
    ]);
    expect(up.seen).to.deep.equal(["eth_chainId", "eth_gasPrice"]);
    proxy.set({ kind: "rpcError", code: -32005, message: "limit exceeded", forward: true });
    const one = (await post(proxy.url, call(4, "eth_call"))) as { body: string };
    expect(JSON.parse(one.body)).to.deep.equal({ jsonrpc: "2.0", id: 4, error: { code: -32005, message: "limit exceeded" } });
    expect(up.seen.at(-1), "forwarded before the error was answered").to.equal("eth_call");
    expect(proxy.stats().fired).to.deep.equal({ rpcError: { eth_blockNumber: 1, eth_call: 1 } });
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/fault rpcError on eth_blockNumber$/);
  });

  it("answers eth_sendRawTransaction with nonce too low / underpriced, with or without forwarding it, and nothing else", async function () {
    proxy.set({ kind: "nonceTooLow", forward: false });
    const a = (await post(proxy.url, [call(1, SEND), call(2, "eth_call")])) as { body: string };
    expect(JSON.parse(a.body)[0].error).to.deep.equal({ code: -32000, message: "nonce too low" });
    expect(JSON.parse(a.body)[1].result).to.equal("eth_call#1");
    expect(up.seen).to.deep.equal(["eth_call"]);
    proxy.set({ kind: "underpriced", forward: true });
    const b = (await post(proxy.url, call(3, SEND))) as { body: string };
    expect(JSON.parse(b.body).error.message).to.equal("replacement transaction underpriced");
    expect(up.seen).to.deep.equal(["eth_call", SEND]);
    expect(proxy.stats().fired).to.deep.equal({ nonceTooLow: { [SEND]: 1 }, underpriced: { [SEND]: 1 } });
  });

  it("drops, answers HTTP errors, cuts an answer in half, delays", async function () {
    proxy.set({ kind: "drop" });
    expect(await post(proxy.url, call(1, "eth_chainId"))).to.have.property("error").that.matches(/socket hang up|ECONNRESET/);
    expect(up.seen, "dropped before forwarding").to.deep.equal([]);
    proxy.set({ kind: "drop", forward: true });
    expect(await post(proxy.url, call(1, "eth_chainId"))).to.have.property("error");
    expect(up.seen, "dropped after forwarding").to.deep.equal(["eth_chainId"]);
    for (const status of [503, 429]) {
      proxy.set({ kind: "httpStatus", status });
      expect(await post(proxy.url, call(2, "eth_chainId"))).to.have.property("status", status);
    }
    proxy.set({ kind: "cut" });
    const cut = await post(proxy.url, call(3, "eth_chainId"));
    expect(cut, "half a body, then the connection dies").to.have.property("error").that.matches(/aborted|ECONNRESET/);
    proxy.set({ kind: "latency", ms: 300 });
    const t0 = Date.now();
    expect(await post(proxy.url, call(4, "eth_chainId"))).to.have.property("status", 200);
    expect(Date.now() - t0).to.be.at.least(290);
    expect(proxy.stats().fired).to.deep.equal({ drop: { eth_chainId: 2 }, httpStatus: { eth_chainId: 2 }, cut: { eth_chainId: 1 }, latency: { eth_chainId: 1 } });
  });

  it("fires by a seeded draw (the same seed hits the same calls) and at most `times` times", async function () {
    const pattern = async (seed: number) => {
      const p = await RpcProxy.start({ upstream: up.url, seed, faults: { kind: "rpcError", probability: 0.3 } });
      const hits: boolean[] = [];
      for (let i = 0; i < 40; i++) hits.push("error" in JSON.parse(((await post(p.url, call(i, "eth_chainId"))) as { body: string }).body));
      await p.stop();
      return hits;
    };
    const a = await pattern(11);
    expect(await pattern(11)).to.deep.equal(a);
    expect(await pattern(12)).to.not.deep.equal(a);
    expect(a.filter(Boolean).length).to.be.within(4, 22);
    proxy.set({ kind: "httpStatus", status: 503, times: 2 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push(((await post(proxy.url, call(i, "eth_chainId"))) as { status: number }).status);
    expect(statuses).to.deep.equal([503, 503, 200, 200]);
  });

  it("goes down for N seconds (connections refused), then answers again on the same URL", async function () {
    const url = proxy.url;
    proxy.set({ kind: "down", seconds: 1.5, methods: [SEND], times: 1 });
    expect(await post(url, call(1, "eth_chainId"))).to.have.property("status", 200);
    const t0 = Date.now();
    expect(await post(url, call(2, SEND)), "the call that triggers the outage").to.have.property("error");
    expect(proxy.isDown).to.equal(true);
    expect(await post(url, call(3, "eth_chainId"))).to.have.property("error").that.matches(/ECONNREFUSED/);
    while (proxy.isDown && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 50));
    expect(Date.now() - t0).to.be.within(1400, 4000);
    expect(proxy.url).to.equal(url);
    expect(await post(url, call(4, "eth_chainId"))).to.have.property("status", 200);
    // Scheduled outages too (a chaos schedule's "down for 1 s now").
    const back = proxy.down(1);
    expect(await post(url, call(5, "eth_chainId"))).to.have.property("error");
    await back;
    expect(await post(url, call(6, "eth_chainId"))).to.have.property("status", 200);
    expect(proxy.stats().fired).to.deep.equal({ down: { [SEND]: 1, "(scheduled)": 1 } });
  });
});

// ---------------------------------------------------------------------------------------------------------
// The transaction sender through the proxy, on a real hardhat node.

interface Case {
  name: string;
  faults: Fault | Fault[];
  /**
   * What a correct client does: the call is applied exactly once ("ok"), or it fails and nothing is applied
   * ("error"); "either" where both are right (a retry that succeeds is as good as a clear failure).
   */
  expect: "ok" | "error" | "either";
  /** Why it currently breaks the properties (a bug in worker/chain/client.ts), if it does. */
}

const only = (methods: string[], f: Fault): Fault => ({ ...f, methods });

/** Faults on the broadcast and around it; the chain automines (a transaction is mined before its broadcast is answered). */
const AUTOMINE: Case[] = [
  { name: "no fault", faults: [], expect: "ok" },
  { name: "latency 300 ms on every call", faults: { kind: "latency", ms: 300 }, expect: "ok" },
  { name: "broadcast dropped twice before the chain sees it", faults: only([SEND], { kind: "drop", times: 2 }), expect: "ok" },
  { name: "broadcast answer dropped after the chain took it", faults: only([SEND], { kind: "drop", forward: true, times: 1 }), expect: "ok" },
  { name: "broadcast answered 503 twice", faults: only([SEND], { kind: "httpStatus", status: 503, times: 2 }), expect: "ok" },
  { name: "broadcast answered 503 after the chain took it", faults: only([SEND], { kind: "httpStatus", status: 503, forward: true, times: 1 }), expect: "ok" },
  { name: "broadcast answered 429 (ethers backs off by itself)", faults: only([SEND], { kind: "httpStatus", status: 429, times: 2 }), expect: "ok" },
  { name: "broadcast answered nonce too low after the chain took it", faults: { kind: "nonceTooLow", forward: true, times: 1 }, expect: "ok" },
  { name: "broadcast answered underpriced after the chain took it", faults: { kind: "underpriced", forward: true, times: 1 }, expect: "ok" },
  {
    name: "broadcast answered nonce too low, not forwarded (a lagging endpoint)",
    faults: { kind: "nonceTooLow", forward: false, times: 1 },
    expect: "ok",
  },
  {
    name: "broadcast answered -32000 header not found after the chain took it",
    faults: only([SEND], { kind: "rpcError", forward: true, times: 1 }),
    expect: "ok",
  },
  { name: "broadcast answered -32000 header not found, not forwarded", faults: only([SEND], { kind: "rpcError", times: 1 }), expect: "either" },
  {
    name: "broadcast answer cut mid-body (the chain took it)",
    faults: only([SEND], { kind: "cut", times: 1 }),
    expect: "ok",
  },
  { name: "endpoint down 3 s from the broadcast on", faults: only([SEND], { kind: "down", seconds: 3, times: 1 }), expect: "ok" },
  { name: "estimateGas dropped", faults: only(["eth_estimateGas"], { kind: "drop", times: 1 }), expect: "either" },
  {
    name: "receipt polling answered 503 / header not found, 3 times each",
    faults: [only(["eth_getTransactionReceipt"], { kind: "httpStatus", status: 503, times: 3 }), only(["eth_getTransactionReceipt", "eth_blockNumber"], { kind: "rpcError", times: 3 })],
    expect: "ok",
  },
];

/** The same on a chain that mines on its 1 s interval only: an accepted transaction stays pending until the next block. */
const INTERVAL: Case[] = [
  { name: "no fault", faults: [], expect: "ok" },
  { name: "broadcast answer dropped after the chain took it", faults: only([SEND], { kind: "drop", forward: true, times: 1 }), expect: "ok" },
  { name: "broadcast answered 503 after the chain took it", faults: only([SEND], { kind: "httpStatus", status: 503, forward: true, times: 1 }), expect: "ok" },
  {
    name: "broadcast answered nonce too low after the chain took it",
    faults: { kind: "nonceTooLow", forward: true, times: 1 },
    expect: "ok",
  },
  {
    name: "broadcast answered underpriced after the chain took it",
    faults: { kind: "underpriced", forward: true, times: 1 },
    expect: "ok",
  },
  {
    name: "broadcast answer cut mid-body (the chain took it)",
    faults: only([SEND], { kind: "cut", times: 1 }),
    expect: "ok",
  },
  { name: "endpoint down 3 s from the broadcast on", faults: only([SEND], { kind: "down", seconds: 3, times: 1 }), expect: "ok" },
  {
    name: "10 % of the reads answered header not found, 300 ms latency",
    faults: [{ kind: "latency", ms: 300 }, { kind: "rpcError", probability: 0.1, methods: ["eth_getTransactionReceipt", "eth_blockNumber", "eth_getBlockByNumber", "eth_getTransactionByHash"] }],
    expect: "ok",
  },
];

interface Observation {
  ok: boolean;
  error?: string;
  /** Transfers applied on chain (the recipient's balance change, in base units). */
  applied: bigint;
  /** The sender's mined nonce change. */
  nonces: number;
  /** Distinct nonces of the transactions for this call that reached the chain. */
  forwardedNonces: number[];
  ms: number;
}

describe("sendTx through a faulty endpoint (a real hardhat node on 127.0.0.1)", function () {
  this.timeout(240_000);
  const MNEMONIC = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
  // Senders past Hardhat's 20 funded accounts, one per case (funded below): each case starts at nonce 0.
  const account = (i: number) => HDNodeWallet.fromMnemonic(MNEMONIC, `m/44'/60'/0'/0/${i}`);
  const RECIPIENT = account(99).address;
  let devnet: Devnet;
  let dep: Deployment;
  let proxy: RpcProxy;
  let token: ReturnType<typeof attach>["token"];
  const forwarded: Transaction[] = [];
  const table: string[] = [];
  const cases = [...AUTOMINE.map((c) => ({ ...c, chain: "automine" as const })), ...INTERVAL.map((c) => ({ ...c, chain: "interval" as const }))];
  const senderOf = new Map(cases.map((c, i) => [c, account(100 + i)]));

  before(async function () {
    devnet = await startDevnet();
    const admin = account(0).connect(devnet.provider) as unknown as Wallet;
    dep = await deployProtocol(admin);
    token = attach(dep, admin).token;
    await Promise.all([...senderOf.values(), account(98)].map((w) => sendValue(admin, w.address, 10n ** 18n)));
    await Promise.all([...senderOf.values(), account(98)].map((w) => sendTx(admin, token, "mint", [w.address, 10n])));
    proxy = await RpcProxy.start({
      upstream: devnet.url,
      seed: 18,
      observe: (c, reached) => {
        if (reached && c.method === SEND) forwarded.push(Transaction.from((c.params as string[])[0]!));
      },
    });
  });

  after(async function () {
    await proxy?.stop();
    devnet?.stop();
    if (table.length) console.log(`\n      fault × client (sendTx of a token transfer):\n${table.map((l) => `        ${l}`).join("\n")}`);
  });

  /** One transfer of 1 base unit from the case's sender, through the proxy with the case's faults. */
  async function observe(c: (typeof cases)[number]): Promise<Observation> {
    const w = senderOf.get(c)!;
    // A fresh provider per case: sendTx's nonce cache is per provider.
    const provider = new JsonRpcProvider(proxy.url, undefined, { staticNetwork: true, pollingInterval: 250 });
    const wallet = w.connect(provider) as unknown as Wallet;
    const b0 = BigInt(await token.balanceOf(RECIPIENT));
    const n0 = await devnet.provider.getTransactionCount(w.address);
    forwarded.length = 0;
    proxy.set(c.faults);
    const t0 = Date.now();
    let error: string | undefined;
    try {
      await sendTx(wallet, attach(dep, wallet).token, "transfer", [RECIPIENT, 1n]);
    } catch (e) {
      error = (e as Error).message.split("\n")[0]!.slice(0, 160) || String(e);
    }
    const ms = Date.now() - t0;
    proxy.clear();
    provider.destroy();
    // Whatever is still pending is mined within a block or two (1 s interval).
    await new Promise((r) => setTimeout(r, c.chain === "interval" ? 2500 : 300));
    const applied = BigInt(await token.balanceOf(RECIPIENT)) - b0;
    const nonces = (await devnet.provider.getTransactionCount(w.address)) - n0;
    const forwardedNonces = [...new Set(forwarded.filter((t) => t.from === w.address).map((t) => t.nonce))];
    return { ok: error === undefined, error, applied, nonces, forwardedNonces, ms };
  }

  for (const c of cases) {
    const outcome = { ok: "applied exactly once", error: "a clear error, nothing applied", either: "applied once, or an error and nothing applied" }[c.expect];
    it(`${c.chain}: ${c.name} → ${outcome}`, async function () {
      if (c.chain === "interval" && c === cases.find((x) => x.chain === "interval")) await devnet.provider.send("evm_setAutomine", [false]);
      const o = await observe(c);
      const verdict = !o.ok ? `ERROR (${o.error})` : "ok";
      table.push(`${c.chain.padEnd(8)} ${c.name.padEnd(72)} ${verdict.slice(0, 120)} | applied ${o.applied}, nonce +${o.nonces}, sent at nonces [${o.forwardedNonces}] | ${o.ms} ms`);
      try {
        expect(Number(o.applied), "the call is applied at most once").to.be.at.most(1);
        expect(BigInt(o.nonces), "one mined transaction per application").to.equal(o.applied);
        expect(o.forwardedNonces.length, "the chain never sees the call at two nonces").to.be.at.most(1);
        if (!o.ok) expect(o.applied, `sendTx threw (${o.error}) but the call was applied`).to.equal(0n);
        if (c.expect === "ok") expect(o.ok, `sendTx threw: ${o.error}`).to.equal(true);
        if (c.expect === "error") expect(o.ok, "sendTx should have failed").to.equal(false);
        if (o.ok) expect(o.applied).to.equal(1n);
      } catch (e) {
        table[table.length - 1] += "  ← FAILED";
        throw e;
      }
    });
  }

  // A client that re-signs above a nonce nobody mined (as sendTx once did) leaves a gap: the call waits on
  // it, and so does every later call of the process (its nonce cache keeps them above the gap).
  it("interval: a lying 'nonce too low' (not forwarded) leaves no nonce gap: this call and the next are both mined, once each", async function () {
    // The chain mines on its interval only (set by the matrix above, or here when run alone).
    await devnet.provider.send("evm_setAutomine", [false]);
    const w = account(98);
    const provider = new JsonRpcProvider(proxy.url, undefined, { staticNetwork: true, pollingInterval: 250 });
    const wallet = w.connect(provider) as unknown as Wallet;
    const tok = attach(dep, wallet).token;
    const b0 = BigInt(await token.balanceOf(RECIPIENT));
    proxy.set({ kind: "nonceTooLow", forward: false, times: 1 });
    const within = <T,>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<"pending">((r) => setTimeout(() => r("pending"), ms))]);
    const settle = (p: Promise<unknown>) => p.then(() => "done" as const, () => "failed" as const);
    const first = settle(sendTx(wallet, tok, "transfer", [RECIPIENT, 1n]));
    const r1 = await within(first, 6000);
    proxy.clear();
    // The same process's next call (no fault now): sendTx's nonce cache puts it above the gap too.
    const second = settle(sendTx(wallet, tok, "transfer", [RECIPIENT, 1n]));
    const r2 = await within(second, 6000);
    const applied = BigInt(await token.balanceOf(RECIPIENT)) - b0;
    table.push(`interval wedge: first call ${r1} after 6 s, next call ${r2} after 6 s, applied ${applied} of 2`);
    try {
      expect(r1, "the first call is mined (nothing else holds its nonce)").to.equal("done");
      expect(r2, "the next call is mined").to.equal("done");
      expect(applied).to.equal(2n);
    } finally {
      // Fill the gap from a fresh provider (its cache is empty: it signs at the mined count); the queued
      // transactions are then mined and both waiting calls return (else they would hold the process 120 s).
      const fresh = new JsonRpcProvider(devnet.url, undefined, { staticNetwork: true, pollingInterval: 250 });
      const filler = w.connect(fresh) as unknown as Wallet;
      if (r1 === "pending" || r2 === "pending") await sendTx(filler, attach(dep, filler).token, "transfer", [RECIPIENT, 0n]).catch(() => undefined);
      const late = await within(Promise.all([first, second]), 15_000);
      table.push(`interval wedge, once another transaction fills the gap: ${late === "pending" ? "still pending" : `calls ${late.join(", ")}`}, applied ${BigInt(await token.balanceOf(RECIPIENT)) - b0} of 2`);
      fresh.destroy();
      provider.destroy();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------
// A network of daemons behind a faulty endpoint.

/**
 * 2 validator and 2 worker daemons (`fedstake validator|worker CONFIG.json`, one process each, as
 * test/worker/lateJoin.test.ts runs them) on a tiny MNIST job of 2 rounds, every node's `rpc` going through
 * one proxy: 10 % of the reads answered "header not found" throughout, and the endpoint down for 3 s once
 * round 1's reveal phase opens. The sponsor talks to the chain directly. Every round must decide, no one
 * be slashed, and no node commit (an update or a vote) twice.
 */
describe("a network whose endpoint fails: every round decides, no honest node slashed", function () {
  this.timeout(300_000);
  const MODEL: ModelSpec = { input: [784], classes: 10, seed: 3, loss: "softmax_cross_entropy", layers: [{ type: "dense", units: 16 }, { type: "relu" }, { type: "dense", units: 10 }] };
  const ONE = 10n ** 18n;
  const jobId = 1n;
  const ROUNDS = 2n;
  let devnet: Devnet;
  let proxy: RpcProxy;
  let dir: string;
  let dep: Deployment;
  let coord: ReturnType<typeof attach>["coord"];
  let stake: ReturnType<typeof attach>["stake"];
  let wallets: Wallet[];
  let procs: NodeProcesses;
  const faultLines: string[] = [];
  let outageAt: { round: bigint; phase: number } | undefined;

  const phaseOf = async () => {
    const [round, phase] = await coord.getFunction("phaseOf")(jobId);
    return { round: BigInt(round), phase: Number(phase) };
  };
  const nodeConfig = (name: string, role: NodeConfig["role"], w: Wallet, data: NodeConfig["data"]) => {
    const cfg: NodeConfig = {
      role,
      name,
      privateKey: w.privateKey,
      rpc: proxy.url,
      deployment: dep,
      jobId: jobId.toString(),
      dataDir: join(dir, "nodes", name),
      peers: [],
      data,
      ...(role === "worker" ? { train: { epochs: 1, batch: 32, lr: 0.05, momentum: 0.9, threads: 1 } } : { fetchTimeoutMs: 5000 }),
    };
    writeFileSync(join(dir, `${name}.json`), JSON.stringify(cfg));
  };

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), "fedstake-faults-"));
    devnet = await startDevnet();
    procs = new NodeProcesses(dir, devnet.url);
    proxy = await RpcProxy.start({ upstream: devnet.url, seed: 18, log: (l) => faultLines.push(l) });
    const mnemonic = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
    wallets = Array.from({ length: 6 }, (_, i) => HDNodeWallet.fromMnemonic(mnemonic, `m/44'/60'/0'/0/${i}`).connect(devnet.provider) as unknown as Wallet);
    const [admin, sponsor, w0, w1, v0, v1] = wallets as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet];
    dep = await deployProtocol(admin, { unbondingPeriod: 3600 });
    writeFileSync(join(dir, "deployment.json"), JSON.stringify(dep));
    ({ coord, stake } = attach(dep, devnet.provider));
    const { token } = attach(dep, admin);
    await sendTx(admin, token, "mint", [sponsor.address, 1_000n * ONE]);
    await mintAndStake(admin, dep, ([[w0, 100n], [w1, 100n], [v0, 1_000n], [v1, 1_000n]] as const).map(([w, a]) => [w, a * ONE] as const));
    const jobFile = join(dir, "job.json");
    writeFileSync(
      jobFile,
      JSON.stringify({
        model: MODEL,
        aggregation: { kind: "fedavg" },
        validation: { rules: [{ rule: "duplicate" }, { rule: "norm", minRatio: 0, maxRatio: 10 }] },
        job: {
          startIn: 25,
          numRounds: Number(ROUNDS),
          rewardPerRound: "100",
          commitPeriod: 15,
          revealPeriod: 10,
          voteCommitPeriod: 10,
          voteRevealPeriod: 8,
          slashWindow: 120,
          attestPeriod: 20,
          maxUpdates: 8,
          maxSamplesPerUpdate: "1000",
          maxValidators: 4,
          attestBps: 5001,
          minValidatorStake: "100",
          minWorkerStake: "10",
          rejectSlashAmount: "10",
          absenceSlashAmount: "10",
        },
      }),
    );
    procs.cli("sponsor", ["job", "create", "--spec", jobFile, "--ipfs-dir", join(dir, "sponsor-ipfs"), "--serve"], { FEDSTAKE_PRIVATE_KEY: sponsor.privateKey });
    await procs.until("the sponsor's job", async () => /serving/.test(readFileSync(join(dir, "sponsor.out"), "utf8")), 60_000);
    for (const v of [v0, v1]) await sendTx(v, attach(dep, v).coord, "joinCommittee", [jobId]);
    const held = (index: number): NodeConfig["data"] => ({ dataset: "mnist", split: "train", offset: 50_000, limit: 600, partition: { kind: "iid" }, parties: 2, index, seed: 13 });
    const shard = (index: number): NodeConfig["data"] => ({ dataset: "mnist", split: "train", limit: 1200, partition: { kind: "iid" }, parties: 2, index, seed: 11 });
    nodeConfig("validator-0", "validator", v0, held(0));
    nodeConfig("validator-1", "validator", v1, held(1));
    nodeConfig("worker-0", "worker", w0, shard(0));
    nodeConfig("worker-1", "worker", w1, shard(1));
    const names = ["validator-0", "validator-1", "worker-0", "worker-1"];
    for (const name of names) procs.cli(name, [name.split("-")[0]!, join(dir, `${name}.json`)]);
    // Faults once every node is up: a daemon's start-up is not retried (one failed read there ends the
    // process; see the report on issue 18). From then on 10 % of the reads fail — never a broadcast: what
    // that does to sendTx is the matrix above.
    const ready = (name: string) => {
      const f = join(dir, "nodes", name, "events.jsonl");
      return existsSync(f) && readFileSync(f, "utf8").includes('"event":"ready"');
    };
    await procs.until("every node ready", async () => names.every(ready), 90_000);
    proxy.set({ kind: "rpcError", probability: 0.1, methods: ["eth_call", "eth_blockNumber", "eth_getBlockByNumber", "eth_getLogs", "eth_getTransactionReceipt", "eth_estimateGas", "eth_getTransactionCount"] });
    // Down for 3 s once round 1's reveal phase opens (the workers reveal then; 10 s window).
    await procs.until("round 1's reveal phase", async () => {
      const p = await phaseOf();
      return p.round > 1n || p.phase >= Phase.Reveal;
    }, 120_000);
    outageAt = await phaseOf();
    await proxy.down(3);
    await procs.until(`round ${ROUNDS} decided`, async () => {
      const p = await phaseOf();
      return p.round >= ROUNDS && Number((await coord.getFunction("roundResult")(jobId, ROUNDS)).outcome) !== Outcome.Pending;
    }, 200_000);
  });

  after(async function () {
    this.timeout(30_000);
    await procs?.stop();
    await proxy?.stop();
    devnet?.stop();
    // What the nodes made of it: steps that failed and were tried again, retried broadcasts.
    const said = ["validator-0", "validator-1", "worker-0", "worker-1"].map((n) => {
      const f = join(dir, "nodes", n, "events.jsonl");
      const lines = existsSync(f) ? readFileSync(f, "utf8").split("\n") : [];
      return `${n}: ${lines.filter((l) => l.includes('"event":"error"')).length} failed steps, ${lines.filter((l) => l.includes('"event":"retry"')).length} retries`;
    });
    if (faultLines.length) console.log(`      faults fired: ${JSON.stringify(proxy?.stats().fired)}; outage at round ${outageAt?.round} phase ${outageAt?.phase}\n      ${said.join("; ")}`);
    if (dir) await removeTree(dir);
  });

  it("the proxy did fail the nodes: the outage and errors on reads", function () {
    const fired = proxy.stats().fired;
    expect(outageAt, "the outage started in round 1's reveal phase").to.deep.equal({ round: 1n, phase: Phase.Reveal });
    expect(fired.down).to.deep.equal({ "(scheduled)": 1 });
    expect(Object.values(fired.rpcError ?? {}).reduce((a, b) => a + b, 0), JSON.stringify(fired)).to.be.above(5);
  });

  it("every round decided with a quorum", async function () {
    for (let r = 1n; r <= ROUNDS; r++) {
      const res = await coord.getFunction("roundResult")(jobId, r);
      expect(Number(res.outcome), `round ${r}`).to.equal(Outcome.Quorum);
    }
  });

  it("no one was slashed", async function () {
    const slashes = (await coord.queryFilter(coord.filters.SlashApplied!(jobId), 0)) as EventLog[];
    expect(slashes.map((e) => `${e.args.account} round ${e.args.round} reason ${e.args.reason}`)).to.deep.equal([]);
    expect(await stake.queryFilter(stake.filters.Slashed!(), 0)).to.have.length(0);
  });

  it("every node committed once per round: each worker one update, each validator one vote, all revealed", async function () {
    const [, , w0, w1, v0, v1] = wallets as [Wallet, Wallet, Wallet, Wallet, Wallet, Wallet];
    for (let r = 1n; r <= ROUNDS; r++) {
      const updates = ((await coord.queryFilter(coord.filters.UpdateCommitted!(jobId, r), 0)) as EventLog[]).map((e) => e.args.worker as string);
      const votes = ((await coord.queryFilter(coord.filters.VoteCommitted!(jobId, r), 0)) as EventLog[]).map((e) => e.args.validator as string);
      expect(updates.sort(), `round ${r} update commitments`).to.deep.equal([w0.address, w1.address].sort());
      expect(votes.sort(), `round ${r} vote commitments`).to.deep.equal([v0.address, v1.address].sort());
      const revealed = ((await coord.queryFilter(coord.filters.UpdateRevealed!(jobId, r), 0)) as EventLog[]).map((e) => e.args.worker as string);
      expect(revealed.sort(), `round ${r} reveals`).to.deep.equal([w0.address, w1.address].sort());
    }
  });
});
