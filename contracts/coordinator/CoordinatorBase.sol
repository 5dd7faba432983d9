// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IStakeManager} from "../interfaces/IStakeManager.sol";
import {ITrainingCoordinator} from "../interfaces/ITrainingCoordinator.sol";
import {Committee} from "../libraries/Committee.sol";
import {BoundedPausable} from "../utils/BoundedPausable.sol";

/// @title CoordinatorBase
/// @notice The state of fedstake's jobs and rounds, and the helpers every entry point shares. The coordinator
/// is deployed as two contracts over this one storage layout: `TrainingCoordinator` (the round's steps) and
/// `CoordinatorExtension` (committee seats, settlement, refunds and views), to which the coordinator
/// delegates every call it does not implement. Together they are one contract at one address; apart each
/// stays under the 24,576-byte code size limit (EIP-170).
abstract contract CoordinatorBase is ITrainingCoordinator, BoundedPausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_BITMAP_UPDATES = 256;
    uint256 internal constant MAX_COMMITTEE = 256;
    /// @notice Quorum may not be set below a majority of committee stake: fewer could decide and slash alone.
    uint256 public constant MIN_QUORUM_BPS = 5000;
    /// @notice The accuracy a regression job's validators report (reportModelScore): there is none.
    uint16 public constant NO_ACCURACY = type(uint16).max;

    // A worker's commitment slot holds the keccak commitment until it is revealed, then a small state.
    // A keccak output at or below STATE_MAX has probability 2^-252, so the two never collide in practice.
    uint256 internal constant REVEALED = 1;
    uint256 internal constant MISSED_SLASHED = 2;
    uint256 internal constant STATE_MAX = 15;
    // Written into a validator's vote slot when it joins, so that its first commitment is a
    // non-zero to non-zero write (5k gas) rather than a fresh slot (22k).
    bytes32 internal constant VOTE_SLOT_PRIMED = bytes32(uint256(1));
    // Update record flags.
    uint8 internal constant UPDATE_CLAIMED = 1;
    uint8 internal constant UPDATE_SLASHED = 2;
    uint8 internal constant UPDATE_UNLOCKED = 4;

    /// @notice The token staked, escrowed and paid: the stake manager's.
    IERC20 public immutable token;
    /// @notice Where stake is held, locked and slashed; this contract must be its coordinator.
    IStakeManager public immutable stakeManager;
    /// @dev Slots are grouped by the calls that read them: slot 0 serves every worker and validator call.
    struct JobConfig {
        // slot 0: phases and reveal
        uint32 commitPeriod;
        uint32 revealPeriod;
        uint32 voteCommitPeriod;
        uint32 voteRevealPeriod;
        uint32 slashWindow;
        uint16 maxUpdates;
        uint64 maxSamplesPerUpdate;
        uint16 missedVoteSlashBps;
        // slot 1: committee and tally
        uint32 attestPeriod;
        uint16 maxValidators;
        uint16 quorumBps;
        uint16 acceptBps;
        uint16 attestBps;
        uint16 rejectSlashBps;
        uint16 validatorShareBps;
        uint96 minValidatorStake;
        uint32 numRounds;
        // slot 2
        address sponsor;
        uint96 rewardPerRound;
        // slot 3: worker commitments
        uint96 minWorkerStake;
        uint96 workerLock; // max(rejectSlashAmount, missedRevealSlashAmount): locked by every commitment
        uint16 maxMissedRounds;
        uint16 maxIdleRounds;
        uint32 slashSpan; // round start → slash deadline, beside the worker lock that lasts until then
        // slot 4
        uint96 rejectSlashAmount;
        uint96 missedRevealSlashAmount;
        // slot 5
        uint96 absenceSlashAmount;
        uint16 minUpdates;
    }

    /// @notice The live state of a job: its current round. One slot.
    struct JobState {
        uint32 round;
        uint48 roundStart;
        uint16 commitCount;
        uint16 revealCount;
        uint16 voteCommitCount; // the current round's; with the two above, what closes phases early
        uint16 voteRevealCount;
        uint32 completedRounds;
        JobStatus status;
        bool finalized;
        uint48 finalizedAt;
        uint16 idleRounds; // undecided rounds in a row
    }

    struct Update {
        address worker;
        uint64 numSamples;
        uint16 codec;
        uint8 flags;
    }

    /// @notice What a round decided; written once by finalize (and the model CID by attestation).
    struct RoundResult {
        uint256 acceptedBitmap;
        uint256 slashableBitmap;
        uint128 workerRewardEach;
        uint128 validatorPool;
        uint128 committeeStake;
        uint128 revealedStake;
        bytes32 baseDigest;
        bytes32 modelDigest;
        uint128 committedStake;
        uint48 start;
        uint16 updateCount;
        uint16 baseCodec;
        uint16 modelCodec;
        Outcome outcome;
    }

    struct Round {
        RoundResult result;
        mapping(address worker => bytes32) updateCommitment;
        mapping(uint256 index => Update) updates;
        mapping(bytes32 cidKey => uint256) attestedStake;
        /// Round-start stake of each member that committed a vote and never revealed it (set by finalize).
        mapping(address validator => uint256) withheldStake;
        // Committee members seated during the round before, whose votes count from this one.
        uint256 seatedFor;
    }

    /// @notice Number of jobs created; job ids run from 1.
    uint256 public jobCount;
    /// @notice Rewards credited by finalized rounds and not yet claimed (rounding dust included).
    uint256 public totalOwed;
    /// @notice Escrow a job still holds for future rewards.
    mapping(uint256 jobId => uint256) public rewardPool;

    mapping(uint256 jobId => JobConfig) internal _config;
    mapping(uint256 jobId => JobState) internal _state;
    mapping(uint256 jobId => Committee.Seats) internal _committee;
    /// @dev Per member, reused every round: the vote commitment after commitVote, the bitmap after revealVote.
    mapping(uint256 jobId => mapping(address validator => bytes32)) internal _voteSlot;
    mapping(uint256 jobId => mapping(uint256 round => Round)) internal _rounds;
    /// @dev Every update digest revealed in a job: the same content is never paid twice.
    mapping(uint256 jobId => mapping(bytes32 digest => bool)) internal _revealedDigest;
    constructor(IStakeManager stakeManager_, address guardian_) BoundedPausable(guardian_) {
        stakeManager = stakeManager_;
        token = stakeManager_.token();
    }

    function _loadState(uint256 jobId) internal view returns (JobState memory s) {
        s = _state[jobId];
        if (s.status == JobStatus.None) revert UnknownJob(jobId);
    }

    function _phase(uint256 jobId, JobState memory s) internal view returns (Phase) {
        if (s.status == JobStatus.Completed) return Phase.Completed;
        if (s.status == JobStatus.Cancelled) return Phase.Cancelled;
        if (s.status == JobStatus.Expired) return Phase.Expired;
        JobConfig storage c = _config[jobId];
        if (s.finalized) {
            return block.timestamp < uint256(s.finalizedAt) + c.attestPeriod ? Phase.Attest : Phase.AttestExpired;
        }
        uint256 t = block.timestamp;
        uint256 end = s.roundStart;
        if (t < end) return Phase.NotStarted;
        // Each phase lasts until its deadline or until nobody is left to act in it. Every count only grows
        // within a round and the seat count below cannot grow, so a phase once closed never reopens.
        end += c.commitPeriod;
        if (t < end && (c.minUpdates == 0 || s.commitCount < c.minUpdates)) return Phase.Commit;
        end += c.revealPeriod;
        // (A full round with commitments left stays open: their workers learn it from TooManyUpdates.)
        if (t < end && s.revealCount < s.commitCount) return Phase.Reveal;
        end += c.voteCommitPeriod;
        // With nobody to wait for (no eligible member, no committed vote) the vote phases run to their
        // deadlines: closing them at once would let anyone cycle a committee-less job to expiry in a block.
        if (t < end) {
            uint256 seats = _eligibleSeats(jobId, s.round);
            if (seats == 0 || s.voteCommitCount < seats) return Phase.VoteCommit;
        }
        end += c.voteRevealPeriod;
        if (t < end && (s.voteCommitCount == 0 || s.voteRevealCount < s.voteCommitCount)) return Phase.VoteReveal;
        return Phase.Finalize;
    }

    /// @dev Members whose votes count in `round`: the seated ones but those seated during it (they count
    /// from the next). A joiner does not change it, so joining cannot hold a closed vote commit phase open.
    /// It includes members that cannot commit (under-staked or absent): they keep the phase open until its
    /// deadline, as before early closing, or until they leave or are evicted.
    function _eligibleSeats(uint256 jobId, uint32 round) internal view returns (uint256) {
        return _committee[jobId].members.length - _rounds[jobId][round + 1].seatedFor;
    }

    function _voteRevealEnd(JobConfig storage c, uint48 start) internal view returns (uint256) {
        return uint256(start) + c.commitPeriod + c.revealPeriod + c.voteCommitPeriod + c.voteRevealPeriod;
    }

    /// @dev Finalize and every slash of the round must happen before this; its locks expire then. Read
    /// from the span stored beside the worker lock (slot 3), which the worker-lock paths read anyway.
    function _slashDeadline(JobConfig storage c, uint48 start) internal view returns (uint48) {
        return start + c.slashSpan;
    }

    /// @dev The same deadline from the phase lengths (slot 0), for the calls that read slot 0 for their
    /// phase and not slot 3 (votes, finalize): 2.1k gas less than a cold read of the span.
    function _slashDeadlineFromPhases(JobConfig storage c, uint48 start) internal view returns (uint48) {
        // Fits: _validate bounds the round by the unbonding period, checked below 2^32 seconds there.
        return uint48(_voteRevealEnd(c, start) + c.slashWindow);
    }

    function _slashLocked(
        uint256 jobId,
        uint256 round,
        address account,
        uint256 lockAmount,
        uint256 amount,
        uint48 until,
        SlashReason reason
    ) internal {
        uint256 taken = stakeManager.slashLocked(account, lockAmount, amount, until);
        emit SlashApplied(jobId, round, account, reason, taken);
    }

    function _slashHeld(uint256 jobId, uint256 round, address account, uint256 amount, SlashReason reason) internal {
        uint256 taken = stakeManager.slashHeld(account, amount);
        emit SlashApplied(jobId, round, account, reason, taken);
    }

    function _openRound(uint256 jobId, JobState memory s, uint48 start, bytes32 digest, uint16 codec) internal {
        uint32 round = s.round + 1;
        s.round = round;
        s.roundStart = start;
        s.commitCount = 0;
        s.revealCount = 0;
        s.voteCommitCount = 0;
        s.voteRevealCount = 0;
        s.finalized = false;
        s.finalizedAt = 0;
        _state[jobId] = s;
        RoundResult storage res = _rounds[jobId][round].result;
        res.baseDigest = digest;
        res.baseCodec = codec;
        res.start = start;
        emit RoundOpened(jobId, round, start, digest, codec);
    }

    function _pay(uint256 jobId, uint256 round, uint256 amount) internal {
        totalOwed -= amount;
        emit RewardClaimed(jobId, round, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }
}
