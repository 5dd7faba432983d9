/**
 * ArtifactStore and Dialer over a Kubo daemon's RPC API (`kubo-rpc-client`), for operators who run Kubo
 * or a pinning cluster. Imports with the same CID settings as HeliaStore (CIDv1, raw leaves, sha2-256,
 * 1 MiB chunks), so the same artifact gets the same CID from either. (Kubo's default is 174 links per
 * DAG node where the unixfs-v1-2025 profile uses 1024; the two agree for artifacts up to 174 MiB. Set
 * Kubo's Import.UnixFSFileMaxLinks to 1024 to agree beyond.)
 */
import { multiaddr } from "@multiformats/multiaddr";
import { create, type KuboRPCClient } from "kubo-rpc-client";
import type { CID } from "multiformats/cid";
import { allowedAddress } from "./loopbackGater.ts";
import {
  abortedByCaller,
  CHUNK_SIZE,
  collect,
  DEFAULT_MAX_BYTES,
  DEFAULT_TIMEOUT_MS,
  fetchSignal,
  requireSha256,
  StoreError,
  type ArtifactStore,
  type Dialer,
  type GetOptions,
} from "./store.ts";

export interface KuboStoreOptions {
  /** The RPC API URL, e.g. http://127.0.0.1:5001 */
  url: string;
}

/** How long the daemon gets to answer a dialling call (`id` at start, `swarm connect`, `swarm peers`). */
export const KUBO_RPC_TIMEOUT_MS = 10_000;

/**
 * Dialling goes through the daemon (`swarm connect`, `swarm peers`, `id`): its connections are the ones
 * its bitswap fetches over. The daemon's own networking (bootstrap, DHT, Swarm.AddrFilters) is the
 * operator's, but what this node dials, the endpoints other accounts published on chain, passes the same
 * loopback filter as HeliaStore's connection gater first, so a published endpoint cannot steer the
 * daemon into another network; and only the daemon's loopback addresses are published.
 */
export class KuboStore implements ArtifactStore, Dialer {
  private readonly client: KuboRPCClient;
  private readonly addresses: string[];

  private constructor(client: KuboRPCClient, addresses: string[]) {
    this.client = client;
    this.addresses = addresses;
  }

  /**
   * Connects to the daemon and reads its identity: a daemon that is down is found at start rather than
   * at the first fetch, and its addresses (fixed by its config until it restarts) are what
   * `multiaddrs()` returns.
   */
  static async open(opts: KuboStoreOptions): Promise<KuboStore> {
    const client = create({ url: opts.url });
    let id: Awaited<ReturnType<KuboRPCClient["id"]>>;
    try {
      id = await client.id({ signal: AbortSignal.timeout(KUBO_RPC_TIMEOUT_MS) });
    } catch (e) {
      throw new StoreError("UNAVAILABLE", `the Kubo RPC API at ${opts.url} did not answer: ${(e as Error).message}`, { cause: e });
    }
    const peer = id.id.toString();
    const addrs = id.addresses.filter((a) => allowedAddress(a)).map((a) => (a.toString().includes("/p2p/") ? a.toString() : `${a}/p2p/${peer}`));
    return new KuboStore(client, addrs);
  }

  async dial(address: string): Promise<void> {
    const ma = multiaddr(address);
    if (!allowedAddress(ma)) throw new StoreError("UNAVAILABLE", `refusing to dial ${address}: outside loopback`);
    try {
      await this.client.swarm.connect(ma, { signal: AbortSignal.timeout(KUBO_RPC_TIMEOUT_MS) });
    } catch (e) {
      throw new StoreError("UNAVAILABLE", `Kubo could not connect to ${address}: ${(e as Error).message}`, { cause: e });
    }
  }

  async isConnected(peerId: string): Promise<boolean> {
    return (await this.client.swarm.peers({ signal: AbortSignal.timeout(KUBO_RPC_TIMEOUT_MS) })).some((p) => p.peer.toString() === peerId);
  }

  multiaddrs(): string[] {
    return [...this.addresses];
  }

  async add(bytes: Uint8Array): Promise<CID> {
    try {
      const res = await this.client.add(bytes, {
        cidVersion: 1,
        rawLeaves: true,
        hashAlg: "sha2-256",
        chunker: `size-${CHUNK_SIZE}`,
        pin: true,
      });
      return res.cid;
    } catch (e) {
      throw new StoreError("UNAVAILABLE", `Kubo add failed: ${(e as Error).message}`, { cause: e });
    }
  }

  async get(cid: CID, options: GetOptions = {}): Promise<Uint8Array> {
    requireSha256(cid);
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const signal = fetchSignal(timeoutMs, options.signal);
    try {
      signal.throwIfAborted();
      // Kubo verifies blocks against their CIDs as it assembles the file.
      return await collect(this.client.cat(cid, { signal }), options.maxBytes ?? DEFAULT_MAX_BYTES, `${cid}`);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      const stopped = abortedByCaller(cid, options, e);
      if (stopped) throw stopped;
      if (signal.aborted) throw new StoreError("TIMEOUT", `Kubo did not deliver ${cid} within ${timeoutMs} ms`, { cause: e });
      throw new StoreError("NOT_FOUND", `Kubo could not fetch ${cid}: ${(e as Error).message}`, { cause: e });
    }
  }

  async pin(cid: CID): Promise<void> {
    await this.client.pin.add(cid);
  }

  async unpin(cid: CID): Promise<void> {
    try {
      await this.client.pin.rm(cid);
    } catch (e) {
      if (!/not pinned/i.test((e as Error).message)) throw e;
    }
  }

  async listPins(): Promise<CID[]> {
    const out: CID[] = [];
    for await (const p of this.client.pin.ls({ type: "recursive" })) out.push(p.cid);
    return out;
  }

  async gc(): Promise<void> {
    for await (const r of this.client.repo.gc()) {
      if (r.err) throw new StoreError("UNAVAILABLE", `Kubo gc: ${r.err.message}`);
    }
  }

  async stop(): Promise<void> {
    // The daemon is the operator's; nothing to stop here.
  }
}
