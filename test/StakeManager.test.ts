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
      .to.be.revertedWithCustomError(stake, "InsufficientFreeStake")
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

  /** A stake manager whose coordinator is a plain account, to drive locks and slashes directly. */
  async function standalone() {
    const [deployer, coordinator, a, b, keeper] = await ethers.getSigners();
    const token = await ethers.deployContract("StakeToken", ["Fedstake", "FST", deployer!.address]);
    const stake = await ethers.deployContract("StakeManager", [await token.getAddress(), UNBONDING]);
    await stake.setCoordinator(coordinator!.address);
    for (const s of [a!, b!]) {
      await token.mint(s.address, 100n * ONE);
      await (token.connect(s) as typeof token).approve(await stake.getAddress(), 100n * ONE);
    }
    return { token, stake: stake as unknown as Contract, coordinator: coordinator!, a: a!, b: b!, keeper: keeper! };
  }

  it("only the coordinator locks, releases and slashes", async function () {
    const { stake, a } = await networkHelpers.loadFixture(standalone);
    const until = BigInt(await networkHelpers.time.latest()) + 100n;
    for (const call of [
      () => as(stake, a).lock(a.address, 1n, until, 0n),
      () => as(stake, a).unlock(a.address, 1n, until),
      () => as(stake, a).hold(a.address, 1n, 0n),
      () => as(stake, a).releaseHold(a.address, 1n),
      () => as(stake, a).slashLocked(a.address, 1n, 1n, until),
      () => as(stake, a).slashHeld(a.address, 1n),
    ]) {
      await expect(call()).to.be.revertedWithCustomError(stake, "NotCoordinator").withArgs(a.address);
    }
    await expect(stake.setCoordinator(a.address)).to.be.revertedWithCustomError(stake, "CoordinatorAlreadySet");
  });

  it("locks free stake only, merges timed locks to the latest expiry, and releases early only before a lock's own expiry", async function () {
    const { stake, coordinator, a } = await networkHelpers.loadFixture(standalone);
    const c = as(stake, coordinator);
    await as(stake, a).stake(10n * ONE);
    const now = BigInt(await networkHelpers.time.latest());
    await expect(c.lock(a.address, 1n, now, 0n)).to.be.revertedWithCustomError(stake, "LockExpiryInPast");
    await expect(c.lock(a.address, 11n * ONE, now + 100n, 0n))
      .to.be.revertedWithCustomError(stake, "InsufficientFreeStake")
      .withArgs(10n * ONE, 11n * ONE);
    // minFree: the minimum stake a commitment needs free, even when its lock is smaller.
    await expect(c.lock(a.address, ONE, now + 100n, 11n * ONE))
      .to.be.revertedWithCustomError(stake, "InsufficientFreeStake")
      .withArgs(10n * ONE, 11n * ONE);
    await expect(c.lock(a.address, 3n * ONE, now + 100n, 0n)).to.emit(stake, "StakeLocked").withArgs(a.address, 3n * ONE, now + 100n);
    await c.lock(a.address, 2n * ONE, now + 50n, 0n);
    expect(await stake.locksOf(a.address)).to.deep.equal([0n, 5n * ONE, now + 100n]);
    await c.hold(a.address, 4n * ONE, 0n);
    expect(await stake.freeStakeOf(a.address)).to.equal(ONE);
    await expect(as(stake, a).requestUnstake(2n * ONE)).to.be.revertedWithCustomError(stake, "InsufficientFreeStake");
    // The 50-second lock's release before its expiry applies…
    await expect(c.unlock(a.address, 2n * ONE, now + 50n)).to.emit(stake, "StakeUnlocked").withArgs(a.address, 2n * ONE, now + 50n);
    expect((await stake.locksOf(a.address))[1]).to.equal(3n * ONE);
    // …after it, it is a no-op (the merged amount may belong to newer locks).
    await networkHelpers.time.increaseTo(now + 60n);
    await c.unlock(a.address, 3n * ONE, now + 50n);
    expect((await stake.locksOf(a.address))[1]).to.equal(3n * ONE);
    // Every merged lock expired: the timed lock is gone without a transaction, and a new one starts afresh.
    await networkHelpers.time.increaseTo(now + 100n);
    expect(await stake.locksOf(a.address)).to.deep.equal([4n * ONE, 0n, 0n]);
    await c.lock(a.address, ONE, now + 500n, 0n);
    expect(await stake.locksOf(a.address)).to.deep.equal([4n * ONE, ONE, now + 500n]);
    await c.releaseHold(a.address, 4n * ONE);
    expect(await stake.freeStakeOf(a.address)).to.equal(9n * ONE);
  });

  it("slashes locked stake, never more than the lock it consumes, and burns all of it", async function () {
    const { stake, token, coordinator, a, keeper } = await networkHelpers.loadFixture(standalone);
    const c = as(stake, coordinator);
    await as(stake, a).stake(10n * ONE);
    const until = BigInt(await networkHelpers.time.latest()) + 1000n;
    await c.lock(a.address, 7n * ONE, until, 0n);
    await as(stake, a).requestUnstake(3n * ONE); // 7 active (all locked), 3 unbonding
    const burn = await stake.BURN_ADDRESS();
    // Asked for 9, it takes the 7 the consumed lock backed: the unbonding 3 are free tokens on their way out.
    await expect(as(stake, keeper).slashLocked(a.address, 7n * ONE, 9n * ONE, until)).to.be.revertedWithCustomError(stake, "NotCoordinator");
    await expect(c.slashLocked(a.address, 7n * ONE, 9n * ONE, until)).to.emit(stake, "Slashed").withArgs(a.address, 9n * ONE, 7n * ONE);
    expect(await stake.stakeOf(a.address)).to.equal(0n);
    expect(await stake.locksOf(a.address)).to.deep.equal([0n, 0n, until]);
    expect((await stake.unbondingOf(a.address))[0]).to.equal(3n * ONE);
    expect(await token.balanceOf(burn)).to.equal(7n * ONE);
    expect(await token.balanceOf(keeper.address)).to.equal(0n);
    // No lock or hold left behind it: a slash takes nothing and moves no tokens.
    await expect(c.slashLocked(a.address, ONE, ONE, until)).to.emit(stake, "Slashed").withArgs(a.address, ONE, 0n);
    await expect(c.slashHeld(a.address, ONE)).to.emit(stake, "Slashed").withArgs(a.address, ONE, 0n);
    // A hold is slashed up to what it holds.
    await as(stake, a).stake(5n * ONE);
    await c.hold(a.address, 2n * ONE, 0n);
    await expect(c.slashHeld(a.address, 3n * ONE)).to.emit(stake, "Slashed").withArgs(a.address, 3n * ONE, 2n * ONE);
    expect(await stake.totalStake()).to.equal(3n * ONE);
    expect(await token.balanceOf(await stake.getAddress())).to.equal(6n * ONE); // 3 active + 3 unbonding
  });

  it("refuses a fee-on-transfer token instead of crediting stake it did not receive", async function () {
    const [deployer] = await ethers.getSigners();
    const fee = await ethers.deployContract("FeeOnTransferToken");
    const stake = await ethers.deployContract("StakeManager", [await fee.getAddress(), UNBONDING]);
    await fee.mint(deployer!.address, 100n * ONE);
    await fee.approve(await stake.getAddress(), 100n * ONE);
    await expect(stake.stake(100n * ONE))
      .to.be.revertedWithCustomError(stake, "UnsupportedToken")
      .withArgs(99n * ONE, 100n * ONE);
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
