/**
 * Where a node finds what it fetches: the accounts that hold it, dialled at the endpoints they published
 * on chain (StakeManager's registry). A round's base model is an earlier round's attested aggregate, and
 * every validator that attested it pinned it (worker/node/validatorRole.ts: attest); round 1's base, the
 * initial model, is the sponsor's, who also serves the job spec. So a node that missed rounds (a late
 * joiner, a restarted node, a worker whose update was rejected and whom nobody dials) still finds the
 * base, without any configured peer.
 */
import type { Contract } from "ethers";
import { queryEvents } from "../chain/events.ts";
import { jobCreated } from "./jobSpec.ts";
import type { Dialer } from "../storage/store.ts";

/** The line of an endpoint record that carries the account's update-sealing key (worker/privacy/sealed.ts). */
const SEAL_KEY_PREFIX = "hpke-x25519 ";

/**
 * What an account published in StakeManager's endpoint registry (a transaction its staking key signed):
 * its multiaddrs, one per line, and a line `hpke-x25519 <hex>` with its update-sealing public key.
 */
export interface Endpoint {
  addrs: string[];
  sealKey?: Uint8Array;
}

/** An endpoint record as the registry stores it (0x-hex bytes), parsed. */
export function parseEndpoint(raw: string): Endpoint {
  const lines = Buffer.from(raw.replace(/^0x/, ""), "hex").toString().split("\n").filter(Boolean);
  const key = lines.find((l) => l.startsWith(SEAL_KEY_PREFIX));
  const k = key ? Buffer.from(key.slice(SEAL_KEY_PREFIX.length).trim(), "hex") : undefined;
  return { addrs: lines.filter((l) => !l.startsWith(SEAL_KEY_PREFIX)), ...(k && k.length === 32 ? { sealKey: new Uint8Array(k) } : {}) };
}

/** The record's text: the multiaddrs, then the sealing key's line. */
export function endpointText(e: Endpoint): string {
  return [...e.addrs, ...(e.sealKey ? [SEAL_KEY_PREFIX + Buffer.from(e.sealKey).toString("hex")] : [])].join("\n");
}

/** What `account` published (no addresses and no key if nothing). */
export async function publishedEndpoint(stake: Contract, account: string): Promise<Endpoint> {
  return parseEndpoint(await stake.getFunction("endpointOf")(account));
}

/**
 * Dials each account at the endpoints it published (the first address that answers is enough; a node
 * publishes one per interface it listens on). Returns, per account that could not be reached, why. The
 * dialer still refuses anything outside loopback unless configured otherwise (worker/storage/store.ts).
 */
export async function dialPublished(dialer: Pick<Dialer, "dial">, stake: Contract, accounts: readonly string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const account of new Set(accounts)) {
    const { addrs } = await publishedEndpoint(stake, account);
    let ok = false;
    for (const a of addrs) if (!ok) ok = await dialer.dial(a).then(() => true, () => false);
    if (!ok) failed.push(`${account}: ${addrs.length ? "no published address answered" : "no endpoint published"}`);
  }
  return failed;
}

/**
 * The accounts that hold each model of job `jobId`: the validators that attested it in any round (in
 * attestation order), then the sponsor (the initial model, and a last resort). A long-running node keeps
 * one: each lookup reads only the attestations of the blocks since the last, not the job's whole history.
 */
export class ModelHolders {
  private readonly byDigest = new Map<string, string[]>();
  private scannedTo: number;
  private sponsor?: string;
  private readonly coord: Contract;
  private readonly jobId: bigint;
  private readonly fromBlock: number;

  /** `fromBlock`: where the protocol's events begin (the deployment's block, `Protocol.fromBlock`). */
  constructor(coord: Contract, jobId: bigint, fromBlock: number) {
    this.coord = coord;
    this.jobId = jobId;
    this.fromBlock = fromBlock;
    this.scannedTo = fromBlock - 1;
  }

  async of(digest: string): Promise<string[]> {
    const latest = await this.coord.runner!.provider!.getBlockNumber();
    if (latest > this.scannedTo) {
      const attested = await queryEvents(this.coord, this.coord.filters.ModelAttested!(this.jobId), this.scannedTo + 1, { toBlock: latest });
      for (const e of attested) {
        const d = (e.args.digest as string).toLowerCase();
        this.byDigest.set(d, [...(this.byDigest.get(d) ?? []), e.args.validator as string]);
      }
      this.scannedTo = latest;
    }
    this.sponsor ??= (await jobCreated(this.coord, this.jobId, this.fromBlock)).sponsor as string;
    return [...new Set([...(this.byDigest.get(digest.toLowerCase()) ?? []), this.sponsor])];
  }
}

/** The holders of one model (a one-off lookup: see ModelHolders). */
export function modelHolders(coord: Contract, jobId: bigint, digest: string, fromBlock: number): Promise<string[]> {
  return new ModelHolders(coord, jobId, fromBlock).of(digest);
}
