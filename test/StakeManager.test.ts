import { expect } from "chai";
import { network } from "hardhat";
import type { Contract } from "ethers";
import { ONE, UNBONDING, as, deployProtocol } from "./helpers/fixture.ts";

const { ethers, networkHelpers } = await network.create();

describe("StakeToken", function () {
  const fixture = () => deployProtocol(ethers, { workers: 1, validators: 0 });

  it("mints only through MINTER_ROLE", async function () {
    const { token, others } = await networkHelpers.loadFixture(fixture);
    await expect(as(token, others[0]).mint(others[0].address, 1n)).to.be.revertedWithCustomError(
      token,
      "AccessControlUnauthorizedAccount",
    );
  });

  it("supports EIP-2612 permit", async function () {
    const { token, stake, others } = await networkHelpers.loadFixture(fixture);
    const owner = others[0];
    const spender = await stake.getAddress();
    const deadline = BigInt(await networkHelpers.time.latest()) + 3600n;
    const { chainId } = await ethers.provider.getNetwork();
    const domain = { name: "Fedstake", version: "1", chainId, verifyingContract: await token.getAddress() };
    const types = {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    };
    const value = 5n * ONE;
    const sig = ethers.Signature.from(
      await owner.signTypedData(domain, types, { owner: owner.address, spender, value, nonce: 0n, deadline }),
    );
    await token.permit(owner.address, spender, value, deadline, sig.v, sig.r, sig.s);
    expect(await token.allowance(owner.address, spender)).to.equal(value);
  });
});

describe("StakeManager", function () {
  const fixture = () => deployProtocol(ethers, { workers: 2, validators: 0, workerStake: 0n });

  it("stakes, checkpoints stake by time, and rejects zero and future lookups", async function () {
    const { stake, workers } = await networkHelpers.loadFixture(fixture);
    const [a] = workers;
    await expect(as(stake, a).stake(0n)).to.be.revertedWithCustomError(stake, "ZeroAmount");
    await expect(as(stake, a).stake(10n * ONE)).to.emit(stake, "Staked").withArgs(a.address, 10n * ONE);
    const t1 = BigInt(await networkHelpers.time.latest());
    await networkHelpers.time.increase(10);
    await as(stake, a).stake(5n * ONE);
    const t2 = BigInt(await networkHelpers.time.latest());
    await networkHelpers.mine();
    expect(await stake.stakeAt(a.address, t1 - 1n)).to.equal(0n);
    expect(await stake.stakeAt(a.address, t1)).to.equal(10n * ONE);
    expect(await stake.stakeAt(a.address, t2)).to.equal(15n * ONE);
    expect(await stake.stakeOf(a.address)).to.equal(15n * ONE);
    expect(await stake.totalStakeAt(t1)).to.equal(10n * ONE);
    expect(await stake.totalStake()).to.equal(15n * ONE);
    const now = BigInt(await networkHelpers.time.latest());
    await expect(stake.stakeAt(a.address, now)).to.be.revertedWithCustomError(stake, "FutureLookup");
    await expect(stake.totalStakeAt(now + 5n)).to.be.revertedWithCustomError(stake, "FutureLookup");
  });

  it("unbonds, keeps unbonding out of stake, and withdraws only after the period", async function () {
    const { stake, token, workers } = await networkHelpers.loadFixture(fixture);
    const [a] = workers;
    await as(stake, a).stake(10n * ONE);
    await expect(as(stake, a).requestUnstake(0n)).to.be.revertedWithCustomError(stake, "ZeroAmount");
    await expect(as(stake, a).requestUnstake(11n * ONE))
      .to.be.revertedWithCustomError(stake, "InsufficientStake")
      .withArgs(10n * ONE, 11n * ONE);
    await expect(as(stake, a).withdraw()).to.be.revertedWithCustomError(stake, "NothingToWithdraw");
    await expect(as(stake, a).requestUnstake(4n * ONE)).to.emit(stake, "UnstakeRequested");
    expect(await stake.stakeOf(a.address)).to.equal(6n * ONE);
    expect(await stake.totalUnbonding()).to.equal(4n * ONE);
    const [amount, release] = await stake.unbondingOf(a.address);
    expect(amount).to.equal(4n * ONE);
    await expect(as(stake, a).withdraw()).to.be.revertedWithCustomError(stake, "StillUnbonding").withArgs(release);
    await networkHelpers.time.increaseTo(release);
    const before = await token.balanceOf(a.address);
    await expect(as(stake, a).withdraw()).to.emit(stake, "Withdrawn").withArgs(a.address, 4n * ONE);
    expect(await token.balanceOf(a.address)).to.equal(before + 4n * ONE);
    expect(await stake.totalUnbonding()).to.equal(0n);
  });

  it("a second unstake request restarts the unbonding clock for the whole amount", async function () {
    const { stake, workers } = await networkHelpers.loadFixture(fixture);
    const [a] = workers;
    await as(stake, a).stake(10n * ONE);
    await as(stake, a).requestUnstake(1n * ONE);
    await networkHelpers.time.increase(UNBONDING - 10);
    await as(stake, a).requestUnstake(1n * ONE);
    const [amount, release] = await stake.unbondingOf(a.address);
    expect(amount).to.equal(2n * ONE);
    expect(release).to.equal(BigInt(await networkHelpers.time.latest()) + BigInt(UNBONDING));
  });

  it("slashes only through SLASHER_ROLE: active stake first, then unbonding, capped at what exists", async function () {
    const { stake, token, workers, admin } = await networkHelpers.loadFixture(fixture);
    const [a, slasher] = workers;
    await as(stake, a).stake(10n * ONE);
    await as(stake, a).requestUnstake(6n * ONE); // 4 active, 6 unbonding
    await expect(as(stake, slasher).slash(a.address, 1n)).to.be.revertedWithCustomError(
      stake,
      "AccessControlUnauthorizedAccount",
    );
    await as(stake, admin).grantRole(await stake.SLASHER_ROLE(), slasher.address);
    const before = await token.balanceOf(slasher.address);
    await expect(as(stake, slasher).slash(a.address, 7n * ONE))
      .to.emit(stake, "Slashed")
      .withArgs(a.address, slasher.address, 7n * ONE, 7n * ONE);
    expect(await stake.stakeOf(a.address)).to.equal(0n);
    expect((await stake.unbondingOf(a.address))[0]).to.equal(3n * ONE);
    expect(await stake.totalUnbonding()).to.equal(3n * ONE);
    await expect(as(stake, slasher).slash(a.address, 100n * ONE))
      .to.emit(stake, "Slashed")
      .withArgs(a.address, slasher.address, 100n * ONE, 3n * ONE);
    expect(await token.balanceOf(slasher.address)).to.equal(before + 10n * ONE);
    // Nothing left: slashing takes nothing and moves no tokens.
    await expect(as(stake, slasher).slash(a.address, 1n)).to.emit(stake, "Slashed").withArgs(a.address, slasher.address, 1n, 0n);
    expect(await stake.totalStake()).to.equal(0n);
  });

  it("publishes endpoints, bounded in length", async function () {
    const { stake, workers } = await networkHelpers.loadFixture(fixture);
    const [a] = workers;
    const addr = ethers.toUtf8Bytes("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample");
    await expect(as(stake, a).setEndpoint(addr)).to.emit(stake, "EndpointSet");
    expect(ethers.toUtf8String(await stake.endpointOf(a.address))).to.equal("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWExample");
    await expect(as(stake, a).setEndpoint(new Uint8Array(1025)))
      .to.be.revertedWithCustomError(stake, "EndpointTooLong")
      .withArgs(1025n, 1024n);
    expect(await stake.endpointOf(workers[1].address)).to.equal("0x");
  });

  it("reports its token, unbonding period and clock", async function () {
    const { stake, token } = await networkHelpers.loadFixture(fixture);
    expect(await stake.token()).to.equal(await token.getAddress());
    expect(await stake.unbondingPeriod()).to.equal(BigInt(UNBONDING));
    expect(await stake.clock()).to.equal(BigInt(await networkHelpers.time.latest()));
    void (stake as Contract);
  });
});
