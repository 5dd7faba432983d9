/**
 * An artifact store in memory, shared by every node of an in-process simulation (the robustness harness,
 * the tests): one map of blocks stands for an IPFS network where every peer can fetch everything. CIDs are
 * CIDv1 raw sha256 of the bytes, as the chain stores them. No networking at all.
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import type { HeliaStore } from "../worker/storage/heliaStore.ts";
import { Codec } from "../worker/chain/protocol.ts";
import { StoreError, type GetOptions } from "../worker/storage/store.ts";

export class MemoryStore {
  private readonly blobs: Map<string, Uint8Array>;

  constructor(shared = new Map<string, Uint8Array>()) {
    this.blobs = shared;
  }

  /** Another node's view of the same network. */
  peer(): MemoryStore {
    return new MemoryStore(this.blobs);
  }

  /** This store where a node context expects its IPFS node (the methods a context calls are all here). */
  asNodeStore(): HeliaStore {
    return this as unknown as HeliaStore;
  }

  async add(bytes: Uint8Array): Promise<CID> {
    const cid = CID.createV1(Codec.raw, await sha256.digest(bytes));
    this.blobs.set(cid.toString(), Uint8Array.from(bytes));
    return cid;
  }

  async get(cid: CID, o: GetOptions = {}): Promise<Uint8Array> {
    const b = this.blobs.get(cid.toString());
    if (!b) throw new StoreError("NOT_FOUND", `${cid} is not in the simulation's store`);
    if (o.maxBytes !== undefined && b.length > o.maxBytes) throw new StoreError("TOO_LARGE", `${cid} is ${b.length} bytes, over the ${o.maxBytes}-byte limit`);
    return b;
  }

  async pin(): Promise<void> {}
  async unpin(): Promise<void> {}
  async listPins(): Promise<CID[]> {
    return [...this.blobs.keys()].map((k) => CID.parse(k));
  }
  async gc(): Promise<void> {}
  async stop(): Promise<void> {}
  async dial(): Promise<void> {}
  multiaddrs(): string[] {
    return [];
  }
}
