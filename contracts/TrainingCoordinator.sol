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

    /// @notice A validator's standing in one job's committee. One slot, read by every validator call and
    /// by finalize: round markers replace per-round records, and rewards accrue here at finalize.
    struct Member {
        uint48 joinedAt;
        uint16 position; // index in the committee array + 1; 0 = not a member
        uint32 commitRound; // last round it committed a vote in
        uint32 revealRound; // last round it revealed a vote in
        uint32 attestRound; // last round it attested a model in
        uint96 owed; // validator rewards credited and not yet claimed
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
    /// @dev Per member, reused every round: the vote commitment after commitVote, the bitmap after revealVote.
    mapping(uint256 jobId => mapping(address validator => bytes32)) private _voteSlot;
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
        if (_voteSlot[jobId][msg.sender] == 0) _voteSlot[jobId][msg.sender] = VOTE_SLOT_PRIMED;
        emit CommitteeJoined(jobId, msg.sender);
    }

    /// @notice Leaves the committee. Not while a vote of the caller in the undecided current round is pending.
    /// Rewards already credited stay claimable.
    function leaveCommittee(uint256 jobId) external {
        JobState memory s = _loadState(jobId);
        Member storage m = _member[jobId][msg.sender];
        uint16 position = m.position;
        if (position == 0) revert NotInCommittee();
        if (!s.finalized && m.commitRound == s.round) revert VotePending();
        address[] storage committee = _committee[jobId];
        address last = committee[committee.length - 1];
        committee[position - 1] = last;
        _member[jobId][last].position = position;
        committee.pop();
        m.position = 0;
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
        if (commitment == 0) revert InvalidCommitment();
        Member storage m = _member[jobId][msg.sender];
        if (m.position == 0 || m.joinedAt >= s.roundStart) revert NotInCommittee();
        if (m.commitRound == round) revert AlreadyCommitted();
        uint256 minStake = _config[jobId].minValidatorStake;
        uint256 st = stakeManager.stakeAt(msg.sender, s.roundStart - 1);
        if (st < minStake) revert InsufficientStake(minStake, st);
        m.commitRound = uint32(round);
        _voteSlot[jobId][msg.sender] = commitment;
        emit VoteCommitted(jobId, round, msg.sender, commitment);
    }

    /// @notice Reveals a committed vote. Bit i of `acceptBitmap` accepts the update revealed i-th.
    function revealVote(uint256 jobId, uint256 round, uint256 acceptBitmap, bytes32 salt) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.VoteReveal);
        Member storage m = _member[jobId][msg.sender];
        if (m.commitRound != round) revert NotCommitted();
        if (m.revealRound == round) revert AlreadyRevealed();
        if (voteCommitment(jobId, round, msg.sender, acceptBitmap, salt) != _voteSlot[jobId][msg.sender]) {
            revert RevealMismatch();
        }
        if (acceptBitmap & ~Bitmap256.lowMask(s.revealCount) != 0) revert InvalidBitmap(acceptBitmap, s.revealCount);
        m.revealRound = uint32(round);
        _voteSlot[jobId][msg.sender] = bytes32(acceptBitmap);
        emit VoteRevealed(jobId, round, msg.sender, acceptBitmap);
    }

    /// @notice Attests the CID of the aggregate model a validator computed from the round's accepted updates.
    /// The first CID whose attesting stake reaches `attestBps` of committee stake becomes the next base model.
    function attestModel(uint256 jobId, uint256 round, bytes32 digest, uint16 codec) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.Attest);
        Round storage r = _rounds[jobId][round];
        Member storage m = _member[jobId][msg.sender];
        if (m.revealRound != round) revert NotVoted();
        if (m.attestRound == round) revert AlreadyAttested();
        m.attestRound = uint32(round);
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
        (RoundResult memory res, address[] memory missedReveal) = _decide(jobId, s);
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
        // Validators who committed a vote and hid it are slashed here: the committee is walked anyway.
        if (res.outcome != Outcome.Voided) {
            uint256 amount = _config[jobId].missedRevealSlashAmount;
            for (uint256 i; i < missedReveal.length; ++i) {
                _slash(jobId, round, missedReveal[i], amount, SlashReason.MissedVoteReveal);
            }
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

    /// @notice Slashes a worker that committed an update in `round` and did not reveal it in time.
    /// (Validators that hide their vote are slashed by `finalizeRound`.)
    function slashMissedReveal(uint256 jobId, uint256 round, address worker) external whenNotPaused nonReentrant {
        JobState memory s = _loadState(jobId);
        if (round == 0 || round > s.round) revert WrongRound(s.round, round);
        JobConfig storage c = _config[jobId];
        Round storage r = _rounds[jobId][round];
        uint48 start = r.result.start;
        if (r.result.outcome == Outcome.Voided || _overlapsPause(start, _voteRevealEnd(c, start))) revert RoundVoided(round);
        if (uint256(r.updateCommitment[worker]) <= STATE_MAX) revert NothingToSlash();
        if (block.timestamp < uint256(start) + c.commitPeriod + c.revealPeriod) revert RevealNotOver();
        r.updateCommitment[worker] = bytes32(MISSED_SLASHED);
        _slash(jobId, round, worker, c.missedRevealSlashAmount, SlashReason.MissedUpdateReveal);
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

    /// @notice Pays a validator everything credited to it in this job. Finalize credits each revealed voter
    /// its share of the round's validator pool, by round-start stake × decisions agreeing with the outcome.
    /// The RewardClaimed event carries round 0 for these accrued payments.
    function claimVoteReward(uint256 jobId) external nonReentrant {
        Member storage m = _member[jobId][msg.sender];
        uint256 amount = m.owed;
        if (amount == 0) revert NothingToClaim();
        m.owed = 0;
        _pay(jobId, 0, amount);
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

    /// @notice A worker's commitment slot: 0 none, the commitment while unrevealed, else a small state.
    function updateCommitmentOf(uint256 jobId, uint256 round, address worker) external view returns (bytes32) {
        return _rounds[jobId][round].updateCommitment[worker];
    }

    /// @notice A validator's committee record: membership, last committed/revealed/attested round, rewards owed.
    function memberOf(uint256 jobId, address validator) external view returns (Member memory) {
        return _member[jobId][validator];
    }

    /// @notice A validator's vote slot: its commitment after commitVote, its accept bitmap after revealVote.
    /// Earlier rounds' bitmaps are in the VoteRevealed events.
    function voteSlotOf(uint256 jobId, address validator) external view returns (bytes32) {
        return _voteSlot[jobId][validator];
    }

    /// @notice Stake attesting a model CID in a round.
    function attestedStakeOf(uint256 jobId, uint256 round, bytes32 digest, uint16 codec) external view returns (uint256) {
        return _rounds[jobId][round].attestedStake[keccak256(abi.encode(digest, codec))];
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

    /// @dev The votes of the current round, gathered in one walk over the committee.
    struct Votes {
        address[] voters; // revealed, eligible
        uint256[] stakes;
        uint256[] bitmaps;
        address[] missedReveal; // committed, never revealed
        uint256 committeeStake;
        uint256 revealedStake;
    }

    /// @dev Tallies the current round: committee and revealed stake at round start, quorum, per-update
    /// decisions and (with quorum) the rewards credited.
    function _decide(uint256 jobId, JobState memory s) private returns (RoundResult memory res, address[] memory missed) {
        JobConfig storage c = _config[jobId];
        res = _rounds[jobId][s.round].result;
        res.updateCount = s.revealCount;
        Votes memory v = _collectVotes(jobId, s, c);
        res.committeeStake = SafeCast.toUint128(v.committeeStake);
        res.revealedStake = SafeCast.toUint128(v.revealedStake);
        missed = v.missedReveal;
        if (_overlapsPause(s.roundStart, _voteRevealEnd(c, s.roundStart))) {
            res.outcome = Outcome.Voided;
        } else if (v.committeeStake == 0 || v.revealedStake * BPS < uint256(c.quorumBps) * v.committeeStake) {
            res.outcome = Outcome.NoQuorum;
        } else {
            res.outcome = Outcome.Quorum;
            _tally(c, res, v);
            _credit(jobId, s.round, c, res, v);
        }
    }

    /// @dev Eligible members joined before the round opened and held the minimum stake then; only they count
    /// for the committee stake. Members below the minimum could not commit a vote.
    function _collectVotes(uint256 jobId, JobState memory s, JobConfig storage c) private view returns (Votes memory v) {
        address[] storage committee = _committee[jobId];
        uint256 m = committee.length;
        v.voters = new address[](m);
        v.stakes = new uint256[](m);
        v.bitmaps = new uint256[](m);
        v.missedReveal = new address[](m);
        uint256 minStake = c.minValidatorStake;
        uint48 snapshot = s.roundStart - 1;
        uint32 round = s.round;
        uint256 k;
        uint256 q;
        for (uint256 j; j < m; ++j) {
            address a = committee[j];
            Member memory mm = _member[jobId][a];
            if (mm.joinedAt >= s.roundStart) continue;
            uint256 st = stakeManager.stakeAt(a, snapshot);
            if (st < minStake) continue;
            v.committeeStake += st;
            if (mm.revealRound == round) {
                v.voters[k] = a;
                v.stakes[k] = st;
                v.bitmaps[k] = uint256(_voteSlot[jobId][a]);
                v.revealedStake += st;
                ++k;
            } else if (mm.commitRound == round) {
                v.missedReveal[q++] = a;
            }
        }
        address[] memory voters = v.voters;
        uint256[] memory stakes = v.stakes;
        uint256[] memory bitmaps = v.bitmaps;
        address[] memory missed = v.missedReveal;
        assembly ("memory-safe") {
            mstore(voters, k)
            mstore(stakes, k)
            mstore(bitmaps, k)
            mstore(missed, q)
        }
    }

    /// @dev Decides every update from the revealed votes. A voter approving most updates is counted as
    /// "approves all, minus the few it rejected", so only the sparse side of each bitmap is walked: at most
    /// n/2 bit visits per voter, and none for a unanimous vote (the common case).
    function _tally(JobConfig storage c, RoundResult memory res, Votes memory v) private view {
        uint256 n = res.updateCount;
        uint256 mask = Bitmap256.lowMask(n);
        uint256[] memory plus = new uint256[](n); // stake of sparse approvers, per update
        uint256[] memory minus = new uint256[](n); // stake of dense approvers that rejected it, per update
        uint256 dense; // stake of dense approvers
        for (uint256 j; j < v.voters.length; ++j) {
            uint256 st = v.stakes[j];
            uint256 b = v.bitmaps[j];
            uint256[] memory acc = plus;
            if (b.popcount() * 2 > n) {
                dense += st;
                b = ~b & mask;
                acc = minus;
            }
            // Adds `st` to acc[i] for every set bit i, skipping runs of eight zero bits. Stakes are uint208
            // and at most 256 are summed, so no sum overflows.
            assembly ("memory-safe") {
                let ptr := add(acc, 0x20)
                for {} b {} {
                    switch and(b, 0xff)
                    case 0 {
                        b := shr(8, b)
                        ptr := add(ptr, 0x100)
                    }
                    default {
                        if and(b, 1) { mstore(ptr, add(mload(ptr), st)) }
                        b := shr(1, b)
                        ptr := add(ptr, 0x20)
                    }
                }
            }
        }
        uint256[] memory approving = plus;
        for (uint256 i; i < n; ++i) {
            approving[i] = dense + plus[i] - minus[i];
        }
        uint256 revealedStake = v.revealedStake;
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
        res.acceptedBitmap = accepted;
        res.slashableBitmap = slashable;
    }

    /// @dev Moves this round's reward from the job's pool to what participants can claim: an equal share per
    /// accepted update, and the validator share by stake × agreement, credited to each voter's record.
    /// Unpayable shares (no accepted update, no agreeing validator) and rounding remainders stay in the pool.
    function _credit(uint256 jobId, uint256 round, JobConfig storage c, RoundResult memory res, Votes memory v)
        private
    {
        uint256 pool = rewardPool[jobId];
        uint256 budget = c.rewardPerRound < pool ? c.rewardPerRound : pool;
        uint256 validatorBudget = (budget * c.validatorShareBps) / BPS;
        uint256 acceptedCount = res.acceptedBitmap.popcount();
        uint256 workerEach = acceptedCount == 0 ? 0 : (budget - validatorBudget) / acceptedCount;

        uint256 n = res.updateCount;
        uint256[] memory weights = new uint256[](v.voters.length);
        uint256 totalWeight;
        for (uint256 j; j < weights.length; ++j) {
            weights[j] = v.stakes[j] * _agreement(v.bitmaps[j], res.acceptedBitmap, n);
            totalWeight += weights[j];
        }
        uint256 validatorPaid;
        if (totalWeight != 0) {
            for (uint256 j; j < weights.length; ++j) {
                uint256 share = (validatorBudget * weights[j]) / totalWeight;
                if (share == 0) continue;
                Member storage m = _member[jobId][v.voters[j]];
                m.owed = SafeCast.toUint96(m.owed + share);
                validatorPaid += share;
                emit ValidatorRewardCredited(jobId, round, v.voters[j], share);
            }
        }
        uint256 spent = workerEach * acceptedCount + validatorPaid;
        rewardPool[jobId] = pool - spent;
        totalOwed += spent;
        res.workerRewardEach = uint128(workerEach);
        res.validatorPool = uint128(validatorPaid);
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
