// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {StakeToken} from "../../contracts/StakeToken.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {IStakeManager} from "../../contracts/interfaces/IStakeManager.sol";
import {FeeOnTransferToken} from "../../contracts/mocks/FeeOnTransferToken.sol";
import {TestBase} from "./Vm.sol";

/// @notice The stake manager with this test contract as its coordinator: locks, holds, slashes and the
/// free-stake arithmetic, fuzzed against a reference model.
contract StakeManagerFuzzTest is TestBase {
    uint256 internal constant BPS = 10_000;
    uint48 internal constant UNBONDING = 7 days;
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;

    StakeToken internal token;
    StakeManager internal sm;
    address internal alice = address(0xA11CE);
    address internal bob = address(0xB0B);
    address internal keeper = address(0x4EE9E7);

    function setUp() public {
        vm.warp(1_700_000_000);
        token = new StakeToken("Fedstake", "FST", address(this));
        sm = new StakeManager(token, UNBONDING);
        sm.setCoordinator(address(this));
    }

    function _stake(address who, uint256 amount) internal {
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(sm), amount);
        vm.prank(who);
        sm.stake(amount);
    }

    function _t() internal view returns (uint48) {
        return uint48(_now());
    }

    function _locks(address who) internal view returns (uint256 held, uint256 locked, uint48 until) {
        return sm.locksOf(who);
    }

    // ------------------------------------------------------------------ coordinator and access

    function test_setCoordinatorOnceByDeployerOnly() public {
        StakeManager fresh = new StakeManager(token, UNBONDING);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotDeployer.selector, alice));
        fresh.setCoordinator(alice);
        vm.expectRevert(IStakeManager.ZeroAddress.selector);
        fresh.setCoordinator(address(0));
        fresh.setCoordinator(bob);
        assertEq(fresh.coordinator(), bob, "coordinator");
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.CoordinatorAlreadySet.selector, bob));
        fresh.setCoordinator(alice);
        // Nobody, not even the deployer, moves stake through the coordinator-only calls afterwards.
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotCoordinator.selector, address(this)));
        fresh.lock(alice, 1, _t() + 1, 0);
    }

    function testFuzz_onlyCoordinatorLocksAndSlashes(address caller) public {
        vm.assume(caller != address(this));
        _stake(alice, 100);
        bytes memory err = abi.encodeWithSelector(IStakeManager.NotCoordinator.selector, caller);
        vm.prank(caller);
        vm.expectRevert(err);
        sm.lock(alice, 1, _t() + 10, 0);
        vm.prank(caller);
        vm.expectRevert(err);
        sm.unlock(alice, 1, _t() + 10);
        vm.prank(caller);
        vm.expectRevert(err);
        sm.hold(alice, 1, 0);
        vm.prank(caller);
        vm.expectRevert(err);
        sm.releaseHold(alice, 1);
        vm.prank(caller);
        vm.expectRevert(err);
        sm.slashLocked(alice, 0, 1, _t() + 10);
        vm.prank(caller);
        vm.expectRevert(err);
        sm.slashHeld(alice, 1);
        assertEq(sm.stakeOf(alice), 100, "untouched");
    }

    function test_stakeRefusesFeeOnTransferToken() public {
        FeeOnTransferToken fee = new FeeOnTransferToken();
        StakeManager feeSm = new StakeManager(IERC20(address(fee)), UNBONDING);
        fee.mint(alice, 1000);
        vm.prank(alice);
        fee.approve(address(feeSm), 1000);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.UnsupportedToken.selector, 990, 1000));
        feeSm.stake(1000);
        assertEq(feeSm.stakeOf(alice), 0, "nothing staked");
    }

    function test_zeroAmountsRefused() public {
        vm.prank(alice);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        sm.stake(0);
        vm.prank(alice);
        vm.expectRevert(IStakeManager.ZeroAmount.selector);
        sm.requestUnstake(0);
        vm.prank(alice);
        vm.expectRevert(IStakeManager.NothingToWithdraw.selector);
        sm.withdraw();
    }

    // ------------------------------------------------------------------ locks

    /// A lock needs free stake of at least max(amount, minFree) and an expiry in the future; it then
    /// covers exactly `amount` until `until`, and nothing after.
    function testFuzz_lockNeedsFreeStakeAndExpires(
        uint96 stakeAmt,
        uint96 heldAmt,
        uint96 amount,
        uint96 minFree,
        uint32 duration,
        uint32 later
    ) public {
        stakeAmt = uint96(bound(stakeAmt, 1, type(uint96).max));
        heldAmt = uint96(bound(heldAmt, 0, stakeAmt));
        _stake(alice, stakeAmt);
        if (heldAmt > 0) sm.hold(alice, heldAmt, 0);
        uint256 free = uint256(stakeAmt) - heldAmt;
        assertEq(sm.freeStakeOf(alice), free, "free after hold");

        vm.expectRevert(abi.encodeWithSelector(IStakeManager.LockExpiryInPast.selector, _t()));
        sm.lock(alice, 0, _t(), 0);

        uint48 until = _t() + uint48(bound(duration, 1, 30 days));
        uint256 required = amount > minFree ? amount : minFree;
        if (required > free) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, free, required));
            sm.lock(alice, amount, until, minFree);
            return;
        }
        sm.lock(alice, amount, until, minFree);
        (uint256 h, uint256 l, uint48 u) = _locks(alice);
        assertEq(h, heldAmt, "held");
        assertEq(l, amount, "locked");
        assertEq(u, until, "until");
        assertEq(sm.freeStakeOf(alice), free - amount, "free while locked");

        vm.warp(_t() + bound(later, 0, 60 days));
        (, l, u) = _locks(alice);
        if (_t() < until) {
            assertEq(l, amount, "locked before expiry");
            assertEq(sm.freeStakeOf(alice), free - amount, "free before expiry");
        } else {
            assertEq(l, 0, "expired lock");
            assertEq(u, 0, "expired until");
            assertEq(sm.freeStakeOf(alice), free, "free after expiry");
        }
    }

    /// Two locks merge into their sum with the later expiry, which keeps both covered until the later one;
    /// a lock taken once everything merged has expired starts from zero (no stale amount carried over).
    function testFuzz_locksMergeConservatively(uint64 a1, uint64 a2, uint64 a3, uint32 d1, uint32 d2, uint32 gap) public {
        _stake(alice, uint256(type(uint64).max) * 3);
        uint48 t0 = _t();
        uint48 u1 = t0 + uint48(bound(d1, 1, 10 days));
        uint48 u2 = t0 + uint48(bound(d2, 1, 10 days));
        sm.lock(alice, a1, u1, 0);
        sm.lock(alice, a2, u2, 0);
        uint48 maxU = u1 > u2 ? u1 : u2;
        (, uint256 l, uint48 u) = _locks(alice);
        assertEq(l, uint256(a1) + a2, "merged amount");
        assertEq(u, maxU, "merged expiry");

        // Any time before the later expiry, both amounts stay locked (never under-locked).
        uint48 t = t0 + uint48(bound(gap, 0, 20 days));
        vm.warp(t);
        (, l,) = _locks(alice);
        if (t < maxU) assertEq(l, uint256(a1) + a2, "still merged");
        else assertEq(l, 0, "all expired");

        sm.lock(alice, a3, t + 1, 0);
        (, l, u) = _locks(alice);
        if (t < maxU) {
            assertEq(l, uint256(a1) + a2 + a3, "merged again");
            assertEq(u, maxU > t + 1 ? maxU : t + 1, "expiry is the max");
        } else {
            assertEq(l, a3, "fresh lock after expiry");
            assertEq(u, t + 1, "fresh expiry");
        }
    }

    /// An early release applies only before its own lock's expiry: after it, the merged amount may belong
    /// to a newer lock, and an unlock is a no-op.
    function testFuzz_unlockOnlyBeforeOwnExpiry(uint64 a1, uint64 a2, uint32 d1, uint32 extra, uint32 at, uint64 rel) public {
        _stake(alice, uint256(type(uint64).max) * 2);
        uint48 t0 = _t();
        uint48 u1 = t0 + uint48(bound(d1, 1, 5 days));
        uint48 u2 = u1 + uint48(bound(extra, 1, 5 days)); // the second lock outlives the first
        sm.lock(alice, a1, u1, 0);
        sm.lock(alice, a2, u2, 0);
        vm.warp(t0 + bound(at, 0, u2 - t0 - 1));
        uint256 amount = bound(rel, 0, a1);
        sm.unlock(alice, amount, u1);
        (, uint256 l,) = _locks(alice);
        if (_t() < u1) assertEq(l, uint256(a1) + a2 - amount, "released before own expiry");
        else assertEq(l, uint256(a1) + a2, "no-op after own expiry: the second lock stays whole");
        // Releasing more than is locked releases what is there, never underflows.
        sm.unlock(alice, type(uint256).max, u2);
        (, l,) = _locks(alice);
        assertEq(l, 0, "all released");
        assertEq(sm.freeStakeOf(alice), uint256(type(uint64).max) * 2, "all free");
    }

    function test_unlockIsNoOpAtExactExpiry() public {
        _stake(alice, 100);
        uint48 until = _t() + 10;
        sm.lock(alice, 40, until, 0);
        sm.lock(alice, 30, until + 5, 0);
        vm.warp(until);
        sm.unlock(alice, 40, until); // its lock is over: must not release the newer one's 30
        (, uint256 l, uint48 u) = _locks(alice);
        assertEq(l, 70, "merged amount kept");
        assertEq(u, until + 5, "until");
        vm.warp(until + 5);
        (, l, u) = _locks(alice);
        assertEq(l, 0, "expired at its until");
        assertEq(sm.freeStakeOf(alice), 100, "free");
    }

    // ------------------------------------------------------------------ holds

    function testFuzz_holdAndRelease(uint96 stakeAmt, uint96 h1, uint96 h2, uint96 minFree, uint96 rel) public {
        stakeAmt = uint96(bound(stakeAmt, 1, type(uint96).max));
        _stake(alice, stakeAmt);
        h1 = uint96(bound(h1, 0, stakeAmt));
        sm.hold(alice, h1, 0);
        uint256 free = uint256(stakeAmt) - h1;
        uint256 required = h2 > minFree ? h2 : minFree;
        if (required > free) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, free, required));
            sm.hold(alice, h2, minFree);
            h2 = 0;
        } else {
            sm.hold(alice, h2, minFree);
        }
        uint256 held = uint256(h1) + h2;
        (uint256 h,,) = _locks(alice);
        assertEq(h, held, "held");
        // Holds never expire.
        vm.warp(_t() + 365 days);
        (h,,) = _locks(alice);
        assertEq(h, held, "held a year later");
        assertEq(sm.freeStakeOf(alice), stakeAmt - held, "free");
        sm.releaseHold(alice, rel);
        (h,,) = _locks(alice);
        assertEq(h, rel >= held ? 0 : held - rel, "released, capped at what is held");
    }

    // ------------------------------------------------------------------ unstaking

    /// requestUnstake moves only free stake: active stake never drops below what holds and live locks cover.
    function testFuzz_requestUnstakeNeverBelowCovered(
        uint96 stakeAmt,
        uint96 heldAmt,
        uint96 lockedAmt,
        uint96 amount,
        uint32 wait
    ) public {
        stakeAmt = uint96(bound(stakeAmt, 1, type(uint96).max));
        heldAmt = uint96(bound(heldAmt, 0, stakeAmt));
        lockedAmt = uint96(bound(lockedAmt, 0, stakeAmt - heldAmt));
        _stake(alice, stakeAmt);
        sm.hold(alice, heldAmt, 0);
        uint48 until = _t() + 1 days;
        sm.lock(alice, lockedAmt, until, 0);
        vm.warp(_t() + bound(wait, 0, 2 days));
        uint256 covered = uint256(heldAmt) + (_t() < until ? lockedAmt : 0);
        uint256 free = stakeAmt - covered;
        assertEq(sm.freeStakeOf(alice), free, "free");
        amount = uint96(bound(amount, 1, type(uint96).max));
        vm.prank(alice);
        if (amount > free) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, free, amount));
            sm.requestUnstake(amount);
            return;
        }
        sm.requestUnstake(amount);
        assertEq(sm.stakeOf(alice), stakeAmt - amount, "active");
        assertGe(sm.stakeOf(alice), covered, "active covers locks");
        (uint256 unb, uint48 release) = sm.unbondingOf(alice);
        assertEq(unb, amount, "unbonding");
        assertEq(release, _t() + UNBONDING, "release time");
        assertEq(sm.totalUnbonding(), amount, "total unbonding");
        assertEq(sm.totalStake(), stakeAmt - amount, "total stake");
    }

    /// A new unstake request restarts the clock for everything unbonding; withdraw only after release.
    function testFuzz_withdrawOnlyAfterUnbonding(uint64 amount, uint32 wait1, uint32 wait2) public {
        amount = uint64(bound(amount, 2, type(uint64).max));
        _stake(alice, amount);
        vm.prank(alice);
        sm.requestUnstake(amount / 2);
        vm.warp(_t() + bound(wait1, 0, 8 days));
        vm.prank(alice);
        sm.requestUnstake(amount - amount / 2);
        (uint256 unb, uint48 release) = sm.unbondingOf(alice);
        assertEq(unb, amount, "both requests unbonding");
        assertEq(release, _t() + UNBONDING, "clock restarted");
        vm.warp(_t() + bound(wait2, 0, 8 days));
        vm.prank(alice);
        if (_t() < release) {
            vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, release));
            sm.withdraw();
        } else {
            sm.withdraw();
            assertEq(token.balanceOf(alice), amount, "withdrawn");
            assertEq(sm.totalUnbonding(), 0, "nothing unbonding");
        }
    }

    /// Stake history: a lookup at any past second returns what was staked by then; future lookups refused.
    function testFuzz_checkpointsAreHistorical(uint64 a, uint64 b, uint16 gap) public {
        a = uint64(bound(a, 1, type(uint64).max));
        b = uint64(bound(b, 1, type(uint64).max));
        gap = uint16(bound(gap, 1, 10_000));
        _stake(alice, a);
        uint48 t1 = _t();
        vm.warp(t1 + gap);
        _stake(alice, b);
        vm.warp(t1 + gap + 1);
        assertEq(sm.stakeAt(alice, t1 - 1), 0, "before first stake");
        assertEq(sm.stakeAt(alice, t1 + gap - 1), a, "between stakes");
        assertEq(sm.stakeAt(alice, t1 + gap), uint256(a) + b, "after second stake");
        assertEq(sm.totalStakeAt(t1), a, "total at t1");
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.FutureLookup.selector, _t(), _t()));
        sm.stakeAt(alice, _t());
    }

    // ------------------------------------------------------------------ slashing

    /// A slash takes at most what the lock or hold it consumes releases — never stake another lock backs,
    /// nothing once its lock has expired — out of active stake, and burns all of it: nobody (not the
    /// coordinator, not whoever triggered it) receives slashed stake. Every token stays accounted for.
    function testFuzz_slashCappedByItsLockAndBurned(
        uint128 amount,
        uint128 backing,
        uint128 unbond,
        uint128 lockAmount,
        uint128 slashAmount,
        bool held,
        bool expired
    ) public {
        amount = uint128(bound(amount, 1, 1e30));
        backing = uint128(bound(backing, 0, amount));
        _stake(alice, amount);
        _stake(bob, 12345); // another staker, untouched by alice's slash
        uint48 until = _t() + 100;
        if (held) sm.hold(alice, backing, 0);
        else sm.lock(alice, backing, until, 0);
        unbond = uint128(bound(unbond, 0, amount - backing));
        if (unbond > 0) {
            vm.prank(alice);
            sm.requestUnstake(unbond);
        }
        if (expired && !held) vm.warp(until); // its lock is over: nothing left to consume
        lockAmount = uint128(bound(lockAmount, 0, 2 * uint256(amount)));
        uint256 released;
        if (held) released = slashAmount < backing ? slashAmount : backing;
        else if (!expired) released = lockAmount < backing ? lockAmount : backing;
        uint256 expected = slashAmount < released ? slashAmount : released;

        vm.prank(keeper);
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotCoordinator.selector, keeper));
        sm.slashHeld(alice, slashAmount);
        vm.expectEmit(true, false, false, true, address(sm));
        emit IStakeManager.Slashed(alice, slashAmount, expected);
        uint256 taken = held ? sm.slashHeld(alice, slashAmount) : sm.slashLocked(alice, lockAmount, slashAmount, until);
        assertEq(taken, expected, "slashed: at most what its lock released");
        assertEq(sm.stakeOf(alice), amount - unbond - expected, "taken from active stake");
        (uint256 unbonding,) = sm.unbondingOf(alice);
        assertEq(unbonding, unbond, "unbonding untouched");
        (uint256 h, uint256 l,) = sm.locksOf(alice);
        assertEq(h, held ? backing - released : 0, "hold after");
        assertEq(l, held || expired ? 0 : backing - released, "lock after");
        assertLe(h + l, sm.stakeOf(alice), "locks within active stake");
        assertEq(sm.stakeOf(bob), 12345, "bystander");
        assertEq(token.balanceOf(address(sm)), sm.totalStake() + sm.totalUnbonding(), "held = stake + unbonding");
        assertEq(token.balanceOf(BURN), expected, "all burned");
        assertEq(token.balanceOf(address(this)), 0, "the coordinator receives nothing");
        assertEq(token.balanceOf(keeper), 0, "nor anyone else");
    }

    /// One account's two locks: slashing against one of them never takes the stake the other backs.
    function testFuzz_slashNeverEatsAnotherLock(uint64 a1, uint64 a2, uint64 slashAmt) public {
        _stake(alice, uint256(a1) + a2 + 1);
        uint48 until = _t() + 100;
        sm.lock(alice, a1, until, 0);
        sm.lock(alice, a2, until + 1, 0);
        uint256 taken = sm.slashLocked(alice, a1, slashAmt, until);
        assertEq(taken, slashAmt < a1 ? slashAmt : a1, "capped by its own lock");
        (, uint256 l,) = sm.locksOf(alice);
        assertEq(l, a2, "the other lock intact");
        assertGe(sm.stakeOf(alice), a2, "and still backed");
    }

    /// slashLocked releases the lock it was backed by and takes the slash out of the stake that lock covered:
    /// the rest of the account's stake stays exactly as free as it was.
    function testFuzz_slashLockedReleasesItsLock(uint64 stakeAmt, uint64 lockAmt, uint64 slashAmt, uint64 otherLock) public {
        stakeAmt = uint64(bound(stakeAmt, 1, type(uint64).max));
        lockAmt = uint64(bound(lockAmt, 0, stakeAmt));
        otherLock = uint64(bound(otherLock, 0, stakeAmt - lockAmt));
        slashAmt = uint64(bound(slashAmt, 0, lockAmt));
        _stake(alice, stakeAmt);
        uint48 until = _t() + 100;
        sm.lock(alice, lockAmt, until, 0);
        sm.lock(alice, otherLock, until + 50, 0);
        uint256 freeBefore = sm.freeStakeOf(alice);
        sm.slashLocked(alice, lockAmt, slashAmt, until);
        (, uint256 l,) = _locks(alice);
        assertEq(l, otherLock, "only the other lock remains");
        assertEq(sm.freeStakeOf(alice), freeBefore + lockAmt - slashAmt, "free grows by the unslashed lock");
        assertEq(sm.stakeOf(alice), stakeAmt - slashAmt, "active");
    }

    function testFuzz_slashHeldReleasesItsHold(uint64 stakeAmt, uint64 holdAmt, uint64 lockAmt) public {
        stakeAmt = uint64(bound(stakeAmt, 1, type(uint64).max));
        holdAmt = uint64(bound(holdAmt, 0, stakeAmt));
        lockAmt = uint64(bound(lockAmt, 0, stakeAmt - holdAmt));
        _stake(alice, stakeAmt);
        sm.hold(alice, holdAmt, 0);
        sm.lock(alice, lockAmt, _t() + 10, 0);
        uint256 taken = sm.slashHeld(alice, holdAmt);
        assertEq(taken, holdAmt, "taken in full");
        (uint256 h, uint256 l,) = _locks(alice);
        assertEq(h, 0, "hold released");
        assertEq(l, lockAmt, "lock untouched");
        assertEq(sm.stakeOf(alice), stakeAmt - holdAmt, "active");
        assertEq(sm.freeStakeOf(alice), stakeAmt - holdAmt - lockAmt, "free");
        assertEq(token.balanceOf(BURN), holdAmt, "all burned");
    }

    // ------------------------------------------------------------------ model-based sequences

    /// @dev Reference state of one account. `indiv` are the individual timed locks as the coordinator took
    /// them (amount, expiry, released), to check that the merged lock never under-locks.
    struct Model {
        uint256 active;
        uint256 unbonding;
        uint48 release;
        uint256 held;
        uint256 locked; // merged, as stored
        uint48 until;
        uint256[] indivAmount;
        uint48[] indivUntil;
        bool[] indivOpen;
        uint256 nIndiv;
    }

    uint256 internal constant MAX_INDIV = 40;

    function _newModel() internal pure returns (Model memory m) {
        m.indivAmount = new uint256[](MAX_INDIV);
        m.indivUntil = new uint48[](MAX_INDIV);
        m.indivOpen = new bool[](MAX_INDIV);
    }

    function _covered(Model memory m, uint48 t) internal pure returns (uint256) {
        return m.held + (m.until > t ? m.locked : 0);
    }

    function _free(Model memory m, uint48 t) internal pure returns (uint256) {
        uint256 c = _covered(m, t);
        return m.active > c ? m.active - c : 0;
    }

    /// Random sequences of stake / unstake / withdraw / lock / unlock / hold / release / slash / time, on two
    /// accounts, checked step by step against a reference model: active, unbonding, free stake, the locks
    /// view, totals and token balances. Slashes ask up to twice their lock (or after it expired) and get at
    /// most what it releases; holds + live locks stay within active stake, and the merged lock covers every
    /// live lock.
    function testFuzz_modelSequence(uint256[24] memory ops) public {
        Model[2] memory ms = [_newModel(), _newModel()];
        address[2] memory who = [alice, bob];
        uint256 burned;
        for (uint256 k; k < ops.length; ++k) {
            uint256 op = ops[k];
            uint256 a = (op >> 8) & 1;
            Model memory m = ms[a];
            address acct = who[a];
            uint48 t = _t();
            uint256 x = op >> 16; // operand material
            uint256 kind = op % 11;
            if (kind == 0) {
                uint256 amount = bound(x, 1, 1e24);
                _stake(acct, amount);
                m.active += amount;
            } else if (kind == 1) {
                uint256 free = _free(m, t);
                uint256 amount = bound(x, 1, m.active + 10);
                vm.prank(acct);
                if (amount > free) {
                    vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, free, amount));
                    sm.requestUnstake(amount);
                } else {
                    sm.requestUnstake(amount);
                    m.active -= amount;
                    m.unbonding += amount;
                    m.release = t + UNBONDING;
                }
            } else if (kind == 2) {
                vm.prank(acct);
                if (m.unbonding == 0) {
                    vm.expectRevert(IStakeManager.NothingToWithdraw.selector);
                    sm.withdraw();
                } else if (t < m.release) {
                    vm.expectRevert(abi.encodeWithSelector(IStakeManager.StillUnbonding.selector, m.release));
                    sm.withdraw();
                } else {
                    uint256 before = token.balanceOf(acct);
                    sm.withdraw();
                    assertEq(token.balanceOf(acct) - before, m.unbonding, "withdrawn");
                    m.unbonding = 0;
                    m.release = 0;
                }
            } else if (kind == 3 || kind == 4) {
                // lock, sometimes with a minFree above the amount
                uint256 free = _free(m, t);
                uint256 amount = bound(x, 0, free + free / 4 + 1);
                uint256 minFree = (x >> 100) % 3 == 0 ? bound(x >> 120, 0, free + 2) : 0;
                uint48 until = t + uint48(bound(x >> 160, 1, 3 days));
                uint256 required = amount > minFree ? amount : minFree;
                if (required > free) {
                    vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, free, required));
                    sm.lock(acct, amount, until, minFree);
                } else {
                    sm.lock(acct, amount, until, minFree);
                    if (m.until <= t) m.locked = 0;
                    m.locked += amount;
                    if (until > m.until) m.until = until;
                    if (m.nIndiv < MAX_INDIV) {
                        m.indivAmount[m.nIndiv] = amount;
                        m.indivUntil[m.nIndiv] = until;
                        m.indivOpen[m.nIndiv] = true;
                        ++m.nIndiv;
                    }
                }
            } else if (kind == 5 || kind == 6) {
                // unlock, or slash, an individual lock (as the coordinator does: each at most once)
                if (m.nIndiv == 0) continue;
                uint256 i = x % m.nIndiv;
                if (!m.indivOpen[i]) continue;
                m.indivOpen[i] = false;
                uint256 amount = m.indivAmount[i];
                uint48 until = m.indivUntil[i];
                bool live = until > t;
                uint256 released = live ? (amount < m.locked ? amount : m.locked) : 0;
                if (kind == 5) {
                    sm.unlock(acct, amount, until);
                } else {
                    // Up to twice the lock, sometimes after it expired: capped by what the lock releases.
                    uint256 slashAmt = bound(x >> 40, 0, 2 * amount);
                    uint256 taken = sm.slashLocked(acct, amount, slashAmt, until);
                    uint256 expected = slashAmt < released ? slashAmt : released;
                    assertEq(taken, expected, "a locked slash: what was asked, at most its lock");
                    if (live && slashAmt <= amount) assertEq(taken, slashAmt, "a live lock backs its slash in full");
                    m.active -= expected;
                    burned += expected;
                }
                m.locked -= released;
            } else if (kind == 7) {
                uint256 free = _free(m, t);
                uint256 amount = bound(x, 0, free + 1);
                if (amount > free) {
                    vm.expectRevert(abi.encodeWithSelector(IStakeManager.InsufficientFreeStake.selector, free, amount));
                    sm.hold(acct, amount, 0);
                } else {
                    sm.hold(acct, amount, 0);
                    m.held += amount;
                }
            } else if (kind == 8) {
                uint256 amount = bound(x, 0, 2 * m.held + 1);
                uint256 released = amount < m.held ? amount : m.held;
                if ((x >> 100) & 1 == 1) {
                    uint256 taken = sm.slashHeld(acct, amount);
                    assertEq(taken, released, "a held slash: at most the hold");
                    m.active -= released;
                    burned += released;
                } else {
                    sm.releaseHold(acct, amount);
                }
                m.held -= released;
            } else {
                vm.warp(t + bound(x, 0, kind == 9 ? 1 days : 8 days));
            }
            _checkModel(ms, who, burned);
        }
    }

    function _checkModel(Model[2] memory ms, address[2] memory who, uint256 burned) internal view {
        uint48 t = _t();
        uint256 total;
        uint256 totalUnb;
        for (uint256 a; a < 2; ++a) {
            Model memory m = ms[a];
            address acct = who[a];
            assertEq(sm.stakeOf(acct), m.active, "active");
            (uint256 unb, uint48 rel) = sm.unbondingOf(acct);
            assertEq(unb, m.unbonding, "unbonding");
            assertEq(rel, m.release, "release");
            (uint256 h, uint256 l, uint48 u) = sm.locksOf(acct);
            assertEq(h, m.held, "held");
            assertEq(l, m.until > t ? m.locked : 0, "locked view");
            assertEq(u, m.until > t ? m.until : 0, "until view");
            assertEq(sm.freeStakeOf(acct), _free(m, t), "free");
            // Soundness of the merge: every live individual lock is still covered.
            uint256 live;
            for (uint256 i; i < m.nIndiv; ++i) if (m.indivOpen[i] && m.indivUntil[i] > t) live += m.indivAmount[i];
            assertGe(l, live, "merged lock covers every live lock");
            assertLe(h + l, m.active, "holds and locks within active stake");
            total += m.active;
            totalUnb += m.unbonding;
        }
        assertEq(sm.totalStake(), total, "total stake");
        assertEq(sm.totalUnbonding(), totalUnb, "total unbonding");
        assertEq(token.balanceOf(address(sm)), total + totalUnb, "tokens held");
        assertEq(token.balanceOf(BURN), burned, "burned");
    }
}
