/**
 * ArtifactStore over a Kubo daemon's RPC API (`kubo-rpc-client`), for operators who run Kubo or a pinning
 * cluster. Imports with the same CID settings as HeliaStore (CIDv1, raw leaves, sha2-256, 1 MiB chunks),
 * so the same artifact gets the same CID from either. (Kubo's default is 174 links per DAG node where
 * the unixfs-v1-2025 profile uses 1024; the two agree for artifacts up to 174 MiB. Set Kubo's
 * Import.UnixFSFileMaxLinks to 1024 to agree beyond.)
 */
import { create, type KuboRPCClient } from "kubo-rpc-client";
import type { CID } from "multiformats/cid";
import { CHUNK_SIZE, collect, DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT_MS, requireSha256, StoreError, type ArtifactStore, type GetOptions } from "./store.ts";

export interface KuboStoreOptions {
  /** The RPC API URL, e.g. http://127.0.0.1:5001 */
  url: string;
}

export class KuboStore implements ArtifactStore {
  private readonly client: KuboRPCClient;

  constructor(opts: KuboStoreOptions) {
    this.client = create({ url: opts.url });
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
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      // Kubo verifies blocks against their CIDs as it assembles the file.
      return await collect(this.client.cat(cid, { signal }), options.maxBytes ?? DEFAULT_MAX_BYTES, `${cid}`);
    } catch (e) {
      if (e instanceof StoreError) throw e;
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
