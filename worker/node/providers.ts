/**
 * Where a node finds what it fetches: the accounts that hold it, dialled at the endpoints they published
 * on chain (StakeManager's registry). A round's base model is an earlier round's attested aggregate, and
 * every validator that attested it pinned it (worker/node/validatorRole.ts: attest); round 1's base, the
 * initial model, is the sponsor's, who also serves the job spec. So a node that missed rounds (a late
 * joiner, a restarted node, a worker whose update was rejected and whom nobody dials) still finds the
 * base, without any configured peer.
 */
import type { Contract, EventLog } from "ethers";
import { jobCreated } from "./jobSpec.ts";
import type { HeliaStore } from "../storage/heliaStore.ts";

/**
 * Dials each account at the endpoints it published (the first address that answers is enough; a node
 * publishes one per interface it listens on). Returns, per account that could not be reached, why. The
 * store's connection gater still refuses anything outside loopback unless configured otherwise.
 */
export async function dialPublished(store: Pick<HeliaStore, "dial">, stake: Contract, accounts: readonly string[]): Promise<string[]> {
  const failed: string[] = [];
  for (const account of new Set(accounts)) {
    const raw: string = await stake.getFunction("endpointOf")(account);
    const addrs = Buffer.from(raw.slice(2), "hex").toString().split("\n").filter(Boolean);
    let ok = false;
    for (const a of addrs) if (!ok) ok = await store.dial(a).then(() => true, () => false);
    if (!ok) failed.push(`${account}: ${addrs.length ? "no published address answered" : "no endpoint published"}`);
  }
  return failed;
}

/**
 * The accounts that hold the model with this digest in job `jobId`: the validators that attested it in
 * any round (in attestation order), then the sponsor (the initial model, and a last resort).
 */
export async function modelHolders(coord: Contract, jobId: bigint, digest: string): Promise<string[]> {
  const attested = (await coord.queryFilter(coord.filters.ModelAttested!(jobId), 0)) as EventLog[];
  const validators = attested.filter((e) => (e.args.digest as string).toLowerCase() === digest.toLowerCase()).map((e) => e.args.validator as string);
  return [...new Set([...validators, (await jobCreated(coord, jobId)).sponsor as string])];
}
