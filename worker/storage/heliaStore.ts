/**
 * The default artifact store: an embedded Helia node with a file-system blockstore and datastore under
 * a data directory.
 *
 * Network posture (never the `createHelia()` defaults): TCP listening on 127.0.0.1 only, no bootstrap
 * list, no mDNS, no DHT, no delegated or HTTP routing, no HTTP gateways, no UPnP, no autoTLS, no relay.
 * It dials only the multiaddrs it is given (as later published on chain), and a connection gater
 * refuses any non-loopback address unless the operator allows more.
 *
 * Fetching: first `/fedstake/fetch/1.0.0` (fetchProtocol.ts: the whole DAG streamed over one stream,
 * each block verified as it arrives) from connected peers that speak it, then bitswap as the fallback
 * (Helia checks each block's hash against its CID before accepting it). Recent blocks stay in memory
 * (cachedBlockstore.ts), and pins are flushed to disk first.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { noise } from "@chainsafe/libp2p-noise";
import { yamux } from "@chainsafe/libp2p-yamux";
import { withBitswap } from "@helia/bitswap";
import { withLibp2pLight, type HeliaWithLibp2p } from "@helia/libp2p";
import { unixfs, type UnixFS } from "@helia/unixfs";
import { identify } from "@libp2p/identify";
import { tcp } from "@libp2p/tcp";
import { multiaddr, type Multiaddr } from "@multiformats/multiaddr";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { createHeliaLight } from "helia";
import type { CID } from "multiformats/cid";
import { fetchDag, FETCH_PROTOCOL, serveFetch } from "./fetchProtocol.ts";
import { CachedBlockstore } from "./cachedBlockstore.ts";
import { loopbackGater, type GaterOptions } from "./loopbackGater.ts";
import {
  abortedByCaller,
  CHUNK_SIZE,
  collect,
  concatBytes,
  DEFAULT_MAX_BYTES,
  DEFAULT_TIMEOUT_MS,
  fetchSignal,
  IMPORT_PROFILE,
  requireSha256,
  StoreError,
  type ArtifactStore,
  type Dialer,
  type GetOptions,
} from "./store.ts";
import * as dagPb from "@ipld/dag-pb";
import { UnixFS as UnixFSData } from "ipfs-unixfs";
import * as rawCodec from "multiformats/codecs/raw";
import { fixedSize } from "ipfs-unixfs-importer/chunker";

export interface HeliaStoreOptions {
  /** Where blocks, pins and the node's key live; a restart from here keeps its pins and peer id. */
  dataDir: string;
  /** Listen addresses (default one TCP port on 127.0.0.1). */
  listen?: string[];
  /** Peers to dial at start (multiaddrs with /p2p/ peer ids). */
  peers?: string[];
  /** Networks allowed besides loopback. */
  gater?: GaterOptions;
  /** Memory for recent blocks (see TRANSFER_DEFAULTS). */
  transfer?: Partial<typeof TRANSFER_DEFAULTS>;
}

export const TRANSFER_DEFAULTS = {
  /** Recent blocks kept in memory (the newest artifacts are the ones being served). */
  cacheBytes: 256 * 1024 * 1024,
};

/**
 * Reads a file out of blocks already fetched and verified, without touching the disk: UnixFS file
 * content is each node's own data followed by its children's, depth first.
 */
function readFromBlocks(root: CID, blocks: Map<string, Uint8Array>, maxBytes: number): Uint8Array {
  const parts: Uint8Array[] = [];
  let total = 0;
  const visit = (cid: CID) => {
    const block = blocks.get(cid.toString());
    if (!block) throw new StoreError("NOT_FOUND", `block ${cid} of ${root} was not fetched`);
    if (cid.code === rawCodec.code) {
      parts.push(block);
      total += block.length;
    } else {
      const node = dagPb.decode(block);
      const fs = node.Data ? UnixFSData.unmarshal(node.Data) : undefined;
      if (!fs || (fs.type !== "file" && fs.type !== "raw")) throw new StoreError("BAD_CID", `${root} is not a UnixFS file`);
      if (fs.data && fs.data.length > 0) {
        parts.push(fs.data);
        total += fs.data.length;
      }
      for (const link of node.Links) visit(link.Hash);
    }
    if (total > maxBytes) throw new StoreError("TOO_LARGE", `${root} exceeds ${maxBytes} bytes`);
  };
  visit(root);
  return concatBytes(parts, total);
}

export class HeliaStore implements ArtifactStore, Dialer {
  readonly helia: HeliaWithLibp2p<{ identify: ReturnType<ReturnType<typeof identify>> }>;
  private readonly fs: UnixFS;

  private readonly blocks: CachedBlockstore;

  private constructor(helia: HeliaStore["helia"], blocks: CachedBlockstore) {
    this.helia = helia;
    this.blocks = blocks;
    this.fs = unixfs(helia);
  }

  static async create(opts: HeliaStoreOptions): Promise<HeliaStore> {
    const listen = opts.listen ?? ["/ip4/127.0.0.1/tcp/0"];
    const gater = loopbackGater(opts.gater);
    for (const a of listen) {
      const ma = multiaddr(a);
      if (!gater.filterMultiaddrForPeer!(undefined as never, ma)) {
        throw new StoreError("UNAVAILABLE", `refusing to listen on ${a}: outside loopback (configure the gater to allow it)`);
      }
    }
    const transfer = { ...TRANSFER_DEFAULTS, ...opts.transfer };
    await mkdir(join(opts.dataDir, "blocks"), { recursive: true });
    await mkdir(join(opts.dataDir, "data"), { recursive: true });
    const blockstore = new CachedBlockstore(new FsBlockstore(join(opts.dataDir, "blocks")), transfer.cacheBytes);
    const datastore = new FsDatastore(join(opts.dataDir, "data"));
    await blockstore.open();
    await datastore.open();
    const light = createHeliaLight({ blockstore, datastore, routers: [], blockBrokers: [] });
    const withP2p = withLibp2pLight(light, {
      addresses: { listen, announce: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      // yamux's default 256 KiB stream window measured as well as 1-4 MiB windows (bench:ipfs, README).
      streamMuxers: [yamux()],
      connectionGater: gater,
      peerDiscovery: [],
      services: { identify: identify() },
    });
    const helia = withBitswap(withP2p) as HeliaStore["helia"];
    await helia.start();
    await serveFetch(helia.libp2p, helia.blockstore);
    const store = new HeliaStore(helia, blockstore);
    for (const p of opts.peers ?? []) await store.dial(p);
    return store;
  }

  /** The addresses peers can dial this node on (what a node publishes on chain). */
  multiaddrs(): string[] {
    return this.helia.libp2p.getMultiaddrs().map((m) => m.toString());
  }

  /** Dials through libp2p, whose connection gater refuses addresses outside loopback (loopbackGater.ts). */
  async dial(address: string | Multiaddr): Promise<void> {
    await this.helia.libp2p.dial(typeof address === "string" ? multiaddr(address) : address);
  }

  async isConnected(peerId: string): Promise<boolean> {
    return this.helia.libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId);
  }

  async add(bytes: Uint8Array): Promise<CID> {
    const cid = await this.fs.addBytes(bytes, { profile: IMPORT_PROFILE, chunker: fixedSize({ chunkSize: CHUNK_SIZE }) });
    await this.pin(cid);
    return cid;
  }

  async get(cid: CID, options: GetOptions = {}): Promise<Uint8Array> {
    requireSha256(cid);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = fetchSignal(timeoutMs, options.signal);
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    try {
      signal.throwIfAborted();
      if (!(await this.helia.blockstore.has(cid))) {
        const blocks = await this.fetchFromPeers(cid, signal, maxBytes);
        if (blocks) return readFromBlocks(cid, blocks, maxBytes);
      }
      return await collect(this.fs.cat(cid, { signal }), maxBytes, `${cid}`);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const stopped = abortedByCaller(cid, options, e);
      if (stopped) throw stopped;
      if (signal.aborted) throw new StoreError("TIMEOUT", `no peer delivered ${cid} within ${timeoutMs} ms`, { cause: e });
      throw new StoreError("NOT_FOUND", `could not fetch ${cid}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Tries the connected peers that speak the fetch protocol, one at a time. If none succeeds, the
   * caller's `cat` falls back to bitswap over the same connections.
   */
  private async fetchFromPeers(cid: CID, signal: AbortSignal, maxBytes: number): Promise<Map<string, Uint8Array> | undefined> {
    const libp2p = this.helia.libp2p;
    // DAG overhead: dag-pb nodes add well under 1% to the file bytes.
    const cap = Math.ceil(maxBytes * 1.01) + 65536;
    for (const conn of libp2p.getConnections()) {
      if (signal.aborted) return;
      const peer = conn.remotePeer;
      const info = await libp2p.peerStore.get(peer).catch(() => undefined);
      if (!info?.protocols.includes(FETCH_PROTOCOL)) continue;
      try {
        return await fetchDag(libp2p, peer, cid, this.helia.blockstore, { signal, maxBytes: cap });
      } catch (e) {
        if (e instanceof StoreError && e.code === "TOO_LARGE") throw e;
        // Try the next peer; bitswap is the last resort.
      }
    }
    return undefined;
  }

  async pin(cid: CID): Promise<void> {
    await this.blocks.flush(); // a pin must never point at blocks that are not on disk yet
    if (await this.helia.pins.isPinned(cid)) return;
    for await (const _ of this.helia.pins.add(cid)) void _;
  }

  async unpin(cid: CID): Promise<void> {
    if (!(await this.helia.pins.isPinned(cid))) return;
    for await (const _ of this.helia.pins.rm(cid)) void _;
  }

  async listPins(): Promise<CID[]> {
    const out: CID[] = [];
    for await (const p of this.helia.pins.ls()) out.push(p.cid);
    return out;
  }

  async gc(): Promise<void> {
    await this.helia.gc();
  }

  async stop(): Promise<void> {
    await this.blocks.flush();
    await this.helia.stop();
  }
}
