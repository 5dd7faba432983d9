// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StakeToken} from "../../contracts/StakeToken.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {TrainingCoordinator} from "../../contracts/TrainingCoordinator.sol";
import {CoordinatorExtension} from "../../contracts/coordinator/CoordinatorExtension.sol";
import {CoordinatorBase} from "../../contracts/coordinator/CoordinatorBase.sol";
import {ITrainingCoordinator} from "../../contracts/interfaces/ITrainingCoordinator.sol";
import {TestBase} from "./Vm.sol";

/// @notice Deploys the protocol and drives whole rounds with cheatcodes; shared by fuzz and invariant tests.
abstract contract ProtocolHarness is TestBase {
    uint256 internal constant ONE = 1e18;
    StakeToken internal token;
    StakeManager internal sm;
    TrainingCoordinator internal coord;
    /// @dev The coordinator's extension functions, called at the coordinator's address.
    CoordinatorExtension internal ext;

    function _deploy() internal {
        vm.warp(1_700_000_000);
        token = new StakeToken("Fedstake", "FST", address(this));
        sm = new StakeManager(token, 7 days);
        coord = new TrainingCoordinator(sm, address(this));
        sm.setCoordinator(address(coord));
        ext = CoordinatorExtension(address(coord));
    }

    function _actor(uint256 i) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encode("actor", i)))));
    }

    function _fundAndStake(address who, uint256 amount) internal {
        token.mint(who, amount);
        vm.prank(who);
        token.approve(address(sm), amount);
        vm.prank(who);
        sm.stake(amount);
    }

    function _params(uint16 acceptBps, uint16 quorumBps) internal view returns (ITrainingCoordinator.JobParams memory p) {
        p.initialModelDigest = keccak256("initial");
        p.initialModelCodec = 0x55;
        p.specDigest = keccak256("spec");
        p.specCodec = 0x55;
        p.startTime = uint48(block.timestamp + 10);
        p.numRounds = 3;
        p.rewardPerRound = uint96(100 * ONE);
        p.commitPeriod = 100;
        p.revealPeriod = 100;
        p.voteCommitPeriod = 100;
        p.voteRevealPeriod = 100;
        p.attestPeriod = 100;
        p.slashWindow = 1000;
        p.maxUpdates = 256;
        p.maxSamplesPerUpdate = 1_000_000;
        p.maxValidators = 64;
        p.quorumBps = quorumBps;
        p.acceptBps = acceptBps;
        p.attestBps = 6000;
        // The lowest rejection threshold the coordinator allows for this acceptBps.
        p.rejectSlashBps = 10_001 - acceptBps;
        p.validatorShareBps = 2000;
        p.missedVoteSlashBps = 1000;
        p.maxMissedRounds = 2;
        p.maxIdleRounds = 4;
        p.minWorkerStake = uint96(ONE);
        p.minValidatorStake = uint96(10 * ONE);
        p.rejectSlashAmount = uint96(2 * ONE);
        p.missedRevealSlashAmount = uint96(ONE);
        p.absenceSlashAmount = uint96(ONE);
    }

    function _createJob(address sponsor, ITrainingCoordinator.JobParams memory p) internal returns (uint256 jobId) {
        uint256 escrow = uint256(p.rewardPerRound) * p.numRounds;
        token.mint(sponsor, escrow);
        vm.prank(sponsor);
        token.approve(address(coord), escrow);
        vm.prank(sponsor);
        jobId = ext.createJob(p);
    }

    function _phaseStart(uint256 jobId, uint256 phaseIndex) internal view returns (uint256 t) {
        CoordinatorBase.JobState memory s = ext.jobState(jobId);
        CoordinatorBase.JobConfig memory c = ext.jobConfig(jobId);
        uint32[4] memory periods = [c.commitPeriod, c.revealPeriod, c.voteCommitPeriod, c.voteRevealPeriod];
        t = s.roundStart;
        for (uint256 i; i < phaseIndex; ++i) t += periods[i];
    }

    function _warpTo(uint256 t) internal {
        if (block.timestamp < t) vm.warp(t);
    }

    /// @dev Runs the current round to finalize. Worker i reveals unless bit i of `skipReveal`; validator j
    /// votes `bitmaps[j]` (masked to the reveals) and reveals unless bit j of `skipVote`.
    function _playRound(
        uint256 jobId,
        address[] memory workers,
        address[] memory validators,
        uint256[] memory bitmaps,
        uint256 skipReveal,
        uint256 skipVote
    ) internal returns (uint256 round) {
        (round,) = coord.phaseOf(jobId);
        _warpTo(_phaseStart(jobId, 0));
        for (uint256 i; i < workers.length; ++i) {
            bytes32 c = coord.updateCommitment(jobId, round, workers[i], keccak256(abi.encode(round, i)), 0x55, 100, bytes32(i));
            vm.prank(workers[i]);
            try coord.commitUpdate(jobId, round, c) {} catch {}
        }
        _warpTo(_phaseStart(jobId, 1));
        uint256 revealed;
        for (uint256 i; i < workers.length; ++i) {
            if ((skipReveal >> i) & 1 == 1) continue;
            vm.prank(workers[i]);
            try coord.revealUpdate(jobId, round, keccak256(abi.encode(round, i)), 0x55, 100, bytes32(i)) {
                ++revealed;
            } catch {}
        }
        uint256 mask = revealed == 256 ? type(uint256).max : (uint256(1) << revealed) - 1;
        _warpTo(_phaseStart(jobId, 2));
        for (uint256 j; j < validators.length; ++j) {
            bytes32 c = coord.voteCommitment(jobId, round, validators[j], bitmaps[j] & mask, bytes32(j));
            vm.prank(validators[j]);
            try coord.commitVote(jobId, round, c) {} catch {}
        }
        _warpTo(_phaseStart(jobId, 3));
        for (uint256 j; j < validators.length; ++j) {
            if ((skipVote >> j) & 1 == 1) continue;
            vm.prank(validators[j]);
            try coord.revealVote(jobId, round, bitmaps[j] & mask, bytes32(j)) {} catch {}
        }
        _warpTo(_phaseStart(jobId, 4));
        coord.finalizeRound(jobId, round);
    }
}
