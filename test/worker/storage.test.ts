import { expect } from "chai";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { identity } from "multiformats/hashes/identity";
import { createStore } from "../../worker/storage/factory.ts";
import { HeliaStore } from "../../worker/storage/heliaStore.ts";
import { HeliaPeerProcess, seededBytes, sha256hex } from "../../worker/storage/heliaPeerProcess.ts";
import { cidFromChain, cidToChain, StoreError } from "../../worker/storage/store.ts";

const tmp = () => mkdtemp(join(tmpdir(), "fedstake-ipfs-"));

async function expectStoreError(p: Promise<unknown>, code: string): Promise<StoreError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(StoreError);
    expect((e as StoreError).code).to.equal(code);
    return e as StoreError;
  }
  return expect.fail(`expected StoreError ${code}`);
}

describe("HeliaStore", function () {
  this.timeout(120_000);
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const dir = async () => {
    const d = await tmp();
    dirs.push(d);
    return d;
  };

  it("moves a 10 MB artifact between two nodes in two processes, byte for byte", async function () {
    const a = await HeliaPeerProcess.spawn({ dataDir: await dir() });
    const b = await HeliaPeerProcess.spawn({ dataDir: await dir() });
    try {
      const added = await a.call({ cmd: "addRandom", bytes: 10_000_000, seed: 7 });
      expect(added.ok).to.equal(true);
      const { addrs = [] } = await a.call({ cmd: "addrs" });
      expect(addrs.length).to.be.greaterThan(0);
      expect(addrs.every((m) => m.startsWith("/ip4/127.0.0.1/tcp/"))).to.equal(true);
      expect((await b.call({ cmd: "dial", addr: addrs[0]! })).ok).to.equal(true);
      const got = await b.call({ cmd: "get", cid: added.cid!, timeoutMs: 60_000 });
      expect(got.ok, JSON.stringify(got)).to.equal(true);
      expect(got.length).to.equal(10_000_000);
      expect(got.sha256).to.equal(added.sha256);
      expect(got.sha256).to.equal(sha256hex(seededBytes(10_000_000, 7)));
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("fails a fetch nobody can serve within its timeout, with a clear error", async function () {
    const a = await HeliaStore.create({ dataDir: await dir() });
    try {
      const nobody = CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
      const t = Date.now();
      const err = await expectStoreError(a.get(nobody, { timeoutMs: 1500 }), "TIMEOUT");
      expect(err.message).to.match(/no peer delivered .* within 1500 ms/);
      expect(Date.now() - t).to.be.below(1500 + 5000);
    } finally {
      await a.stop();
    }
  });

  it("restarts from its data directory with its pins, blocks and peer id", async function () {
    const d = await dir();
    let a = await HeliaStore.create({ dataDir: d });
    const bytes = seededBytes(3_000_000, 3);
    const cid = await a.add(bytes);
    const peerId = a.helia.libp2p.peerId.toString();
    await a.stop();
    a = await HeliaStore.create({ dataDir: d });
    try {
      expect((await a.listPins()).map(String)).to.include(cid.toString());
      expect(a.helia.libp2p.peerId.toString()).to.equal(peerId);
      expect(sha256hex(await a.get(cid, { timeoutMs: 2000 }))).to.equal(sha256hex(bytes));
    } finally {
      await a.stop();
    }
  });

  it("unpins and garbage-collects, and caps what it fetches", async function () {
    const a = await HeliaStore.create({ dataDir: await dir() });
    try {
      const cid = await a.add(seededBytes(2_500_000, 5));
      await expectStoreError(a.get(cid, { maxBytes: 1_000_000 }), "TOO_LARGE");
      await a.unpin(cid);
      expect(await a.listPins()).to.deep.equal([]);
      await a.gc();
      expect(await a.helia.blockstore.has(cid)).to.equal(false);
      await expectStoreError(a.get(cid, { timeoutMs: 500 }), "TIMEOUT");
    } finally {
      await a.stop();
    }
  });

  it("gives the same bytes the same CID (CIDv1, raw leaves, sha2-256, 1 MiB chunks)", async function () {
    const a = await HeliaStore.create({ dataDir: await dir() });
    const b = await HeliaStore.create({ dataDir: await dir() });
    try {
      const bytes = seededBytes(2_200_000, 9);
      const [x, y] = [await a.add(bytes), await b.add(bytes)];
      expect(x.toString()).to.equal(y.toString());
      expect(x.version).to.equal(1);
      expect(x.code).to.equal(0x70); // dag-pb root over raw leaves
      const small = await a.add(new Uint8Array([1, 2, 3]));
      expect(small.code).to.equal(0x55); // one raw block
      const onChain = cidToChain(x);
      expect((await cidFromChain(onChain.digest, onChain.codec)).toString()).to.equal(x.toString());
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("a lying peer cannot pass bad bytes: corrupted blocks are refused, identity CIDs are not fetched", async function () {
    const dA = await dir();
    const first = await HeliaStore.create({ dataDir: dA });
    const cid = await first.add(seededBytes(100_000, 11)); // one raw block
    await first.stop();
    // Flip bytes of the block on A's disk (A restarts with a cold cache): A now serves content that
    // does not match the CID.
    const files: string[] = [];
    const walk = async (p: string): Promise<void> => {
      for (const e of await readdir(p)) {
        const q = join(p, e);
        if ((await stat(q)).isDirectory()) await walk(q);
        else files.push(q);
      }
    };
    await walk(join(dA, "blocks"));
    let corrupted = 0;
    for (const f of files) {
      const buf = await readFile(f);
      if (buf.length === 100_000) {
        buf[0] = buf[0]! ^ 0xff;
        await writeFile(f, buf);
        corrupted++;
      }
    }
    expect(corrupted).to.equal(1);
    const a = await HeliaStore.create({ dataDir: dA });
    const b = await HeliaStore.create({ dataDir: await dir() });
    try {
      await b.dial(a.multiaddrs()[0]!);
      // Helia hashes every block it receives and drops a mismatch; the fetch then finds no good copy.
      const err = await b.get(cid, { timeoutMs: 3000 }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(StoreError);
      expect(["TIMEOUT", "NOT_FOUND"]).to.include((err as StoreError).code);
      expect(await b.helia.blockstore.has(cid)).to.equal(false);
      const id = CID.createV1(0x55, identity.digest(new Uint8Array([1, 2, 3])));
      await expectStoreError(b.get(id), "BAD_CID");
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("says which peers it is connected to, and stops a fetch when the caller's signal aborts", async function () {
    const a = await HeliaStore.create({ dataDir: await dir() });
    const b = await HeliaStore.create({ dataDir: await dir() });
    try {
      const peer = b.helia.libp2p.peerId.toString();
      expect(await a.isConnected(peer)).to.equal(false);
      await a.dial(b.multiaddrs()[0]!);
      expect(await a.isConnected(peer)).to.equal(true);
      const held = await a.add(seededBytes(1000, 9));
      await expectStoreError(a.get(held, { signal: AbortSignal.abort() }), "ABORTED");
      // Content nobody has: the caller's signal ends the wait long before the timeout would.
      const nobody = CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
      const t0 = Date.now();
      const err = await expectStoreError(a.get(nobody, { timeoutMs: 60_000, signal: AbortSignal.timeout(300) }), "ABORTED");
      expect(Date.now() - t0).to.be.lessThan(10_000);
      expect(err.message).to.match(/stopped by the caller/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it("listens and dials on loopback only unless configured otherwise", async function () {
    let thrown: unknown;
    try {
      await HeliaStore.create({ dataDir: await dir(), listen: ["/ip4/0.0.0.0/tcp/0"] });
    } catch (e) {
      thrown = e;
    }
    expect(String(thrown)).to.match(/refusing to listen on \/ip4\/0.0.0.0/);
    const a = await HeliaStore.create({ dataDir: await dir() });
    const b = await HeliaStore.create({ dataDir: await dir() });
    try {
      const peer = b.helia.libp2p.peerId.toString();
      let dialErr: unknown;
      try {
        await a.dial(`/ip4/10.1.2.3/tcp/4001/p2p/${peer}`);
      } catch (e) {
        dialErr = e;
      }
      expect(String(dialErr)).to.match(/denied|gater/i);
      expect(a.helia.libp2p.getConnections().length).to.equal(0);
      await a.dial(b.multiaddrs()[0]!); // loopback is fine
      expect(a.helia.libp2p.getConnections().length).to.equal(1);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});

describe("createStore (a node config's storage)", function () {
  this.timeout(120_000);

  it("is an embedded Helia node by default, on loopback, with its repository where the node keeps it", async function () {
    const d = await tmp();
    const store = await createStore(undefined, { dataDir: join(d, "ipfs") });
    try {
      expect(store).to.be.instanceOf(HeliaStore);
      expect(store.multiaddrs().length).to.be.greaterThan(0);
      expect(store.multiaddrs().every((m) => m.startsWith("/ip4/127.0.0.1/tcp/"))).to.equal(true);
      expect(await readdir(join(d, "ipfs"))).to.include.members(["blocks", "data"]);
    } finally {
      await store.stop();
      await rm(d, { recursive: true, force: true });
    }
  });
});

describe("loopback connection gater", function () {
  it("allows loopback, refuses other addresses and DNS unless configured", async function () {
    const { multiaddr } = await import("@multiformats/multiaddr");
    const { allowedAddress } = await import("../../worker/storage/loopbackGater.ts");
    expect(allowedAddress(multiaddr("/ip4/127.0.0.1/tcp/4001"))).to.equal(true);
    expect(allowedAddress(multiaddr("/ip4/127.8.9.1/tcp/4001"))).to.equal(true);
    expect(allowedAddress(multiaddr("/ip6/::1/tcp/4001"))).to.equal(true);
    expect(allowedAddress(multiaddr("/ip4/192.168.1.5/tcp/4001"))).to.equal(false);
    expect(allowedAddress(multiaddr("/ip4/8.8.8.8/tcp/4001"))).to.equal(false);
    expect(allowedAddress(multiaddr("/dns4/localhost/tcp/4001"))).to.equal(false);
    expect(allowedAddress(multiaddr("/ip4/10.0.0.7/tcp/4001"), { allowPrefixes: ["10.0.0."] })).to.equal(true);
    expect(allowedAddress(multiaddr("/ip4/8.8.8.8/tcp/4001"), { allowAll: true })).to.equal(true);
  });
});
