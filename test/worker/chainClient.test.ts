/**
 * The transaction sender (worker/chain/client.ts: sendTx): a revert names the contract's custom error,
 * whether it is caught at estimation or only once mined (two transactions racing in one block, as two
 * validators' attestations do).
 */
import { expect } from "chai";
import { Contract, HDNodeWallet, Mnemonic, Wallet, type JsonRpcProvider } from "ethers";
import { network } from "hardhat";
import { ChainError, loadArtifact, sendTx, sendValue } from "../../worker/chain/client.ts";

// Hardhat's development mnemonic: the in-process network's accounts.
const MNEMONIC = Mnemonic.fromPhrase("test test test test test test test test test test test junk");
const account = (i: number) => HDNodeWallet.fromMnemonic(MNEMONIC, `m/44'/60'/0'/0/${i}`);

describe("chain client: sendTx", function () {
  it("names the custom error of a revert at estimation and of a revert that is only mined", async function () {
    const { ethers, provider } = await network.create();
    const [admin] = await ethers.getSigners();
    const token = (await ethers.deployContract("StakeToken", ["Fedstake", "FST", admin!.address], admin)) as unknown as Contract;
    const holder = new Wallet(account(1).privateKey, ethers.provider as unknown as JsonRpcProvider);
    const tok = new Contract(await token.getAddress(), loadArtifact("StakeToken").abi as never, holder);

    // At estimation: nothing is sent.
    const early = await sendTx(holder, tok, "transfer", [admin!.address, 1n]).catch((e: unknown) => e);
    expect(early).to.be.instanceOf(ChainError);
    expect((early as ChainError).message).to.match(/^transfer would revert: ERC20InsufficientBalance\(sender: 0x[0-9a-fA-F]{40}, balance: 0\.0, needed: 0\.000000000000000001\)$/);
    expect((early as ChainError).errorName).to.equal("ERC20InsufficientBalance");

    // Mined: two transfers of the whole balance estimated on the same state, mined in one block; the second reverts.
    await token.mint(holder.address, 100n);
    await provider.request({ method: "evm_setAutomine", params: [false] });
    const first = sendTx(holder, tok, "transfer", [admin!.address, 100n]);
    const second = sendTx(holder, tok, "transfer", [admin!.address, 100n]).catch((e: unknown) => e);
    // Both are broadcast (each waits for its receipt) before the block is mined.
    for (let i = 0; i < 100 && Number(await provider.request({ method: "eth_getBlockTransactionCountByNumber", params: ["pending"] })) < 2; i++) await new Promise((r) => setTimeout(r, 50));
    await provider.request({ method: "evm_mine", params: [] });
    await provider.request({ method: "evm_setAutomine", params: [true] });
    expect((await first).status).to.equal(1);
    const late = await second;
    expect(late).to.be.instanceOf(ChainError);
    expect((late as ChainError).message).to.match(/^transfer reverted in block \d+: ERC20InsufficientBalance\(sender: 0x[0-9a-fA-F]{40}, balance: 0\.0, needed: 0\.0000000000000001\)$/);
    expect((late as ChainError).errorName).to.equal("ERC20InsufficientBalance");
  });

  it("sends value the same way: one account's transfers back to back, each at its own nonce", async function () {
    const { ethers } = await network.create();
    const from = new Wallet(account(2).privateKey, ethers.provider as unknown as JsonRpcProvider);
    // Accounts past the 20 funded ones, as the demo funds them for 32 workers.
    const to = [40, 41, 42].map((i) => account(i).address);
    const receipts = await Promise.all(to.map((a) => sendValue(from, a, 10n ** 18n)));
    expect(receipts.map((r) => r.status)).to.deep.equal([1, 1, 1]);
    for (const a of to) expect(await ethers.provider.getBalance(a)).to.equal(10n ** 18n);
  });
});
