/**
 * The chain client on a second EVM node, Foundry's Anvil (worker/chain/devnet.ts), with blocks every
 * second that batch transactions as public chains do, and against what hosted endpoints do that a local
 * node does not: a pending transaction that holds a nonce ("replacement transaction underpriced"), an
 * endpoint whose pending nonce count lags, block-range caps on `eth_getLogs`.
 */
import { expect } from "chai";
import { Contract, HDNodeWallet, JsonRpcProvider, Mnemonic, parseUnits, Wallet } from "ethers";
import { attach, deployProtocol, loadArtifact, sendTx, sendValue, type Deployment } from "../../worker/chain/client.ts";
import { ANVIL_BIN, startDevnet, type Devnet } from "../../worker/chain/devnet.ts";
import { queryEvents } from "../../worker/chain/events.ts";
import { existsSync } from "node:fs";

const MNEMONIC = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
const account = (i: number) => HDNodeWallet.fromMnemonic(MNEMONIC, `m/44'/60'/0'/0/${i}`);

/** An endpoint whose "pending" nonce count is the mined one (load-balanced hosted endpoints lag like this). */
class LaggingPendingProvider extends JsonRpcProvider {
  override send(method: string, params: unknown[]): Promise<unknown> {
    if (method === "eth_getTransactionCount" && params[1] === "pending") return super.send(method, [params[0], "latest"]);
    return super.send(method, params);
  }
}

/** An endpoint that refuses `eth_getLogs` over more than `cap` blocks, as hosted endpoints do. */
class CappedLogsProvider extends JsonRpcProvider {
  /** Every range asked for, and those answered. */
  readonly asked: [number, number][] = [];
  readonly answered: [number, number][] = [];
  private readonly cap: number;
  constructor(url: string, cap: number) {
    super(url, undefined, { staticNetwork: true, pollingInterval: 250 });
    this.cap = cap;
  }
  override send(method: string, params: unknown[]): Promise<unknown> {
    if (method === "eth_getLogs") {
      const { fromBlock, toBlock } = params[0] as { fromBlock: string; toBlock: string };
      const range: [number, number] = [Number(fromBlock), Number(toBlock)];
      this.asked.push(range);
      if (range[1] - range[0] + 1 > this.cap) return Promise.reject(new Error(`query exceeds max block range ${this.cap}`));
      this.answered.push(range);
    }
    return super.send(method, params);
  }
}

describe("chain client on Anvil: pending nonces, lagging endpoints, capped log ranges", function () {
  this.timeout(120_000);
  let devnet: Devnet;
  let dep: Deployment;

  before(async function () {
    if (!existsSync(ANVIL_BIN) && !(process.platform === "linux" && process.arch === "x64")) this.skip(); // Anvil's npm package is Linux x64's only
    devnet = await startDevnet({ node: "anvil" });
    const admin = new Wallet(account(0).privateKey, devnet.provider);
    dep = await deployProtocol(admin, { unbondingPeriod: 600 });
  });
  after(() => devnet?.stop());

  it("records the deployment's block, and the chain id of the deployment is Anvil's", async function () {
    expect(dep.deployBlock).to.be.a("number").and.be.above(0);
    expect(dep.chainId).to.equal(31337);
    // The deployment's first contract was created in that block.
    const rc = await devnet.provider.getBlock(dep.deployBlock!, true);
    expect(rc!.prefetchedTransactions.some((t) => t.to === null)).to.equal(true);
  });

  it("a nonce held by a pending transaction: waits for it to be mined, then signs at the next nonce; each call applied once", async function () {
    const url = devnet.url;
    const from = account(3);
    const to = account(4).address;
    const other = new Wallet(from.privateKey, new JsonRpcProvider(url, undefined, { staticNetwork: true }));
    const lagging = new Wallet(from.privateKey, new LaggingPendingProvider(url, undefined, { staticNetwork: true }));
    const before = await devnet.provider.getBalance(to);
    const n = await devnet.provider.getTransactionCount(from.address, "latest");
    // "Another process" with the same key sends a transaction with a high fee; it sits in the pool until the next block.
    const fee = parseUnits("50", "gwei");
    await other.provider!.broadcastTransaction(await other.signTransaction(await other.populateTransaction({ to, value: 1n, nonce: n, maxFeePerGas: fee, maxPriorityFeePerGas: fee, gasLimit: 21_000n })));
    // This node's endpoint does not count pending transactions: it signs at the same nonce, with a lower fee.
    const logs: string[] = [];
    const rc = await sendValue(lagging, to, 2n, { log: (m) => logs.push(m) });
    expect(rc.status).to.equal(1);
    expect(logs.join("\n")).to.match(/transfer: nonce \d+ held by a pending transaction, sending the same bytes again in \d+ ms/);
    expect(logs.join("\n")).to.match(/transfer: nonce \d+ was used by another transaction, signing again at a fresh nonce/);
    // Both transfers applied, once each, at consecutive nonces: no gap, no replacement.
    expect((await devnet.provider.getBalance(to)) - before).to.equal(3n);
    expect(await devnet.provider.getTransactionCount(from.address, "latest")).to.equal(n + 2);
    expect((await devnet.provider.getTransaction(rc.hash))!.nonce).to.equal(n + 1);
  });

  it("event queries start at the deployment's block and page through an endpoint's block-range cap", async function () {
    const capped = new CappedLogsProvider(devnet.url, 4);
    const admin = new Wallet(account(0).privateKey, devnet.provider);
    const token = attach(dep, admin).token;
    // Transfers spread over several blocks.
    for (let i = 0; i < 3; i++) {
      await sendTx(admin, token, "mint", [account(5).address, 1n]);
      await new Promise((r) => setTimeout(r, 1100));
    }
    const head = await devnet.provider.getBlockNumber();
    const reader = new Contract(dep.token, loadArtifact("StakeToken").abi as never, capped);
    const filter = reader.filters.Transfer!(null, account(5).address);
    const all = await queryEvents(reader, filter, dep.deployBlock!, { toBlock: head });
    expect(all.map((e) => e.args.value)).to.deep.equal([1n, 1n, 1n]);
    // The first page (the whole range) was refused; the pages answered cover the range exactly, from the
    // deployment's block, each within the cap.
    expect(capped.asked[0]).to.deep.equal([dep.deployBlock!, head]);
    const covered = capped.answered.flatMap(([a, b]) => Array.from({ length: b - a + 1 }, (_, i) => a + i));
    expect(covered).to.deep.equal(Array.from({ length: head - dep.deployBlock! + 1 }, (_, i) => dep.deployBlock! + i));
    // A later query on the same endpoint starts with the size that worked: nothing refused.
    capped.asked.length = 0;
    capped.answered.length = 0;
    await queryEvents(reader, filter, dep.deployBlock!, { toBlock: head });
    expect(capped.asked).to.deep.equal(capped.answered);
    // Other errors are not taken for a range cap.
    const broken = new Contract(dep.token, loadArtifact("StakeToken").abi as never, new JsonRpcProvider("http://127.0.0.1:1", 31337, { staticNetwork: true }));
    const refused = await queryEvents(broken, filter, 0, { toBlock: 10 }).then(() => undefined, (e: Error) => e);
    expect(refused?.message).to.match(/ECONNREFUSED|connect/);
    broken.runner!.provider!.destroy();
  });
});
