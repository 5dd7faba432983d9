import { expect } from "chai";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { EXIT_UNCAUGHT } from "../../worker/node/daemon.ts";

const DAEMON = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "../../worker/node/daemon.ts")).href;

/** Runs `body` in a fresh Node process after `exitOnUncaught` is installed, with a fake context. */
function run(body: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const src = `
    import { exitOnUncaught } from ${JSON.stringify(DAEMON)};
    exitOnUncaught({ cfg: { name: "node-x" }, log: (event, fields) => console.log(JSON.stringify({ event, ...fields })) });
    ${body}
    setTimeout(() => console.log("still running"), 3000);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", src], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("daemon: an uncaught error ends the process, to be restarted from its state file", function () {
  this.timeout(60_000);

  it("exits non-zero on an uncaught exception, after logging it", async function () {
    const r = await run(`setTimeout(() => { throw new Error("boom in a callback"); }, 10);`);
    expect(r.code).to.equal(EXIT_UNCAUGHT);
    expect(EXIT_UNCAUGHT).to.not.equal(0);
    expect(r.stdout).to.not.include("still running");
    expect(r.stderr).to.include("[node-x] uncaught exception").and.include("boom in a callback");
    expect(JSON.parse(r.stdout.trim().split("\n").at(-1)!)).to.deep.equal({ event: "fatal", kind: "uncaught exception", message: "boom in a callback" });
  });

  it("keeps running when a peer resets a connection (an error of the network stack, not of the node)", async function () {
    const r = await run(`setTimeout(() => { const e = new Error("read ECONNRESET"); e.code = "ECONNRESET"; throw e; }, 10); setTimeout(() => { const e = new Error("stream reset"); e.name = "StreamResetError"; Promise.reject(e); }, 20);`);
    expect(r.code).to.equal(0);
    expect(r.stdout).to.include("still running").and.include('"event":"peer-error"');
  });

  it("exits non-zero on an unhandled rejection, after logging it", async function () {
    const r = await run(`Promise.reject(new Error("nobody awaited this"));`);
    expect(r.code).to.equal(EXIT_UNCAUGHT);
    expect(r.stdout).to.not.include("still running");
    expect(r.stderr).to.include("[node-x] unhandled rejection").and.include("nobody awaited this");
  });
});
