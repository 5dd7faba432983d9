// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ProtocolHarness} from "./ProtocolHarness.sol";

contract StakeManagerFuzzTest is ProtocolHarness {
    address internal alice = _actor(1);

    function setUp() public {
        _deploy();
        sm.grantRole(sm.SLASHER_ROLE(), address(this));
    }

    /// Stake, unbond part, slash: the slash takes active stake first, never more than exists, and every
    /// token stays accounted for.
    function testFuzz_stakeUnbondSlash(uint128 amount, uint128 unbond, uint128 slashAmount) public {
        amount = uint128(bound(amount, 1, 1e30));
        unbond = uint128(bound(unbond, 0, amount));
        _fundAndStake(alice, amount);
        if (unbond > 0) {
            vm.prank(alice);
            sm.requestUnstake(unbond);
        }
        uint256 active = amount - unbond;
        uint256 taken = sm.slash(alice, slashAmount);
        uint256 expected = slashAmount < amount ? slashAmount : amount;
        assertEq(taken, expected, "slashed");
        uint256 fromActive = expected < active ? expected : active;
        assertEq(sm.stakeOf(alice), active - fromActive, "active after slash");
        (uint256 unbonding,) = sm.unbondingOf(alice);
        assertEq(unbonding, unbond - (expected - fromActive), "unbonding after slash");
        assertEq(token.balanceOf(address(sm)), sm.totalStake() + sm.totalUnbonding(), "held = stake + unbonding");
        assertEq(token.balanceOf(address(this)), taken, "slasher received");
    }

    /// Stake history: a lookup at any past second returns what was staked by then.
    function testFuzz_checkpointsAreHistorical(uint64 a, uint64 b, uint16 gap) public {
        a = uint64(bound(a, 1, type(uint64).max));
        b = uint64(bound(b, 1, type(uint64).max));
        gap = uint16(bound(gap, 1, 10_000));
        _fundAndStake(alice, a);
        uint48 t1 = uint48(block.timestamp);
        vm.warp(block.timestamp + gap);
        _fundAndStake(alice, b);
        vm.warp(block.timestamp + 1);
        assertEq(sm.stakeAt(alice, t1 - 1), 0, "before first stake");
        assertEq(sm.stakeAt(alice, t1 + gap - 1), a, "between stakes");
        assertEq(sm.stakeAt(alice, t1 + gap), uint256(a) + b, "after second stake");
        assertEq(sm.totalStakeAt(t1), a, "total at t1");
    }

    function testFuzz_withdrawOnlyAfterUnbonding(uint64 amount, uint32 wait) public {
        amount = uint64(bound(amount, 1, type(uint64).max));
        _fundAndStake(alice, amount);
        vm.prank(alice);
        sm.requestUnstake(amount);
        (, uint48 release) = sm.unbondingOf(alice);
        vm.warp(block.timestamp + wait);
        vm.prank(alice);
        if (block.timestamp < release) {
            vm.expectRevert(abi.encodeWithSignature("StillUnbonding(uint48)", release));
            sm.withdraw();
        } else {
            sm.withdraw();
            assertEq(token.balanceOf(alice), amount, "withdrawn");
        }
    }
}
