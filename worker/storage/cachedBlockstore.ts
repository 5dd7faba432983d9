/**
 * A file-system blockstore with an in-memory LRU of recent blocks and write-behind.
 *
 * Why: a worker serves the update it just added and a validator reads the updates it just fetched,
 * so the hot blocks are the newest; keeping them in memory takes the disk off the transfer path.
 * Writes go to disk in the background; `flush()` waits for them. HeliaStore flushes before it pins,
 * so a pinned artifact is always on disk.
 */
import type { Blockstore, InputPair, Pair } from "interface-blockstore";
import type { FsBlockstore } from "blockstore-fs";
import type { CID } from "multiformats/cid";

type AbortOptions = { signal?: AbortSignal };
type BlockInput = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

async function toBytes(val: BlockInput | Generator<Uint8Array> | AsyncGenerator<Uint8Array>): Promise<Uint8Array> {
  if (val instanceof Uint8Array) return val;
  const parts: Uint8Array[] = [];
  for await (const p of val as AsyncIterable<Uint8Array>) parts.push(p);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

const keyOf = (cid: CID) => Buffer.from(cid.multihash.bytes).toString("base64");

export class CachedBlockstore implements Blockstore {
  private readonly inner: FsBlockstore;
  private readonly maxBytes: number;
  private readonly cache = new Map<string, Uint8Array>();
  private cachedBytes = 0;
  private readonly writes = new Set<Promise<unknown>>();

  constructor(inner: FsBlockstore, maxBytes = 256 * 1024 * 1024) {
    this.inner = inner;
    this.maxBytes = maxBytes;
  }

  async open(): Promise<void> {
    await this.inner.open();
  }

  async close(): Promise<void> {
    await this.flush();
    await this.inner.close();
  }

  /** Waits until every block put so far is on disk. */
  async flush(): Promise<void> {
    while (this.writes.size > 0) await Promise.all([...this.writes]);
  }

  private remember(key: string, bytes: Uint8Array) {
    const old = this.cache.get(key);
    if (old) {
      this.cache.delete(key);
      this.cachedBytes -= old.length;
    }
    if (bytes.length > this.maxBytes) return;
    this.cache.set(key, bytes);
    this.cachedBytes += bytes.length;
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= this.maxBytes) break;
      this.cache.delete(k);
      this.cachedBytes -= v.length;
    }
  }

  async put(cid: CID, val: BlockInput, options?: AbortOptions): Promise<CID> {
    const bytes = await toBytes(val);
    this.remember(keyOf(cid), bytes);
    const w: Promise<unknown> = this.inner.put(cid, bytes, options).finally(() => this.writes.delete(w));
    this.writes.add(w);
    return cid;
  }

  async *putMany(source: Iterable<InputPair> | AsyncIterable<InputPair>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) yield await this.put(cid, bytes, options);
  }

  async *get(cid: CID, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    const key = keyOf(cid);
    const hit = this.cache.get(key);
    if (hit) {
      this.remember(key, hit); // most recently used
      yield hit;
      return;
    }
    const bytes = await toBytes(this.inner.get(cid, options));
    this.remember(key, bytes);
    yield bytes;
  }

  async *getMany(source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const cid of source) yield { cid, bytes: this.get(cid, options) };
  }

  async has(cid: CID, options?: AbortOptions): Promise<boolean> {
    return this.cache.has(keyOf(cid)) || this.inner.has(cid, options);
  }

  async delete(cid: CID, options?: AbortOptions): Promise<void> {
    const key = keyOf(cid);
    const cached = this.cache.get(key);
    if (cached) {
      this.cache.delete(key);
      this.cachedBytes -= cached.length;
    }
    await this.flush(); // a pending write must not resurrect the block
    await this.inner.delete(cid, options);
  }

  async *deleteMany(source: Iterable<CID> | AsyncIterable<CID>, options?: AbortOptions): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid, options);
      yield cid;
    }
  }

  async *getAll(options?: AbortOptions): AsyncGenerator<Pair> {
    await this.flush();
    yield* this.inner.getAll(options);
  }
}
