// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ITrainingCoordinator} from "../../contracts/interfaces/ITrainingCoordinator.sol";
import {IStakeManager} from "../../contracts/interfaces/IStakeManager.sol";
import {BoundedPausable} from "../../contracts/utils/BoundedPausable.sol";
import {CoordinatorBase} from "../../contracts/coordinator/CoordinatorBase.sol";
import {Committee} from "../../contracts/libraries/Committee.sol";
import {ProtocolHarness} from "./ProtocolHarness.sol";

/// @notice Reference tally and bitmap shapes shared by the coordinator fuzz tests.
abstract contract TallyReference is ProtocolHarness {
    /// @dev Accepted: approving ≥ acceptBps × committed. Else slashable: revealed − approving ≥
    /// rejectSlashBps × committed. Plain loops, bit by bit.
    function _refTally(
        uint256[] memory stakes,
        uint256[] memory bitmaps,
        uint256 n,
        uint256 committed,
        uint256 revealed,
        uint256 acceptBps,
        uint256 rejectSlashBps
    ) internal pure returns (uint256 accepted, uint256 slashable) {
        for (uint256 i; i < n; ++i) {
            uint256 approving;
            for (uint256 j; j < stakes.length; ++j) if ((bitmaps[j] >> i) & 1 == 1) approving += stakes[j];
            if (approving * BPS >= acceptBps * committed) accepted |= uint256(1) << i;
            else if ((revealed - approving) * BPS >= rejectSlashBps * committed) slashable |= uint256(1) << i;
        }
    }

    /// @dev From sparse to dense, with long runs of zero bytes; masked to the round's `n` reveals.
    function _shape(uint256 seed, uint256 n) internal pure returns (uint256 b) {
        uint256 r = uint256(keccak256(abi.encode(seed, "r")));
        uint256 s = uint256(keccak256(abi.encode(seed, "s")));
        uint256 mode = seed % 7;
        if (mode == 0) b = r & s;
        else if (mode == 1) b = (uint256(1) << (r % 256)) | (uint256(1) << (s % 256));
        else if (mode == 2) b = uint256(0xff) << (8 * (r % 32));
        else if (mode == 3) b = ~(r & s);
        else if (mode == 4) b = type(uint256).max;
        else if (mode == 5) b = 0;
        else b = r;
        b &= _lowMask(n);
    }

    function _agreement(uint256 bitmap, uint256 accepted, uint256 n) internal pure returns (uint256 c) {
        for (uint256 i; i < n; ++i) if ((bitmap >> i) & 1 == (accepted >> i) & 1) ++c;
    }
}

/// @notice Fuzzes one whole round through the coordinator (commit, reveal, vote, finalize, settle) over
/// stake mixes, vote bitmaps, hidden votes, absent and under-staked members and thresholds, against a
/// reference of the committed-stake tally, the slashes and the reward credits, and follows every token.
contract TrainingCoordinatorFuzzTest is TallyReference {
    uint256 internal constant N_WORKERS = 24;
    uint256 internal constant N_VALIDATORS = 6;
    uint256 internal constant WORKER_STAKE = 5 * ONE;
    address[] internal workers;
    address[] internal validators;
    address internal sponsor = _actor(999);

    // Validator modes.
    uint256 internal constant ABSENT = 0; // member, commits nothing
    uint256 internal constant VOTES = 1; // commits and reveals
    uint256 internal constant HIDES = 2; // commits, never reveals
    uint256 internal constant UNDERSTAKED = 3; // member whose round-start stake is below the minimum

    struct Round {
        uint256 jobId;
        uint256 round;
        uint256 n; // reveals
        uint256[] revealIndex; // worker → index + 1 (0: did not reveal)
        uint256[N_VALIDATORS] st;
        uint256[N_VALIDATORS] mode;
        uint256[N_VALIDATORS] bitmap;
        uint256 committee;
        uint256 committed;
        uint256 revealed;
        uint256 accepted;
        uint256 slashable;
        ITrainingCoordinator.Outcome outcome;
        uint256 burned;
    }

    function setUp() public {
        _deploy();
        for (uint256 i; i < N_WORKERS; ++i) {
            workers.push(_actor(i));
            _fundAndStake(_actor(i), WORKER_STAKE);
        }
        for (uint256 j; j < N_VALIDATORS; ++j) validators.push(_actor(100 + j));
    }

    function _slashed(Round memory r, uint256 amount) internal pure {
        r.burned += amount;
    }

    function testFuzz_roundMatchesReference(
        uint256 seed,
        uint96[N_VALIDATORS] memory stakes,
        uint8 nWorkersSeed,
        uint16 acceptBps,
        uint16 quorumBps,
        uint16 rejectSlashBps,
        uint16 missedVoteSlashBps
    ) public {
        // Half the runs use round numbers (stakes in tens of tokens, thresholds from a short list), so that
        // stakes land exactly on the quorum, acceptance and rejection thresholds.
        bool round_ = (seed >> 240) % 2 == 0;
        if (round_) {
            uint16[5] memory qs = [uint16(5000), 6000, 7500, 8000, 10_000];
            uint16[6] memory as_ = [uint16(2500), 5000, 6000, 7500, 8000, 10_000];
            quorumBps = qs[quorumBps % 5];
            acceptBps = as_[acceptBps % 6];
        }
        ITrainingCoordinator.JobParams memory p = _params(uint16(bound(acceptBps, 1, BPS)), uint16(bound(quorumBps, 5000, BPS)));
        p.rejectSlashBps = uint16(bound(rejectSlashBps, BPS + 1 - p.acceptBps, BPS));
        if (round_) p.rejectSlashBps = uint16(BPS + 1 - p.acceptBps + (BPS - (BPS + 1 - p.acceptBps)) * (rejectSlashBps % 2));
        // At most 90 %: a vote locks that share of the round-start stake, beside the 1-token bond of a member
        // staked at least 10 tokens.
        p.missedVoteSlashBps = uint16(bound(missedVoteSlashBps, 1, 9000));
        p.maxMissedRounds = uint16(2 + (seed >> 250) % 2);
        Round memory r;
        r.jobId = _createJob(sponsor, p);
        r.round = 1;
        uint256 escrow = uint256(p.rewardPerRound) * p.numRounds;

        // Committee: stakes from just above the minimum to a billion tokens; modes from the seed.
        for (uint256 j; j < N_VALIDATORS; ++j) {
            uint256 st = round_ ? 10 * ONE * (1 + stakes[j] % 5) : bound(stakes[j], p.minValidatorStake, 1e9 * ONE);
            _fundAndStake(validators[j], st);
            vm.prank(validators[j]);
            ext.joinCommittee(r.jobId);
            r.mode[j] = (seed >> (2 * j)) % 4;
            if (r.mode[j] == UNDERSTAKED) {
                // Unstakes down to below the minimum before round 1 reads its stake.
                vm.prank(validators[j]);
                sm.requestUnstake(st - 5 * ONE);
                st = 5 * ONE;
            }
            r.st[j] = st;
        }

        // Workers commit; a sparse, random subset reveals.
        uint256 nWorkers = bound(nWorkersSeed, 0, N_WORKERS);
        uint256 revealMask = uint256(keccak256(abi.encode(seed, "reveal")));
        if ((seed >> 20) % 4 == 0) revealMask &= uint256(keccak256(abi.encode(seed, "sparse"))); // fewer reveals
        if ((seed >> 22) % 8 == 0) revealMask = 0; // nobody reveals
        _warpTo(p.startTime);
        for (uint256 i; i < nWorkers; ++i) assertTrue(_commitUpdate(r.jobId, 1, workers[i]), "commit");
        _warpTo(_phaseStart(r.jobId, 1));
        r.revealIndex = new uint256[](N_WORKERS);
        for (uint256 i; i < nWorkers; ++i) {
            if ((revealMask >> i) & 1 == 0) continue;
            assertTrue(_revealUpdate(r.jobId, 1, workers[i]), "reveal");
            r.revealIndex[i] = ++r.n;
        }

        // Votes.
        _warpTo(_phaseStart(r.jobId, 2));
        for (uint256 j; j < N_VALIDATORS; ++j) {
            r.bitmap[j] = _shape(uint256(keccak256(abi.encode(seed, j))), r.n);
            if (r.mode[j] == ABSENT) continue;
            if (r.mode[j] == UNDERSTAKED) {
                bytes32 c = coord.voteCommitment(r.jobId, 1, validators[j], r.bitmap[j], _salt(validators[j], 1));
                vm.prank(validators[j]);
                vm.expectRevert(
                    abi.encodeWithSelector(ITrainingCoordinator.InsufficientStake.selector, p.minValidatorStake, 5 * ONE)
                );
                coord.commitVote(r.jobId, 1, c);
                continue;
            }
            assertTrue(_commitVote(r.jobId, 1, validators[j], r.bitmap[j]), "commit vote");
            // The vote locks missedVoteSlashBps of its weight.
            (, uint256 locked,) = sm.locksOf(validators[j]);
            assertEq(locked, (r.st[j] * p.missedVoteSlashBps) / BPS, "vote lock");
        }
        _warpTo(_phaseStart(r.jobId, 3));
        for (uint256 j; j < N_VALIDATORS; ++j) {
            if (r.mode[j] != VOTES) continue;
            assertTrue(_revealVote(r.jobId, 1, validators[j], r.bitmap[j]), "reveal vote");
            (, uint256 locked,) = sm.locksOf(validators[j]);
            assertEq(locked, 0, "reveal releases the vote lock");
        }

        // Finalize, anywhere in the slash window.
        _warpTo(_phaseStart(r.jobId, 4) + (seed >> 100) % p.slashWindow);
        coord.finalizeRound(r.jobId, 1);

        _checkDecision(r, p);
        _checkWithheldVotes(r, p);
        _checkCredits(r, p, escrow);
        _settleWorkers(r, p, nWorkers);
        _claimValidators(r);
        _leaveCommittee(r, p);
        _checkConservation(escrow);
    }

    function _checkDecision(Round memory r, ITrainingCoordinator.JobParams memory p) internal view {
        uint256 k;
        for (uint256 j; j < N_VALIDATORS; ++j) {
            if (r.mode[j] == UNDERSTAKED) continue;
            r.committee += r.st[j];
            if (r.mode[j] == ABSENT) continue;
            r.committed += r.st[j];
            if (r.mode[j] == VOTES) {
                r.revealed += r.st[j];
                ++k;
            }
        }
        uint256[] memory vs = new uint256[](k);
        uint256[] memory vb = new uint256[](k);
        k = 0;
        for (uint256 j; j < N_VALIDATORS; ++j) {
            if (r.mode[j] != VOTES) continue;
            vs[k] = r.st[j];
            vb[k++] = r.bitmap[j];
        }
        if (r.committee == 0 || r.committed * BPS < uint256(p.quorumBps) * r.committee) {
            r.outcome = ITrainingCoordinator.Outcome.NoQuorum;
        } else if (r.n == 0) {
            r.outcome = ITrainingCoordinator.Outcome.NoUpdates;
        } else {
            r.outcome = ITrainingCoordinator.Outcome.Quorum;
            (r.accepted, r.slashable) = _refTally(vs, vb, r.n, r.committed, r.revealed, p.acceptBps, p.rejectSlashBps);
        }
        CoordinatorBase.RoundResult memory res = ext.roundResult(r.jobId, 1);
        assertEq(uint256(res.outcome), uint256(r.outcome), "outcome");
        assertEq(res.acceptedBitmap, r.accepted, "accepted bitmap");
        assertEq(res.slashableBitmap, r.slashable, "slashable bitmap");
        assertEq(res.committeeStake, r.committee, "committee stake");
        assertEq(res.committedStake, r.committed, "committed stake");
        assertEq(res.revealedStake, r.revealed, "revealed stake");
        assertEq(res.updateCount, r.n, "update count");
        CoordinatorBase.JobState memory s = ext.jobState(r.jobId);
        assertEq(s.completedRounds, r.outcome == ITrainingCoordinator.Outcome.Quorum ? 1 : 0, "completed rounds");
        assertEq(s.idleRounds, r.outcome == ITrainingCoordinator.Outcome.Quorum ? 0 : 1, "idle rounds");
        (uint256 round, ITrainingCoordinator.Phase phase) = coord.phaseOf(r.jobId);
        if (r.accepted != 0) {
            assertEq(round, 1, "attesting round 1");
            assertEq(uint256(phase), uint256(ITrainingCoordinator.Phase.Attest), "attest phase");
        } else {
            // Nothing to aggregate: round 2 opens at once on the same base model.
            assertEq(round, 2, "next round");
            assertEq(uint256(phase), uint256(ITrainingCoordinator.Phase.Commit), "commit phase");
            assertEq(ext.roundResult(r.jobId, 2).baseDigest, p.initialModelDigest, "same base");
        }
    }

    /// Finalize slashes nobody: it records withheld votes, and anyone then slashes each once, by
    /// missedVoteSlashBps of its round weight, out of the lock its commitment took; all of it is burned.
    /// After one round nobody is absent long enough to be evicted.
    function _checkWithheldVotes(Round memory r, ITrainingCoordinator.JobParams memory p) internal {
        for (uint256 j; j < N_VALIDATORS; ++j) {
            address v = validators[j];
            uint256 cut = (r.st[j] * p.missedVoteSlashBps) / BPS;
            (, uint256 locked,) = sm.locksOf(v);
            assertEq(locked, r.mode[j] == HIDES ? cut : 0, "withheld vote still locked after finalize");
            assertEq(sm.stakeOf(v), r.st[j], "finalize slashes nobody");
            assertEq(ext.withheldStakeOf(r.jobId, 1, v), r.mode[j] == HIDES ? r.st[j] : 0, "withheld vote recorded");
            if (r.mode[j] == HIDES) {
                ext.slashWithheldVote(r.jobId, 1, v);
                _slashed(r, cut);
                assertEq(ext.withheldStakeOf(r.jobId, 1, v), 0, "cleared by its slash");
            }
            vm.expectRevert(ITrainingCoordinator.NothingToSlash.selector);
            ext.slashWithheldVote(r.jobId, 1, v);
            uint256 expected = r.mode[j] == HIDES ? r.st[j] - cut : r.st[j];
            assertEq(sm.stakeOf(v), expected, "validator stake after slashes");
            (uint256 held, uint256 lockedAfter,) = sm.locksOf(v);
            assertEq(lockedAfter, 0, "no vote lock left");
            assertEq(held, p.absenceSlashAmount, "bond");
            // A member that committed in round 1 keeps its seat while round 1 is still the current one (its vote
            // is pending until the round moves on); the others have missed at most one round.
            (uint256 current,) = coord.phaseOf(r.jobId);
            bool committed = r.mode[j] == VOTES || r.mode[j] == HIDES;
            if (committed && current == 1) {
                vm.expectRevert(ITrainingCoordinator.VotePending.selector);
            } else {
                uint256 missed = r.mode[j] == VOTES ? 0 : 1;
                vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.NotAbsent.selector, missed, p.maxMissedRounds));
            }
            ext.evictAbsentMember(r.jobId, v);
            assertTrue(ext.memberOf(r.jobId, v).position != 0, "seated");
        }
        assertEq(token.balanceOf(BURN), r.burned, "burned");
    }

    /// Members leave with their bond, except while their vote is pending (the round still attesting), and
    /// except those that missed maxMissedRounds − 1 decided rounds, who forfeit it.
    function _leaveCommittee(Round memory r, ITrainingCoordinator.JobParams memory p) internal {
        (uint256 round,) = coord.phaseOf(r.jobId);
        for (uint256 j; j < N_VALIDATORS; ++j) {
            address v = validators[j];
            uint256 before = sm.stakeOf(v);
            vm.prank(v);
            if (round == 1 && (r.mode[j] == VOTES || r.mode[j] == HIDES)) {
                vm.expectRevert(ITrainingCoordinator.VotePending.selector);
                ext.leaveCommittee(r.jobId);
                continue;
            }
            ext.leaveCommittee(r.jobId);
            bool forfeits = r.mode[j] != VOTES && p.maxMissedRounds == 2;
            if (forfeits) _slashed(r, p.absenceSlashAmount);
            assertEq(sm.stakeOf(v), forfeits ? before - p.absenceSlashAmount : before, "stake after leaving");
            (uint256 held,,) = sm.locksOf(v);
            assertEq(held, 0, "bond released or forfeited");
            assertEq(ext.memberOf(r.jobId, v).position, 0, "left");
        }
        assertEq(token.balanceOf(BURN), r.burned, "burned after leaving");
    }

    /// The round's reward is credited from escrow only: equal shares to accepted updates, the validator share
    /// by stake × agreement; nothing for an undecided round. The pool receives no slashed stake.
    function _checkCredits(Round memory r, ITrainingCoordinator.JobParams memory p, uint256 escrow) internal view {
        CoordinatorBase.RoundResult memory res = ext.roundResult(r.jobId, 1);
        uint256 spent;
        if (r.outcome == ITrainingCoordinator.Outcome.Quorum) {
            uint256 budget = p.rewardPerRound;
            uint256 vBudget = (budget * p.validatorShareBps) / BPS;
            uint256 nAcc = _popcount(r.accepted);
            uint256 each = nAcc == 0 ? 0 : (budget - vBudget) / nAcc;
            assertEq(res.workerRewardEach, each, "worker reward each");
            uint256 totalWeight;
            for (uint256 j; j < N_VALIDATORS; ++j) {
                if (r.mode[j] == VOTES) totalWeight += r.st[j] * _agreement(r.bitmap[j], r.accepted, r.n);
            }
            uint256 vPaid;
            for (uint256 j; j < N_VALIDATORS; ++j) {
                uint256 share;
                if (r.mode[j] == VOTES && totalWeight != 0) {
                    share = (vBudget * r.st[j] * _agreement(r.bitmap[j], r.accepted, r.n)) / totalWeight;
                }
                assertEq(ext.memberOf(r.jobId, validators[j]).owed, share, "validator credit");
                vPaid += share;
            }
            assertEq(res.validatorPool, vPaid, "validator pool");
            spent = each * nAcc + vPaid;
            assertLe(spent, p.rewardPerRound, "credits within one round's reward");
        } else {
            assertEq(res.workerRewardEach, 0, "no worker reward");
            assertEq(res.validatorPool, 0, "no validator reward");
            for (uint256 j; j < N_VALIDATORS; ++j) assertEq(ext.memberOf(r.jobId, validators[j]).owed, 0, "no credit");
        }
        assertEq(coord.totalOwed(), spent, "owed");
        assertEq(coord.rewardPool(r.jobId), escrow - spent, "pool: escrow less credits, no slashes");
    }

    /// Rejected updates are slashed once, accepted ones paid once, others released; workers that did not
    /// reveal are slashed once. Every worker ends with no lock and the stake it should have.
    function _settleWorkers(Round memory r, ITrainingCoordinator.JobParams memory p, uint256 nWorkers) internal {
        uint256 each = ext.roundResult(r.jobId, 1).workerRewardEach;
        for (uint256 i; i < nWorkers; ++i) {
            address w = workers[i];
            uint256 expectStake = WORKER_STAKE;
            uint256 paid;
            if (r.revealIndex[i] == 0) {
                ext.slashMissedReveal(r.jobId, 1, w);
                _slashed(r, p.missedRevealSlashAmount);
                expectStake -= p.missedRevealSlashAmount;
                vm.expectRevert(ITrainingCoordinator.NothingToSlash.selector);
                ext.slashMissedReveal(r.jobId, 1, w);
            } else {
                uint256 idx = r.revealIndex[i] - 1;
                assertEq(ext.updateAt(r.jobId, 1, idx).worker, w, "slot order is reveal order");
                if ((r.slashable >> idx) & 1 == 1) {
                    vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.SlashPending.selector, idx));
                    ext.releaseUpdateLock(r.jobId, 1, idx);
                    ext.slashRejectedUpdate(r.jobId, 1, idx);
                    _slashed(r, p.rejectSlashAmount);
                    expectStake -= p.rejectSlashAmount;
                    vm.expectRevert(ITrainingCoordinator.NothingToSlash.selector);
                    ext.slashRejectedUpdate(r.jobId, 1, idx);
                } else if ((r.accepted >> idx) & 1 == 1 && each > 0) {
                    vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.NotYourUpdate.selector, idx));
                    coord.claimUpdateReward(r.jobId, 1, idx);
                    vm.prank(w);
                    coord.claimUpdateReward(r.jobId, 1, idx);
                    paid = each;
                    vm.prank(w);
                    vm.expectRevert(ITrainingCoordinator.AlreadyClaimed.selector);
                    coord.claimUpdateReward(r.jobId, 1, idx);
                } else {
                    if (r.outcome == ITrainingCoordinator.Outcome.Quorum) {
                        vm.expectRevert(ITrainingCoordinator.NothingToSlash.selector);
                    } else {
                        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.RoundNotDecided.selector, 1));
                    }
                    ext.slashRejectedUpdate(r.jobId, 1, idx);
                    if ((r.accepted >> idx) & 1 == 0) {
                        vm.prank(w);
                        vm.expectRevert();
                        coord.claimUpdateReward(r.jobId, 1, idx);
                    }
                    ext.releaseUpdateLock(r.jobId, 1, idx);
                }
                vm.expectRevert(ITrainingCoordinator.NothingToSlash.selector);
                ext.slashMissedReveal(r.jobId, 1, w);
            }
            assertEq(sm.stakeOf(w), expectStake, "worker stake");
            assertEq(sm.freeStakeOf(w), expectStake, "worker lock released");
            assertEq(token.balanceOf(w), paid, "worker paid");
        }
        assertEq(token.balanceOf(BURN), r.burned, "burned after settlement");
        assertEq(token.balanceOf(address(this)), 0, "nobody but the burn address receives slashed stake");
    }

    function _claimValidators(Round memory r) internal {
        for (uint256 j; j < N_VALIDATORS; ++j) {
            uint256 owed = ext.memberOf(r.jobId, validators[j]).owed;
            vm.prank(validators[j]);
            if (owed == 0) {
                vm.expectRevert(ITrainingCoordinator.NothingToClaim.selector);
                ext.claimVoteReward(r.jobId);
            } else {
                ext.claimVoteReward(r.jobId);
            }
            assertEq(token.balanceOf(validators[j]), owed, "validator paid");
        }
        assertEq(coord.totalOwed(), 0, "everything claimed");
    }

    function _checkConservation(uint256 escrow) internal view {
        uint256 held = token.balanceOf(address(sm)) + token.balanceOf(address(coord));
        assertEq(held, sm.totalStake() + sm.totalUnbonding() + coord.rewardPool(1) + coord.totalOwed(), "conservation");
        // Minted: escrow, worker and validator stakes. Every token is in the protocol, paid or burned.
        assertEq(token.totalSupply(), held + token.balanceOf(BURN) + _paidOut(), "supply");
        assertEq(coord.rewardPool(1) + _paidOut(), escrow, "escrow: in the pool or paid to participants");
    }

    function _paidOut() internal view returns (uint256 s) {
        for (uint256 i; i < N_WORKERS; ++i) s += token.balanceOf(workers[i]);
        for (uint256 j; j < N_VALIDATORS; ++j) s += token.balanceOf(validators[j]);
    }
}

/// @notice Whole rounds at the full width: 256 revealed updates (one more committed), sparse and dense votes,
/// through the coordinator's tally against the reference.
contract TrainingCoordinatorFullRoundTest is TallyReference {
    uint256 internal constant N = 257;
    uint256 internal constant K = 5;
    address[] internal workers;
    address[] internal validators;

    function setUp() public {
        _deploy();
        for (uint256 i; i < N; ++i) {
            workers.push(_actor(i));
            _fundAndStake(_actor(i), 5 * ONE);
        }
        for (uint256 j; j < K; ++j) {
            validators.push(_actor(1000 + j));
            _fundAndStake(_actor(1000 + j), (10 + 7 * j) * ONE);
        }
    }

    /// hardhat-config: fuzz.runs = 6
    function testFuzz_fullWidthTally(uint256 seed, uint16 acceptBps) public {
        ITrainingCoordinator.JobParams memory p = _params(uint16(bound(acceptBps, 1, BPS)), 5000);
        uint256 jobId = _createJob(_actor(999), p);
        for (uint256 j; j < K; ++j) {
            vm.prank(validators[j]);
            ext.joinCommittee(jobId);
        }
        _warpTo(p.startTime);
        for (uint256 i; i < N; ++i) assertTrue(_commitUpdate(jobId, 1, workers[i]), "commit");
        _warpTo(_phaseStart(jobId, 1));
        for (uint256 i; i < 256; ++i) assertTrue(_revealUpdate(jobId, 1, workers[i]), "reveal");
        // Slots are taken at reveal: the 257th finds the round full.
        vm.prank(workers[256]);
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.TooManyUpdates.selector, 256));
        coord.revealUpdate(jobId, 1, _digest(jobId, 1, workers[256]), 0x55, 100, _salt(workers[256], 1));

        _warpTo(_phaseStart(jobId, 2));
        uint256[] memory stakes = new uint256[](K);
        uint256[] memory bitmaps = new uint256[](K);
        uint256 total;
        for (uint256 j; j < K; ++j) {
            stakes[j] = sm.stakeOf(validators[j]);
            total += stakes[j];
            bitmaps[j] = _shape(uint256(keccak256(abi.encode(seed, j))), 256);
            // The first voter is always very sparse: a couple of bits after long zero runs.
            if (j == 0) bitmaps[j] = (uint256(1) << (255 - seed % 8)) | (uint256(1) << (8 * (seed % 31) + 3));
            assertTrue(_commitVote(jobId, 1, validators[j], bitmaps[j]), "commit vote");
        }
        _warpTo(_phaseStart(jobId, 3));
        for (uint256 j; j < K; ++j) assertTrue(_revealVote(jobId, 1, validators[j], bitmaps[j]), "reveal vote");
        _warpTo(_phaseStart(jobId, 4));
        coord.finalizeRound(jobId, 1);

        (uint256 acc, uint256 sl) = _refTally(stakes, bitmaps, 256, total, total, p.acceptBps, p.rejectSlashBps);
        CoordinatorBase.RoundResult memory res = ext.roundResult(jobId, 1);
        assertEq(uint256(res.outcome), uint256(ITrainingCoordinator.Outcome.Quorum), "quorum");
        assertEq(res.acceptedBitmap, acc, "accepted bitmap");
        assertEq(res.slashableBitmap, sl, "slashable bitmap");
        assertEq(res.updateCount, 256, "full");
        // The unrevealed commitment of a full round is not slashable: its worker could not have revealed.
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.RoundWasFull.selector, 1));
        ext.slashMissedReveal(jobId, 1, workers[256]);
    }
}

/// @notice Deterministic scenarios of the hardened rules: voiding, pause bounds, expiry, cancellation,
/// displacement, eviction over rounds, duplicate digests.
contract TrainingCoordinatorScenarioTest is ProtocolHarness {
    address internal sponsor = _actor(999);
    address[] internal workers;
    address[] internal validators;

    function setUp() public {
        _deploy();
        for (uint256 i; i < 4; ++i) {
            workers.push(_actor(i));
            _fundAndStake(_actor(i), 5 * ONE);
        }
        for (uint256 j; j < 3; ++j) {
            validators.push(_actor(100 + j));
            _fundAndStake(_actor(100 + j), (20 + 10 * j) * ONE);
        }
    }

    function _job(ITrainingCoordinator.JobParams memory p) internal returns (uint256 jobId) {
        jobId = _createJob(sponsor, p);
        for (uint256 j; j < validators.length; ++j) {
            vm.prank(validators[j]);
            ext.joinCommittee(jobId);
        }
    }

    /// @dev One round: every worker commits and reveals, validators in `voters` vote to accept everything,
    /// those in `hiders` commit and hide. Warps to the finalize phase (plus `late`) without finalizing.
    function _round(uint256 jobId, uint256 voters, uint256 hiders, uint256 late) internal returns (uint256 round) {
        (round,) = coord.phaseOf(jobId);
        _warpTo(_phaseStart(jobId, 0));
        for (uint256 i; i < workers.length; ++i) assertTrue(_commitUpdate(jobId, round, workers[i]), "commit");
        _warpTo(_phaseStart(jobId, 1));
        for (uint256 i; i < workers.length; ++i) assertTrue(_revealUpdate(jobId, round, workers[i]), "reveal");
        _warpTo(_phaseStart(jobId, 2));
        for (uint256 j; j < validators.length; ++j) {
            if ((voters | hiders) >> j & 1 == 1) assertTrue(_commitVote(jobId, round, validators[j], 0xf), "vote");
        }
        _warpTo(_phaseStart(jobId, 3));
        for (uint256 j; j < validators.length; ++j) {
            if (voters >> j & 1 == 1) assertTrue(_revealVote(jobId, round, validators[j], 0xf), "reveal vote");
        }
        _warpTo(_phaseStart(jobId, 4) + late);
    }

    /// Finalized at or after the slash deadline, a round is voided: nobody is slashed or paid, hidden votes'
    /// and commitments' locks expire with it, and the next round opens.
    function test_finalizeAfterSlashDeadlineVoids() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        uint256 round = _round(jobId, 0x3, 0x4, p.slashWindow); // exactly at the deadline
        assertEq(_now(), ext.slashDeadlineOf(jobId, round), "at the deadline");
        uint256 st2 = sm.stakeOf(validators[2]);
        coord.finalizeRound(jobId, round);
        CoordinatorBase.RoundResult memory res = ext.roundResult(jobId, round);
        assertEq(uint256(res.outcome), uint256(ITrainingCoordinator.Outcome.Voided), "voided");
        assertEq(res.acceptedBitmap, 0, "nothing accepted");
        assertEq(sm.stakeOf(validators[2]), st2, "hidden vote not slashed");
        assertEq(sm.freeStakeOf(validators[2]), st2 - p.absenceSlashAmount, "its lock expired");
        assertEq(coord.totalOwed(), 0, "nothing credited");
        for (uint256 i; i < workers.length; ++i) assertEq(sm.freeStakeOf(workers[i]), 5 * ONE, "worker locks expired");
        (uint256 r2,) = coord.phaseOf(jobId);
        assertEq(r2, round + 1, "next round");
        assertEq(ext.jobState(jobId).idleRounds, 1, "undecided");
        vm.expectRevert(ITrainingCoordinator.NothingToSlash.selector);
        ext.slashWithheldVote(jobId, round, validators[2]);
    }

    /// One second before the deadline, the same round is decided; its withheld votes are slashable until the
    /// deadline and not after; their locks expire then.
    function test_finalizeJustBeforeDeadlineDecides() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        uint256 round = _round(jobId, 0x1, 0x6, p.slashWindow - 1);
        uint256 st1 = sm.stakeOf(validators[1]);
        uint256 st2 = sm.stakeOf(validators[2]);
        coord.finalizeRound(jobId, round);
        assertEq(uint256(ext.roundResult(jobId, round).outcome), uint256(ITrainingCoordinator.Outcome.Quorum), "decided");
        assertEq(sm.stakeOf(validators[2]), st2, "finalize slashes nobody");
        ext.slashWithheldVote(jobId, round, validators[2]);
        assertEq(sm.stakeOf(validators[2]), st2 - (st2 * p.missedVoteSlashBps) / BPS, "withheld vote slashed");
        assertEq(token.balanceOf(BURN), (st2 * p.missedVoteSlashBps) / BPS, "burned");
        // At the deadline the window is over, and the other withheld vote's lock has expired.
        vm.warp(_now() + 1);
        uint48 deadline = ext.slashDeadlineOf(jobId, round);
        assertEq(_now(), deadline, "at the deadline");
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.SlashWindowOver.selector, deadline));
        ext.slashWithheldVote(jobId, round, validators[1]);
        assertEq(sm.freeStakeOf(validators[1]), st1 - p.absenceSlashAmount, "lock expired with the window");
    }

    /// A round that overlapped a pause is voided; the guardian cannot pause again before the cooldown; a pause
    /// ends on its own after MAX_PAUSE.
    function test_pauseVoidsOverlappingRoundAndIsBounded() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        _warpTo(p.startTime + 1);
        coord.pause();
        assertTrue(coord.paused(), "paused");
        vm.expectRevert(BoundedPausable.EnforcedPause.selector);
        coord.commitUpdate(jobId, 1, bytes32(uint256(99)));
        vm.prank(validators[0]);
        vm.expectRevert(abi.encodeWithSelector(BoundedPausable.NotGuardian.selector, validators[0]));
        coord.unpause();
        vm.warp(_now() + 10);
        coord.unpause();
        uint256 unpausedAt = _now();
        vm.expectRevert(abi.encodeWithSelector(BoundedPausable.PauseCooldown.selector, uint48(unpausedAt + 7 days)));
        coord.pause();
        // The rest of round 1 is played normally; it still overlapped the pause.
        for (uint256 i; i < workers.length; ++i) assertTrue(_commitUpdate(jobId, 1, workers[i]), "commit");
        _warpTo(_phaseStart(jobId, 4));
        coord.finalizeRound(jobId, 1);
        assertEq(uint256(ext.roundResult(jobId, 1).outcome), uint256(ITrainingCoordinator.Outcome.Voided), "voided");
        // Voided rounds do not slash missed reveals either.
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.RoundVoided.selector, 1));
        ext.slashMissedReveal(jobId, 1, workers[0]);
        // After the cooldown the guardian may pause again; without an unpause the pause ends after MAX_PAUSE.
        vm.warp(unpausedAt + 7 days);
        coord.pause();
        vm.warp(_now() + 7 days - 1);
        assertTrue(coord.paused(), "still paused");
        vm.warp(_now() + 1);
        assertTrue(!coord.paused(), "pause ran out");
    }

    /// After maxIdleRounds undecided rounds in a row (here: quorum but no update, NoUpdates) the job expires;
    /// the sponsor takes the whole escrow back; members leave with their bonds.
    function test_jobExpiresAfterIdleRounds() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        for (uint256 k; k < p.maxIdleRounds; ++k) {
            (uint256 round,) = coord.phaseOf(jobId);
            _warpTo(_phaseStart(jobId, 2));
            for (uint256 j; j < validators.length; ++j) assertTrue(_commitVote(jobId, round, validators[j], 0), "vote");
            _warpTo(_phaseStart(jobId, 3));
            for (uint256 j; j < validators.length; ++j) assertTrue(_revealVote(jobId, round, validators[j], 0), "reveal");
            _warpTo(_phaseStart(jobId, 4));
            coord.finalizeRound(jobId, round);
            assertEq(uint256(ext.roundResult(jobId, round).outcome), uint256(ITrainingCoordinator.Outcome.NoUpdates), "no updates");
            assertEq(ext.jobState(jobId).idleRounds, k + 1, "idle rounds");
        }
        (, ITrainingCoordinator.Phase phase) = coord.phaseOf(jobId);
        assertEq(uint256(phase), uint256(ITrainingCoordinator.Phase.Expired), "expired");
        assertEq(ext.jobState(jobId).completedRounds, 0, "nothing paid");
        uint256 escrow = uint256(p.rewardPerRound) * p.numRounds;
        vm.prank(sponsor);
        ext.withdrawRemainder(jobId);
        assertEq(token.balanceOf(sponsor), escrow, "escrow back");
        for (uint256 j; j < validators.length; ++j) {
            vm.prank(validators[j]);
            ext.leaveCommittee(jobId);
            (uint256 held,,) = sm.locksOf(validators[j]);
            assertEq(held, 0, "bond released");
        }
    }

    /// @dev Plays the current round with no update: validators in `voters` commit and reveal an empty vote.
    function _emptyRound(uint256 jobId, uint256 voters) internal returns (uint256 round) {
        (round,) = coord.phaseOf(jobId);
        _warpTo(_phaseStart(jobId, 2));
        for (uint256 j; j < validators.length; ++j) {
            if (voters >> j & 1 == 1) assertTrue(_commitVote(jobId, round, validators[j], 0), "vote");
        }
        _warpTo(_phaseStart(jobId, 3));
        for (uint256 j; j < validators.length; ++j) {
            if (voters >> j & 1 == 1) assertTrue(_revealVote(jobId, round, validators[j], 0), "reveal vote");
        }
        _warpTo(_phaseStart(jobId, 4));
        coord.finalizeRound(jobId, round);
    }

    /// Members that revealed nothing in maxMissedRounds decided rounds stop counting towards quorum (unless
    /// they commit again) and anyone may evict them, burning their bond; before that, eviction is refused.
    /// The job expires after maxIdleRounds undecided rounds.
    function test_absentMembersStopCountingAndAreEvicted() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        p.maxMissedRounds = 2;
        p.maxIdleRounds = 4;
        uint256 jobId = _job(p);
        _emptyRound(jobId, 0); // round 1: nobody votes
        assertEq(uint256(ext.roundResult(jobId, 1).outcome), uint256(ITrainingCoordinator.Outcome.NoQuorum), "r1");
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.NotAbsent.selector, 1, 2));
        ext.evictAbsentMember(jobId, validators[0]);
        _emptyRound(jobId, 0); // round 2: nobody votes; everyone still counts (one round missed before it)
        assertEq(ext.roundResult(jobId, 2).committeeStake, 90 * ONE, "r2 committee");
        uint256 st0 = sm.stakeOf(validators[0]);
        ext.evictAbsentMember(jobId, validators[0]);
        assertEq(ext.memberOf(jobId, validators[0]).position, 0, "evicted");
        assertEq(sm.stakeOf(validators[0]), st0 - p.absenceSlashAmount, "bond slashed");
        assertEq(token.balanceOf(BURN), p.absenceSlashAmount, "and burned");
        (uint256 held,,) = sm.locksOf(validators[0]);
        assertEq(held, 0, "no hold left");
        vm.expectRevert(ITrainingCoordinator.NotInCommittee.selector);
        ext.evictAbsentMember(jobId, validators[0]);
        // Round 3: validator 1 is back (commits), validator 2 stays away and no longer counts.
        _emptyRound(jobId, 0x2);
        CoordinatorBase.RoundResult memory res = ext.roundResult(jobId, 3);
        assertEq(res.committeeStake, 30 * ONE, "absent member excluded, returning member counted");
        assertEq(uint256(res.outcome), uint256(ITrainingCoordinator.Outcome.NoUpdates), "quorum of the present");
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.NotAbsent.selector, 0, 2));
        ext.evictAbsentMember(jobId, validators[1]);
        ext.evictAbsentMember(jobId, validators[2]);
        assertEq(ext.committeeOf(jobId).length, 1, "one seat left");
        _emptyRound(jobId, 0); // round 4: undecided again; the fourth idle round in a row ends the job
        (, ITrainingCoordinator.Phase phase) = coord.phaseOf(jobId);
        assertEq(uint256(phase), uint256(ITrainingCoordinator.Phase.Expired), "expired");
        vm.prank(validators[1]);
        ext.leaveCommittee(jobId);
        (held,,) = sm.locksOf(validators[1]);
        assertEq(held, 0, "bond released on leaving an ended job");
        assertEq(sm.stakeOf(validators[1]), 30 * ONE, "not slashed");
    }

    /// Once a job has ended nobody is evicted (the cancelled round, never played, is no missed round):
    /// members leave freely with their bond.
    function test_noEvictionOnceJobEnded() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        p.maxMissedRounds = 2;
        uint256 jobId = _job(p);
        _emptyRound(jobId, 0x6); // validator 0 misses round 1
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.NotAbsent.selector, 1, 2));
        ext.evictAbsentMember(jobId, validators[0]);
        vm.prank(sponsor);
        ext.cancelJob(jobId); // round 2 never plays
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.JobNotActive.selector, jobId));
        ext.evictAbsentMember(jobId, validators[0]);
        uint256 st0 = sm.stakeOf(validators[0]);
        vm.prank(validators[0]);
        ext.leaveCommittee(jobId);
        assertEq(sm.stakeOf(validators[0]), st0, "bond released, not forfeited");
        (uint256 held,,) = sm.locksOf(validators[0]);
        assertEq(held, 0, "no hold");
    }

    /// Leaving after missing maxMissedRounds − 1 decided rounds forfeits the bond (leave-and-rejoin would
    /// otherwise dodge eviction); leaving right after a revealed round releases it.
    function test_leaveAfterMissedRoundForfeitsBond() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        p.maxMissedRounds = 2;
        uint256 jobId = _job(p);
        _emptyRound(jobId, 0x6); // validator 0 misses round 1
        uint256 st0 = sm.stakeOf(validators[0]);
        vm.prank(validators[0]);
        ext.leaveCommittee(jobId);
        assertEq(sm.stakeOf(validators[0]), st0 - p.absenceSlashAmount, "bond forfeited");
        uint256 st1 = sm.stakeOf(validators[1]);
        vm.prank(validators[1]);
        ext.leaveCommittee(jobId);
        assertEq(sm.stakeOf(validators[1]), st1, "bond released");
        (uint256 held,,) = sm.locksOf(validators[1]);
        assertEq(held, 0, "no hold");
        // Rejoining restarts the count only from the next round.
        vm.prank(validators[0]);
        ext.joinCommittee(jobId);
        assertEq(ext.memberOf(jobId, validators[0]).eligibleFrom, 3, "eligible from round 3");
    }

    /// A full committee seats a higher-staked joiner in place of its lowest member, releasing that bond;
    /// a joiner with no more stake than the lowest is refused.
    function test_displacementOfLowestSeat() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        p.maxValidators = 3;
        uint256 jobId = _job(p);
        address low = _actor(200);
        _fundAndStake(low, 20 * ONE); // equal to the lowest member
        vm.prank(low);
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.CommitteeFull.selector, 3));
        ext.joinCommittee(jobId);
        address high = _actor(201);
        _fundAndStake(high, 25 * ONE);
        vm.prank(high);
        ext.joinCommittee(jobId);
        assertEq(ext.memberOf(jobId, validators[0]).position, 0, "lowest displaced");
        (uint256 held,,) = sm.locksOf(validators[0]);
        assertEq(held, 0, "displaced bond released");
        assertTrue(ext.memberOf(jobId, high).position != 0, "joiner seated");
        assertEq(ext.committeeOf(jobId).length, 3, "still full");
    }

    /// The same update digest is refused in a later round of the same job (never paid twice).
    function test_duplicateDigestRefused() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        uint256 round = _round(jobId, 0, 0, 0);
        coord.finalizeRound(jobId, round); // no quorum: round 2 opens
        for (uint256 i; i < workers.length; ++i) ext.releaseUpdateLock(jobId, round, i);
        bytes32 digest = _digest(jobId, 1, workers[0]);
        bytes32 c = coord.updateCommitment(jobId, 2, workers[0], digest, 0x55, 100, bytes32(0));
        vm.prank(workers[0]);
        coord.commitUpdate(jobId, 2, c);
        _warpTo(_phaseStart(jobId, 1));
        vm.prank(workers[0]);
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.DuplicateUpdate.selector, digest));
        coord.revealUpdate(jobId, 2, digest, 0x55, 100, bytes32(0));
    }

    /// The sponsor may cancel only before the round's first commitment; the escrow comes back whole.
    function test_cancelBeforeCommitments() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        vm.prank(validators[0]);
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.NotSponsor.selector, jobId));
        ext.cancelJob(jobId);
        _warpTo(p.startTime);
        assertTrue(_commitUpdate(jobId, 1, workers[0]), "commit");
        vm.prank(sponsor);
        vm.expectRevert(abi.encodeWithSelector(ITrainingCoordinator.JobHasCommitments.selector, jobId));
        ext.cancelJob(jobId);

        uint256 job2 = _job(_params(6000, 6000));
        vm.prank(sponsor);
        ext.cancelJob(job2);
        vm.prank(sponsor);
        ext.withdrawRemainder(job2);
        assertEq(token.balanceOf(sponsor), uint256(p.rewardPerRound) * p.numRounds, "escrow back");
        vm.prank(validators[0]);
        ext.leaveCommittee(job2);
    }

    /// A member with a vote in the current round may not leave (nor be displaced) until the round moves on.
    function test_leaveRefusedWhileVotePending() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        uint256 jobId = _job(p);
        uint256 round = _round(jobId, 0x7, 0, 0);
        vm.prank(validators[0]);
        vm.expectRevert(ITrainingCoordinator.VotePending.selector);
        ext.leaveCommittee(jobId);
        coord.finalizeRound(jobId, round);
        vm.prank(validators[0]);
        vm.expectRevert(ITrainingCoordinator.VotePending.selector);
        ext.leaveCommittee(jobId); // attesting
        vm.warp(_now() + p.attestPeriod);
        coord.skipAttestation(jobId, round);
        vm.prank(validators[0]);
        ext.leaveCommittee(jobId);
        // Rejoining during round 2 counts from round 3.
        vm.prank(validators[0]);
        ext.joinCommittee(jobId);
        assertEq(ext.memberOf(jobId, validators[0]).eligibleFrom, round + 2, "eligible from the next round");
    }

    /// The stake manager refuses anyone but the coordinator, and the extension refuses direct calls.
    function test_extensionOnlyByDelegation() public {
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        (bool ok, bytes memory ret) = coord.extension().call(abi.encodeCall(ext.createJob, (p)));
        assertTrue(!ok, "direct call refused");
        assertEq(bytes32(ret), bytes32(bytes4(keccak256("NotDelegated()"))), "NotDelegated");
        vm.expectRevert(abi.encodeWithSelector(IStakeManager.NotCoordinator.selector, address(this)));
        sm.hold(workers[0], 1, 0);
    }
}
