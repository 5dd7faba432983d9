// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";
import {Bitmap256} from "./libraries/Bitmap256.sol";
import {Committee} from "./libraries/Committee.sol";
import {RoundTally} from "./libraries/RoundTally.sol";
import {CoordinatorBase} from "./coordinator/CoordinatorBase.sol";
import {CoordinatorExtension} from "./coordinator/CoordinatorExtension.sol";

/// @title TrainingCoordinator
/// @notice Jobs and rounds of fedstake: workers commit and reveal model updates (by IPFS CID), a committee
/// of staked validators commits and reveals stake-weighted accept bitmaps, anyone finalizes, and the
/// validators attest the aggregate model's CID, which opens the next round. Rewards are pull payments.
/// @dev Security properties (DESIGN.md), and where each is enforced:
/// - Stake at risk: every commitment and vote locks its maximum slash exposure in the stake manager until
///   the round's slash deadline; a committee seat holds its absence bond. `_validate` refuses jobs whose
///   round (vote reveal + slash window + attestation) outlasts the unbonding period, so vote weight read at
///   round start is never backed by withdrawn tokens.
/// - No profit from slashing: slashed stake is burned by the stake manager, all of it; the job's pool
///   holds escrow only.
/// - No advantage from withholding: quorum, acceptance and slashing are measured against committed vote
///   stake; a withheld vote is slashed in proportion to its weight (`missedVoteSlashBps`).
/// - Liveness: a member that reveals no vote in `maxMissedRounds` rounds in a row stops counting towards
///   quorum, and anyone may evict it and slash its bond (`evictAbsentMember`); a higher stake displaces the lowest seat of a full committee; after
///   `maxIdleRounds` undecided rounds in a row the job expires and the sponsor recovers the escrow;
///   attestation is measured against the stake that revealed, so a round with quorum can be attested.
/// - Sybil cost: update slots are taken at reveal (unrevealed commitments lock nobody out) and filling
///   them with rejected updates costs at least the round's worker reward (`_validate`).
/// - No admin key over stake: the only power is the guardian's bounded pause; paused rounds are voided.
/// Gas shape: every per-participant call touches a fixed number of slots whatever the number of updates;
/// `finalizeRound` is bounded by maxUpdates × maxValidators.
contract TrainingCoordinator is CoordinatorBase {
    using SafeERC20 for IERC20;
    using Bitmap256 for uint256;
    using Committee for Committee.Seats;

    /// @notice Implements the coordinator's committee, settlement and view functions over this contract's
    /// storage: every call this contract does not implement itself is delegated to it.
    address public immutable extension;

    /// @param stakeManager_ Must name this contract as its coordinator (set once, after deployment).
    /// @param guardian_ May pause for a bounded time (BoundedPausable); the zero address disables pausing.
    constructor(IStakeManager stakeManager_, address guardian_) CoordinatorBase(stakeManager_, guardian_) {
        extension = address(new CoordinatorExtension(stakeManager_, guardian_));
    }

    /// @dev Delegates everything else to the extension, which shares this storage layout.
    fallback() external {
        address ext = extension;
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), ext, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch ok
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }

    /// @notice Commits to an update: `commitment = updateCommitment(jobId, round, worker, cidDigest, cidCodec,
    /// numSamples, salt)`. Hides the CID until the reveal phase, so nobody can copy another worker's update.
    /// Needs `minWorkerStake` of free stake and locks `max(rejectSlashAmount, missedRevealSlashAmount)` of it
    /// until the round's slash deadline (or until claimed or released, earlier).
    function commitUpdate(uint256 jobId, uint256 round, bytes32 commitment) external whenNotPaused {
        // Before the phase check: the last commitment may have closed the phase, and its sender retrying
        // (a resent transaction, a restart) must learn that it committed, not that the phase is over.
        Round storage r = _rounds[jobId][round];
        if (r.updateCommitment[msg.sender] != 0) revert AlreadyCommitted();
        JobState memory s = _requireRound(jobId, round, Phase.Commit);
        JobConfig storage c = _config[jobId];
        if (uint256(commitment) <= STATE_MAX) revert InvalidCommitment();
        if (s.commitCount == type(uint16).max) revert TooManyUpdates(type(uint16).max);
        if (_committee[jobId].member[msg.sender].position != 0) revert ValidatorCannotSubmit();
        r.updateCommitment[msg.sender] = commitment;
        _state[jobId].commitCount = s.commitCount + 1;
        emit UpdateCommitted(jobId, round, msg.sender, commitment);
        stakeManager.lock(msg.sender, c.workerLock, _slashDeadline(c, s.roundStart), c.minWorkerStake);
    }

    /// @notice Reveals a committed update. Its index in the round's vote bitmaps is its reveal order: the
    /// first `maxUpdates` reveals take the round's slots. A digest already revealed in this job is refused.
    function revealUpdate(uint256 jobId, uint256 round, bytes32 cidDigest, uint16 cidCodec, uint64 numSamples, bytes32 salt)
        external
        whenNotPaused
    {
        Round storage r = _rounds[jobId][round];
        bytes32 stored = r.updateCommitment[msg.sender];
        // Before the phase check, as in commitUpdate: the last reveal closes the phase.
        if (stored != 0 && uint256(stored) <= STATE_MAX) revert AlreadyRevealed();
        JobState memory s = _requireRound(jobId, round, Phase.Reveal);
        JobConfig storage c = _config[jobId];
        if (stored == 0) revert NotCommitted();
        if (updateCommitment(jobId, round, msg.sender, cidDigest, cidCodec, numSamples, salt) != stored) {
            revert RevealMismatch();
        }
        if (numSamples == 0) revert ZeroSamples();
        if (numSamples > c.maxSamplesPerUpdate) revert TooManySamples(c.maxSamplesPerUpdate, numSamples);
        if (cidDigest == 0) revert InvalidDigest();
        uint256 index = s.revealCount;
        if (index >= c.maxUpdates) revert TooManyUpdates(c.maxUpdates);
        mapping(bytes32 => bool) storage seen = _revealedDigest[jobId];
        if (seen[cidDigest]) revert DuplicateUpdate(cidDigest);
        seen[cidDigest] = true;
        r.updateCommitment[msg.sender] = bytes32(REVEALED);
        r.updates[index] = Update({worker: msg.sender, numSamples: numSamples, codec: cidCodec, flags: 0});
        _state[jobId].revealCount = uint16(index + 1);
        emit UpdateRevealed(jobId, round, msg.sender, index, cidDigest, cidCodec, numSamples);
    }

    /// @notice Commits to an accept bitmap: `commitment = voteCommitment(jobId, round, validator, bitmap, salt)`.
    /// The caller must be a member eligible this round and have held at least the minimum validator stake at
    /// round start. Locks `missedVoteSlashBps` of that weight until the reveal.
    function commitVote(uint256 jobId, uint256 round, bytes32 commitment) external whenNotPaused {
        Committee.Member storage m = _committee[jobId].member[msg.sender];
        // Before the phase check, as in commitUpdate: the last vote commitment closes the phase.
        if (round != 0 && m.commitRound == round) revert AlreadyCommitted();
        JobState memory s = _requireRound(jobId, round, Phase.VoteCommit);
        if (commitment == 0) revert InvalidCommitment();
        if (m.position == 0 || m.eligibleFrom > round) revert NotInCommittee();
        JobConfig storage c = _config[jobId];
        uint256 minStake = c.minValidatorStake;
        uint256 st = stakeManager.stakeAt(msg.sender, s.roundStart - 1);
        if (st < minStake) revert InsufficientStake(minStake, st);
        m.commitRound = uint32(round);
        _state[jobId].voteCommitCount = s.voteCommitCount + 1;
        _voteSlot[jobId][msg.sender] = commitment;
        emit VoteCommitted(jobId, round, msg.sender, commitment);
        stakeManager.lock(msg.sender, (st * c.missedVoteSlashBps) / BPS, _slashDeadlineFromPhases(c, s.roundStart), 0);
    }

    /// @notice Reveals a committed vote and releases its lock. Bit i of `acceptBitmap` accepts the update
    /// revealed i-th.
    function revealVote(uint256 jobId, uint256 round, uint256 acceptBitmap, bytes32 salt) external whenNotPaused {
        Committee.Member storage m = _committee[jobId].member[msg.sender];
        // Before the phase check, as in commitUpdate: the last vote reveal closes the phase.
        if (round != 0 && m.revealRound == round) revert AlreadyRevealed();
        JobState memory s = _requireRound(jobId, round, Phase.VoteReveal);
        if (m.commitRound != round) revert NotCommitted();
        if (voteCommitment(jobId, round, msg.sender, acceptBitmap, salt) != _voteSlot[jobId][msg.sender]) {
            revert RevealMismatch();
        }
        if (acceptBitmap & ~Bitmap256.lowMask(s.revealCount) != 0) revert InvalidBitmap(acceptBitmap, s.revealCount);
        m.revealRound = uint32(round);
        _state[jobId].voteRevealCount = s.voteRevealCount + 1;
        _voteSlot[jobId][msg.sender] = bytes32(acceptBitmap);
        emit VoteRevealed(jobId, round, msg.sender, acceptBitmap);
        JobConfig storage c = _config[jobId];
        uint256 st = stakeManager.stakeAt(msg.sender, s.roundStart - 1);
        stakeManager.unlock(msg.sender, (st * c.missedVoteSlashBps) / BPS, _slashDeadlineFromPhases(c, s.roundStart));
    }

    /// @notice Attests the CID of the aggregate model a validator computed from the round's accepted updates.
    /// Only members that revealed a vote in the round attest; the first CID whose attesting stake reaches
    /// `attestBps` of the round's revealed stake becomes the next base model (attestBps > 50 %: one winner).
    function attestModel(uint256 jobId, uint256 round, bytes32 digest, uint16 codec) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.Attest);
        if (digest == 0) revert InvalidDigest();
        Round storage r = _rounds[jobId][round];
        Committee.Member storage m = _committee[jobId].member[msg.sender];
        if (m.position == 0 || m.revealRound != round) revert NotVoted();
        if (m.attestRound == round) revert AlreadyAttested();
        m.attestRound = uint32(round);
        uint256 st = stakeManager.stakeAt(msg.sender, s.roundStart - 1);
        bytes32 key = keccak256(abi.encode(digest, codec));
        uint256 tally = r.attestedStake[key] + st;
        r.attestedStake[key] = tally;
        emit ModelAttested(jobId, round, msg.sender, digest, codec, tally);
        if (tally * BPS >= uint256(_config[jobId].attestBps) * r.result.revealedStake) {
            r.result.modelDigest = digest;
            r.result.modelCodec = codec;
            emit ModelAccepted(jobId, round, digest, codec);
            s.idleRounds = 0;
            _advance(jobId, s, digest, codec);
        }
    }

    /// @notice Publishes the caller's held-out score of the model it attested in `round`: the accuracy (basis
    /// points; `NO_ACCURACY` for a regression job) and mean loss (× 1e6) on `samples` samples of its own data.
    /// Informational and unverifiable (nobody else holds that data): nothing on chain reads it; it gives a
    /// job's operators and sponsor a per-round accuracy curve without a trusted reporter, as the scores of
    /// every attesting validator side by side. Only the round's attesters report, until they attest again.
    function reportModelScore(uint256 jobId, uint256 round, uint16 accuracyBps, uint64 lossMicro, uint32 samples)
        external
    {
        Committee.Member storage m = _committee[jobId].member[msg.sender];
        // (A member that left and joined again has a later eligibleFrom: its old attestation does not count.)
        if (round == 0 || m.position == 0 || m.attestRound != round || m.eligibleFrom > round) revert NotAttested();
        if (accuracyBps > BPS && accuracyBps != NO_ACCURACY) revert InvalidScore(accuracyBps);
        emit ModelScored(jobId, round, msg.sender, accuracyBps, lossMicro, samples);
    }

    /// @notice Tallies the round's votes at round-start stake and decides it. Anyone may call it once the
    /// vote reveal phase is over and before the slash deadline (later, the round is voided). Records the
    /// votes that were committed and withheld, for `slashWithheldVote`. Costs O(committee × updates) and no
    /// external call per member, so it fits one transaction at the caps (256 × 256) whatever the votes.
    function finalizeRound(uint256 jobId, uint256 round) external whenNotPaused nonReentrant {
        JobState memory s = _requireRound(jobId, round, Phase.Finalize);
        _recordExpiredPause();
        JobConfig storage c = _config[jobId];
        (RoundResult memory res, Votes memory v) = _decide(jobId, s, c);
        if (res.outcome == Outcome.Quorum) {
            ++s.completedRounds;
            s.idleRounds = 0;
        } else {
            ++s.idleRounds;
        }
        _rounds[jobId][round].result = res;
        emit RoundFinalized(
            jobId,
            round,
            res.outcome,
            res.acceptedBitmap,
            res.slashableBitmap,
            res.committeeStake,
            res.committedStake,
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
        if (res.outcome == Outcome.Voided) return;
        mapping(address => uint256) storage withheld = _rounds[jobId][round].withheldStake;
        for (uint256 i; i < v.hidden.length; ++i) {
            withheld[v.hidden[i]] = v.hiddenStakes[i];
            emit VoteWithheld(jobId, round, v.hidden[i], v.hiddenStakes[i]);
        }
    }

    /// @notice Moves on when no aggregate CID reached the attestation threshold in time: the next round
    /// starts on the same base model (the finalized round's rewards stay credited). Counts as undecided.
    function skipAttestation(uint256 jobId, uint256 round) external whenNotPaused {
        JobState memory s = _requireRound(jobId, round, Phase.AttestExpired);
        RoundResult storage res = _rounds[jobId][round].result;
        emit AttestationExpired(jobId, round);
        ++s.idleRounds;
        _advance(jobId, s, res.baseDigest, res.baseCodec);
    }

    /// @notice Pays the worker of accepted update `index` of a decided round its share, and releases the
    /// update's stake lock.
    function claimUpdateReward(uint256 jobId, uint256 round, uint256 index) external nonReentrant {
        Round storage r = _rounds[jobId][round];
        if (r.result.outcome != Outcome.Quorum) revert RoundNotDecided(round);
        if (!r.result.acceptedBitmap.isSet(index)) revert NotAccepted(index);
        Update storage u = r.updates[index];
        if (u.worker != msg.sender) revert NotYourUpdate(index);
        uint8 flags = u.flags;
        if (flags & UPDATE_CLAIMED != 0) revert AlreadyClaimed();
        uint256 amount = r.result.workerRewardEach;
        if (amount == 0) revert NothingToClaim();
        u.flags = flags | UPDATE_CLAIMED | UPDATE_UNLOCKED;
        if (flags & UPDATE_UNLOCKED == 0) {
            // The stake manager's StakeUnlocked event records the release: claims stay within their gas budget.
            JobConfig storage c = _config[jobId];
            stakeManager.unlock(msg.sender, c.workerLock, _slashDeadline(c, r.result.start));
        }
        _pay(jobId, round, amount);
    }

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

    function _requireRound(uint256 jobId, uint256 round, Phase expected) private view returns (JobState memory s) {
        s = _loadState(jobId);
        if (s.status != JobStatus.Active) revert JobNotActive(jobId);
        if (round != s.round) revert WrongRound(s.round, round);
        Phase actual = _phase(jobId, s);
        if (actual != expected) revert WrongPhase(expected, actual);
    }

    /// @dev The votes of the current round, gathered in one walk over the committee.
    struct Votes {
        uint256[] stakes; // revealed, eligible
        uint256[] bitmaps;
        address[] voters;
        address[] hidden; // committed, never revealed
        uint256[] hiddenStakes;
        uint256 committeeStake;
        uint256 committedStake;
        uint256 revealedStake;
        uint256 nVoters;
        uint256 nHidden;
    }

    /// @dev Decides the current round: void if it overlapped a pause or is finalized after its slash
    /// deadline; else quorum on committed stake, per-update decisions and the rewards credited.
    function _decide(uint256 jobId, JobState memory s, JobConfig storage c)
        private
        returns (RoundResult memory res, Votes memory v)
    {
        res = _rounds[jobId][s.round].result;
        res.updateCount = s.revealCount;
        v = _collectVotes(jobId, s, c);
        res.committeeStake = SafeCast.toUint128(v.committeeStake);
        res.committedStake = SafeCast.toUint128(v.committedStake);
        res.revealedStake = SafeCast.toUint128(v.revealedStake);
        uint256 end = _voteRevealEnd(c, s.roundStart);
        if (block.timestamp >= _slashDeadlineFromPhases(c, s.roundStart) || _overlapsPause(s.roundStart, end)) {
            res.outcome = Outcome.Voided;
        } else if (v.committeeStake == 0 || v.committedStake * BPS < uint256(c.quorumBps) * v.committeeStake) {
            res.outcome = Outcome.NoQuorum;
        } else if (res.updateCount == 0) {
            res.outcome = Outcome.NoUpdates;
        } else {
            res.outcome = Outcome.Quorum;
            (res.acceptedBitmap, res.slashableBitmap) = RoundTally.decide(
                v.stakes, v.bitmaps, res.updateCount, v.committedStake, v.revealedStake, c.acceptBps, c.rejectSlashBps
            );
            _credit(jobId, s.round, c, res, v);
        }
    }

    /// @dev Eligible members (seated before the round opened, minimum stake at its start) make up the
    /// committee stake; those that committed, the committed stake; those that revealed, the votes.
    function _collectVotes(uint256 jobId, JobState memory s, JobConfig storage c) private view returns (Votes memory v) {
        Committee.Seats storage seats = _committee[jobId];
        uint256 m = seats.members.length;
        v.stakes = new uint256[](m);
        v.bitmaps = new uint256[](m);
        v.voters = new address[](m);
        v.hidden = new address[](m);
        v.hiddenStakes = new uint256[](m);
        uint48 snapshot = s.roundStart - 1;
        uint32 round = s.round;
        for (uint256 j; j < m; ++j) {
            address a = seats.members[j];
            Committee.Member memory mm = seats.member[a];
            if (mm.eligibleFrom > round) continue;
            bool committed = mm.commitRound == round;
            // A member absent for maxMissedRounds rounds before this one no longer counts (it can be evicted),
            // unless it is back: absent stake cannot hold a round below quorum for longer than that.
            if (!committed && Committee.missedRounds(mm, round - 1) >= c.maxMissedRounds) continue;
            uint256 st = stakeManager.stakeAt(a, snapshot);
            if (st < c.minValidatorStake) continue;
            v.committeeStake += st;
            if (!committed) continue;
            v.committedStake += st;
            if (mm.revealRound == round) {
                uint256 k = v.nVoters++;
                v.voters[k] = a;
                v.stakes[k] = st;
                v.bitmaps[k] = uint256(_voteSlot[jobId][a]);
                v.revealedStake += st;
            } else {
                uint256 h = v.nHidden++;
                v.hidden[h] = a;
                v.hiddenStakes[h] = st;
            }
        }
        _truncate(v.stakes, v.nVoters);
        _truncate(v.bitmaps, v.nVoters);
        _truncate(v.hiddenStakes, v.nHidden);
        address[] memory voters = v.voters;
        address[] memory hidden = v.hidden;
        (uint256 k_, uint256 h_) = (v.nVoters, v.nHidden);
        assembly ("memory-safe") {
            mstore(voters, k_)
            mstore(hidden, h_)
        }
    }

    function _truncate(uint256[] memory a, uint256 n) private pure {
        assembly ("memory-safe") {
            mstore(a, n)
        }
    }

    /// @dev Moves this round's reward from the job's pool to what participants can claim: an equal share per
    /// accepted update (whatever sample count it declared), and the validator share by stake × agreement,
    /// credited to each voter's record. Unpayable shares and rounding remainders stay in the pool.
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
            weights[j] = v.stakes[j] * RoundTally.agreement(v.bitmaps[j], res.acceptedBitmap, n);
            totalWeight += weights[j];
        }
        uint256 validatorPaid;
        if (totalWeight != 0) {
            mapping(address => Committee.Member) storage members_ = _committee[jobId].member;
            for (uint256 j; j < weights.length; ++j) {
                uint256 share = (validatorBudget * weights[j]) / totalWeight;
                if (share == 0) continue;
                Committee.Member storage m = members_[v.voters[j]];
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

    /// @dev After a decided (or skipped) round: the job completes when its paid rounds are done, expires
    /// after too many undecided rounds in a row, else the next round opens now on `digest`.
    function _advance(uint256 jobId, JobState memory s, bytes32 digest, uint16 codec) private {
        JobConfig storage c = _config[jobId];
        if (s.completedRounds >= c.numRounds) {
            s.status = JobStatus.Completed;
            s.finalized = false;
            _state[jobId] = s;
            emit JobCompleted(jobId, s.round);
        } else if (s.idleRounds >= c.maxIdleRounds) {
            s.status = JobStatus.Expired;
            s.finalized = false;
            _state[jobId] = s;
            emit JobExpired(jobId, s.round);
        } else {
            _openRound(jobId, s, uint48(block.timestamp), digest, codec);
        }
    }
}
