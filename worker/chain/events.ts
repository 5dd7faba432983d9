/**
 * Event queries that work on any EVM JSON-RPC endpoint, not only a local node. Hosted endpoints refuse
 * `eth_getLogs` over more than a capped block range (1,000 to 100,000 blocks, depending on the provider)
 * or returning too many logs, and scanning from block 0 of a public chain would take millions of blocks
 * anyway. So every query starts at a known first block (the deployment's, recorded by `deployProtocol`,
 * or the job's creation block) and walks to the chain head in pages; a page the endpoint refuses as too
 * large is halved and retried, and the size that worked is kept for that endpoint's later queries.
 */
import type { Contract, ContractEventName, EventLog, Provider } from "ethers";

/** The first page tried on an endpoint not queried before: one request for a whole local test chain. */
export const FIRST_PAGE_BLOCKS = 50_000;

/** An endpoint's answer that the range or the result was too large (Alchemy, Infura, QuickNode, Anvil forks, geth's -32005). */
const RANGE_REFUSED = /block range|range (is )?too|too (large|wide|big)|too many (blocks|results|logs)|exceed(s|ed)? .*(range|blocks|results|logs|size)|more than \d+ (blocks|results|logs)|response size|-32005/i;

/** The page size that last worked, per provider: an endpoint's cap does not change between queries. */
const pageBlocks = new WeakMap<object, number>();

/**
 * The contract's events matching `filter` from `fromBlock` to `toBlock` (default: the head when the
 * query starts), oldest first, read in pages the endpoint accepts.
 * @throws the endpoint's error if it refuses even a one-block page, or fails for another reason
 */
export async function queryEvents(
  contract: Contract,
  filter: ContractEventName,
  fromBlock: number,
  opts: { toBlock?: number } = {},
): Promise<EventLog[]> {
  // The contract's runner is a signer (which has a provider) or a provider itself.
  const runner = contract.runner as (Partial<Provider> & { provider?: Provider | null }) | null;
  const provider = (runner && typeof runner.getBlockNumber === "function" ? runner : runner?.provider) as Provider | undefined;
  if (!provider) throw new Error("queryEvents: the contract has no provider");
  if (!Number.isSafeInteger(fromBlock) || fromBlock < 0) throw new RangeError(`queryEvents: fromBlock must be a block number, got ${fromBlock}`);
  const last = opts.toBlock ?? (await provider.getBlockNumber());
  const out: EventLog[] = [];
  let page = pageBlocks.get(provider) ?? FIRST_PAGE_BLOCKS;
  for (let from = Math.max(0, fromBlock); from <= last; ) {
    const to = Math.min(last, from + page - 1);
    try {
      out.push(...((await contract.queryFilter(filter, from, to)) as EventLog[]));
    } catch (e) {
      const msg = `${(e as { shortMessage?: string }).shortMessage ?? ""} ${(e as Error).message ?? e} ${JSON.stringify((e as { error?: unknown }).error ?? "")}`;
      if (!RANGE_REFUSED.test(msg) || page === 1) throw e;
      page = Math.max(1, Math.floor((to - from + 1) / 2));
      pageBlocks.set(provider, page);
      continue;
    }
    from = to + 1;
  }
  return out;
}
