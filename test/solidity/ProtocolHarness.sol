// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {StakeToken} from "../../contracts/StakeToken.sol";
import {StakeManager} from "../../contracts/StakeManager.sol";
import {TrainingCoordinator} from "../../contracts/TrainingCoordinator.sol";
import {CoordinatorExtension} from "../../contracts/coordinator/CoordinatorExtension.sol";
import {CoordinatorBase} from "../../contracts/coordinator/CoordinatorBase.sol";
import {ITrainingCoordinator} from "../../contracts/interfaces/ITrainingCoordinator.sol";
import {TestBase} from "./Vm.sol";

/// @notice Deploys the protocol and drives rounds with cheatcodes; shared by fuzz and invariant tests.
abstract contract ProtocolHarness is TestBase {
    uint256 internal constant ONE = 1e18;
    uint256 internal constant BPS = 10_000;
    address internal constant BURN = 0x000000000000000000000000000000000000dEaD;
    StakeToken internal token;
    StakeManager internal sm;
    TrainingCoordinator internal coord;
    /// @dev The coordinator's extension functions, called at the coordinator's address.
    CoordinatorExtension internal ext;

    /// @dev The guardian (who may pause) is this contract.
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
        p.startTime = uint48(_now() + 10);
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
        p.rejectSlashBps = uint16(10_001 - acceptBps);
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

    /// @dev Start of phase `phaseIndex` (0 commit, 1 reveal, 2 vote commit, 3 vote reveal, 4 finalize) of the
    /// job's current round.
    function _phaseStart(uint256 jobId, uint256 phaseIndex) internal view returns (uint256 t) {
        CoordinatorBase.JobState memory s = ext.jobState(jobId);
        CoordinatorBase.JobConfig memory c = ext.jobConfig(jobId);
        uint32[4] memory periods = [c.commitPeriod, c.revealPeriod, c.voteCommitPeriod, c.voteRevealPeriod];
        t = s.roundStart;
        for (uint256 i; i < phaseIndex; ++i) t += periods[i];
    }

    function _warpTo(uint256 t) internal {
        if (_now() < t) vm.warp(t);
    }

    /// @dev The CID digest worker `worker` publishes in `round` of `jobId`: unique per job.
    function _digest(uint256 jobId, uint256 round, address worker) internal pure returns (bytes32) {
        return keccak256(abi.encode("update", jobId, round, worker));
    }

    function _salt(address who, uint256 round) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", who, round));
    }

    function _commitUpdate(uint256 jobId, uint256 round, address worker) internal returns (bool ok) {
        bytes32 c = coord.updateCommitment(jobId, round, worker, _digest(jobId, round, worker), 0x55, 100, _salt(worker, round));
        vm.prank(worker);
        try coord.commitUpdate(jobId, round, c) {
            ok = true;
        } catch {}
    }

    function _revealUpdate(uint256 jobId, uint256 round, address worker) internal returns (bool ok) {
        vm.prank(worker);
        try coord.revealUpdate(jobId, round, _digest(jobId, round, worker), 0x55, 100, _salt(worker, round)) {
            ok = true;
        } catch {}
    }

    function _commitVote(uint256 jobId, uint256 round, address validator, uint256 bitmap) internal returns (bool ok) {
        bytes32 c = coord.voteCommitment(jobId, round, validator, bitmap, _salt(validator, round));
        vm.prank(validator);
        try coord.commitVote(jobId, round, c) {
            ok = true;
        } catch {}
    }

    function _revealVote(uint256 jobId, uint256 round, address validator, uint256 bitmap) internal returns (bool ok) {
        vm.prank(validator);
        try coord.revealVote(jobId, round, bitmap, _salt(validator, round)) {
            ok = true;
        } catch {}
    }

    function _lowMask(uint256 n) internal pure returns (uint256) {
        return n >= 256 ? type(uint256).max : (uint256(1) << n) - 1;
    }

    function _popcount(uint256 x) internal pure returns (uint256 c) {
        for (; x != 0; x >>= 1) c += x & 1;
    }
}
