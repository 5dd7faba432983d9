/**
 * One interface for artifact storage, two implementations: an embedded Helia node (HeliaStore, the
 * default) and a Kubo daemon over its RPC API (KuboStore). Both import with the same settings, so an
 * artifact gets the same CID from either. Both are also a node's Dialer (how it reaches the nodes that
 * hold what it fetches); factory.ts makes either from a node config's "storage".
 */
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";

export interface GetOptions {
  /** Give up after this long (default 30 s). */
  timeoutMs?: number;
  /** Refuse content larger than this (default 256 MiB). */
  maxBytes?: number;
  /** The caller's own reason to stop (a round that moved on, a shutdown): the fetch fails with ABORTED. */
  signal?: AbortSignal;
}

export interface ArtifactStore {
  /** Adds and pins bytes; returns their CID. */
  add(bytes: Uint8Array): Promise<CID>;
  /** Fetches the bytes of a CID (locally, else from peers), verified block by block against the CID. */
  get(cid: CID, options?: GetOptions): Promise<Uint8Array>;
  pin(cid: CID): Promise<void>;
  unpin(cid: CID): Promise<void>;
  listPins(): Promise<CID[]>;
  /** Removes blocks no pin references. */
  gc(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * How a node reaches the peers that hold what it fetches, and how they reach it: the multiaddrs nodes
 * publish on chain (worker/node/providers.ts) are dialled through this, never through a store's
 * networking internals. Addresses outside loopback are refused unless the store allows more.
 */
export interface Dialer {
  /** Connects to the peer at a multiaddr (with its /p2p/ peer id). */
  dial(address: string): Promise<void>;
  /** Whether a connection to this peer (its peer id) is open. */
  isConnected(peerId: string): Promise<boolean>;
  /** The addresses peers can dial this node on (what a node publishes on chain). */
  multiaddrs(): string[];
}

/** What a node runs on: a store it fetches and pins through, and the dialer that finds peers for it. */
export type NodeStore = ArtifactStore & Dialer;

/**
 * Import settings shared by both stores (IPIP-499 profile "unixfs-v1-2025"): CIDv1, raw leaves,
 * sha2-256, 1 MiB fixed-size chunks, balanced DAG of up to 1024 links per node.
 */
export const IMPORT_PROFILE = "unixfs-v1-2025" as const;
export const CHUNK_SIZE = 1024 * 1024;
export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

export type StoreErrorCode = "TIMEOUT" | "ABORTED" | "TOO_LARGE" | "BAD_CID" | "NOT_FOUND" | "UNAVAILABLE";

export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }
}

/** The signal a fetch runs under: its deadline or the caller's signal, whichever fires first. */
export function fetchSignal(timeoutMs: number, caller?: AbortSignal): AbortSignal {
  const deadline = AbortSignal.timeout(timeoutMs);
  return caller ? AbortSignal.any([deadline, caller]) : deadline;
}

/** The error for a fetch its caller's signal stopped, or undefined if the caller did not stop it. */
export function abortedByCaller(cid: CID, options: GetOptions, cause: unknown): StoreError | undefined {
  if (!options.signal?.aborted) return undefined;
  return new StoreError("ABORTED", `fetching ${cid} was stopped by the caller`, { cause: options.signal.reason ?? cause });
}

/**
 * Only full sha2-256 CIDs are fetched: an identity or truncated multihash would let a peer choose the
 * bytes, or make the hash check meaningless.
 */
export function requireSha256(cid: CID): void {
  if (cid.multihash.code !== sha256.code || cid.multihash.size !== 32) {
    throw new StoreError("BAD_CID", `${cid} does not use a full sha2-256 multihash (code 0x${cid.multihash.code.toString(16)}, ${cid.multihash.size} bytes)`);
  }
}

/** Collects an async byte stream, aborting past `maxBytes`. */
export async function collect(chunks: AsyncIterable<Uint8Array>, maxBytes: number, what: string): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const c of chunks) {
    total += c.length;
    if (total > maxBytes) throw new StoreError("TOO_LARGE", `${what} exceeds ${maxBytes} bytes`);
    parts.push(c);
  }
  return concatBytes(parts, total);
}

/** Concatenates byte arrays whose total length is known. */
export function concatBytes(parts: Uint8Array[], total = parts.reduce((n, p) => n + p.length, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** The (digest, codec) pair the contracts store for a CID. */
export function cidToChain(cid: CID): { digest: string; codec: number } {
  requireSha256(cid);
  return { digest: "0x" + Buffer.from(cid.multihash.digest).toString("hex"), codec: cid.code };
}

/** Rebuilds a CIDv1 from the (digest, codec) pair stored on chain. */
export async function cidFromChain(digest: string, codec: number): Promise<CID> {
  const bytes = Uint8Array.from(Buffer.from(digest.replace(/^0x/, ""), "hex"));
  if (bytes.length !== 32) throw new StoreError("BAD_CID", `digest must be 32 bytes, got ${bytes.length}`);
  return CID.createV1(codec, createDigest(sha256.code, bytes));
}
