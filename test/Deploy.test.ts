import { expect } from "chai";
import { artifacts, network } from "hardhat";
import FedstakeModule from "../ignition/modules/Fedstake.ts";

const { ethers, ignition } = await network.create();

/** EIP-170: the largest runtime code a contract may have on mainnet and the major L2s. */
const MAX_CODE_BYTES = 24_576;
/** EIP-3860: the largest init code a creation transaction may carry. */
const MAX_INITCODE_BYTES = 49_152;

describe("Deployment", function () {
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
