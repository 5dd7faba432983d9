import { expect } from "chai";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { createStore } from "../../worker/storage/factory.ts";
import { HeliaStore } from "../../worker/storage/heliaStore.ts";
import { KuboStore } from "../../worker/storage/kuboStore.ts";
import { seededBytes, sha256hex } from "../../worker/storage/heliaPeerProcess.ts";
import { StoreError } from "../../worker/storage/store.ts";
import { startIpfsRpcServer, type RpcServer } from "../helpers/jsIpfsDaemon.ts";

describe("KuboStore (against a real IPFS RPC server)", function () {
  this.timeout(900_000);
  let server: RpcServer;
  let kubo: KuboStore;
  before(async function () {
    server = await startIpfsRpcServer((m) => console.log(`      ${m}`));
    const store = await createStore({ kind: "kubo", url: server.url }, { dataDir: "unused: the daemon keeps its own repository" });
    expect(store).to.be.instanceOf(KuboStore);
    kubo = store as KuboStore;
  });
  after(async () => server?.stop());

  it("adds, fetches, pins, unpins and garbage-collects", async function () {
    const bytes = seededBytes(3_000_000, 21);
    const cid = await kubo.add(bytes);
    expect(sha256hex(await kubo.get(cid))).to.equal(sha256hex(bytes));
    expect((await kubo.listPins()).map(String)).to.include(cid.toString());
    await kubo.unpin(cid);
    await kubo.unpin(cid); // idempotent
    expect((await kubo.listPins()).map(String)).to.not.include(cid.toString());
    await kubo.pin(cid);
    expect((await kubo.listPins()).map(String)).to.include(cid.toString());
    await kubo.unpin(cid);
    await kubo.gc();
  });

  it("gives the same CIDs as HeliaStore for the same bytes", async function () {
    const dir = await mkdtemp(join(tmpdir(), "fedstake-kubo-"));
    const helia = await HeliaStore.create({ dataDir: dir });
    try {
      for (const n of [3, 1_048_576, 2_500_000, 10_000_000]) {
        const bytes = seededBytes(n, n);
        expect((await kubo.add(bytes)).toString(), `${n} bytes`).to.equal((await helia.add(bytes)).toString());
      }
    } finally {
      await helia.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("refuses oversized content, identity CIDs and missing content with typed errors", async function () {
    const cid = await kubo.add(seededBytes(2_000_000, 22));
    await expectCode(kubo.get(cid, { maxBytes: 1_000_000 }), "TOO_LARGE");
    await expectCode(kubo.get(CID.parse("bafkqaaa")), "BAD_CID"); // identity multihash
    // Offline daemon, block nobody has: an error (js-ipfs answers "not found"), or the timeout.
    const err = await kubo.get(CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"), { timeoutMs: 3000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(StoreError);
    expect(["TIMEOUT", "NOT_FOUND"]).to.include((err as StoreError).code);
  });

  it("publishes the daemon's loopback addresses only, and dials only loopback, through the daemon", async function () {
    // The test daemon listens on no swarm address, so it has none to publish; a real Kubo's would be its loopback ones.
    expect(kubo.multiaddrs().every((a) => a.startsWith("/ip4/127.") || a.startsWith("/ip6/::1/"))).to.equal(true);
    const dir = await mkdtemp(join(tmpdir(), "fedstake-kubo-dial-"));
    const helia = await HeliaStore.create({ dataDir: dir });
    try {
      const peer = helia.helia.libp2p.peerId.toString();
      await expectCode(kubo.dial(`/ip4/10.1.2.3/tcp/4001/p2p/${peer}`), "UNAVAILABLE", /refusing to dial .* outside loopback/);
      // Loopback goes to the daemon. The offline js-ipfs daemon has no transport to dial with, and says
      // so; a Kubo daemon (FEDSTAKE_KUBO_API) connects to the Helia node.
      const dialled = kubo.dial(helia.multiaddrs()[0]!);
      if (process.env.FEDSTAKE_KUBO_API) await dialled;
      else await expectCode(dialled, "UNAVAILABLE", /Kubo could not connect to \/ip4\/127\.0\.0\.1\//);
      expect(await kubo.isConnected(peer)).to.equal(Boolean(process.env.FEDSTAKE_KUBO_API));
    } finally {
      await helia.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("stops a fetch when the caller's signal aborts", async function () {
    const cid = await kubo.add(seededBytes(1000, 23));
    await expectCode(kubo.get(cid, { signal: AbortSignal.abort() }), "ABORTED");
  });

  it("refuses to start against an RPC API that does not answer, naming it", async function () {
    await expectCode(KuboStore.open({ url: "http://127.0.0.1:9" }), "UNAVAILABLE", /the Kubo RPC API at http:\/\/127\.0\.0\.1:9 did not answer/);
  });
});

async function expectCode(p: Promise<unknown>, code: string, message?: RegExp) {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).to.be.instanceOf(StoreError);
  expect((err as StoreError).code).to.equal(code);
  if (message) expect((err as StoreError).message).to.match(message);
}
