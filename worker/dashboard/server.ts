/**
 * The dashboard's HTTP server: the page (worker/dashboard/page/), the chart library from
 * node_modules, /api/job, the job's snapshot as JSON (snapshot.ts), and /api/events, the same snapshot
 * pushed as server-sent events whenever the chain has a new block (the page follows these; it reads
 * /api/job only when its event stream is down). It listens on 127.0.0.1 only, and the page loads nothing
 * from anywhere else (its Content-Security-Policy allows only this origin).
 */
import { readFileSync } from "node:fs";
import { createServer, type Server, type ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join, resolve } from "node:path";
import { snapshot, type SnapshotSource } from "./snapshot.ts";

const PAGE = resolve(import.meta.dirname, "page");
const CHART = join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.min.js");

const FILES: Record<string, { file: string; type: string }> = {
  "/": { file: join(PAGE, "index.html"), type: "text/html; charset=utf-8" },
  "/app.js": { file: join(PAGE, "app.js"), type: "text/javascript; charset=utf-8" },
  "/style.css": { file: join(PAGE, "style.css"), type: "text/css; charset=utf-8" },
  "/chart.umd.min.js": { file: CHART, type: "text/javascript; charset=utf-8" },
};

const HEADERS = {
  "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; connect-src 'self'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-store",
};

export interface DashboardOptions extends SnapshotSource {
  /** 0 picks a free port. */
  port?: number;
  /** How long a snapshot is served before the chain is read again (ms, default 1000). */
  cacheMs?: number;
  /** How often the event stream looks for a new block (ms, default 500). */
  blockPollMs?: number;
}

export interface Dashboard {
  server: Server;
  url: string;
  close(): Promise<void>;
}

const json = (v: unknown) => JSON.stringify(v, (_, x) => (typeof x === "bigint" ? x.toString() : x));

/** Starts the dashboard for `o.jobId` on 127.0.0.1:`o.port`. */
export async function startDashboard(o: DashboardOptions): Promise<Dashboard> {
  const cacheMs = o.cacheMs ?? 1000;
  let cached: { at: number; body: Promise<string> } | undefined;
  // Concurrent requests share one read of the chain; a failed read is not cached.
  const current = (): Promise<string> => {
    if (cached && Date.now() - cached.at < cacheMs) return cached.body;
    const body = snapshot(o).then(json);
    const entry = { at: Date.now(), body };
    cached = entry;
    body.catch(() => {
      if (cached === entry) cached = undefined;
    });
    return body;
  };
  // Server-sent events: one loop for every open stream, reading the block number and pushing a fresh
  // snapshot when it changed; a comment line every 15 s keeps idle connections open.
  const streams = new Set<ServerResponse>();
  let following = false;
  const follow = async () => {
    if (following) return;
    following = true;
    let last = -1;
    let beat = Date.now();
    while (streams.size > 0) {
      try {
        const block = await o.provider.getBlockNumber();
        if (block !== last) {
          // A new block: read the chain now, not a snapshot cached from the block before.
          cached = undefined;
          const body = await current();
          last = block;
          for (const s of streams) s.write(`data: ${body}\n\n`);
        } else if (Date.now() - beat > 15_000) {
          for (const s of streams) s.write(": still here\n\n");
          beat = Date.now();
        }
      } catch (e) {
        for (const s of streams) s.write(`event: failure\ndata: ${json({ error: (e as Error).message })}\n\n`);
      }
      await new Promise((r) => setTimeout(r, o.blockPollMs ?? 500));
    }
    following = false;
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, HEADERS).end();
      return;
    }
    // DNS rebinding: a web page whose name resolves to 127.0.0.1 could read this one; only loopback names are served.
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    if (host !== "127.0.0.1" && host !== "localhost" && host !== "[::1]") {
      res.writeHead(421, HEADERS).end();
      return;
    }
    if (path === "/api/job") {
      current().then(
        (body) => res.writeHead(200, { ...HEADERS, "Content-Type": "application/json" }).end(body),
        (e: Error) => res.writeHead(502, { ...HEADERS, "Content-Type": "application/json" }).end(json({ error: e.message })),
      );
      return;
    }
    if (path === "/api/events") {
      res.writeHead(200, { ...HEADERS, "Content-Type": "text/event-stream", Connection: "keep-alive" });
      res.write("retry: 2000\n\n");
      streams.add(res);
      req.on("close", () => streams.delete(res));
      void follow();
      return;
    }
    if (path === "/favicon.ico") {
      res.writeHead(204, HEADERS).end();
      return;
    }
    const f = FILES[path === "/index.html" ? "/" : path];
    if (!f) {
      res.writeHead(404, { ...HEADERS, "Content-Type": "text/plain" }).end("not found");
      return;
    }
    try {
      res.writeHead(200, { ...HEADERS, "Content-Type": f.type }).end(readFileSync(f.file));
    } catch (e) {
      res.writeHead(500, { ...HEADERS, "Content-Type": "text/plain" }).end((e as Error).message);
    }
  });
  await new Promise<void>((ok, fail) => {
    server.once("error", fail);
    server.listen(o.port ?? 8080, "127.0.0.1", () => {
      server.off("error", fail);
      ok();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((ok) => {
        for (const s of streams) s.end();
        streams.clear();
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
