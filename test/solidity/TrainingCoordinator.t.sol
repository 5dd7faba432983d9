// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ITrainingCoordinator} from "../../contracts/interfaces/ITrainingCoordinator.sol";
import {TrainingCoordinator} from "../../contracts/TrainingCoordinator.sol";
import {ProtocolHarness} from "./ProtocolHarness.sol";

/// @notice Fuzzes finalize over stake mixes, vote bitmaps and thresholds against a reference tally.
contract TrainingCoordinatorFuzzTest is ProtocolHarness {
    uint256 internal constant N_WORKERS = 8;
    uint256 internal constant N_VALIDATORS = 4;
    address[] internal workers;
    address[] internal validators;

    function setUp() public {
        _deploy();
        for (uint256 i; i < N_WORKERS; ++i) {
            workers.push(_actor(i));
            _fundAndStake(_actor(i), 5 * ONE);
        }
        for (uint256 j; j < N_VALIDATORS; ++j) validators.push(_actor(100 + j));
    }

    function testFuzz_finalizeMatchesReferenceTally(
        uint96[4] memory stakes,
        uint8[4] memory votes,
        uint8 skipVote,
        uint16 acceptBps,
        uint16 quorumBps
    ) public {
        acceptBps = uint16(bound(acceptBps, 1, 10_000));
        quorumBps = uint16(bound(quorumBps, 1, 10_000));
        uint256[] memory bitmaps = new uint256[](N_VALIDATORS);
        uint256[4] memory st;
        for (uint256 j; j < N_VALIDATORS; ++j) {
            st[j] = bound(stakes[j], 10 * ONE, 1e9 * ONE);
            _fundAndStake(validators[j], st[j]);
            bitmaps[j] = votes[j];
        }
        ITrainingCoordinator.JobParams memory p = _params(acceptBps, quorumBps);
        uint256 jobId = _createJob(_actor(999), p);
        for (uint256 j; j < N_VALIDATORS; ++j) {
            vm.prank(validators[j]);
            coord.joinCommittee(jobId);
        }
        uint256 round = _playRound(jobId, workers, validators, bitmaps, 0, skipVote & 0x0f);

        // Reference tally.
        uint256 committee;
        uint256 revealedStake;
        uint256[8] memory approving;
        for (uint256 j; j < N_VALIDATORS; ++j) {
            committee += st[j];
            if ((skipVote >> j) & 1 == 1) continue;
            revealedStake += st[j];
            for (uint256 i; i < N_WORKERS; ++i) if ((votes[j] >> i) & 1 == 1) approving[i] += st[j];
        }
        ITrainingCoordinator.Outcome expectedOutcome = revealedStake * 10_000 >= uint256(quorumBps) * committee
            ? ITrainingCoordinator.Outcome.Quorum
            : ITrainingCoordinator.Outcome.NoQuorum;
        uint256 accepted;
        uint256 slashable;
        if (expectedOutcome == ITrainingCoordinator.Outcome.Quorum) {
            for (uint256 i; i < N_WORKERS; ++i) {
                if (approving[i] * 10_000 >= uint256(acceptBps) * revealedStake) accepted |= 1 << i;
                else if (p.rejectSlashBps != 0 && (revealedStake - approving[i]) * 10_000 >= uint256(p.rejectSlashBps) * revealedStake) {
                    slashable |= 1 << i;
                }
            }
        }
        TrainingCoordinator.RoundResult memory res = coord.roundResult(jobId, round);
        assertEq(uint256(res.outcome), uint256(expectedOutcome), "outcome");
        assertEq(res.acceptedBitmap, accepted, "accepted bitmap");
        assertEq(res.slashableBitmap, slashable, "slashable bitmap");
        assertEq(res.committeeStake, committee, "committee stake");
        assertEq(res.revealedStake, revealedStake, "revealed stake");
        // Credits never exceed one round's reward, and escrow + credits are conserved.
        assertLe(coord.totalOwed(), p.rewardPerRound, "credited");
        // Validators that committed and hid their vote were slashed into the pool by finalize.
        uint256 slashed = uint256(p.missedRevealSlashAmount) * _popcount(skipVote & 0x0f);
        assertEq(coord.totalOwed() + coord.rewardPool(jobId), uint256(p.rewardPerRound) * p.numRounds + slashed, "conservation");
    }

    function _popcount(uint256 x) private pure returns (uint256 c) {
        for (; x != 0; x >>= 1) c += x & 1;
    }
}
