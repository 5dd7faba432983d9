// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ITrainingCoordinator} from "../../contracts/interfaces/ITrainingCoordinator.sol";
import {IStakeManager} from "../../contracts/interfaces/IStakeManager.sol";
import {CoordinatorBase} from "../../contracts/coordinator/CoordinatorBase.sol";
import {Committee} from "../../contracts/libraries/Committee.sol";
import {Vm} from "./Vm.sol";
import {ProtocolHarness} from "./ProtocolHarness.sol";

/// @notice Random sequences of protocol actions over several concurrent jobs that share their stakers: jobs
/// with short and long phases (each round shorter than the 7-day unbonding), committee joins, leaves,
/// rejoins and displacements, rounds advanced phase by phase or whole, late finalizes (voided rounds),
/// attestation or its expiry, claims, lock releases and slashes, staking, unstaking and withdrawing, the
/// guardian's bounded pause, cancellation, expiry and sponsor refunds.
/// @dev The handler never reverts on a protocol call: every call's success or revert is counted per action.
/// It keeps a ledger from the events of every action (recorded with `recordLogs`) and counts violations of
/// per-call properties; the invariant test reads them.
contract ProtocolHandler is ProtocolHarness {
    uint256 internal constant N_WORKERS = 6;
    uint256 internal constant N_VALIDATORS = 5;
    uint256 internal constant MAX_LIVE_JOBS = 3;

    // Actions, for the per-action counters.
    uint256 public constant A_CREATE = 0;
    uint256 public constant A_JOIN = 1;
    uint256 public constant A_LEAVE = 2;
    uint256 public constant A_COMMIT = 3;
    uint256 public constant A_REVEAL = 4;
    uint256 public constant A_VOTE_COMMIT = 5;
    uint256 public constant A_VOTE_REVEAL = 6;
    uint256 public constant A_FINALIZE = 7;
    uint256 public constant A_ATTEST = 8;
    uint256 public constant A_SKIP_ATTEST = 9;
    uint256 public constant A_CLAIM_UPDATE = 10;
    uint256 public constant A_CLAIM_VOTE = 11;
    uint256 public constant A_RELEASE_LOCK = 12;
    uint256 public constant A_SLASH_REJECTED = 13;
    uint256 public constant A_SLASH_MISSED = 14;
    uint256 public constant A_CANCEL = 15;
    uint256 public constant A_REFUND = 16;
    uint256 public constant A_PAUSE = 17;
    uint256 public constant A_UNPAUSE = 18;
    uint256 public constant A_STAKE = 19;
    uint256 public constant A_UNSTAKE = 20;
    uint256 public constant A_WITHDRAW = 21;
    uint256 public constant A_SLASH_WITHHELD = 22;
    uint256 public constant A_EVICT = 23;
    uint256 public constant N_ACTIONS = 24;

    mapping(uint256 action => uint256) public succeeded;
    mapping(uint256 action => uint256) public reverted;
    mapping(uint256 outcome => uint256) public outcomes;
    uint256 public handlerCalls;
    mapping(bytes4 selector => uint256) public callsOf; // handler calls per entry point
    uint256 public evictions;
    uint256 public displacements;
    uint256 public expiredJobs;
    uint256 public completedJobs;
    uint256 public modelsAccepted;
    uint256 public pausedAt; // start of the last pause

    address[] public workers;
    address[] public validators;
    address[2] internal sponsors = [_actor(777), _actor(778)];
    uint256[] public jobs; // every job created
    uint256[] internal live; // jobs created and not yet seen terminal

    // Ledger, from events.
    mapping(uint256 jobId => uint256) public escrowOf;
    mapping(uint256 jobId => uint256) public creditedOf;
    mapping(uint256 jobId => uint256) public claimedOf;
    mapping(uint256 jobId => uint256) public withdrawnOf;
    mapping(uint256 jobId => mapping(address => uint256)) public voteCredited;
    mapping(uint256 jobId => mapping(address => uint256)) public voteClaimed;
    uint256 public burnedTotal; // Σ slashed per the stake manager's Slashed events
    uint256 public slashAppliedTotal; // Σ SlashApplied amounts (coordinator)
    uint256 public slashedTotal; // Σ Slashed.slashed (stake manager)
    uint256 public validatorPoolTotal; // Σ RoundFinalized.validatorPool
    uint256 public voteCreditTotal; // Σ ValidatorRewardCredited
    mapping(uint256 reason => uint256) public slashesByReason;

    // Violations of per-call properties (each must stay 0).
    uint256 public doublePaid; // an update paid twice
    uint256 public paidUnaccepted; // an update paid that its round did not accept
    uint256 public paidWrongAmount; // a claim that moved other than workerRewardEach
    uint256 public paidAndSlashed; // an update both paid and slashed
    uint256 public doubleSlashed; // one offence slashed twice
    uint256 public slashedUnslashable; // a slash of an update not rejected, a revealed commitment or a revealed vote
    uint256 public slashOver; // a slash above its configured amount
    uint256 public slashShort; // a slash below its configured amount (a lock failed to back it)
    uint256 public undecidedPaid; // a round that is not Quorum credited or decided something
    uint256 public decidedWithoutQuorum; // a Quorum round below its quorum, or with overlapping bitmaps
    uint256 public roundOverCredited; // a round credited more than rewardPerRound
    uint256 public voteClaimWrong; // a vote claim paying other than what was owed
    uint256 public phaseReopened; // a round's phase went back (early closing must never reopen a phase)
    mapping(uint256 jobId => uint256) internal seenRound;
    mapping(uint256 jobId => uint256) internal seenPhase;
    /// Counted, not asserted (a known issue): evictions of a member with a vote in the job's current round,
    /// which `evictAbsentMember` allows and which drop that vote from the round's tally.
    uint256 public evictedWithPendingVote;

    // Per round state the handler needs to drive it.
    mapping(bytes32 => bytes32) internal committedDigest; // (job, round, worker) → digest committed
    mapping(bytes32 => uint256) internal votedBitmap; // (job, round, validator) → bitmap committed
    mapping(bytes32 => bool) internal voteCommitted; // (job, round, validator)
    mapping(bytes32 => bool) internal voteRevealed; // (job, round, validator)
    mapping(bytes32 => bool) internal paid;
    mapping(bytes32 => bool) internal slashed;

    constructor() {
        _deploy();
        for (uint256 i; i < N_WORKERS; ++i) {
            workers.push(_actor(i));
            _fundAndStake(_actor(i), 20 * ONE);
        }
        for (uint256 j; j < N_VALIDATORS; ++j) {
            validators.push(_actor(100 + j));
            _fundAndStake(_actor(100 + j), (30 + 40 * j) * ONE);
        }
    }

    // ------------------------------------------------------------------ views for the invariant test

    function contracts() external view returns (address, address, address) {
        return (address(token), address(sm), address(coord));
    }

    function jobsLength() external view returns (uint256) {
        return jobs.length;
    }

    function stakers() external view returns (address[] memory all) {
        all = new address[](N_WORKERS + N_VALIDATORS);
        for (uint256 i; i < N_WORKERS; ++i) all[i] = workers[i];
        for (uint256 j; j < N_VALIDATORS; ++j) all[N_WORKERS + j] = validators[j];
    }

    function validatorList() external view returns (address[] memory) {
        return validators;
    }

    function totalSucceeded() public view returns (uint256 s) {
        for (uint256 a; a < N_ACTIONS; ++a) s += succeeded[a];
    }

    function totalReverted() public view returns (uint256 s) {
        for (uint256 a; a < N_ACTIONS; ++a) s += reverted[a];
    }

    function violations() external view returns (string memory) {
        if (phaseReopened != 0) return "a round's phase went back";
        if (doublePaid != 0) return "update paid twice";
        if (paidUnaccepted != 0) return "unaccepted update paid";
        if (paidWrongAmount != 0) return "update paid a wrong amount";
        if (paidAndSlashed != 0) return "update paid and slashed";
        if (doubleSlashed != 0) return "offence slashed twice";
        if (slashedUnslashable != 0) return "unslashable update slashed";
        if (slashOver != 0) return "slash above its configured amount";
        if (slashShort != 0) return "slash below its configured amount";
        if (undecidedPaid != 0) return "undecided round credited or decided";
        if (decidedWithoutQuorum != 0) return "round decided without quorum";
        if (roundOverCredited != 0) return "round credited above rewardPerRound";
        if (voteClaimWrong != 0) return "vote claim paid other than owed";
        return "";
    }

    // ------------------------------------------------------------------ helpers

    function _count(uint256 action, bool ok) internal {
        if (ok) ++succeeded[action];
        else ++reverted[action];
    }

    function _begin() internal {
        ++handlerCalls;
        ++callsOf[msg.sig];
        vm.recordLogs();
    }

    function _key(uint256 jobId, uint256 round, uint256 x) internal pure returns (bytes32) {
        return keccak256(abi.encode(jobId, round, x));
    }

    function _keyA(uint256 jobId, uint256 round, address a) internal pure returns (bytes32) {
        return keccak256(abi.encode(jobId, round, a));
    }

    function _rand(uint256 seed, uint256 salt) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, salt)));
    }

    /// @dev A job to act on: one still active if any (preferring the seed's pick), else any job.
    function _pickJob(uint256 seed) internal returns (uint256) {
        // Drop jobs that are no longer active from the live list.
        for (uint256 i = live.length; i > 0; --i) {
            if (ext.jobState(live[i - 1]).status != ITrainingCoordinator.JobStatus.Active) {
                live[i - 1] = live[live.length - 1];
                live.pop();
            }
        }
        if (live.length != 0) return live[seed % live.length];
        if (jobs.length != 0) return jobs[seed % jobs.length];
        return 0;
    }

    function _anyJob(uint256 seed) internal view returns (uint256) {
        return jobs.length == 0 ? 0 : jobs[seed % jobs.length];
    }

    // ------------------------------------------------------------------ ledger from events

    function _end() internal {
        // Within a round the phase only moves forward, whoever acted and whatever the clock did.
        for (uint256 i; i < jobs.length; ++i) {
            (uint256 round, ITrainingCoordinator.Phase ph) = coord.phaseOf(jobs[i]);
            if (round == seenRound[jobs[i]] && uint256(ph) < seenPhase[jobs[i]]) ++phaseReopened;
            (seenRound[jobs[i]], seenPhase[jobs[i]]) = (round, uint256(ph));
        }
        Vm.Log[] memory logs = vm.getRecordedLogs();
        for (uint256 k; k < logs.length; ++k) {
            Vm.Log memory l = logs[k];
            if (l.topics.length == 0) continue;
            bytes32 t0 = l.topics[0];
            if (l.emitter == address(sm)) {
                if (t0 == IStakeManager.Slashed.selector) _onSlashed(l);
                continue;
            }
            if (l.emitter != address(coord)) continue;
            if (t0 == ITrainingCoordinator.SlashApplied.selector) _onSlashApplied(l);
            else if (t0 == ITrainingCoordinator.RoundFinalized.selector) _onFinalized(l);
            else if (t0 == ITrainingCoordinator.ValidatorRewardCredited.selector) {
                uint256 amount = abi.decode(l.data, (uint256));
                voteCredited[uint256(l.topics[1])][address(uint160(uint256(l.topics[3])))] += amount;
                voteCreditTotal += amount;
            } else if (t0 == ITrainingCoordinator.RewardClaimed.selector) {
                uint256 jobId = uint256(l.topics[1]);
                uint256 amount = abi.decode(l.data, (uint256));
                claimedOf[jobId] += amount;
                if (uint256(l.topics[2]) == 0) voteClaimed[jobId][address(uint160(uint256(l.topics[3])))] += amount;
            } else if (t0 == ITrainingCoordinator.RemainderWithdrawn.selector) {
                withdrawnOf[uint256(l.topics[1])] += abi.decode(l.data, (uint256));
            } else if (t0 == ITrainingCoordinator.MemberEvicted.selector) {
                ++evictions;
            } else if (t0 == ITrainingCoordinator.CommitteeDisplaced.selector) {
                ++displacements;
            } else if (t0 == ITrainingCoordinator.JobExpired.selector) {
                ++expiredJobs;
            } else if (t0 == ITrainingCoordinator.JobCompleted.selector) {
                ++completedJobs;
            } else if (t0 == ITrainingCoordinator.ModelAccepted.selector) {
                ++modelsAccepted;
            }
        }
    }

    function _onSlashed(Vm.Log memory l) internal {
        (uint256 requested, uint256 taken) = abi.decode(l.data, (uint256, uint256));
        if (taken != requested) ++slashShort;
        slashedTotal += taken;
        burnedTotal += taken;
    }

    function _onSlashApplied(Vm.Log memory l) internal {
        uint256 jobId = uint256(l.topics[1]);
        uint256 round = uint256(l.topics[2]);
        address account = address(uint160(uint256(l.topics[3])));
        (uint8 reason, uint256 amount) = abi.decode(l.data, (uint8, uint256));
        CoordinatorBase.JobConfig memory c = ext.jobConfig(jobId);
        uint256 configured;
        if (reason == uint8(ITrainingCoordinator.SlashReason.RejectedUpdate)) configured = c.rejectSlashAmount;
        else if (reason == uint8(ITrainingCoordinator.SlashReason.MissedUpdateReveal)) configured = c.missedRevealSlashAmount;
        else if (reason == uint8(ITrainingCoordinator.SlashReason.Absence)) configured = c.absenceSlashAmount;
        else {
            // A hidden vote: missedVoteSlashBps of the voter's weight, its stake at the round's start.
            uint48 start = ext.roundResult(jobId, round).start;
            configured = (sm.stakeAt(account, start - 1) * c.missedVoteSlashBps) / BPS;
            bytes32 k = _keyA(jobId, round, account);
            if (slashed[keccak256(abi.encode("vote", k))]) ++doubleSlashed;
            slashed[keccak256(abi.encode("vote", k))] = true;
        }
        if (amount > configured) ++slashOver;
        if (amount < configured) ++slashShort;
        slashesByReason[reason] += 1;
        slashAppliedTotal += amount;
    }

    function _onFinalized(Vm.Log memory l) internal {
        uint256 jobId = uint256(l.topics[1]);
        (
            uint8 outcome,
            uint256 accepted,
            uint256 slashable,
            uint256 committeeStake,
            uint256 committedStake,
            uint256 revealedStake,
            uint256 each,
            uint256 vPool
        ) = abi.decode(l.data, (uint8, uint256, uint256, uint256, uint256, uint256, uint256, uint256));
        ++outcomes[outcome];
        CoordinatorBase.JobConfig memory c = ext.jobConfig(jobId);
        if (outcome == uint8(ITrainingCoordinator.Outcome.Quorum)) {
            uint256 credit = each * _popcount(accepted) + vPool;
            creditedOf[jobId] += credit;
            validatorPoolTotal += vPool;
            if (credit > c.rewardPerRound) ++roundOverCredited;
            if (
                committeeStake == 0 || committedStake * BPS < uint256(c.quorumBps) * committeeStake
                    || accepted & slashable != 0 || revealedStake > committedStake
            ) ++decidedWithoutQuorum;
        } else if (accepted != 0 || slashable != 0 || each != 0 || vPool != 0) {
            ++undecidedPaid;
        }
    }

    // ------------------------------------------------------------------ actions: jobs

    function _randomParams(uint256 seed) internal view returns (ITrainingCoordinator.JobParams memory p) {
        p = _params(uint16(bound(_rand(seed, 1), 3000, 9000)), uint16(bound(_rand(seed, 2), 5000, 9000)));
        uint256 kind = seed % 3;
        if (kind == 0) {
            // short: minutes
            p.commitPeriod = uint32(bound(_rand(seed, 3), 30, 600));
            p.revealPeriod = uint32(bound(_rand(seed, 4), 30, 600));
            p.voteCommitPeriod = uint32(bound(_rand(seed, 5), 30, 600));
            p.voteRevealPeriod = uint32(bound(_rand(seed, 6), 30, 600));
            p.slashWindow = uint32(bound(_rand(seed, 7), 60, 3600));
            p.attestPeriod = uint32(bound(_rand(seed, 8), 30, 600));
        } else if (kind == 1) {
            // long: hours to a day each, the round still under the unbonding period (≤ 6 days)
            p.commitPeriod = uint32(bound(_rand(seed, 3), 1 hours, 1 days));
            p.revealPeriod = uint32(bound(_rand(seed, 4), 1 hours, 1 days));
            p.voteCommitPeriod = uint32(bound(_rand(seed, 5), 1 hours, 1 days));
            p.voteRevealPeriod = uint32(bound(_rand(seed, 6), 1 hours, 1 days));
            p.slashWindow = uint32(bound(_rand(seed, 7), 1 hours, 1 days));
            p.attestPeriod = uint32(bound(_rand(seed, 8), 1 hours, 1 days));
        } else {
            // mixed: one phase of up to three days next to minute-long ones; the slash window just under
            // what the unbonding period allows
            p.commitPeriod = uint32(bound(_rand(seed, 3), 60, 3 days));
            p.revealPeriod = uint32(bound(_rand(seed, 4), 30, 600));
            p.voteCommitPeriod = uint32(bound(_rand(seed, 5), 30, 600));
            p.voteRevealPeriod = uint32(bound(_rand(seed, 6), 30, 600));
            p.attestPeriod = uint32(bound(_rand(seed, 8), 30, 1 days));
            uint256 used = uint256(p.commitPeriod) + p.revealPeriod + p.voteCommitPeriod + p.voteRevealPeriod + p.attestPeriod;
            p.slashWindow = uint32(bound(_rand(seed, 7), 60, 7 days - 1 - used));
        }
        p.startTime = uint48(_now() + bound(_rand(seed, 9), 1, 2 hours));
        p.numRounds = uint32(bound(_rand(seed, 10), 1, 4));
        p.maxUpdates = uint16(bound(_rand(seed, 11), 1, 8));
        p.validatorShareBps = uint16(bound(_rand(seed, 12), 0, 5000));
        p.rejectSlashAmount = uint96(2 * ONE);
        p.missedRevealSlashAmount = uint96(bound(_rand(seed, 13), 1, 2) * ONE);
        p.absenceSlashAmount = uint96(bound(_rand(seed, 14), 1, 3) * ONE);
        // Filling every slot with rejected updates must cost the round's worker reward: reward ≤ 2 × maxUpdates.
        p.rewardPerRound = uint96(bound(_rand(seed, 15), ONE, 2 * ONE * p.maxUpdates));
        p.maxValidators = uint16(bound(_rand(seed, 16), 2, 5));
        p.attestBps = uint16(bound(_rand(seed, 17), 5001, 8000));
        p.rejectSlashBps = uint16(bound(_rand(seed, 18), BPS + 1 - p.acceptBps, BPS));
        p.missedVoteSlashBps = uint16(bound(_rand(seed, 19), 100, 3000));
        p.maxMissedRounds = uint16(bound(_rand(seed, 20), 1, 3));
        p.maxIdleRounds = uint16(p.maxMissedRounds + bound(_rand(seed, 21), 1, 3));
        p.initialModelDigest = keccak256(abi.encode("initial", seed));
        // Half the jobs close their commit phase early: at least as many commitments as it takes for their
        // slashes to cover the round's worker reward (createJob's rule), at most maxUpdates.
        if (seed % 2 == 1) {
            uint256 workerReward = p.rewardPerRound - (uint256(p.rewardPerRound) * p.validatorShareBps) / BPS;
            uint256 cheaper = p.missedRevealSlashAmount < p.rejectSlashAmount ? p.missedRevealSlashAmount : p.rejectSlashAmount;
            uint256 least = (workerReward + cheaper - 1) / cheaper;
            if (least <= p.maxUpdates) p.minUpdates = uint16(bound(_rand(seed, 22), least == 0 ? 1 : least, p.maxUpdates));
        }
    }

    function createJob(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        _pickJob(seed); // refreshes the live list
        if (live.length < MAX_LIVE_JOBS) _create(seed);
        _end();
    }

    function _create(uint256 seed) internal {
        ITrainingCoordinator.JobParams memory p = _randomParams(seed);
        address sponsor = sponsors[seed % 2];
        uint256 escrow = uint256(p.rewardPerRound) * p.numRounds;
        token.mint(sponsor, escrow);
        vm.prank(sponsor);
        token.approve(address(coord), escrow);
        vm.prank(sponsor);
        try ext.createJob(p) returns (uint256 jobId) {
            _count(A_CREATE, true);
            jobs.push(jobId);
            live.push(jobId);
            escrowOf[jobId] = escrow;
            // Most validators join at once.
            for (uint256 j; j < N_VALIDATORS; ++j) if (_rand(seed, 200 + j) % 4 != 0) _join(jobId, validators[j]);
        } catch {
            _count(A_CREATE, false); // e.g. paused
        }
    }

    function _join(uint256 jobId, address v) internal {
        vm.prank(v);
        try ext.joinCommittee(jobId) {
            _count(A_JOIN, true);
        } catch {
            _count(A_JOIN, false);
        }
    }

    function join(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _pickJob(seed);
        if (jobId != 0) _join(jobId, validators[(seed >> 8) % N_VALIDATORS]);
        _end();
    }

    function leave(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _anyJob(seed);
        if (jobId != 0) {
            vm.prank(validators[(seed >> 8) % N_VALIDATORS]);
            try ext.leaveCommittee(jobId) {
                _count(A_LEAVE, true);
            } catch {
                _count(A_LEAVE, false);
            }
        }
        _end();
    }

    function cancel(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _pickJob(seed);
        if (jobId != 0) {
            vm.prank(ext.jobConfig(jobId).sponsor);
            try ext.cancelJob(jobId) {
                _count(A_CANCEL, true);
            } catch {
                _count(A_CANCEL, false);
            }
        }
        _end();
    }

    function refund(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _anyJob(seed);
        if (jobId != 0) _refund(jobId);
        _end();
    }

    function _refund(uint256 jobId) internal {
        vm.prank(ext.jobConfig(jobId).sponsor);
        try ext.withdrawRemainder(jobId) {
            _count(A_REFUND, true);
        } catch {
            _count(A_REFUND, false);
        }
    }

    // ------------------------------------------------------------------ actions: rounds

    /// Advances one job by one phase: does the phase's part (random participants) and moves time on.
    function step(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _jobToDrive(seed);
        if (jobId != 0) _step(jobId, seed);
        _end();
    }

    /// Advances one job until its round moves on (or it ends): a whole round.
    function playRound(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _jobToDrive(seed);
        if (jobId != 0) {
            uint256 round0 = ext.jobState(jobId).round;
            for (uint256 k; k < 8; ++k) {
                CoordinatorBase.JobState memory s = ext.jobState(jobId);
                if (s.status != ITrainingCoordinator.JobStatus.Active || s.round != round0) break;
                _step(jobId, _rand(seed, k));
            }
        }
        _end();
    }

    /// @dev A live job to drive, created first if there is none; 0 if none can be created.
    function _jobToDrive(uint256 seed) internal returns (uint256 jobId) {
        if (coord.paused()) {
            // Rounds move on once the pause ends: the guardian lifts it, or its time runs out.
            if (seed % 2 == 0) _unpause();
            else vm.warp(pausedAt + coord.MAX_PAUSE());
        }
        jobId = _pickJob(seed);
        if (live.length == 0) {
            _create(seed);
            jobId = _pickJob(seed);
        }
        if (jobId != 0 && ext.jobState(jobId).status != ITrainingCoordinator.JobStatus.Active) jobId = 0;
    }

    function _step(uint256 jobId, uint256 seed) internal {
        (uint256 round, ITrainingCoordinator.Phase phase) = coord.phaseOf(jobId);
        if (phase == ITrainingCoordinator.Phase.NotStarted) {
            _warpTo(_phaseStart(jobId, 0));
        } else if (phase == ITrainingCoordinator.Phase.Commit) {
            for (uint256 i; i < N_WORKERS; ++i) if (_rand(seed, i) % 8 < 5) _commit(jobId, round, workers[i], seed);
            _warpPhase(jobId, 1, seed);
        } else if (phase == ITrainingCoordinator.Phase.Reveal) {
            for (uint256 i; i < N_WORKERS; ++i) if (_rand(seed, 10 + i) % 8 < 7) _reveal(jobId, round, workers[i]);
            _warpPhase(jobId, 2, seed);
        } else if (phase == ITrainingCoordinator.Phase.VoteCommit) {
            uint256 n = ext.jobState(jobId).revealCount;
            for (uint256 j; j < N_VALIDATORS; ++j) {
                if (_rand(seed, 20 + j) % 8 < 6) _voteCommit(jobId, round, validators[j], _bitmap(_rand(seed, 30 + j), n));
            }
            _warpPhase(jobId, 3, seed);
        } else if (phase == ITrainingCoordinator.Phase.VoteReveal) {
            for (uint256 j; j < N_VALIDATORS; ++j) if (_rand(seed, 40 + j) % 8 < 7) _voteReveal(jobId, round, validators[j]);
            _warpPhase(jobId, 4, seed);
        } else if (phase == ITrainingCoordinator.Phase.Finalize) {
            _finalize(jobId, round);
        } else if (phase == ITrainingCoordinator.Phase.Attest) {
            // Most revealed voters attest one aggregate; some another.
            for (uint256 j; j < N_VALIDATORS; ++j) {
                if (_rand(seed, 50 + j) % 8 == 0) continue;
                bytes32 model = keccak256(abi.encode("model", jobId, round, _rand(seed, 60 + j) % 5 == 0));
                vm.prank(validators[j]);
                try coord.attestModel(jobId, round, model, 0x70) {
                    _count(A_ATTEST, true);
                } catch {
                    _count(A_ATTEST, false);
                }
            }
            if (ext.jobState(jobId).round == round && seed % 2 == 0) {
                _warpTo(ext.jobState(jobId).finalizedAt + ext.jobConfig(jobId).attestPeriod);
            }
        } else if (phase == ITrainingCoordinator.Phase.AttestExpired) {
            try coord.skipAttestation(jobId, round) {
                _count(A_SKIP_ATTEST, true);
            } catch {
                _count(A_SKIP_ATTEST, false);
            }
        }
        // Now and then, time runs on (a late finalize voids the round).
        if (seed % 16 == 0) vm.warp(_now() + bound(seed >> 128, 1, 2 days));
    }

    /// @dev Warps to the start of the job's phase `idx`, plus a little.
    function _warpPhase(uint256 jobId, uint256 idx, uint256 seed) internal {
        _warpTo(_phaseStart(jobId, idx) + (seed >> 64) % 5);
    }

    /// @dev Vote bitmaps from sparse to dense (masked to the reveals).
    function _bitmap(uint256 r, uint256 n) internal pure returns (uint256 b) {
        uint256 mode = r % 4;
        if (mode == 0) b = type(uint256).max;
        else if (mode == 1) b = 0;
        else if (mode == 2) b = r >> 8;
        else b = ~(uint256(1) << ((r >> 8) % 8));
        b &= _lowMask(n);
    }

    function _commit(uint256 jobId, uint256 round, address worker, uint256 seed) internal {
        // Now and then a worker reuses the digest of its update of the previous round: refused at reveal.
        bytes32 digest = round > 1 && _rand(seed, uint160(worker)) % 16 == 0
            ? committedDigest[_keyA(jobId, round - 1, worker)]
            : _digest(jobId, round, worker);
        if (digest == 0) digest = _digest(jobId, round, worker);
        bytes32 c = coord.updateCommitment(jobId, round, worker, digest, 0x55, 100, _salt(worker, round));
        vm.prank(worker);
        try coord.commitUpdate(jobId, round, c) {
            _count(A_COMMIT, true);
            committedDigest[_keyA(jobId, round, worker)] = digest;
        } catch {
            _count(A_COMMIT, false);
        }
    }

    function _reveal(uint256 jobId, uint256 round, address worker) internal {
        bytes32 digest = committedDigest[_keyA(jobId, round, worker)];
        if (digest == 0) return;
        vm.prank(worker);
        try coord.revealUpdate(jobId, round, digest, 0x55, 100, _salt(worker, round)) {
            _count(A_REVEAL, true);
        } catch {
            _count(A_REVEAL, false);
        }
    }

    function _voteCommit(uint256 jobId, uint256 round, address v, uint256 bitmap) internal {
        bytes32 c = coord.voteCommitment(jobId, round, v, bitmap, _salt(v, round));
        vm.prank(v);
        try coord.commitVote(jobId, round, c) {
            _count(A_VOTE_COMMIT, true);
            votedBitmap[_keyA(jobId, round, v)] = bitmap;
            voteCommitted[_keyA(jobId, round, v)] = true;
        } catch {
            _count(A_VOTE_COMMIT, false);
        }
    }

    function _voteReveal(uint256 jobId, uint256 round, address v) internal {
        if (ext.memberOf(jobId, v).commitRound != round) return;
        vm.prank(v);
        try coord.revealVote(jobId, round, votedBitmap[_keyA(jobId, round, v)], _salt(v, round)) {
            _count(A_VOTE_REVEAL, true);
            voteRevealed[_keyA(jobId, round, v)] = true;
        } catch {
            _count(A_VOTE_REVEAL, false);
        }
    }

    function _finalize(uint256 jobId, uint256 round) internal {
        try coord.finalizeRound(jobId, round) {
            _count(A_FINALIZE, true);
            // Daemons settle a decided round at once, most of the time.
            uint256 r = _rand(jobId, _now());
            if (r % 4 != 0) _settle(jobId, round, r);
        } catch {
            _count(A_FINALIZE, false);
        }
    }

    /// Finalizes a job's round now, whatever its phase (too early reverts; too late voids).
    function finalize(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _pickJob(seed);
        if (jobId != 0) _finalize(jobId, ext.jobState(jobId).round);
        _end();
    }

    // ------------------------------------------------------------------ actions: settlement

    /// Claims, releases and slashes everything of one past or current round of a job, for every update and
    /// worker, whether or not it is due: the protocol must refuse what is not.
    function settle(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _anyJob(seed);
        if (jobId != 0) {
            uint256 current = ext.jobState(jobId).round;
            uint256 round = current - ((seed >> 8) % (current < 3 ? current : 3));
            _settle(jobId, round, seed);
        }
        _end();
    }

    function _settle(uint256 jobId, uint256 round, uint256 seed) internal {
        CoordinatorBase.RoundResult memory res = ext.roundResult(jobId, round);
        CoordinatorBase.JobState memory s = ext.jobState(jobId);
        uint256 n = round == s.round && res.outcome == ITrainingCoordinator.Outcome.Pending ? s.revealCount : res.updateCount;
        for (uint256 i; i < n; ++i) {
            bytes32 k = _key(jobId, round, i);
            address w = ext.updateAt(jobId, round, i).worker;
            uint256 action = (seed >> (16 + 2 * i)) % 3;
            if (action == 0) {
                // The worker claims (or, now and then, someone else tries to).
                address caller = _rand(seed, i) % 8 == 0 ? workers[_rand(seed, i + 99) % N_WORKERS] : w;
                uint256 before = token.balanceOf(caller);
                vm.prank(caller);
                try coord.claimUpdateReward(jobId, round, i) {
                    _count(A_CLAIM_UPDATE, true);
                    if (paid[k]) ++doublePaid;
                    if (slashed[k]) ++paidAndSlashed;
                    res = ext.roundResult(jobId, round);
                    if (res.outcome != ITrainingCoordinator.Outcome.Quorum || (res.acceptedBitmap >> i) & 1 == 0 || caller != w) {
                        ++paidUnaccepted;
                    }
                    if (token.balanceOf(caller) - before != res.workerRewardEach) ++paidWrongAmount;
                    paid[k] = true;
                } catch {
                    _count(A_CLAIM_UPDATE, false);
                }
            } else if (action == 1) {
                try ext.slashRejectedUpdate(jobId, round, i) {
                    _count(A_SLASH_REJECTED, true);
                    if (slashed[k]) ++doubleSlashed;
                    if (paid[k]) ++paidAndSlashed;
                    res = ext.roundResult(jobId, round);
                    if (res.outcome != ITrainingCoordinator.Outcome.Quorum || (res.slashableBitmap >> i) & 1 == 0) {
                        ++slashedUnslashable;
                    }
                    slashed[k] = true;
                } catch {
                    _count(A_SLASH_REJECTED, false);
                }
            } else {
                try ext.releaseUpdateLock(jobId, round, i) {
                    _count(A_RELEASE_LOCK, true);
                } catch {
                    _count(A_RELEASE_LOCK, false);
                }
            }
        }
        for (uint256 i; i < N_WORKERS; ++i) {
            if ((seed >> (100 + i)) % 2 == 0) continue;
            bytes32 km = _keyA(jobId, round, workers[i]);
            uint256 slot = uint256(ext.updateCommitmentOf(jobId, round, workers[i]));
            try ext.slashMissedReveal(jobId, round, workers[i]) {
                _count(A_SLASH_MISSED, true);
                if (slashed[km]) ++doubleSlashed;
                if (slot <= 15) ++slashedUnslashable; // only an unrevealed commitment is slashable
                slashed[km] = true;
            } catch {
                _count(A_SLASH_MISSED, false);
            }
        }
        for (uint256 j; j < N_VALIDATORS; ++j) {
            if ((seed >> (120 + j)) % 2 == 0) continue;
            bytes32 kv = _keyA(jobId, round, validators[j]);
            try ext.slashWithheldVote(jobId, round, validators[j]) {
                _count(A_SLASH_WITHHELD, true);
                // Only a vote committed and never revealed is slashable (double slashes: see _onSlashApplied).
                if (!voteCommitted[kv] || voteRevealed[kv]) ++slashedUnslashable;
            } catch {
                _count(A_SLASH_WITHHELD, false);
            }
        }
    }

    /// Anyone evicts a member (refused unless it revealed nothing in maxMissedRounds decided rounds).
    function evict(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _anyJob(seed);
        if (jobId != 0) {
            address v = validators[(seed >> 8) % N_VALIDATORS];
            Committee.Member memory m = ext.memberOf(jobId, v);
            CoordinatorBase.JobState memory s = ext.jobState(jobId);
            try ext.evictAbsentMember(jobId, v) {
                _count(A_EVICT, true);
                if (s.status == ITrainingCoordinator.JobStatus.Active && m.commitRound == s.round) ++evictedWithPendingVote;
            } catch {
                _count(A_EVICT, false);
            }
        }
        _end();
    }

    function claimVotes(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 jobId = _anyJob(seed);
        if (jobId != 0) {
            for (uint256 j; j < N_VALIDATORS; ++j) {
                address v = validators[j];
                uint256 owed = ext.memberOf(jobId, v).owed;
                uint256 before = token.balanceOf(v);
                vm.prank(v);
                try ext.claimVoteReward(jobId) {
                    _count(A_CLAIM_VOTE, true);
                    if (token.balanceOf(v) - before != owed || owed == 0) ++voteClaimWrong;
                } catch {
                    _count(A_CLAIM_VOTE, false);
                }
            }
        }
        _end();
    }

    // ------------------------------------------------------------------ actions: stake, time, pause

    function _anyStaker(uint256 seed) internal view returns (address) {
        return seed % 2 == 0 ? workers[(seed >> 1) % N_WORKERS] : validators[(seed >> 1) % N_VALIDATORS];
    }

    function stake(uint256 seed, uint96 amount) external {
        _begin();
        seed = _rand(seed, 0xA11);
        address who = _anyStaker(seed);
        uint256 a = bound(amount, 1, 50 * ONE);
        token.mint(who, a);
        vm.prank(who);
        token.approve(address(sm), a);
        vm.prank(who);
        try sm.stake(a) {
            _count(A_STAKE, true);
        } catch {
            _count(A_STAKE, false);
        }
        _end();
    }

    /// Unstakes part of the free stake, or (now and then) more than is free: refused.
    function unstake(uint256 seed, uint96 amount) external {
        _begin();
        seed = _rand(seed, 0xA11);
        address who = _anyStaker(seed);
        uint256 free = sm.freeStakeOf(who);
        uint256 a = (seed >> 200) % 8 == 0 ? free + 1 : bound(amount, 1, free == 0 ? 1 : free);
        vm.prank(who);
        try sm.requestUnstake(a) {
            _count(A_UNSTAKE, true);
        } catch {
            _count(A_UNSTAKE, false);
        }
        _end();
    }

    function withdraw(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        // Mostly a staker with something unbonding, if there is one.
        address who = _anyStaker(seed);
        for (uint256 k; k < N_WORKERS + N_VALIDATORS && (seed >> 64) % 4 != 0; ++k) {
            address a = _anyStaker(_rand(seed, k));
            (uint256 u,) = sm.unbondingOf(a);
            if (u != 0) {
                who = a;
                break;
            }
        }
        (uint256 unbonding, uint48 release) = sm.unbondingOf(who);
        if (unbonding != 0 && (seed >> 128) % 2 == 0) _warpTo(release);
        vm.prank(who);
        try sm.withdraw() {
            _count(A_WITHDRAW, true);
        } catch {
            _count(A_WITHDRAW, false);
        }
        _end();
    }

    /// Time runs on: mostly minutes, sometimes hours, now and then more than a week.
    function warp(uint256 seed) external {
        _begin();
        seed = _rand(seed, 0xA11);
        uint256 kind = seed % 10;
        uint256 dt = kind < 6 ? bound(seed >> 8, 1, 1 hours) : kind < 9 ? bound(seed >> 8, 1 hours, 1 days) : bound(seed >> 8, 1 days, 8 days);
        vm.warp(_now() + dt);
        _end();
    }

    /// The guardian (this handler) pauses: refused while paused or cooling down.
    function pause() external {
        _begin();
        try coord.pause() {
            _count(A_PAUSE, true);
            pausedAt = _now();
        } catch {
            _count(A_PAUSE, false);
        }
        _end();
    }

    function unpause() external {
        _begin();
        _unpause();
        _end();
    }

    function _unpause() internal {
        try coord.unpause() {
            _count(A_UNPAUSE, true);
        } catch {
            _count(A_UNPAUSE, false);
        }
    }

    // ------------------------------------------------------------------ liveness (after the run)

    /// After whatever happened, the protocol still works: a fresh job with fresh participants decides a
    /// round, pays it and settles it. Returns the outcome and whether the worker's claim paid.
    function livenessRound() external returns (ITrainingCoordinator.Outcome outcome, bool claimed) {
        _begin();
        if (coord.paused()) coord.unpause();
        address w = _actor(5000);
        address v = _actor(5001);
        _fundAndStake(w, 5 * ONE);
        _fundAndStake(v, 50 * ONE);
        ITrainingCoordinator.JobParams memory p = _params(6000, 6000);
        p.numRounds = 1;
        uint256 jobId = _createJob(sponsors[0], p);
        jobs.push(jobId);
        escrowOf[jobId] = uint256(p.rewardPerRound) * p.numRounds;
        vm.prank(v);
        ext.joinCommittee(jobId);
        _warpTo(p.startTime);
        require(_commitUpdate(jobId, 1, w), "liveness: commit");
        _warpTo(_phaseStart(jobId, 1));
        require(_revealUpdate(jobId, 1, w), "liveness: reveal");
        _warpTo(_phaseStart(jobId, 2));
        require(_commitVote(jobId, 1, v, 1), "liveness: vote");
        _warpTo(_phaseStart(jobId, 3));
        require(_revealVote(jobId, 1, v, 1), "liveness: reveal vote");
        _warpTo(_phaseStart(jobId, 4));
        coord.finalizeRound(jobId, 1);
        outcome = ext.roundResult(jobId, 1).outcome;
        vm.prank(v);
        coord.attestModel(jobId, 1, keccak256("liveness model"), 0x70);
        uint256 before = token.balanceOf(w);
        vm.prank(w);
        coord.claimUpdateReward(jobId, 1, 0);
        claimed = token.balanceOf(w) > before;
        vm.prank(v);
        ext.claimVoteReward(jobId);
        vm.prank(v);
        ext.leaveCommittee(jobId);
        _end();
    }
}

/// @notice Properties of the protocol over random action sequences (see ProtocolHandler).
contract ProtocolInvariantTest is ProtocolHarness {
    ProtocolHandler internal handler;

    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    function setUp() public {
        handler = new ProtocolHandler();
    }

    function targetContracts() public view returns (address[] memory t) {
        t = new address[](1);
        t[0] = address(handler);
    }

    /// @dev The actions only (not the views); round-driving ones listed several times to weigh them up, so
    /// that runs of 48 calls play rounds to their end.
    function targetSelectors() public view returns (FuzzSelector[] memory s) {
        bytes4[] memory sel = new bytes4[](30);
        uint256 k;
        sel[k++] = ProtocolHandler.createJob.selector;
        sel[k++] = ProtocolHandler.createJob.selector;
        sel[k++] = ProtocolHandler.join.selector;
        sel[k++] = ProtocolHandler.leave.selector;
        sel[k++] = ProtocolHandler.cancel.selector;
        sel[k++] = ProtocolHandler.refund.selector;
        sel[k++] = ProtocolHandler.step.selector;
        sel[k++] = ProtocolHandler.step.selector;
        sel[k++] = ProtocolHandler.step.selector;
        sel[k++] = ProtocolHandler.step.selector;
        sel[k++] = ProtocolHandler.playRound.selector;
        sel[k++] = ProtocolHandler.playRound.selector;
        sel[k++] = ProtocolHandler.playRound.selector;
        sel[k++] = ProtocolHandler.playRound.selector;
        sel[k++] = ProtocolHandler.playRound.selector;
        sel[k++] = ProtocolHandler.playRound.selector;
        sel[k++] = ProtocolHandler.finalize.selector;
        sel[k++] = ProtocolHandler.settle.selector;
        sel[k++] = ProtocolHandler.settle.selector;
        sel[k++] = ProtocolHandler.settle.selector;
        sel[k++] = ProtocolHandler.claimVotes.selector;
        sel[k++] = ProtocolHandler.stake.selector;
        sel[k++] = ProtocolHandler.unstake.selector;
        sel[k++] = ProtocolHandler.withdraw.selector;
        sel[k++] = ProtocolHandler.warp.selector;
        sel[k++] = ProtocolHandler.pause.selector;
        sel[k++] = ProtocolHandler.unpause.selector;
        sel[k++] = ProtocolHandler.leave.selector;
        sel[k++] = ProtocolHandler.evict.selector;
        sel[k++] = ProtocolHandler.evict.selector;
        s = new FuzzSelector[](1);
        s[0] = FuzzSelector(address(handler), sel);
    }

    /// Every property, after every call.
    function invariant_protocol() public view {
        _checkViolations();
        _checkTokens();
        _checkJobs();
        _checkStakers();
    }

    function _checkViolations() internal view {
        string memory v = handler.violations();
        if (bytes(v).length != 0) revert(v);
        // A member with a vote in the current round is never evicted (its vote would vanish from the tally).
        if (handler.evictedWithPendingVote() != 0) revert("a member was evicted with a vote pending");
    }

    /// Tokens held by the stake manager and the coordinator = staked + unbonding + escrowed + credited
    /// and unclaimed; burned tokens and bounties match the slashes, and the pool receives no slash.
    function _checkTokens() internal view {
        (address tokenAddr, address smAddr, address coordAddr) = handler.contracts();
        IBalances t = IBalances(tokenAddr);
        IStakeViews s = IStakeViews(smAddr);
        ICoordViews c = ICoordViews(coordAddr);
        uint256 pools;
        uint256 n = c.jobCount();
        for (uint256 j = 1; j <= n; ++j) pools += c.rewardPool(j);
        assertEq(t.balanceOf(smAddr), s.totalStake() + s.totalUnbonding(), "stake manager holds stake + unbonding");
        assertEq(t.balanceOf(coordAddr), pools + c.totalOwed(), "coordinator holds pools + owed");
        assertEq(t.balanceOf(BURN), handler.burnedTotal(), "burned = slashed");
        assertEq(t.balanceOf(address(handler)), 0, "whoever executes slashes receives nothing");
        assertEq(handler.slashAppliedTotal(), handler.slashedTotal(), "coordinator and stake manager agree on slashes");
        assertEq(handler.voteCreditTotal(), handler.validatorPoolTotal(), "validator credits = validator pools");
    }

    /// Per job: pool + credited + withdrawn = escrow (nothing else enters or leaves the pool); claims never
    /// exceed credits; credits never exceed rewardPerRound × completed rounds; completed ≤ numRounds;
    /// what a member is owed is what was credited less what it claimed; seats within the cap; every seat's
    /// bond held.
    function _checkJobs() internal view {
        ICoordViews c = ICoordViews(address(_coord()));
        uint256 n = handler.jobsLength();
        uint256 owed;
        address[] memory vs = handler.validatorList();
        for (uint256 k; k < n; ++k) {
            uint256 jobId = handler.jobs(k);
            CoordinatorBase.JobConfig memory cfg = _ext().jobConfig(jobId);
            CoordinatorBase.JobState memory st = _ext().jobState(jobId);
            uint256 credited = handler.creditedOf(jobId);
            uint256 claimed = handler.claimedOf(jobId);
            assertEq(c.rewardPool(jobId) + credited + handler.withdrawnOf(jobId), handler.escrowOf(jobId), "job escrow ledger");
            assertLe(claimed, credited, "claims within credits");
            assertLe(credited, uint256(cfg.rewardPerRound) * st.completedRounds, "credits within paid rounds");
            assertLe(st.completedRounds, cfg.numRounds, "completed rounds within numRounds");
            if (st.status == ITrainingCoordinator.JobStatus.Completed) assertEq(st.completedRounds, cfg.numRounds, "completed job");
            owed += credited - claimed;
            assertLe(_ext().committeeOf(jobId).length, cfg.maxValidators, "committee within its cap");
            for (uint256 j; j < vs.length; ++j) {
                uint256 vc = handler.voteCredited(jobId, vs[j]);
                uint256 vcl = handler.voteClaimed(jobId, vs[j]);
                assertLe(vcl, vc, "vote claims within credits");
                assertEq(_ext().memberOf(jobId, vs[j]).owed, vc - vcl, "member owed");
            }
        }
        assertEq(c.totalOwed(), owed, "total owed = credits less claims");
    }

    /// Per staker: holds + live locks ≤ active stake (every slash collectable); the hold is exactly the bonds
    /// of the committee seats it occupies.
    function _checkStakers() internal view {
        address[] memory all = handler.stakers();
        uint256 n = handler.jobsLength();
        for (uint256 a; a < all.length; ++a) {
            (uint256 held, uint256 locked,) = _sm().locksOf(all[a]);
            assertLe(held + locked, _sm().stakeOf(all[a]), "holds and locks within active stake");
            uint256 bonds;
            for (uint256 k; k < n; ++k) {
                uint256 jobId = handler.jobs(k);
                if (_ext().memberOf(jobId, all[a]).position != 0) bonds += _ext().jobConfig(jobId).absenceSlashAmount;
            }
            assertEq(held, bonds, "hold = bonds of the seats held");
        }
    }

    /// After each run: the run did something (actions succeeded, rounds were finalized), and the protocol is
    /// still live for a fresh job; the properties hold after that round too.
    function afterInvariant() public virtual {
        assertGe(handler.handlerCalls(), 1, "handler called");
        assertGe(handler.totalSucceeded(), 1, "some actions succeeded");
        assertGe(handler.succeeded(handler.A_FINALIZE()), 1, "rounds finalized");
        (ITrainingCoordinator.Outcome outcome, bool claimed) = handler.livenessRound();
        assertEq(uint256(outcome), uint256(ITrainingCoordinator.Outcome.Quorum), "liveness round decided");
        assertTrue(claimed, "liveness round paid");
        invariant_protocol();
    }

    function _coord() internal view returns (address c) {
        (,, c) = handler.contracts();
    }

    function _ext() internal view returns (IExtViews) {
        return IExtViews(_coord());
    }

    function _sm() internal view returns (IStakeViews s) {
        (, address a,) = handler.contracts();
        s = IStakeViews(a);
    }
}

interface IBalances {
    function balanceOf(address) external view returns (uint256);
}

interface IStakeViews {
    function totalStake() external view returns (uint256);
    function totalUnbonding() external view returns (uint256);
    function stakeOf(address) external view returns (uint256);
    function locksOf(address) external view returns (uint256 held, uint256 locked, uint48 until);
}

interface ICoordViews {
    function jobCount() external view returns (uint256);
    function rewardPool(uint256) external view returns (uint256);
    function totalOwed() external view returns (uint256);
}

interface IExtViews {
    function jobConfig(uint256 jobId) external view returns (CoordinatorBase.JobConfig memory);
    function jobState(uint256 jobId) external view returns (CoordinatorBase.JobState memory);
    function committeeOf(uint256 jobId) external view returns (address[] memory);
    function memberOf(uint256 jobId, address validator) external view returns (Committee.Member memory);
}
