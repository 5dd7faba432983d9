// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ITrainingCoordinator} from "../../contracts/interfaces/ITrainingCoordinator.sol";
import {ProtocolHarness} from "./ProtocolHarness.sol";

/// @notice Random sequences of protocol actions: staking, unbonding, withdrawing, whole rounds with
/// random votes and missed reveals, attestation, claims, slashing and sponsor refunds.
contract ProtocolHandler is ProtocolHarness {
    address[] internal workers;
    address[] internal validators;
    address internal sponsor = _actor(777);
    uint256 public jobId;
    uint256 public roundsPlayed;

    constructor() {
        _deploy();
        for (uint256 i; i < 6; ++i) {
            workers.push(_actor(i));
            _fundAndStake(_actor(i), 5 * ONE);
        }
        for (uint256 j; j < 4; ++j) {
            validators.push(_actor(100 + j));
            _fundAndStake(_actor(100 + j), 50 * ONE);
        }
    }

    function contracts() external view returns (address, address, address) {
        return (address(token), address(sm), address(coord));
    }

    function jobCount() external view returns (uint256) {
        return coord.jobCount();
    }

    function _anyone(uint256 seed) private view returns (address) {
        return seed % 2 == 0 ? workers[seed % workers.length] : validators[seed % validators.length];
    }

    function stake(uint256 seed, uint96 amount) external {
        _fundAndStake(_anyone(seed), bound(amount, 1, 100 * ONE));
    }

    function unstake(uint256 seed, uint96 amount) external {
        address who = _anyone(seed);
        uint256 st = sm.stakeOf(who);
        if (st == 0) return;
        vm.prank(who);
        sm.requestUnstake(bound(amount, 1, st));
    }

    function withdraw(uint256 seed, uint32 wait) external {
        address who = _anyone(seed);
        vm.warp(block.timestamp + bound(wait, 0, 8 days));
        (uint256 amount, uint48 release) = sm.unbondingOf(who);
        if (amount == 0 || block.timestamp < release) return;
        vm.prank(who);
        sm.withdraw();
    }

    /// Plays (or opens, then plays) a round with random votes, skipped reveals and skipped vote reveals.
    function playRound(uint256 seed) external {
        _ensureJob(seed);
        (, ITrainingCoordinator.Phase phase) = coord.phaseOf(jobId);
        if (phase == ITrainingCoordinator.Phase.Attest || phase == ITrainingCoordinator.Phase.AttestExpired) return;
        if (phase != ITrainingCoordinator.Phase.NotStarted && phase != ITrainingCoordinator.Phase.Commit) return;
        uint256[] memory bitmaps = new uint256[](validators.length);
        for (uint256 j; j < validators.length; ++j) bitmaps[j] = uint256(keccak256(abi.encode(seed, j)));
        uint256 skipReveal = (seed >> 8) & 0x3f & ((seed >> 20) & 0x3f); // rarely skip
        uint256 skipVote = (seed >> 14) & 0x0f & ((seed >> 26) & 0x0f);
        _playRound(jobId, workers, validators, bitmaps, skipReveal, skipVote);
        ++roundsPlayed;
    }

    function attest(uint256 seed) external {
        if (jobId == 0) return;
        (uint256 round, ITrainingCoordinator.Phase phase) = coord.phaseOf(jobId);
        if (phase == ITrainingCoordinator.Phase.AttestExpired) {
            coord.skipAttestation(jobId, round);
            return;
        }
        if (phase != ITrainingCoordinator.Phase.Attest) return;
        bytes32 model = keccak256(abi.encode("model", round, seed % 2));
        for (uint256 j; j < validators.length; ++j) {
            vm.prank(validators[j]);
            try coord.attestModel(jobId, round, model, 0x55) {} catch {}
        }
    }

    function claim(uint256 seed) external {
        if (jobId == 0) return;
        uint256 round = 1 + seed % coord.jobState(jobId).round;
        for (uint256 i; i < 8; ++i) {
            address worker = coord.updateAt(jobId, round, i).worker;
            if (worker == address(0)) break;
            vm.prank(worker);
            try coord.claimUpdateReward(jobId, round, i) {} catch {}
        }
        for (uint256 j; j < validators.length; ++j) {
            vm.prank(validators[j]);
            try coord.claimVoteReward(jobId) {} catch {}
        }
    }

    function slash(uint256 seed) external {
        if (jobId == 0) return;
        uint256 round = 1 + seed % coord.jobState(jobId).round;
        for (uint256 i; i < 8; ++i) try coord.slashRejectedUpdate(jobId, round, i) {} catch {}
        for (uint256 i; i < workers.length; ++i) try coord.slashMissedReveal(jobId, round, workers[i]) {} catch {}
    }

    function refund() external {
        if (jobId == 0) return;
        vm.prank(sponsor);
        try coord.withdrawRemainder(jobId) {} catch {}
    }

    function _ensureJob(uint256 seed) private {
        if (jobId != 0) {
            (, ITrainingCoordinator.Phase phase) = coord.phaseOf(jobId);
            if (phase != ITrainingCoordinator.Phase.Completed) return;
        }
        jobId = _createJob(sponsor, _params(uint16(bound(seed, 3000, 9000)), uint16(bound(seed >> 16, 3000, 9000))));
        for (uint256 j; j < validators.length; ++j) {
            vm.prank(validators[j]);
            try coord.joinCommittee(jobId) {} catch {}
        }
    }
}

/// @notice The protocol never holds a token it cannot account for.
contract ProtocolInvariantTest {
    ProtocolHandler internal handler;

    function setUp() public {
        handler = new ProtocolHandler();
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    /// Tokens held by the stake manager and coordinator = staked + unbonding + escrowed + credited-unclaimed.
    function invariant_tokensAreAccountedFor() public view {
        (address tokenAddr, address smAddr, address coordAddr) = handler.contracts();
        IBalances token = IBalances(tokenAddr);
        IStakeViews sm = IStakeViews(smAddr);
        ICoordViews coord = ICoordViews(coordAddr);
        uint256 pools;
        for (uint256 j = 1; j <= coord.jobCount(); ++j) pools += coord.rewardPool(j);
        uint256 held = token.balanceOf(smAddr) + token.balanceOf(coordAddr);
        uint256 owed = sm.totalStake() + sm.totalUnbonding() + pools + coord.totalOwed();
        if (held != owed) revert AccountingBroken(held, owed);
    }

    error AccountingBroken(uint256 held, uint256 owed);
}

interface IBalances {
    function balanceOf(address) external view returns (uint256);
}

interface IStakeViews {
    function totalStake() external view returns (uint256);
    function totalUnbonding() external view returns (uint256);
}

interface ICoordViews {
    function jobCount() external view returns (uint256);
    function rewardPool(uint256) external view returns (uint256);
    function totalOwed() external view returns (uint256);
}
