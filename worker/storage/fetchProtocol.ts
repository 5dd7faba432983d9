/**
 * `/fedstake/fetch/1.0.0`: fetch a whole UnixFS DAG by its root CID over one libp2p stream.
 *
 * Why: bitswap moves an artifact in request/response rounds (want the root, debounce, want the leaves,
 * the provider reads every wanted block, then opens a new stream for one big message), so a 10 MB
 * artifact spends most of its time waiting. Here the provider streams the DAG's blocks in breadth-first
 * order as it reads them, and the fetcher verifies each one as it arrives. Bitswap stays as the fallback
 * for peers that do not speak this protocol.
 *
 * Trust: the fetcher accepts a block only if its CID is the root or a link of a block it already
 * verified, and only if the block's sha2-256 digest equals that CID's digest. A lying provider can
 * stall or stop a transfer, never change its bytes.
 *
 * Wire format (all integers big-endian):
 *   request   u16 cidLength, cid bytes
 *   response  repeated: u8 1, u16 cidLength, cid, u32 blockLength, block
 *             then u8 0 (done) or u8 2, u16 length, UTF-8 message (error)
 */
import { createHash } from "node:crypto";
import * as dagPb from "@ipld/dag-pb";
import type { Libp2p, PeerId, Stream } from "@libp2p/interface";
import type { Blockstore } from "interface-blockstore";
import { CID } from "multiformats/cid";
import { requireSha256, StoreError } from "./store.ts";

export const FETCH_PROTOCOL = "/fedstake/fetch/1.0.0";
const BLOCK = 1;
const DONE = 0;
const ERROR = 2;
const MAX_BLOCK = 4 * 1024 * 1024;
const READ_AHEAD = 4;

type Chunk = Uint8Array | { subarray(): Uint8Array; byteLength: number };

/** Reads exact byte counts from a libp2p stream. */
class StreamReader {
  private readonly it: AsyncIterator<Chunk>;
  private buf: Uint8Array<ArrayBufferLike> = new Uint8Array(0);
  private pos = 0;
  constructor(stream: AsyncIterable<Chunk>) {
    this.it = stream[Symbol.asyncIterator]();
  }
  async bytes(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      if (this.pos >= this.buf.length) {
        const next = await this.it.next();
        if (next.done) throw new StoreError("NOT_FOUND", `stream ended ${n - filled} bytes early`);
        this.buf = next.value instanceof Uint8Array ? next.value : next.value.subarray();
        this.pos = 0;
      }
      const take = Math.min(n - filled, this.buf.length - this.pos);
      out.set(this.buf.subarray(this.pos, this.pos + take), filled);
      this.pos += take;
      filled += take;
    }
    return out;
  }
  async u8() {
    return (await this.bytes(1))[0]!;
  }
  async u16() {
    const b = await this.bytes(2);
    return (b[0]! << 8) | b[1]!;
  }
  async u32() {
    const b = await this.bytes(4);
    return new DataView(b.buffer).getUint32(0, false);
  }
}

async function send(stream: Stream, data: Uint8Array): Promise<void> {
  if (!stream.send(data)) await stream.onDrain();
}

const u16 = (n: number) => Uint8Array.of(n >>> 8, n & 0xff);
const u32 = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, false);
  return b;
};

async function readBlock(blockstore: Blockstore, cid: CID): Promise<Uint8Array> {
  const out = blockstore.get(cid, { offline: true } as never) as unknown;
  if (out instanceof Uint8Array) return out;
  const parts: Uint8Array[] = [];
  for await (const p of out as AsyncIterable<Uint8Array>) parts.push(p);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

/** Serves DAGs from `blockstore` (local blocks only) to peers that ask. */
export async function serveFetch(libp2p: Libp2p, blockstore: Blockstore): Promise<void> {
  await libp2p.handle(FETCH_PROTOCOL, async (stream) => {
    try {
      const r = new StreamReader(stream as AsyncIterable<Chunk>);
      const root = CID.decode(await r.bytes(await r.u16()));
      requireSha256(root);
      // Breadth-first over the DAG, reading up to READ_AHEAD blocks ahead of the one being sent, so
      // disk reads overlap the network.
      const queue: CID[] = [root];
      const reads = new Map<number, Promise<Uint8Array | undefined>>();
      const read = (i: number) => {
        if (i < queue.length && !reads.has(i)) {
          const cid = queue[i]!;
          const p = Promise.resolve(blockstore.has(cid)).then((has: boolean) => (has ? readBlock(blockstore, cid) : undefined));
          // Read ahead: if the peer hangs up first, nobody awaits this read; its failure must not go unhandled.
          p.catch(() => {});
          reads.set(i, p);
        }
      };
      let missing: CID | undefined;
      for (let i = 0; i < queue.length; i++) {
        for (let j = i; j < i + READ_AHEAD; j++) read(j);
        const cid = queue[i]!;
        const block = await reads.get(i)!;
        reads.delete(i);
        if (!block) {
          missing = cid;
          break;
        }
        const c = cid.bytes;
        await send(stream, Uint8Array.of(BLOCK, ...u16(c.length), ...c, ...u32(block.length)));
        await send(stream, block);
        if (cid.code === dagPb.code) for (const link of dagPb.decode(block).Links) queue.push(link.Hash);
      }
      await Promise.allSettled(reads.values());
      if (missing) {
        const msg = new TextEncoder().encode(`block ${missing} is not held here`);
        await send(stream, Uint8Array.of(ERROR, ...u16(msg.length), ...msg));
      } else {
        await send(stream, Uint8Array.of(DONE));
      }
      await stream.close();
    } catch (e) {
      stream.abort(e as Error);
    }
  });
}

export interface FetchOptions {
  signal?: AbortSignal;
  /** Cap on the total block bytes accepted. */
  maxBytes: number;
}

/**
 * Fetches the DAG under `root` from `peer`, verifying every block, stores the blocks, and returns them
 * (keyed by CID string) so the caller can read the file without going back to disk.
 */
export async function fetchDag(
  libp2p: Libp2p,
  peer: PeerId,
  root: CID,
  blockstore: Blockstore,
  opts: FetchOptions,
): Promise<Map<string, Uint8Array>> {
  requireSha256(root);
  const stream = await libp2p.dialProtocol(peer, FETCH_PROTOCOL, { signal: opts.signal });
  const onAbort = () => stream.abort(new Error("fetch aborted"));
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const req = root.bytes;
    await send(stream, Uint8Array.of(...u16(req.length), ...req));
    const r = new StreamReader(stream as AsyncIterable<Chunk>);
    const expected = new Set<string>([root.toString()]);
    let total = 0;
    const pending: Promise<unknown>[] = [];
    const blocks = new Map<string, Uint8Array>();
    for (;;) {
      const type = await r.u8();
      if (type === DONE) break;
      if (type === ERROR) {
        const msg = new TextDecoder().decode(await r.bytes(await r.u16()));
        throw new StoreError("NOT_FOUND", `${peer} could not serve ${root}: ${msg}`);
      }
      if (type !== BLOCK) throw new StoreError("NOT_FOUND", `${peer} sent an unknown frame type ${type}`);
      const cid = CID.decode(await r.bytes(await r.u16()));
      const key = cid.toString();
      if (!expected.has(key)) throw new StoreError("NOT_FOUND", `${peer} sent block ${cid}, which ${root} does not link`);
      const len = await r.u32();
      if (len > MAX_BLOCK) throw new StoreError("TOO_LARGE", `${peer} announced a ${len}-byte block`);
      total += len;
      if (total > opts.maxBytes) throw new StoreError("TOO_LARGE", `${root} exceeds ${opts.maxBytes} bytes`);
      const block = await r.bytes(len);
      requireSha256(cid);
      const digest = createHash("sha256").update(block).digest();
      if (!digest.equals(cid.multihash.digest)) throw new StoreError("NOT_FOUND", `${peer} sent bytes that do not hash to ${cid}`);
      expected.delete(key);
      if (cid.code === dagPb.code) for (const link of dagPb.decode(block).Links) expected.add(link.Hash.toString());
      blocks.set(key, block);
      pending.push(Promise.resolve(blockstore.put(cid, block)));
    }
    if (expected.size > 0) throw new StoreError("NOT_FOUND", `${peer} ended ${root} with ${expected.size} blocks missing`);
    await Promise.all(pending);
    await stream.close();
    return blocks;
  } catch (e) {
    stream.abort(e as Error);
    throw e;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}
