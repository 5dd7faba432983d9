/**
 * Chain-endpoint faults (issue 18): a loopback HTTP JSON-RPC proxy put between a node and the local chain,
 * that delays, drops, answers with errors or `nonce too low`, cuts connections mid-response, or goes down
 * for a while, per request, under a seeded PRNG, switchable at runtime. One proxy per node faults that node
 * only; one proxy shared by all faults them all.
 *
 * Loopback only, both ways: it listens on 127.0.0.1 and forwards only to a 127.0.0.1 / localhost / [::1]
 * upstream, so that a test can never aim a fault (or a signed transaction) at a real endpoint.
 *
 *   const proxy = await RpcProxy.start({ upstream: devnet.url, seed: 7 });
 *   proxy.set({ kind: "nonceTooLow", forward: true, probability: 0.5 });
 *   ... new JsonRpcProvider(proxy.url) ...
 *   proxy.stats().fired.nonceTooLow?.eth_sendRawTransaction;
 *   await proxy.stop();
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { prng } from "../../worker/util/prng.ts";

/** Which requests a fault applies to. */
export interface FaultFilter {
  /** JSON-RPC method names it applies to (default: every method). */
  methods?: readonly string[];
  /** Chance that it fires on a matching request, drawn from the proxy's seeded PRNG (default 1). */
  probability?: number;
  /** Fires at most this many times, then is inert (default: no limit). "Fail the first two broadcasts". */
  times?: number;
}

/**
 * One fault. `forward: true` means the request reaches the chain first and only the answer is faulted:
 * the chain acted (a transaction was accepted) but the client is told otherwise — the worst case for a client.
 */
export type Fault = FaultFilter &
  (
    | { kind: "latency"; ms: number; jitterMs?: number }
    /** Closes the socket without an answer (the client sees "socket hang up"). */
    | { kind: "drop"; forward?: boolean }
    /** A JSON-RPC error object in place of the call's result (default -32000 "header not found", as a lagging geth answers). */
    | { kind: "rpcError"; code?: number; message?: string; forward?: boolean }
    /** An HTTP error status for the whole HTTP request (503 from a load balancer, 429 from a rate limiter). */
    | { kind: "httpStatus"; status: number; forward?: boolean }
    /** `eth_sendRawTransaction` only: answered "nonce too low" / "replacement transaction underpriced". */
    | { kind: "nonceTooLow" | "underpriced"; forward: boolean }
    /** Forwards, then sends half of the answer's body (with the full Content-Length) and destroys the socket. */
    | { kind: "cut" }
    /** Refuses connections for `seconds`: the listener is closed (open connections destroyed) and reopened on the same port. */
    | { kind: "down"; seconds: number }
  );
export type FaultKind = Fault["kind"];

export interface RpcProxyOptions {
  /** The chain's URL: http://127.0.0.1:PORT (or localhost / [::1]); anything else is refused. */
  upstream: string;
  /** Seed of the PRNG that decides which requests a probabilistic fault hits (default 1). */
  seed?: number;
  /** Port to listen on, on 127.0.0.1 (default 0: one the OS picks). Kept across `down`. */
  port?: number;
  /** Called with one line per fault fired (e.g. console.log), for a run's log. */
  log?: (line: string) => void;
  /** Called for every JSON-RPC call received, with whether it reached the chain (tests record the raw transactions sent). */
  observe?: (call: { method: string; params: unknown }, forwarded: boolean) => void;
  /** Faults active from the start. */
  faults?: Fault | readonly Fault[];
}

export interface RpcProxyStats {
  /** HTTP requests received (a batch is one). */
  requests: number;
  /** JSON-RPC calls received (a batch of 3 is three). */
  calls: number;
  /** Faults fired, by kind then by the JSON-RPC method of each call it hit. */
  fired: Partial<Record<FaultKind, Record<string, number>>>;
  /** Sum of `fired`. */
  total: number;
}

interface Call {
  jsonrpc?: string;
  id?: unknown;
  method?: unknown;
  params?: unknown;
}

/** Faults that answer one call of a batch; the others fault the whole HTTP request. */
const PER_CALL = new Set<FaultKind>(["rpcError", "nonceTooLow", "underpriced"]);
const SEND_RAW = "eth_sendRawTransaction";
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
/** What geth answers (clients match these strings: ethers maps them to NONCE_EXPIRED / REPLACEMENT_UNDERPRICED). */
const MESSAGES = { nonceTooLow: "nonce too low", underpriced: "replacement transaction underpriced" } as const;

/** Throws unless `url` is a plain-HTTP loopback URL: faults are for the local chain only. */
export function assertLoopbackUpstream(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`rpc proxy: upstream ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== "http:" || !LOOPBACK.has(u.hostname)) throw new Error(`rpc proxy: refusing upstream ${url}: only http://127.0.0.1:PORT (loopback) is allowed`);
  return u;
}

export class RpcProxy {
  private readonly upstream: URL;
  private readonly rand: () => number;
  private readonly opts: RpcProxyOptions;
  /** Keep-alive to the chain: a fresh TCP connection per call would cost more than the faults being measured. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });
  private faults: { fault: Fault; left: number }[] = [];
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private downUntil = 0;
  private reopen?: { timer: NodeJS.Timeout | undefined; done: Promise<void>; resolve: () => void };
  private stopped = false;
  private readonly counters: RpcProxyStats = { requests: 0, calls: 0, fired: {}, total: 0 };

  private constructor(opts: RpcProxyOptions) {
    this.opts = opts;
    this.upstream = assertLoopbackUpstream(opts.upstream);
    this.rand = prng(opts.seed ?? 1);
    if (opts.faults) this.set(opts.faults);
  }

  static async start(opts: RpcProxyOptions): Promise<RpcProxy> {
    const p = new RpcProxy(opts);
    await p.listen(opts.port ?? 0);
    return p;
  }

  /** http://127.0.0.1:PORT — the same for the proxy's whole life, through outages. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Whether the proxy is refusing connections now (a `down` fault or `down()`). */
  get isDown(): boolean {
    return this.server === undefined && !this.stopped;
  }

  /** Replaces the active faults (a list: e.g. latency on every call and errors on some). */
  set(faults: Fault | readonly Fault[]): void {
    const list = (Array.isArray(faults) ? faults : [faults]) as readonly Fault[];
    for (const f of list) {
      const p = f.probability ?? 1;
      if (!(p >= 0 && p <= 1)) throw new Error(`rpc proxy: probability must be in [0, 1], got ${p}`);
    }
    this.faults = list.map((fault) => ({ fault, left: fault.times ?? Infinity }));
  }

  /** No faults from now on (an outage in progress still ends on time). */
  clear(): void {
    this.faults = [];
  }

  /** A copy of the counters. */
  stats(): RpcProxyStats {
    return structuredClone(this.counters);
  }

  /**
   * Refuses connections for `seconds` (closes the listener, destroys open connections, reopens on the same
   * port). Resolves once it listens again. Called during an outage, it extends it.
   */
  async down(seconds: number): Promise<void> {
    if (this.stopped) return;
    // Counted as fired on no method: a schedule's outage, not one a request triggered.
    const byMethod = (this.counters.fired.down ??= {});
    byMethod["(scheduled)"] = (byMethod["(scheduled)"] ?? 0) + 1;
    this.counters.total++;
    this.opts.log?.(`rpc proxy ${this.url}: fault down (${seconds} s, scheduled)`);
    return this.goDown(seconds);
  }

  private async goDown(seconds: number): Promise<void> {
    if (this.stopped) return;
    this.downUntil = Math.max(this.downUntil, Date.now() + seconds * 1000);
    if (!this.reopen) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      this.reopen = { timer: undefined, done, resolve };
      await this.close();
      this.scheduleReopen();
    } else this.scheduleReopen();
    return this.reopen?.done;
  }

  /** Closes the listener and every connection; the proxy cannot be used again. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reopen) {
      clearTimeout(this.reopen.timer);
      this.reopen.resolve();
      this.reopen = undefined;
    }
    await this.close();
    this.agent.destroy();
  }

  private scheduleReopen(): void {
    const r = this.reopen!;
    // One timer per outage: a second `down` during the first (or during its close) moves the end, nothing more.
    clearTimeout(r.timer);
    r.timer = setTimeout(() => {
      if (this.stopped) return;
      this.listen(this.port).then(
        () => {
          this.reopen = undefined;
          this.opts.log?.(`rpc proxy ${this.url}: up again`);
          r.resolve();
        },
        // The port was taken while we were down (another process): retry shortly, the URL must not change.
        () => {
          this.downUntil = Date.now() + 200;
          this.scheduleReopen();
        },
      );
    }, Math.max(0, this.downUntil - Date.now()));
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((req, res) => void this.handle(req, res).catch(() => res.socket?.destroy()));
      server.on("connection", (s) => {
        this.sockets.add(s);
        s.once("close", () => this.sockets.delete(s));
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        this.server = server;
        this.port = (server.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    return server ? new Promise((r) => server.close(() => r())) : Promise.resolve();
  }

  /** Whether `f` fires for `method` now: filter, then one PRNG draw (so a seed gives the same schedule), then its budget. */
  private fires(f: { fault: Fault; left: number }, methods: string[]): boolean {
    if (f.left <= 0) return false;
    const { fault } = f;
    const matching = fault.kind === "nonceTooLow" || fault.kind === "underpriced" ? methods.filter((m) => m === SEND_RAW) : methods;
    if (!matching.some((m) => !fault.methods || fault.methods.includes(m))) return false;
    if (this.rand() >= (fault.probability ?? 1)) return false;
    f.left--;
    return true;
  }

  private count(fault: Fault, methods: string[], detail = ""): void {
    const byMethod = (this.counters.fired[fault.kind] ??= {});
    const hit = methods.filter((m) => !fault.methods || fault.methods.includes(m));
    for (const m of hit) byMethod[m] = (byMethod[m] ?? 0) + 1;
    this.counters.total += hit.length;
    this.opts.log?.(`rpc proxy ${this.url}: fault ${fault.kind}${detail} on ${hit.join(",")}`);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    this.counters.requests++;
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      parsed = undefined;
    }
    const isBatch = Array.isArray(parsed);
    const calls: Call[] = isBatch ? (parsed as Call[]) : parsed && typeof parsed === "object" ? [parsed as Call] : [];
    const methods = calls.map((c) => String(c.method));
    this.counters.calls += calls.length;

    // Decide every fault up front, in list order, so that a seed gives the same decisions whatever the timing.
    const whole = new Map<FaultKind, Fault>();
    const perCall: (Fault | undefined)[] = calls.map(() => undefined);
    for (const f of this.faults) {
      if (PER_CALL.has(f.fault.kind)) {
        calls.forEach((_, i) => {
          if (!perCall[i] && this.fires(f, [methods[i]!])) {
            perCall[i] = f.fault;
            this.count(f.fault, [methods[i]!]);
          }
        });
      } else if (calls.length && !whole.has(f.fault.kind) && this.fires(f, methods)) {
        whole.set(f.fault.kind, f.fault);
      }
    }
    const fault = <K extends FaultKind>(k: K) => whole.get(k) as Extract<Fault, { kind: K }> | undefined;

    const down = fault("down");
    if (down) {
      this.count(down, methods, ` (${down.seconds} s)`);
      calls.forEach((c) => this.opts.observe?.({ method: String(c.method), params: c.params }, false));
      res.socket?.destroy();
      void this.goDown(down.seconds);
      return;
    }
    const latency = fault("latency");
    if (latency) {
      const ms = latency.ms + (latency.jitterMs ? Math.floor(this.rand() * latency.jitterMs) : 0);
      this.count(latency, methods, ` (${ms} ms)`);
      await sleep(ms);
    }
    const drop = fault("drop");
    const status = fault("httpStatus");
    if (drop && !drop.forward) return this.refuse(calls, () => (this.count(drop, methods), res.socket?.destroy()));
    if (status && !status.forward) return this.refuse(calls, () => (this.count(status, methods, ` (${status.status})`), plain(res, status.status)));

    // Forward what no fault answers without forwarding: the whole body when nothing is answered here.
    const forwardIdx = calls.map((_, i) => i).filter((i) => !perCall[i] || (perCall[i] as { forward?: boolean }).forward);
    calls.forEach((c, i) => this.opts.observe?.({ method: String(c.method), params: c.params }, forwardIdx.includes(i) || !calls.length));
    let upstream: { status: number; body: Buffer } | undefined;
    if (!calls.length || forwardIdx.length) {
      const out = !calls.length || forwardIdx.length === calls.length ? body : Buffer.from(JSON.stringify(isBatch ? forwardIdx.map((i) => calls[i]) : calls[0]));
      try {
        upstream = await this.forward(req, out);
      } catch (e) {
        // The chain itself is unreachable: say so the way a gateway does.
        plain(res, 502, `upstream ${this.upstream.origin}: ${(e as Error).message}`);
        return;
      }
    }
    let answer: Buffer;
    let code = upstream?.status ?? 200;
    if (!perCall.some(Boolean)) answer = upstream!.body;
    else {
      const fromUpstream = new Map<string, unknown>();
      if (upstream) {
        try {
          const r = JSON.parse(upstream.body.toString("utf8")) as unknown;
          for (const x of Array.isArray(r) ? r : [r]) fromUpstream.set(JSON.stringify((x as Call).id), x);
        } catch {
          // Not JSON: the forwarded calls get no answer from it; they are answered as a gateway error below.
        }
      }
      code = 200;
      const answers = calls.map((c, i) => {
        const f = perCall[i];
        if (f) return { jsonrpc: "2.0", id: c.id, error: errorOf(f) };
        return fromUpstream.get(JSON.stringify(c.id)) ?? { jsonrpc: "2.0", id: c.id, error: { code: -32603, message: "rpc proxy: no answer from upstream" } };
      });
      answer = Buffer.from(JSON.stringify(isBatch ? answers : answers[0]));
    }

    if (drop) return (this.count(drop, methods, " (after forwarding)"), void res.socket?.destroy());
    if (status) return (this.count(status, methods, ` (${status.status}, after forwarding)`), plain(res, status.status));
    const cut = fault("cut");
    if (cut) {
      this.count(cut, methods);
      res.writeHead(code, { "content-type": "application/json", "content-length": answer.length });
      // Half the body, flushed, then the connection dies: the client has a response it cannot finish.
      res.write(answer.subarray(0, Math.floor(answer.length / 2)), () => res.socket?.destroy());
      return;
    }
    res.writeHead(code, { "content-type": "application/json", "content-length": answer.length });
    res.end(answer);
  }

  private refuse(calls: Call[], act: () => void): void {
    calls.forEach((c) => this.opts.observe?.({ method: String(c.method), params: c.params }, false));
    act();
  }

  private forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const up = httpRequest(
        {
          host: this.upstream.hostname.replace(/^\[|\]$/g, ""),
          port: this.upstream.port || 80,
          path: this.upstream.pathname + this.upstream.search,
          method: req.method ?? "POST",
          headers: { "content-type": req.headers["content-type"] ?? "application/json", "content-length": body.length },
          agent: this.agent,
        },
        (r) => readBody(r).then((b) => resolve({ status: r.statusCode ?? 502, body: b }), reject),
      );
      up.once("error", reject);
      up.end(body);
    });
  }
}

function errorOf(f: Fault): { code: number; message: string } {
  if (f.kind === "rpcError") return { code: f.code ?? -32000, message: f.message ?? "header not found" };
  if (f.kind === "nonceTooLow" || f.kind === "underpriced") return { code: -32000, message: MESSAGES[f.kind] };
  throw new Error(`rpc proxy: ${f.kind} is not a per-call fault`);
}

function plain(res: ServerResponse, status: number, text = `rpc proxy: injected HTTP ${status}`): void {
  res.writeHead(status, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readBody(s: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("end", () => resolve(Buffer.concat(chunks)));
    s.once("error", reject);
    s.once("aborted", () => reject(new Error("aborted")));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
