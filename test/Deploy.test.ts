import { expect } from "chai";
import { HDNodeWallet, Mnemonic, ZeroAddress } from "ethers";
import { artifacts, network } from "hardhat";
import FedstakeModule from "../ignition/modules/Fedstake.ts";
import { attach, deployProtocol, type Deployment } from "../worker/chain/client.ts";
import type { DeployParameters } from "../worker/chain/deployment.ts";
import { deployProtocol as deployFixture } from "./helpers/fixture.ts";

const { ethers, ignition } = await network.create();

/** EIP-170: the largest runtime code a contract may have on mainnet and the major L2s. */
const MAX_CODE_BYTES = 24_576;
/** EIP-3860: the largest init code a creation transaction may carry. */
const MAX_INITCODE_BYTES = 49_152;

/** Hardhat's accounts: the ethers deployer needs the key itself, and the same account 0 as the other paths. */
const HARDHAT_MNEMONIC = Mnemonic.fromPhrase("test test test test test test test test test test test junk");

type Addresses = Omit<Deployment, "chainId" | "deployBlock">;
type Connection = Awaited<ReturnType<typeof network.create>>;

/**
 * What a deployment is, read back from the chain: addresses, code (immutables included), constructor
 * parameters and wiring. Two deployments from the same account at the same nonce, on fresh chains,
 * read back the same only if they ran the same steps with the same arguments.
 */
async function readBack(conn: Connection, addresses: Addresses) {
  const { token, stake, coord } = attach({ chainId: 0, ...addresses }, conn.ethers.provider);
  const [admin] = await conn.ethers.getSigners();
  const extension: string = await coord.extension();
  const code = (a: string) => conn.ethers.provider.getCode(a);
  return {
    addresses,
    code: [await code(addresses.token), await code(addresses.stakeManager), await code(addresses.coordinator), await code(extension)],
    token: { name: await token.name(), symbol: await token.symbol(), adminMints: await token.hasRole(await token.MINTER_ROLE(), admin!.address) },
    stakeManager: { token: await stake.token(), unbondingPeriod: await stake.unbondingPeriod(), coordinator: await stake.coordinator() },
    coordinator: { stakeManager: await coord.stakeManager(), token: await coord.token(), guardian: await coord.guardian() },
  };
}

async function viaEthers(params: Partial<DeployParameters>) {
  const conn = await network.create();
  const wallet = HDNodeWallet.fromMnemonic(HARDHAT_MNEMONIC, "m/44'/60'/0'/0/0").connect(conn.ethers.provider);
  const [account0] = await conn.ethers.getSigners();
  expect(wallet.address).to.equal(account0!.address);
  const { chainId: _, deployBlock, ...addresses } = await deployProtocol(wallet, params);
  // The deployment's block is the first contract's: event queries start there.
  expect(await conn.ethers.provider.getCode(addresses.token, deployBlock! - 1)).to.equal("0x");
  expect(await conn.ethers.provider.getCode(addresses.token, deployBlock!)).to.not.equal("0x");
  return readBack(conn, addresses);
}

async function viaIgnition(params: Partial<DeployParameters>) {
  const conn = await network.create();
  const { token, stakeManager, coordinator } = await conn.ignition.deploy(FedstakeModule, { parameters: { Fedstake: params } });
  return readBack(conn, { token: await token.getAddress(), stakeManager: await stakeManager.getAddress(), coordinator: await coordinator.getAddress() });
}

async function viaFixture(unbonding: number) {
  const conn = await network.create();
  const { token, stake, coord } = await deployFixture(conn.ethers, { workers: 0, validators: 0, unbonding });
  return readBack(conn, { token: await token.getAddress(), stakeManager: await stake.getAddress(), coordinator: await coord.getAddress() });
}

describe("Deployment", function () {
  it("the ethers deployer (CLI, demo, devnet), the contract tests' fixture and the Ignition module deploy the same protocol", async function () {
    const ethersPath = await viaEthers({ unbondingPeriod: 3600 });
    expect(ethersPath.stakeManager.coordinator).to.equal(ethersPath.addresses.coordinator);
    expect(ethersPath.coordinator.guardian).to.equal((await ethers.getSigners())[0]!.address);
    expect(ethersPath.token).to.deep.equal({ name: "Fedstake", symbol: "FST", adminMints: true });
    expect(await viaFixture(3600)).to.deep.equal(ethersPath);
    expect(await viaIgnition({ unbondingPeriod: 3600 })).to.deep.equal(ethersPath);
  });

  it("the ethers deployer and the Ignition module take every deployment parameter the same way", async function () {
    const params = { unbondingPeriod: 60, guardian: ZeroAddress, tokenName: "Devnet stake", tokenSymbol: "DST" };
    const ethersPath = await viaEthers(params);
    expect(ethersPath.stakeManager.unbondingPeriod).to.equal(60n);
    expect(ethersPath.coordinator.guardian).to.equal(ZeroAddress);
    expect(ethersPath.token).to.deep.equal({ name: "Devnet stake", symbol: "DST", adminMints: true });
    expect(await viaIgnition(params)).to.deep.equal(ethersPath);
  });

  it("the Ignition module deploys token, stake manager and coordinator, wired together for good", async function () {
    const [admin, other] = await ethers.getSigners();
    const { token, stakeManager, coordinator } = await ignition.deploy(FedstakeModule, {
      parameters: { Fedstake: { unbondingPeriod: 3600 } },
    });
    expect(await stakeManager.token()).to.equal(await token.getAddress());
    expect(await stakeManager.unbondingPeriod()).to.equal(3600n);
    expect(await stakeManager.coordinator()).to.equal(await coordinator.getAddress());
    expect(await coordinator.stakeManager()).to.equal(await stakeManager.getAddress());
    expect(await coordinator.token()).to.equal(await token.getAddress());
    expect(await coordinator.guardian()).to.equal(admin!.address);
    expect(await token.hasRole(await token.MINTER_ROLE(), admin!.address)).to.equal(true);
    // The coordinator is set once: neither the deployer nor anybody else can point slashing elsewhere.
    await expect(stakeManager.setCoordinator(other!.address)).to.be.revertedWithCustomError(stakeManager, "CoordinatorAlreadySet");
    await expect((stakeManager.connect(other!) as typeof stakeManager).setCoordinator(other!.address)).to.be.revertedWithCustomError(
      stakeManager,
      "NotDeployer",
    );
  });

  it("every deployed contract is under the EIP-170 code size limit, and the coordinator's init code under EIP-3860's", async function () {
    const { token, stakeManager, coordinator } = await ignition.deploy(FedstakeModule, {
      parameters: { Fedstake: { unbondingPeriod: 3600 } },
    });
    const extension: string = await coordinator.extension();
    const sizes: Record<string, number> = {};
    for (const [name, addr] of Object.entries({
      StakeToken: await token.getAddress(),
      StakeManager: await stakeManager.getAddress(),
      TrainingCoordinator: await coordinator.getAddress(),
      CoordinatorExtension: extension,
    })) {
      sizes[name] = (await ethers.provider.getCode(addr)).length / 2 - 1;
      expect(sizes[name], `${name} runtime code`).to.be.greaterThan(0);
      expect(sizes[name], `${name} runtime code`).to.be.at.most(MAX_CODE_BYTES);
    }
    const artifact = await artifacts.readArtifact("TrainingCoordinator");
    expect((artifact.bytecode.length - 2) / 2, "TrainingCoordinator init code").to.be.at.most(MAX_INITCODE_BYTES);
  });
});
