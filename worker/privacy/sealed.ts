/**
 * Update artifacts sealed to the round's committee (issue 19 §2): whoever learns a CID from the chain
 * can fetch its bytes, so a job whose spec says `"encryption": { "updates": "committee" }` has every
 * worker encrypt its update so that only the committee's validators can read it. One random content
 * key per update, AES-256-GCM over the artifact; the content key wrapped for each member with HPKE
 * (RFC 9180, base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM; the `@hpke/core`
 * library, not our own construction). The CID on chain is the sealed bytes', so the commitment binds
 * exactly what is on IPFS.
 *
 * Layout: "FSSEAL1\n" | u32 big-endian header length | header (JSON) | ciphertext ‖ 16-byte tag.
 * The header lists every recipient `{ address, enc, key }` (the HPKE encapsulation and the wrapped
 * content key, hex) and the content nonce; the content AEAD authenticates the magic, the length and the
 * header, so nobody can add, drop or swap a recipient's slot without the open failing; each wrap
 * authenticates its recipient's address.
 *
 * A member's HPKE key pair is derived from its staking key (HKDF-SHA256 with a label of its own, then
 * RFC 9180 DeriveKeyPair): it lives wherever the staking key does (an encrypted keystore in the data
 * directory, or the operator's secret store), a restarted validator reads the updates sealed to it, and
 * there is no second secret to lose. Its public key is published in the endpoint registry, in a
 * transaction signed by the staking key (worker/node/providers.ts: `endpointText`).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, type webcrypto } from "node:crypto";
import { Aes256Gcm, CipherSuite, DhkemX25519HkdfSha256, HkdfSha256 } from "@hpke/core";

const MAGIC = new TextEncoder().encode("FSSEAL1\n");
const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(), kdf: new HkdfSha256(), aead: new Aes256Gcm() });

/** Why sealed bytes cannot be opened by this reader. */
export type SealErrorCode = "malformed" | "no-slot" | "authentication";

export class SealError extends Error {
  override readonly name = "SealError";
  readonly code: SealErrorCode;
  constructor(code: SealErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** A member's HPKE keys: the public key as published (32 bytes), the pair as the library uses it. */
export interface SealKeys {
  publicKey: Uint8Array;
  keyPair: webcrypto.CryptoKeyPair;
}

/** The HPKE key pair of the account whose staking key (32 bytes, 0x-hex) is given; the same every time. */
export async function sealKeysOf(stakingKeyHex: string): Promise<SealKeys> {
  const ikm = new Uint8Array(hkdfSync("sha256", Buffer.from(stakingKeyHex.replace(/^0x/, ""), "hex"), "fedstake", "fedstake update sealing: hpke x25519 v1", 32));
  const keyPair = await suite.kem.deriveKeyPair(ikm);
  return { publicKey: new Uint8Array(await suite.kem.serializePublicKey(keyPair.publicKey)), keyPair };
}

interface Slot {
  address: string;
  enc: string;
  key: string;
}
interface Header {
  v: 1;
  nonce: string;
  recipients: Slot[];
}

const hex = (b: ArrayBuffer | Uint8Array) => Buffer.from(b instanceof Uint8Array ? b : new Uint8Array(b)).toString("hex");
const label = (address: string) => new TextEncoder().encode(`fedstake content key for ${address.toLowerCase()}`);

/** Whether `bytes` are a sealed artifact (by its magic), rather than a plain one. */
export function isSealed(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/** Seals `plain` so that only `recipients` (address and published public key) can open it. */
export async function seal(plain: Uint8Array, recipients: readonly { address: string; publicKey: Uint8Array }[]): Promise<Uint8Array> {
  if (recipients.length === 0) throw new RangeError("sealing needs at least one recipient");
  const contentKey = randomBytes(32);
  const nonce = randomBytes(12);
  const slots: Slot[] = [];
  for (const r of recipients) {
    const pk = await suite.kem.deserializePublicKey(r.publicKey);
    const { ct, enc } = await suite.seal({ recipientPublicKey: pk }, contentKey, label(r.address));
    slots.push({ address: r.address.toLowerCase(), enc: hex(enc), key: hex(ct) });
  }
  const header = new TextEncoder().encode(JSON.stringify({ v: 1, nonce: nonce.toString("hex"), recipients: slots } satisfies Header));
  const prefix = new Uint8Array(MAGIC.length + 4 + header.length);
  prefix.set(MAGIC, 0);
  new DataView(prefix.buffer).setUint32(MAGIC.length, header.length);
  prefix.set(header, MAGIC.length + 4);
  const cipher = createCipheriv("aes-256-gcm", contentKey, nonce);
  cipher.setAAD(prefix);
  const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix, 0);
  out.set(body, prefix.length);
  return out;
}

/** The header of sealed bytes, checked for shape. */
function parse(bytes: Uint8Array): { header: Header; prefix: Uint8Array; body: Uint8Array } {
  if (!isSealed(bytes)) throw new SealError("malformed", "not a sealed artifact (no FSSEAL1 magic)");
  if (bytes.length < MAGIC.length + 4) throw new SealError("malformed", "sealed artifact: truncated before its header length");
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(MAGIC.length);
  const start = MAGIC.length + 4;
  if (bytes.length < start + len + 16) throw new SealError("malformed", `sealed artifact: ${bytes.length} bytes cannot hold a ${len}-byte header and a tag`);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(start, start + len))) as Header;
  } catch (e) {
    throw new SealError("malformed", `sealed artifact: its header is not JSON (${(e as Error).message})`);
  }
  const slotOk = (s: Slot) => typeof s?.address === "string" && /^0x[0-9a-f]{40}$/.test(s.address) && typeof s.enc === "string" && /^[0-9a-f]+$/.test(s.enc) && typeof s.key === "string" && /^[0-9a-f]+$/.test(s.key);
  if (header?.v !== 1 || typeof header.nonce !== "string" || !/^[0-9a-f]{24}$/.test(header.nonce) || !Array.isArray(header.recipients) || !header.recipients.every(slotOk)) {
    throw new SealError("malformed", "sealed artifact: its header is not { v: 1, nonce, recipients: [{ address, enc, key }] }");
  }
  return { header, prefix: bytes.subarray(0, start + len), body: bytes.subarray(start + len) };
}

/** The addresses sealed bytes name as recipients (lower-case), without opening them. */
export function recipientsOf(bytes: Uint8Array): string[] {
  return parse(bytes).header.recipients.map((s) => s.address);
}

/**
 * Opens sealed bytes as `me` (its address and keys). Throws a SealError that says why it cannot:
 * `malformed`, `no-slot` (not sealed to this address), `authentication` (a slot or the body was
 * altered, or the slot was not made for this key).
 */
export async function unseal(bytes: Uint8Array, me: { address: string; keys: SealKeys }): Promise<Uint8Array> {
  const { header, prefix, body } = parse(bytes);
  const address = me.address.toLowerCase();
  const slot = header.recipients.find((s) => s.address === address);
  if (!slot) throw new SealError("no-slot", `sealed to ${header.recipients.length} other account${header.recipients.length === 1 ? "" : "s"}, not to ${me.address}`);
  let contentKey: Uint8Array;
  try {
    contentKey = new Uint8Array(await suite.open({ recipientKey: me.keys.keyPair, enc: Buffer.from(slot.enc, "hex") }, Buffer.from(slot.key, "hex"), label(address)));
  } catch {
    throw new SealError("authentication", `the content key sealed to ${me.address} fails authentication (altered, or sealed to another key)`);
  }
  if (contentKey.length !== 32) throw new SealError("malformed", `the content key sealed to ${me.address} is ${contentKey.length} bytes, not 32`);
  try {
    const decipher = createDecipheriv("aes-256-gcm", contentKey, Buffer.from(header.nonce, "hex"));
    decipher.setAAD(prefix);
    decipher.setAuthTag(body.subarray(body.length - 16));
    return new Uint8Array(Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]));
  } catch {
    throw new SealError("authentication", "the sealed artifact fails authentication: its header or body was altered");
  }
}
