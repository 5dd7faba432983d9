/**
 * The store a node runs on, from its config's "storage": its own embedded Helia node (the default), or
 * a Kubo daemon the operator runs. Either is the node's ArtifactStore and its Dialer.
 */
import { HeliaStore } from "./heliaStore.ts";
import { KuboStore } from "./kuboStore.ts";
import type { NodeStore } from "./store.ts";

export type StorageConfig =
  /** An embedded Helia node with the loopback-only network posture of heliaStore.ts. */
  | { kind: "helia" }
  /** A Kubo daemon's RPC API, e.g. http://127.0.0.1:5001 (its repository and peers are the daemon's). */
  | { kind: "kubo"; url: string };

export interface StoreSite {
  /** The embedded node's repository (blocks, pins, peer key); a Kubo daemon keeps its own. */
  dataDir: string;
}

export async function createStore(storage: StorageConfig = { kind: "helia" }, site: StoreSite): Promise<NodeStore> {
  switch (storage.kind) {
    case "helia":
      return HeliaStore.create({ dataDir: site.dataDir });
    case "kubo":
      return KuboStore.open({ url: storage.url });
  }
}
