/**
 * The dashboard's HTTP server: the page (worker/dashboard/page/), the chart library from
 * node_modules, and /api/job, the job's snapshot as JSON (snapshot.ts), which the page polls. It
 * listens on 127.0.0.1 only, and the page loads nothing from anywhere else (its Content-Security-Policy
 * allows only this origin).
 */
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
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
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
