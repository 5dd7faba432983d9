// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IStakeManager} from "../interfaces/IStakeManager.sol";
import {Bitmap256} from "../libraries/Bitmap256.sol";
import {Committee} from "../libraries/Committee.sol";
import {CoordinatorBase} from "./CoordinatorBase.sol";

/// @title CoordinatorExtension
/// @notice The training coordinator's committee seats (join, leave, displace), round settlement (slashes,
/// claims, lock releases), sponsor refunds and views. It runs only by delegatecall from the
/// `TrainingCoordinator` that deployed it, over that contract's storage; called directly, it refuses.
contract CoordinatorExtension is CoordinatorBase {
    using SafeERC20 for IERC20;
    using Bitmap256 for uint256;
    using Committee for Committee.Seats;

    address private immutable _self;

    error NotDelegated();

    /// @dev Entry points that change state run in the coordinator's context only, never over this
    /// contract's own (empty) storage.
    modifier onlyDelegated() {
        if (address(this) == _self) revert NotDelegated();
        _;
    }

    constructor(IStakeManager stakeManager_, address guardian_) CoordinatorBase(stakeManager_, guardian_) {
        _self = address(this);
    }

    /// @notice Creates a job and escrows `rewardPerRound × numRounds` from the caller (approve first).
    /// Round 1 opens at `startTime` on the initial model; validators must join the committee before it.
    function createJob(JobParams calldata p) external onlyDelegated whenNotPaused nonReentrant returns (uint256 jobId) {
        _validate(p);
        uint256 escrow = uint256(p.rewardPerRound) * p.numRounds;
        jobId = ++jobCount;
        _storeConfig(_config[jobId], p);
        rewardPool[jobId] = escrow;
        JobState memory s;
        s.status = JobStatus.Active;
        emit JobCreated(jobId, msg.sender, p);
        _openRound(jobId, s, p.startTime, p.initialModelDigest, p.initialModelCodec);
        // Measured, so that a fee-on-transfer token cannot leave the pool short of what it promises.
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), escrow);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != escrow) revert UnsupportedToken(received, escrow);
    }

    /// @dev Field by field (a 26-field struct literal is too deep for the stack), grouped by slot.
    function _storeConfig(JobConfig storage c, JobParams calldata p) private {
        c.commitPeriod = p.commitPeriod;
        c.revealPeriod = p.revealPeriod;
        c.voteCommitPeriod = p.voteCommitPeriod;
        c.voteRevealPeriod = p.voteRevealPeriod;
        c.slashWindow = p.slashWindow;
        c.maxUpdates = p.maxUpdates;
        c.maxSamplesPerUpdate = p.maxSamplesPerUpdate;
        c.missedVoteSlashBps = p.missedVoteSlashBps;
        c.attestPeriod = p.attestPeriod;
        c.maxValidators = p.maxValidators;
        c.quorumBps = p.quorumBps;
        c.acceptBps = p.acceptBps;
        c.attestBps = p.attestBps;
        c.rejectSlashBps = p.rejectSlashBps;
        c.validatorShareBps = p.validatorShareBps;
        c.minValidatorStake = p.minValidatorStake;
        c.numRounds = p.numRounds;
        c.sponsor = msg.sender;
        c.rewardPerRound = p.rewardPerRound;
        c.minWorkerStake = p.minWorkerStake;
        c.workerLock = p.rejectSlashAmount > p.missedRevealSlashAmount ? p.rejectSlashAmount : p.missedRevealSlashAmount;
        c.maxMissedRounds = p.maxMissedRounds;
        c.maxIdleRounds = p.maxIdleRounds;
        c.rejectSlashAmount = p.rejectSlashAmount;
        c.missedRevealSlashAmount = p.missedRevealSlashAmount;
        c.slashSpan = uint32(uint256(p.commitPeriod) + p.revealPeriod + p.voteCommitPeriod + p.voteRevealPeriod + p.slashWindow);
        c.absenceSlashAmount = p.absenceSlashAmount;
        c.minUpdates = p.minUpdates;
    }

    function _validate(JobParams calldata p) private view {
        if (p.initialModelDigest == 0) revert InvalidParams("initialModelDigest");
        // Strictly in the future: validators must be able to join before round 1 reads their stake.
        if (p.startTime <= block.timestamp) revert InvalidParams("startTime");
        if (p.numRounds == 0) revert InvalidParams("numRounds");
        if (uint256(p.rewardPerRound) * p.numRounds > type(uint96).max) revert InvalidParams("rewardPerRound");
        if (p.commitPeriod == 0 || p.revealPeriod == 0 || p.voteCommitPeriod == 0 || p.voteRevealPeriod == 0) {
            revert InvalidParams("period");
        }
        if (p.attestPeriod == 0) revert InvalidParams("attestPeriod");
        if (p.slashWindow == 0) revert InvalidParams("slashWindow");
        // Stake read at round start must still be in the stake manager (active or unbonding) until the
        // round's last slash and attestation: no round outlasts the unbonding period.
        uint256 roundSpan = uint256(p.commitPeriod) + p.revealPeriod + p.voteCommitPeriod + p.voteRevealPeriod
            + p.slashWindow + p.attestPeriod;
        if (roundSpan >= stakeManager.unbondingPeriod() || roundSpan > type(uint32).max) {
            revert InvalidParams("roundLongerThanUnbonding");
        }
        // A guardian may pause once per PAUSE_COOLDOWN: a round at least that long could be voided every time.
        if (guardian != address(0) && roundSpan >= PAUSE_COOLDOWN) revert InvalidParams("roundLongerThanPauseCooldown");
        if (p.maxUpdates == 0 || p.maxUpdates > MAX_BITMAP_UPDATES) revert InvalidParams("maxUpdates");
        if (p.maxSamplesPerUpdate == 0) revert InvalidParams("maxSamplesPerUpdate");
        if (p.maxValidators == 0 || p.maxValidators > MAX_COMMITTEE) revert InvalidParams("maxValidators");
        if (p.quorumBps < MIN_QUORUM_BPS || p.quorumBps > BPS) revert InvalidParams("quorumBps");
        if (p.acceptBps == 0 || p.acceptBps > BPS) revert InvalidParams("acceptBps");
        // A strict majority of the revealed stake decides the model, so two CIDs cannot both win.
        if (p.attestBps <= BPS / 2 || p.attestBps > BPS) revert InvalidParams("attestBps");
        // "Rejected by a supermajority" must imply "not accepted".
        if (p.rejectSlashBps == 0 || p.rejectSlashBps > BPS || uint256(p.rejectSlashBps) + p.acceptBps <= BPS) {
            revert InvalidParams("rejectSlashBps");
        }
        if (p.validatorShareBps > BPS) revert InvalidParams("validatorShareBps");
        if (p.missedVoteSlashBps == 0 || p.missedVoteSlashBps > BPS) revert InvalidParams("missedVoteSlashBps");
        // Absent members must be evicted before the job gives up on its committee.
        // ≥ 2: one voided round (everyone misses a round that overlapped a pause) must not evict anybody.
        if (p.maxMissedRounds < 2) revert InvalidParams("maxMissedRounds");
        if (p.maxIdleRounds <= p.maxMissedRounds) revert InvalidParams("maxIdleRounds");
        if (p.minWorkerStake == 0) revert InvalidParams("minWorkerStake");
        if (p.minValidatorStake == 0) revert InvalidParams("minValidatorStake");
        if (p.missedRevealSlashAmount == 0) revert InvalidParams("missedRevealSlashAmount");
        if (p.absenceSlashAmount == 0) revert InvalidParams("absenceSlashAmount");
        // Filling every slot of a round with rejected updates must cost at least the round's worker reward.
        uint256 workerReward = uint256(p.rewardPerRound) - (uint256(p.rewardPerRound) * p.validatorShareBps) / BPS;
        if (uint256(p.rejectSlashAmount) * p.maxUpdates < workerReward) revert InvalidParams("rejectSlashAmount");
        // minUpdates commitments close the commit phase, shutting out everyone who has not committed yet:
        // making them (then leaving them unrevealed, or revealing junk) must cost at least the round's
        // worker reward too.
        if (p.minUpdates != 0) {
            uint256 cheaper = p.missedRevealSlashAmount < p.rejectSlashAmount ? p.missedRevealSlashAmount : p.rejectSlashAmount;
            if (p.minUpdates > p.maxUpdates || cheaper * p.minUpdates < workerReward) revert InvalidParams("minUpdates");
        }
    }

    /// @notice The sponsor stops a job whose current round has no commitment yet (e.g. no workers came).
    function cancelJob(uint256 jobId) external onlyDelegated {
        JobState memory s = _loadState(jobId);
        if (msg.sender != _config[jobId].sponsor) revert NotSponsor(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        if (s.commitCount != 0 || s.finalized) revert JobHasCommitments(jobId);
        Phase ph = _phase(jobId, s);
        if (ph != Phase.NotStarted && ph != Phase.Commit) revert WrongPhase(Phase.Commit, ph);
        _state[jobId].status = JobStatus.Cancelled;
        emit JobCancelled(jobId);
    }

    /// @notice The sponsor takes back what a completed, cancelled or expired job did not pay out.
    function withdrawRemainder(uint256 jobId) external onlyDelegated nonReentrant {
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

    /// @notice Joins the job's validator committee; holds `absenceSlashAmount` of the caller's free stake
    /// (which must be at least `minValidatorStake`) until it leaves. Votes count from the first round that
    /// opens after joining. A full committee seats a joiner whose stake exceeds its lowest member's, which
    /// is displaced (members with a vote in the current round are not displaced before it moves on).
    function joinCommittee(uint256 jobId) external onlyDelegated whenNotPaused {
        JobState memory s = _loadState(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        Committee.Seats storage seats = _committee[jobId];
        if (seats.member[msg.sender].position != 0) revert AlreadyInCommittee();
        JobConfig storage c = _config[jobId];
        if (seats.members.length >= c.maxValidators) _displaceLowest(jobId, s, seats, c);
        uint256 bond = c.absenceSlashAmount;
        uint32 eligibleFrom = block.timestamp < s.roundStart ? s.round : s.round + 1;
        seats.add(msg.sender, eligibleFrom);
        if (eligibleFrom > s.round) ++_rounds[jobId][eligibleFrom].seatedFor;
        if (_voteSlot[jobId][msg.sender] == 0) _voteSlot[jobId][msg.sender] = VOTE_SLOT_PRIMED;
        emit CommitteeJoined(jobId, msg.sender);
        stakeManager.hold(msg.sender, bond, c.minValidatorStake);
    }

    /// @notice Leaves the committee and releases its bond. Not while the caller has a vote in the job's
    /// current round (until that round moves on). A member of an active job that has missed
    /// `maxMissedRounds − 1` decided rounds in a row (at least one) forfeits its bond instead: leaving
    /// and rejoining would otherwise restart its absence count and dodge eviction. Members leave in
    /// good standing right after a round they revealed in. Rewards already credited stay claimable.
    function leaveCommittee(uint256 jobId) external onlyDelegated {
        JobState memory s = _loadState(jobId);
        Committee.Seats storage seats = _committee[jobId];
        Committee.Member memory m = seats.member[msg.sender];
        if (m.position == 0) revert NotInCommittee();
        bool active = s.status == JobStatus.Active;
        if (active && Committee.votePending(m, s.round)) revert VotePending();
        JobConfig storage c = _config[jobId];
        uint32 decided = _lastDecidedRound(s);
        uint256 forfeitAfter = c.maxMissedRounds - 1; // ≥ 1: _validate requires maxMissedRounds ≥ 2
        _unseat(jobId, s, seats, msg.sender);
        emit CommitteeLeft(jobId, msg.sender);
        if (active && Committee.missedRounds(m, decided) >= forfeitAfter) {
            _slashHeld(jobId, decided, msg.sender, c.absenceSlashAmount, SlashReason.Absence);
        } else {
            stakeManager.releaseHold(msg.sender, c.absenceSlashAmount);
        }
    }

    /// @notice Evicts a member of an active job that revealed no vote in the last `maxMissedRounds` decided
    /// rounds (it already stopped counting towards quorum) and slashes its bond, which frees its seat.
    /// Anyone may call it, but not while the member has a vote in the current round. Once the job has
    /// ended, members leave freely instead.
    function evictAbsentMember(uint256 jobId, address validator) external onlyDelegated nonReentrant {
        JobState memory s = _loadState(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        Committee.Seats storage seats = _committee[jobId];
        Committee.Member memory m = seats.member[validator];
        if (m.position == 0) revert NotInCommittee();
        // A member that is back (it committed in the current round) keeps its vote: eviction would drop
        // it from the tally after the fact.
        if (Committee.votePending(m, s.round)) revert VotePending();
        JobConfig storage c = _config[jobId];
        uint32 decided = _lastDecidedRound(s);
        uint256 missed = Committee.missedRounds(m, decided);
        if (missed < c.maxMissedRounds) revert NotAbsent(missed, c.maxMissedRounds);
        _unseat(jobId, s, seats, validator);
        emit MemberEvicted(jobId, decided, validator);
        _slashHeld(jobId, decided, validator, c.absenceSlashAmount, SlashReason.Absence);
    }

    /// @notice Slashes a member that committed a vote in `round` and withheld it (recorded by finalize):
    /// `missedVoteSlashBps` of its round weight, from the stake its commitment locked. Anyone may call it
    /// before the round's slash deadline; validator daemons do.
    function slashWithheldVote(uint256 jobId, uint256 round, address validator) external onlyDelegated nonReentrant {
        Round storage r = _rounds[jobId][round];
        uint256 st = r.withheldStake[validator];
        if (st == 0) revert NothingToSlash();
        JobConfig storage c = _config[jobId];
        uint48 deadline = _slashDeadline(c, r.result.start);
        if (block.timestamp >= deadline) revert SlashWindowOver(deadline);
        delete r.withheldStake[validator];
        uint256 amount = (st * c.missedVoteSlashBps) / BPS;
        _slashLocked(jobId, round, validator, amount, amount, deadline, SlashReason.MissedVoteReveal);
    }

    /// @dev Frees `a`'s seat; a member seated during the current round leaves the count of those whose votes
    /// count from the next (`_eligibleSeats`).
    function _unseat(uint256 jobId, JobState memory s, Committee.Seats storage seats, address a) private {
        uint32 eligibleFrom = seats.member[a].eligibleFrom;
        if (eligibleFrom > s.round) --_rounds[jobId][eligibleFrom].seatedFor;
        seats.remove(a);
    }

    /// @dev The job's last round with an outcome: the current one once finalized or ended, else the one before.
    function _lastDecidedRound(JobState memory s) private pure returns (uint32) {
        return s.finalized || s.status != JobStatus.Active ? s.round : s.round - 1;
    }

    /// @dev Frees the seat of the lowest-staked displaceable member if the caller's stake is higher. Not
    /// displaceable: a member with a vote in the current round, and — from the reveal phase until the
    /// round is finalized — a member eligible in it, so that nobody can cut voters out of a round after
    /// seeing its updates. A displaced member that was already absent (evictable) loses its bond.
    function _displaceLowest(uint256 jobId, JobState memory s, Committee.Seats storage seats, JobConfig storage c) private {
        uint256 joinerStake = stakeManager.stakeOf(msg.sender);
        Phase ph = _phase(jobId, s);
        bool voting = ph == Phase.Reveal || ph == Phase.VoteCommit || ph == Phase.VoteReveal || ph == Phase.Finalize;
        uint32 decided = _lastDecidedRound(s);
        address lowest;
        uint256 lowestStake = type(uint256).max;
        bool lowestAbsent;
        for (uint256 j; j < seats.members.length; ++j) {
            address a = seats.members[j];
            Committee.Member memory m = seats.member[a];
            if (Committee.votePending(m, s.round)) continue;
            bool absent = Committee.missedRounds(m, decided) >= c.maxMissedRounds;
            if (voting && m.eligibleFrom <= s.round && !absent) continue;
            uint256 st = stakeManager.stakeOf(a);
            if (st < lowestStake) (lowest, lowestStake, lowestAbsent) = (a, st, absent);
        }
        if (lowest == address(0) || joinerStake <= lowestStake) revert CommitteeFull(c.maxValidators);
        _unseat(jobId, s, seats, lowest);
        emit CommitteeDisplaced(jobId, lowest, msg.sender);
        if (lowestAbsent) _slashHeld(jobId, decided, lowest, c.absenceSlashAmount, SlashReason.Absence);
        else stakeManager.releaseHold(lowest, c.absenceSlashAmount);
    }

    /// @notice Slashes the worker of update `index` of a decided round, which a supermajority rejected.
    /// Anyone may call it before the round's slash deadline.
    function slashRejectedUpdate(uint256 jobId, uint256 round, uint256 index) external onlyDelegated nonReentrant {
        Round storage r = _rounds[jobId][round];
        if (r.result.outcome != Outcome.Quorum) revert RoundNotDecided(round);
        Update storage u = r.updates[index];
        if (!r.result.slashableBitmap.isSet(index) || u.flags & UPDATE_SLASHED != 0) revert NothingToSlash();
        JobConfig storage c = _config[jobId];
        uint48 deadline = _slashDeadline(c, r.result.start);
        if (block.timestamp >= deadline) revert SlashWindowOver(deadline);
        u.flags |= UPDATE_SLASHED | UPDATE_UNLOCKED;
        _slashLocked(jobId, round, u.worker, c.workerLock, c.rejectSlashAmount, deadline, SlashReason.RejectedUpdate);
    }

    /// @notice Slashes a worker that committed an update in `round` and did not reveal it.
    /// Anyone may call it after the round's vote reveal and before its slash deadline, unless the round
    /// overlapped a pause or all its update slots were taken (the worker could not have revealed).
    /// (Validators that withhold their vote are slashed by `slashWithheldVote`.)
    function slashMissedReveal(uint256 jobId, uint256 round, address worker) external onlyDelegated nonReentrant {
        JobState memory s = _loadState(jobId);
        if (round == 0 || round > s.round) revert WrongRound(s.round, round);
        JobConfig storage c = _config[jobId];
        Round storage r = _rounds[jobId][round];
        uint48 start = r.result.start;
        uint256 end = _voteRevealEnd(c, start);
        if (block.timestamp < end) revert RevealNotOver();
        uint48 deadline = _slashDeadline(c, start);
        if (block.timestamp >= deadline) revert SlashWindowOver(deadline);
        _recordExpiredPause();
        // A decided round's outcome already says whether a pause voided it (finalize checked every pause up
        // to then, and by then nobody could reveal any more): a pause after an early finalize is no excuse.
        bool undecided = r.result.outcome == Outcome.Pending;
        if (r.result.outcome == Outcome.Voided || (undecided && _overlapsPause(start, end))) revert RoundVoided(round);
        if (uint256(r.updateCommitment[worker]) <= STATE_MAX) revert NothingToSlash();
        // Only the current round can still be undecided; finalize copied every other's reveal count.
        uint256 reveals = undecided ? s.revealCount : r.result.updateCount;
        if (reveals >= c.maxUpdates) revert RoundWasFull(round);
        r.updateCommitment[worker] = bytes32(MISSED_SLASHED);
        _slashLocked(jobId, round, worker, c.workerLock, c.missedRevealSlashAmount, deadline, SlashReason.MissedUpdateReveal);
    }

    /// @notice Releases the stake lock of update `index` of a decided round that is not (or no longer)
    /// slashable. Anyone may call it; workers' daemons do, so that their stake is free for the next round.
    function releaseUpdateLock(uint256 jobId, uint256 round, uint256 index) external onlyDelegated {
        Round storage r = _rounds[jobId][round];
        if (r.result.outcome == Outcome.Pending) revert RoundNotDecided(round);
        if (index >= r.result.updateCount) revert NothingToClaim();
        Update storage u = r.updates[index];
        if (u.flags & UPDATE_UNLOCKED != 0) revert NothingToClaim();
        JobConfig storage c = _config[jobId];
        uint48 deadline = _slashDeadline(c, r.result.start);
        if (r.result.slashableBitmap.isSet(index) && block.timestamp < deadline) revert SlashPending(index);
        u.flags |= UPDATE_UNLOCKED;
        emit UpdateLockReleased(jobId, round, index, u.worker);
        stakeManager.unlock(u.worker, c.workerLock, deadline);
    }

    /// @notice Pays a validator everything credited to it in this job. Finalize credits each revealed voter
    /// its share of the round's validator pool, by round-start stake × decisions agreeing with the outcome.
    /// The RewardClaimed event carries round 0 for these accrued payments.
    function claimVoteReward(uint256 jobId) external onlyDelegated nonReentrant {
        Committee.Member storage m = _committee[jobId].member[msg.sender];
        uint256 amount = m.owed;
        if (amount == 0) revert NothingToClaim();
        m.owed = 0;
        _pay(jobId, 0, amount);
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
        return _committee[jobId].members;
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

    /// @notice A validator's committee record: eligibility, seat, last committed/revealed/attested round, rewards owed.
    function memberOf(uint256 jobId, address validator) external view returns (Committee.Member memory) {
        return _committee[jobId].member[validator];
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

    /// @notice Round-start stake of a member that committed a vote in `round` and withheld it, until its
    /// slash is executed (0 otherwise).
    function withheldStakeOf(uint256 jobId, uint256 round, address validator) external view returns (uint256) {
        return _rounds[jobId][round].withheldStake[validator];
    }

    /// @notice Whether an update with this digest was ever revealed in the job.
    function digestRevealed(uint256 jobId, bytes32 digest) external view returns (bool) {
        return _revealedDigest[jobId][digest];
    }

    /// @notice The time after which a round's slashes can no longer be executed (and its locks expire).
    function slashDeadlineOf(uint256 jobId, uint256 round) external view returns (uint48) {
        return _slashDeadline(_config[jobId], _rounds[jobId][round].result.start);
    }

}
