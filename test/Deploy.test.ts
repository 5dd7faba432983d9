import { expect } from "chai";
import { network } from "hardhat";
import FedstakeModule from "../ignition/modules/Fedstake.ts";

const { ethers, ignition } = await network.create();

describe("Ignition module", function () {
  it("deploys token, stake manager and coordinator, wired together", async function () {
    const [admin] = await ethers.getSigners();
    const { token, stakeManager, coordinator } = await ignition.deploy(FedstakeModule, {
      parameters: { Fedstake: { unbondingPeriod: 3600 } },
    });
    expect(await stakeManager.token()).to.equal(await token.getAddress());
    expect(await stakeManager.unbondingPeriod()).to.equal(3600n);
    expect(await coordinator.stakeManager()).to.equal(await stakeManager.getAddress());
    expect(await coordinator.token()).to.equal(await token.getAddress());
    expect(await stakeManager.hasRole(await stakeManager.SLASHER_ROLE(), await coordinator.getAddress())).to.equal(true);
    expect(await coordinator.hasRole(await coordinator.PAUSER_ROLE(), admin!.address)).to.equal(true);
    expect(await token.hasRole(await token.MINTER_ROLE(), admin!.address)).to.equal(true);
  });
});
