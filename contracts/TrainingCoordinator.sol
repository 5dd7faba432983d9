// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {ITrainingCoordinator} from "./interfaces/ITrainingCoordinator.sol";
import {Bitmap256} from "./libraries/Bitmap256.sol";

/// @title TrainingCoordinator
/// @notice Jobs and rounds of fedstake: workers commit and reveal model updates (by IPFS CID), a committee
/// of staked validators commits and reveals stake-weighted accept bitmaps, anyone finalizes, and the
/// validators attest the aggregate model's CID, which opens the next round. Rewards are pull payments.
/// @dev Gas shape: every per-participant call touches a fixed number of slots whatever the number of
/// updates (bitmaps, no strings, no loops); `finalizeRound` is bounded by maxUpdates × maxValidators.
/// Slashing is permissionless and lazy (`slashRejectedUpdate`, `slashMissedReveal`): finalize records who
/// is slashable, and anyone may then execute it. Slashed stake is credited to the job's reward pool, never
/// to the caller. Unbonding stake stays slashable, so a slash cannot be outrun within the unbonding period.
/// Admin powers: PAUSER_ROLE can pause protocol steps (not claims, not sponsor refunds, and never stake
/// exits, which live in the stake manager). A round that overlaps a pause is voided: repeated, unpaid,
/// and nobody is slashed for missing it. No role can move escrowed or credited tokens.
contract TrainingCoordinator is ITrainingCoordinator, AccessControl, Pausable, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using Bitmap256 for uint256;

    /// @notice Role allowed to pause and unpause protocol steps in an emergency.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    uint256 internal constant BPS = 10_000;
    uint256 internal constant MAX_BITMAP_UPDATES = 256;
    uint256 internal constant MAX_COMMITTEE = 256;

    // A participant's commitment slot holds the keccak commitment until it is revealed, then small flags.
    // A keccak output at or below STATE_MAX has probability 2^-252, so the two never collide in practice.
    uint256 internal constant REVEALED = 1;
    uint256 internal constant ATTESTED = 2;
    uint256 internal constant CLAIMED = 4;
    uint256 internal constant MISSED_SLASHED = 8;
    uint256 internal constant STATE_MAX = 15;
    // Update record flags.
    uint8 internal constant UPDATE_CLAIMED = 1;
    uint8 internal constant UPDATE_SLASHED = 2;

    /// @notice The token staked, escrowed and paid.
    IERC20 public immutable token;
    /// @notice Where stake is held and slashed; this contract needs its SLASHER_ROLE.
    IStakeManager public immutable stakeManager;

    /// @dev Slots are grouped by the calls that read them: slot 0 serves every worker and validator call.
    struct JobConfig {
        // slot 0
        uint32 commitPeriod;
        uint32 revealPeriod;
        uint32 voteCommitPeriod;
        uint32 voteRevealPeriod;
        uint16 maxUpdates;
        uint96 minWorkerStake;
        // slot 1
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
        // slot 3
        uint96 rejectSlashAmount;
        uint96 missedRevealSlashAmount;
    }

    /// @notice The live state of a job: its current round. One slot.
    struct JobState {
        uint32 round;
        uint48 roundStart;
        uint16 commitCount;
        uint16 revealCount;
        uint32 completedRounds;
        JobStatus status;
        bool finalized;
        uint48 finalizedAt;
    }

    struct Member {
        uint48 joinedAt;
        uint16 position; // index in the committee array + 1; 0 = not a member
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
        uint256 totalValidatorWeight; // Σ stake × agreement over revealed voters
        uint128 workerRewardEach;
        uint128 validatorPool;
        uint128 committeeStake;
        uint128 revealedStake;
        bytes32 baseDigest;
        bytes32 modelDigest;
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
        mapping(address validator => bytes32) voteState;
        mapping(address validator => uint256) voteBitmap;
        mapping(bytes32 cidKey => uint256) attestedStake;
    }

    /// @notice Number of jobs created; job ids run from 1.
    uint256 public jobCount;
    /// @notice Rewards credited by finalized rounds and not yet claimed (rounding dust included).
    uint256 public totalOwed;
    /// @notice Tokens a job still holds for future rewards (escrow plus slashed stake).
    mapping(uint256 jobId => uint256) public rewardPool;
    /// @notice The last emergency pause window; rounds overlapping it are voided.
    uint48 public lastPausedAt;
    uint48 public lastUnpausedAt;

    mapping(uint256 jobId => JobConfig) private _config;
    mapping(uint256 jobId => JobState) private _state;
    mapping(uint256 jobId => address[]) private _committee;
    mapping(uint256 jobId => mapping(address validator => Member)) private _member;
    mapping(uint256 jobId => mapping(uint256 round => Round)) private _rounds;

    constructor(IERC20 token_, IStakeManager stakeManager_, address admin) {
        token = token_;
        stakeManager = stakeManager_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    // ================================================================== jobs

    /// @notice Creates a job and escrows `rewardPerRound × numRounds` from the caller (approve first).
    /// Round 1 opens at `startTime` on the initial model; validators must join the committee before it.
    function createJob(JobParams calldata p) external whenNotPaused nonReentrant returns (uint256 jobId) {
        _validate(p);
        uint256 escrow = uint256(p.rewardPerRound) * p.numRounds;
        jobId = ++jobCount;
        _config[jobId] = JobConfig({
            commitPeriod: p.commitPeriod,
            revealPeriod: p.revealPeriod,
            voteCommitPeriod: p.voteCommitPeriod,
            voteRevealPeriod: p.voteRevealPeriod,
            maxUpdates: p.maxUpdates,
            minWorkerStake: p.minWorkerStake,
            attestPeriod: p.attestPeriod,
            maxValidators: p.maxValidators,
            quorumBps: p.quorumBps,
            acceptBps: p.acceptBps,
            attestBps: p.attestBps,
            rejectSlashBps: p.rejectSlashBps,
            validatorShareBps: p.validatorShareBps,
            minValidatorStake: p.minValidatorStake,
            numRounds: p.numRounds,
            sponsor: msg.sender,
            rewardPerRound: p.rewardPerRound,
            rejectSlashAmount: p.rejectSlashAmount,
            missedRevealSlashAmount: p.missedRevealSlashAmount
        });
        rewardPool[jobId] = escrow;
        JobState memory s;
        s.status = JobStatus.Active;
        emit JobCreated(jobId, msg.sender, p);
        _openRound(jobId, s, p.startTime, p.initialModelDigest, p.initialModelCodec);
        token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    /// @notice The sponsor stops a job whose current round has no commitment yet (e.g. no workers came).
    function cancelJob(uint256 jobId) external {
        JobState memory s = _loadState(jobId);
        if (msg.sender != _config[jobId].sponsor) revert NotSponsor(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        if (s.commitCount != 0 || s.finalized) revert JobHasCommitments(jobId);
        Phase ph = _phase(jobId, s);
        if (ph != Phase.NotStarted && ph != Phase.Commit) revert WrongPhase(Phase.Commit, ph);
        _state[jobId].status = JobStatus.Cancelled;
        emit JobCancelled(jobId);
    }

    /// @notice The sponsor takes back what a completed or cancelled job did not pay out.
    function withdrawRemainder(uint256 jobId) external nonReentrant {
        JobState memory s = _loadState(jobId);
        address sponsor = _config[jobId].sponsor;
        if (msg.sender != sponsor) revert NotSponsor(jobId);
        if (s.status == JobStatus.Active) revert JobStillActive(jobId);
        uint256 amount = rewardPool[jobId];
        if (amount == 0) revert NothingToClaim();
        rewardPool[jobId] = 0;
        emit RemainderWithdrawn(jobId, sponsor, amount);
        token.safeTransfer(sponsor, amount);
    }

    // ================================================================== committee

    /// @notice Joins the job's validator committee. Votes count from the first round that opens after joining.
    function joinCommittee(uint256 jobId) external whenNotPaused {
        JobState memory s = _loadState(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        Member storage m = _member[jobId][msg.sender];
        if (m.position != 0) revert AlreadyInCommittee();
        JobConfig storage c = _config[jobId];
        uint256 st = stakeManager.stakeOf(msg.sender);
        if (st < c.minValidatorStake) revert InsufficientStake(c.minValidatorStake, st);
        address[] storage committee = _committee[jobId];
        if (committee.length >= c.maxValidators) revert CommitteeFull(c.maxValidators);
        committee.push(msg.sender);
        m.joinedAt = uint48(block.timestamp);
        m.position = uint16(committee.length);
        emit CommitteeJoined(jobId, msg.sender);
    }

    /// @notice Leaves the committee. Not while a vote of the caller in the undecided current round is pending.
    function leaveCommittee(uint256 jobId) external {
        JobState memory s = _loadState(jobId);
        Member memory m = _member[jobId][msg.sender];
        if (m.position == 0) revert NotInCommittee();
        if (!s.finalized && _rounds[jobId][s.round].voteState[msg.sender] != 0) revert VotePending();
        address[] storage committee = _committee[jobId];
        address last = committee[committee.length - 1];
        committee[m.position - 1] = last;
        _member[jobId][last].position = m.position;
        committee.pop();
        delete _member[jobId][msg.sender];
        emit CommitteeLeft(jobId, msg.sender);
    }

    // ================================================================== worker: commit, reveal

    /// @notice Commits to an update: `commitment = updateCommitment(jobId, round, worker, cidDigest, cidCodec,
    /// numSamples, salt)`. Hides the CID until the reveal phase, so nobody can copy another worker's update.
    function commitUpdate(uint256 jobId, uint256 round, bytes32 commitment) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.Commit);
        JobConfig storage c = _config[jobId];
        if (uint256(commitment) <= STATE_MAX) revert InvalidCommitment();
        if (s.commitCount >= c.maxUpdates) revert TooManyUpdates(c.maxUpdates);
        if (_member[jobId][msg.sender].position != 0) revert ValidatorCannotSubmit();
        Round storage r = _rounds[jobId][round];
        if (r.updateCommitment[msg.sender] != 0) revert AlreadyCommitted();
        uint256 st = stakeManager.stakeOf(msg.sender);
        if (st < c.minWorkerStake) revert InsufficientStake(c.minWorkerStake, st);
        r.updateCommitment[msg.sender] = commitment;
        _state[jobId].commitCount = s.commitCount + 1;
        emit UpdateCommitted(jobId, round, msg.sender, commitment);
    }

    /// @notice Reveals a committed update. Its index in the round's vote bitmaps is its reveal order.
    function revealUpdate(uint256 jobId, uint256 round, bytes32 cidDigest, uint16 cidCodec, uint64 numSamples, bytes32 salt)
        external
        whenNotPaused
    {
        JobState memory s = _requireRound(jobId, round, Phase.Reveal);
        Round storage r = _rounds[jobId][round];
        bytes32 stored = r.updateCommitment[msg.sender];
        if (stored == 0) revert NotCommitted();
        if (uint256(stored) <= STATE_MAX) revert AlreadyRevealed();
        if (updateCommitment(jobId, round, msg.sender, cidDigest, cidCodec, numSamples, salt) != stored) {
            revert RevealMismatch();
        }
        if (numSamples == 0) revert ZeroSamples();
        uint256 index = s.revealCount;
        r.updateCommitment[msg.sender] = bytes32(REVEALED);
        r.updates[index] = Update({worker: msg.sender, numSamples: numSamples, codec: cidCodec, flags: 0});
        _state[jobId].revealCount = uint16(index + 1);
        emit UpdateRevealed(jobId, round, msg.sender, index, cidDigest, cidCodec, numSamples);
    }

    // ================================================================== validator: vote, attest

    /// @notice Commits to an accept bitmap: `commitment = voteCommitment(jobId, round, validator, bitmap, salt)`.
    /// The caller must have joined the committee before the round opened and held at least the minimum
    /// validator stake then.
    function commitVote(uint256 jobId, uint256 round, bytes32 commitment) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.VoteCommit);
        if (uint256(commitment) <= STATE_MAX) revert InvalidCommitment();
        Member memory m = _member[jobId][msg.sender];
        if (m.position == 0 || m.joinedAt >= s.roundStart) revert NotInCommittee();
        Round storage r = _rounds[jobId][round];
        if (r.voteState[msg.sender] != 0) revert AlreadyCommitted();
        uint256 minStake = _config[jobId].minValidatorStake;
        uint256 st = stakeManager.stakeAt(msg.sender, s.roundStart - 1);
        if (st < minStake) revert InsufficientStake(minStake, st);
        r.voteState[msg.sender] = commitment;
        emit VoteCommitted(jobId, round, msg.sender, commitment);
    }

    /// @notice Reveals a committed vote. Bit i of `acceptBitmap` accepts the update revealed i-th.
    function revealVote(uint256 jobId, uint256 round, uint256 acceptBitmap, bytes32 salt) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.VoteReveal);
        Round storage r = _rounds[jobId][round];
        bytes32 stored = r.voteState[msg.sender];
        if (stored == 0) revert NotCommitted();
        if (uint256(stored) <= STATE_MAX) revert AlreadyRevealed();
        if (voteCommitment(jobId, round, msg.sender, acceptBitmap, salt) != stored) revert RevealMismatch();
        if (acceptBitmap & ~Bitmap256.lowMask(s.revealCount) != 0) revert InvalidBitmap(acceptBitmap, s.revealCount);
        r.voteState[msg.sender] = bytes32(REVEALED);
        if (acceptBitmap != 0) r.voteBitmap[msg.sender] = acceptBitmap;
        emit VoteRevealed(jobId, round, msg.sender, acceptBitmap);
    }

    /// @notice Attests the CID of the aggregate model a validator computed from the round's accepted updates.
    /// The first CID whose attesting stake reaches `attestBps` of committee stake becomes the next base model.
    function attestModel(uint256 jobId, uint256 round, bytes32 digest, uint16 codec) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.Attest);
        Round storage r = _rounds[jobId][round];
        uint256 vs = uint256(r.voteState[msg.sender]);
        if (vs == 0 || vs > STATE_MAX || vs & REVEALED == 0) revert NotVoted();
        if (vs & ATTESTED != 0) revert AlreadyAttested();
        r.voteState[msg.sender] = bytes32(vs | ATTESTED);
        uint256 st = stakeManager.stakeAt(msg.sender, s.roundStart - 1);
        bytes32 key = keccak256(abi.encode(digest, codec));
        uint256 tally = r.attestedStake[key] + st;
        r.attestedStake[key] = tally;
        emit ModelAttested(jobId, round, msg.sender, digest, codec, tally);
        if (tally * BPS >= uint256(_config[jobId].attestBps) * r.result.committeeStake) {
            r.result.modelDigest = digest;
            r.result.modelCodec = codec;
            emit ModelAccepted(jobId, round, digest, codec);
            _advance(jobId, s, digest, codec);
        }
    }

    // ================================================================== permissionless steps

    /// @notice Tallies the round's votes at round-start stake and decides it. Anyone may call it once the
    /// vote reveal phase is over. Costs O(committee × updates), bounded by the job's caps.
    function finalizeRound(uint256 jobId, uint256 round) external whenNotPaused nonReentrant {
        JobState memory s = _requireRound(jobId, round, Phase.Finalize);
        RoundResult memory res = _decide(jobId, s);
        if (res.outcome == Outcome.Quorum) {
            unchecked {
                ++s.completedRounds;
            }
        }
        _rounds[jobId][round].result = res;
        emit RoundFinalized(
            jobId,
            round,
            res.outcome,
            res.acceptedBitmap,
            res.slashableBitmap,
            res.committeeStake,
            res.revealedStake,
            res.workerRewardEach,
            res.validatorPool
        );
        if (res.acceptedBitmap == 0) {
            // Nothing to aggregate: the next round (or the end) follows at once, on the same base model.
            _advance(jobId, s, res.baseDigest, res.baseCodec);
        } else {
            s.finalized = true;
            s.finalizedAt = uint48(block.timestamp);
            _state[jobId] = s;
        }
    }

    /// @notice Moves on when no aggregate CID reached the attestation threshold in time: the next round
    /// starts on the same base model (the finalized round's rewards stay credited).
    function skipAttestation(uint256 jobId, uint256 round) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.AttestExpired);
        RoundResult storage res = _rounds[jobId][round].result;
        emit AttestationExpired(jobId, round);
        _advance(jobId, s, res.baseDigest, res.baseCodec);
    }

    /// @notice Slashes the worker of update `index` of a decided round, which a supermajority rejected.
    function slashRejectedUpdate(uint256 jobId, uint256 round, uint256 index) external whenNotPaused nonReentrant {
        Round storage r = _rounds[jobId][round];
        if (r.result.outcome != Outcome.Quorum) revert RoundNotDecided(round);
        Update storage u = r.updates[index];
        if (!r.result.slashableBitmap.isSet(index) || u.flags & UPDATE_SLASHED != 0) revert NothingToSlash();
        u.flags |= UPDATE_SLASHED;
        _slash(jobId, round, u.worker, _config[jobId].rejectSlashAmount, SlashReason.RejectedUpdate);
    }

    /// @notice Slashes `account` for an update or vote it committed in `round` and did not reveal in time.
    function slashMissedReveal(uint256 jobId, uint256 round, address account) external whenNotPaused nonReentrant {
        JobState memory s = _loadState(jobId);
        if (round == 0 || round > s.round) revert WrongRound(s.round, round);
        JobConfig storage c = _config[jobId];
        Round storage r = _rounds[jobId][round];
        uint48 start = r.result.start;
        uint256 updateRevealEnd = uint256(start) + c.commitPeriod + c.revealPeriod;
        uint256 voteRevealEnd = _voteRevealEnd(c, start);
        if (r.result.outcome == Outcome.Voided || _overlapsPause(start, voteRevealEnd)) revert RoundVoided(round);

        bool slashed;
        bool pending;
        uint256 amount = c.missedRevealSlashAmount;
        if (uint256(r.updateCommitment[account]) > STATE_MAX) {
            if (block.timestamp < updateRevealEnd) {
                pending = true;
            } else {
                r.updateCommitment[account] = bytes32(MISSED_SLASHED);
                _slash(jobId, round, account, amount, SlashReason.MissedUpdateReveal);
                slashed = true;
            }
        }
        if (uint256(r.voteState[account]) > STATE_MAX) {
            if (block.timestamp < voteRevealEnd) {
                pending = true;
            } else {
                r.voteState[account] = bytes32(MISSED_SLASHED);
                _slash(jobId, round, account, amount, SlashReason.MissedVoteReveal);
                slashed = true;
            }
        }
        if (!slashed) {
            if (pending) revert RevealNotOver();
            revert NothingToSlash();
        }
    }

    // ================================================================== claims

    /// @notice Pays the worker of accepted update `index` of a decided round its share.
    function claimUpdateReward(uint256 jobId, uint256 round, uint256 index) external nonReentrant {
        Round storage r = _rounds[jobId][round];
        if (r.result.outcome != Outcome.Quorum) revert RoundNotDecided(round);
        if (!r.result.acceptedBitmap.isSet(index)) revert NotAccepted(index);
        Update storage u = r.updates[index];
        if (u.worker != msg.sender) revert NotYourUpdate(index);
        if (u.flags & UPDATE_CLAIMED != 0) revert AlreadyClaimed();
        uint256 amount = r.result.workerRewardEach;
        if (amount == 0) revert NothingToClaim();
        u.flags |= UPDATE_CLAIMED;
        _pay(jobId, round, amount);
    }

    /// @notice Pays a validator who revealed its vote in a decided round: its share of the validator pool,
    /// by round-start stake × the number of decisions on which it agreed with the outcome.
    function claimVoteReward(uint256 jobId, uint256 round) external nonReentrant {
        Round storage r = _rounds[jobId][round];
        uint256 amount = voteRewardOf(jobId, round, msg.sender);
        uint256 vs = uint256(r.voteState[msg.sender]);
        if (vs <= STATE_MAX && vs & CLAIMED != 0) revert AlreadyClaimed();
        if (amount == 0) revert NothingToClaim();
        r.voteState[msg.sender] = bytes32(vs | CLAIMED);
        _pay(jobId, round, amount);
    }

    // ================================================================== emergency

    /// @notice Stops protocol steps (commits, reveals, votes, finalize, attest, slashing, new jobs).
    /// Claims, sponsor refunds and stake exits stay open.
    function pause() external onlyRole(PAUSER_ROLE) {
        lastPausedAt = uint48(block.timestamp);
        _pause();
    }

    /// @notice Resumes protocol steps. Rounds that overlapped the pause are voided when finalized.
    function unpause() external onlyRole(PAUSER_ROLE) {
        lastUnpausedAt = uint48(block.timestamp);
        _unpause();
        emit PauseWindowRecorded(lastPausedAt, lastUnpausedAt);
    }

    // ================================================================== views

    /// @notice The commitment a worker sends for an update; reveal must reproduce it.
    function updateCommitment(
        uint256 jobId,
        uint256 round,
        address worker,
        bytes32 cidDigest,
        uint16 cidCodec,
        uint64 numSamples,
        bytes32 salt
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(jobId, round, worker, cidDigest, cidCodec, numSamples, salt));
    }

    /// @notice The commitment a validator sends for a vote; reveal must reproduce it.
    function voteCommitment(uint256 jobId, uint256 round, address validator, uint256 acceptBitmap, bytes32 salt)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(jobId, round, validator, acceptBitmap, salt));
    }

    /// @notice The current round of a job and its phase.
    function phaseOf(uint256 jobId) external view returns (uint256 round, Phase phase) {
        JobState memory s = _loadState(jobId);
        return (s.round, _phase(jobId, s));
    }

    /// @notice A job's parameters (as created; the CIDs are in its JobCreated event and round 1).
    function jobConfig(uint256 jobId) external view returns (JobConfig memory) {
        _loadState(jobId);
        return _config[jobId];
    }

    /// @notice A job's live state.
    function jobState(uint256 jobId) external view returns (JobState memory) {
        return _loadState(jobId);
    }

    /// @notice The job's validator committee.
    function committeeOf(uint256 jobId) external view returns (address[] memory) {
        return _committee[jobId];
    }

    /// @notice When `validator` joined the job's committee (0 if not a member).
    function memberSince(uint256 jobId, address validator) external view returns (uint48) {
        return _member[jobId][validator].joinedAt;
    }

    /// @notice A round's base model, timing and (once decided) result.
    function roundResult(uint256 jobId, uint256 round) external view returns (RoundResult memory) {
        return _rounds[jobId][round].result;
    }

    /// @notice The update revealed `index`-th in a round.
    function updateAt(uint256 jobId, uint256 round, uint256 index) external view returns (Update memory) {
        return _rounds[jobId][round].updates[index];
    }

    /// @notice A worker's commitment slot: 0 none, the commitment while unrevealed, else state flags.
    function updateCommitmentOf(uint256 jobId, uint256 round, address worker) external view returns (bytes32) {
        return _rounds[jobId][round].updateCommitment[worker];
    }

    /// @notice A validator's vote slot: 0 none, the commitment while unrevealed, else state flags.
    function voteStateOf(uint256 jobId, uint256 round, address validator) external view returns (bytes32) {
        return _rounds[jobId][round].voteState[validator];
    }

    /// @notice A validator's revealed accept bitmap.
    function voteBitmapOf(uint256 jobId, uint256 round, address validator) external view returns (uint256) {
        return _rounds[jobId][round].voteBitmap[validator];
    }

    /// @notice Stake attesting a model CID in a round.
    function attestedStakeOf(uint256 jobId, uint256 round, bytes32 digest, uint16 codec) external view returns (uint256) {
        return _rounds[jobId][round].attestedStake[keccak256(abi.encode(digest, codec))];
    }

    /// @notice What `validator` is owed for its vote in a decided round (0 once claimed or if none).
    function voteRewardOf(uint256 jobId, uint256 round, address validator) public view returns (uint256) {
        Round storage r = _rounds[jobId][round];
        RoundResult storage res = r.result;
        if (res.outcome != Outcome.Quorum) revert RoundNotDecided(round);
        uint256 vs = uint256(r.voteState[validator]);
        if (vs == 0 || vs > STATE_MAX || vs & REVEALED == 0 || vs & CLAIMED != 0) return 0;
        uint256 totalWeight = res.totalValidatorWeight;
        if (totalWeight == 0) return 0;
        uint256 agreement = _agreement(r.voteBitmap[validator], res.acceptedBitmap, res.updateCount);
        uint256 st = stakeManager.stakeAt(validator, res.start - 1);
        return (uint256(res.validatorPool) * st * agreement) / totalWeight;
    }

    // ================================================================== internals

    function _validate(JobParams calldata p) private view {
        if (p.initialModelDigest == 0) revert InvalidParams("initialModelDigest");
        if (p.startTime < block.timestamp) revert InvalidParams("startTime");
        if (p.numRounds == 0) revert InvalidParams("numRounds");
        if (uint256(p.rewardPerRound) * p.numRounds > type(uint96).max) revert InvalidParams("rewardPerRound");
        if (p.commitPeriod == 0 || p.revealPeriod == 0 || p.voteCommitPeriod == 0 || p.voteRevealPeriod == 0) {
            revert InvalidParams("period");
        }
        if (p.attestPeriod == 0) revert InvalidParams("attestPeriod");
        if (p.maxUpdates == 0 || p.maxUpdates > MAX_BITMAP_UPDATES) revert InvalidParams("maxUpdates");
        if (p.maxValidators == 0 || p.maxValidators > MAX_COMMITTEE) revert InvalidParams("maxValidators");
        if (p.quorumBps == 0 || p.quorumBps > BPS) revert InvalidParams("quorumBps");
        if (p.acceptBps == 0 || p.acceptBps > BPS) revert InvalidParams("acceptBps");
        // A strict majority of committee stake decides the model, so two CIDs cannot both win.
        if (p.attestBps <= BPS / 2 || p.attestBps > BPS) revert InvalidParams("attestBps");
        // 0 disables slashing rejected updates; otherwise "rejected by a supermajority" must imply "not accepted".
        if (p.rejectSlashBps > BPS || (p.rejectSlashBps != 0 && uint256(p.rejectSlashBps) + p.acceptBps <= BPS)) {
            revert InvalidParams("rejectSlashBps");
        }
        if (p.validatorShareBps > BPS) revert InvalidParams("validatorShareBps");
        if (p.minWorkerStake == 0) revert InvalidParams("minWorkerStake");
        if (p.minValidatorStake == 0) revert InvalidParams("minValidatorStake");
    }

    function _loadState(uint256 jobId) private view returns (JobState memory s) {
        s = _state[jobId];
        if (s.status == JobStatus.None) revert UnknownJob(jobId);
    }

    function _requireRound(uint256 jobId, uint256 round, Phase expected) private view returns (JobState memory s) {
        s = _loadState(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        if (round != s.round) revert WrongRound(s.round, round);
        Phase actual = _phase(jobId, s);
        if (actual != expected) revert WrongPhase(expected, actual);
    }

    function _phase(uint256 jobId, JobState memory s) private view returns (Phase) {
        if (s.status == JobStatus.Completed) return Phase.Completed;
        if (s.status == JobStatus.Cancelled) return Phase.Cancelled;
        JobConfig storage c = _config[jobId];
        if (s.finalized) {
            return block.timestamp < uint256(s.finalizedAt) + c.attestPeriod ? Phase.Attest : Phase.AttestExpired;
        }
        uint256 t = block.timestamp;
        uint256 end = s.roundStart;
        if (t < end) return Phase.NotStarted;
        end += c.commitPeriod;
        if (t < end) return Phase.Commit;
        end += c.revealPeriod;
        if (t < end) return Phase.Reveal;
        end += c.voteCommitPeriod;
        if (t < end) return Phase.VoteCommit;
        end += c.voteRevealPeriod;
        if (t < end) return Phase.VoteReveal;
        return Phase.Finalize;
    }

    function _voteRevealEnd(JobConfig storage c, uint48 start) private view returns (uint256) {
        return uint256(start) + c.commitPeriod + c.revealPeriod + c.voteCommitPeriod + c.voteRevealPeriod;
    }

    function _overlapsPause(uint48 start, uint256 voteRevealEnd) private view returns (bool) {
        return start < lastUnpausedAt && lastPausedAt < voteRevealEnd;
    }

    /// @dev Tallies the current round: committee and revealed stake at round start, quorum, per-update
    /// decisions and validator weights, and (with quorum) the rewards credited.
    function _decide(uint256 jobId, JobState memory s) private returns (RoundResult memory res) {
        JobConfig storage c = _config[jobId];
        Round storage r = _rounds[jobId][s.round];
        res = r.result;
        res.updateCount = s.revealCount;
        (address[] memory voters, uint256[] memory stakes, uint256 committeeStake) = _eligibleCommittee(jobId, s, c);
        uint256[] memory bitmaps = new uint256[](voters.length);
        uint256 revealedStake;
        for (uint256 j; j < voters.length; ++j) {
            uint256 vs = uint256(r.voteState[voters[j]]);
            if (vs == 0 || vs > STATE_MAX || vs & REVEALED == 0) {
                stakes[j] = 0; // did not reveal: counts for the committee, not for the tally
                continue;
            }
            revealedStake += stakes[j];
            bitmaps[j] = r.voteBitmap[voters[j]];
        }
        res.committeeStake = SafeCast.toUint128(committeeStake);
        res.revealedStake = SafeCast.toUint128(revealedStake);
        if (_overlapsPause(s.roundStart, _voteRevealEnd(c, s.roundStart))) {
            res.outcome = Outcome.Voided;
        } else if (committeeStake == 0 || revealedStake * BPS < uint256(c.quorumBps) * committeeStake) {
            res.outcome = Outcome.NoQuorum;
        } else {
            res.outcome = Outcome.Quorum;
            _tally(c, res, s.revealCount, stakes, bitmaps, revealedStake);
            _credit(jobId, c, res);
        }
    }

    /// @dev Committee members who joined before the round opened and held the minimum stake then, with that
    /// stake. Members below the minimum are left out of both the committee stake and the tally.
    function _eligibleCommittee(uint256 jobId, JobState memory s, JobConfig storage c)
        private
        view
        returns (address[] memory voters, uint256[] memory stakes, uint256 committeeStake)
    {
        address[] storage committee = _committee[jobId];
        uint256 m = committee.length;
        voters = new address[](m);
        stakes = new uint256[](m);
        uint256 minStake = c.minValidatorStake;
        uint48 snapshot = s.roundStart - 1;
        uint256 k;
        for (uint256 j; j < m; ++j) {
            address v = committee[j];
            if (_member[jobId][v].joinedAt >= s.roundStart) continue;
            uint256 st = stakeManager.stakeAt(v, snapshot);
            if (st < minStake) continue;
            voters[k] = v;
            stakes[k] = st;
            committeeStake += st;
            ++k;
        }
        assembly ("memory-safe") {
            mstore(voters, k)
            mstore(stakes, k)
        }
    }

    /// @dev Decides every update and weighs each revealed voter by stake × agreement with the outcome.
    function _tally(
        JobConfig storage c,
        RoundResult memory res,
        uint256 n,
        uint256[] memory stakes,
        uint256[] memory bitmaps,
        uint256 revealedStake
    ) private view {
        uint256[] memory approving = new uint256[](n);
        for (uint256 j; j < stakes.length; ++j) {
            uint256 st = stakes[j];
            uint256 b = bitmaps[j];
            if (st == 0 || b == 0) continue;
            for (uint256 i; i < n; ++i) {
                if ((b >> i) & 1 == 1) approving[i] += st;
            }
        }
        uint256 acceptThreshold = uint256(c.acceptBps) * revealedStake;
        uint256 rejectThreshold = uint256(c.rejectSlashBps) * revealedStake;
        bool slashingOn = c.rejectSlashBps != 0;
        uint256 accepted;
        uint256 slashable;
        for (uint256 i; i < n; ++i) {
            if (approving[i] * BPS >= acceptThreshold) {
                accepted |= uint256(1) << i;
            } else if (slashingOn && (revealedStake - approving[i]) * BPS >= rejectThreshold) {
                slashable |= uint256(1) << i;
            }
        }
        uint256 totalWeight;
        for (uint256 j; j < stakes.length; ++j) {
            if (stakes[j] != 0) totalWeight += stakes[j] * _agreement(bitmaps[j], accepted, n);
        }
        res.acceptedBitmap = accepted;
        res.slashableBitmap = slashable;
        res.totalValidatorWeight = totalWeight;
    }

    /// @dev Moves this round's reward from the job's pool to the claimable total. Unpayable shares (no
    /// accepted update, no agreeing validator) and rounding remainders of the worker share stay in the pool.
    function _credit(uint256 jobId, JobConfig storage c, RoundResult memory res) private {
        uint256 pool = rewardPool[jobId];
        uint256 budget = c.rewardPerRound < pool ? c.rewardPerRound : pool;
        uint256 validatorBudget = (budget * c.validatorShareBps) / BPS;
        uint256 acceptedCount = res.acceptedBitmap.popcount();
        uint256 workerEach = acceptedCount == 0 ? 0 : (budget - validatorBudget) / acceptedCount;
        uint256 validatorPool = res.totalValidatorWeight == 0 ? 0 : validatorBudget;
        uint256 spent = workerEach * acceptedCount + validatorPool;
        rewardPool[jobId] = pool - spent;
        totalOwed += spent;
        res.workerRewardEach = uint128(workerEach);
        res.validatorPool = uint128(validatorPool);
    }

    function _agreement(uint256 bitmap, uint256 accepted, uint256 n) private pure returns (uint256) {
        return (~(bitmap ^ accepted) & Bitmap256.lowMask(n)).popcount();
    }

    /// @dev After a decided (or skipped) round: the job completes when its paid rounds are done, else the
    /// next round opens now on `digest`.
    function _advance(uint256 jobId, JobState memory s, bytes32 digest, uint16 codec) private {
        if (s.completedRounds >= _config[jobId].numRounds) {
            s.status = JobStatus.Completed;
            s.finalized = false;
            _state[jobId] = s;
            emit JobCompleted(jobId, s.round);
        } else {
            _openRound(jobId, s, uint48(block.timestamp), digest, codec);
        }
    }

    function _openRound(uint256 jobId, JobState memory s, uint48 start, bytes32 digest, uint16 codec) private {
        uint32 round = s.round + 1;
        s.round = round;
        s.roundStart = start;
        s.commitCount = 0;
        s.revealCount = 0;
        s.finalized = false;
        s.finalizedAt = 0;
        _state[jobId] = s;
        RoundResult storage res = _rounds[jobId][round].result;
        res.baseDigest = digest;
        res.baseCodec = codec;
        res.start = start;
        emit RoundOpened(jobId, round, start, digest, codec);
    }

    function _slash(uint256 jobId, uint256 round, address account, uint256 amount, SlashReason reason) private {
        uint256 taken = stakeManager.slash(account, amount);
        rewardPool[jobId] += taken;
        emit SlashApplied(jobId, round, account, reason, taken);
    }

    function _pay(uint256 jobId, uint256 round, uint256 amount) private {
        totalOwed -= amount;
        emit RewardClaimed(jobId, round, msg.sender, amount);
        token.safeTransfer(msg.sender, amount);
    }
}
