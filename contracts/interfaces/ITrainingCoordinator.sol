// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title ITrainingCoordinator
/// @notice Types, events and errors of the fedstake training coordinator (jobs and rounds).
interface ITrainingCoordinator {
    /// @notice Parameters of a job, fixed at creation. Periods in seconds, thresholds in basis points.
    /// CIDs are stored as their sha2-256 multihash digest plus their multicodec (0x55 raw, 0x70 dag-pb).
    struct JobParams {
        bytes32 initialModelDigest;
        uint16 initialModelCodec;
        bytes32 specDigest;
        uint16 specCodec;
        uint48 startTime; // round 1 opens here (strictly in the future); validators join the committee before it
        uint32 numRounds; // rounds that pay rewards (undecided rounds are repeated, unpaid)
        uint96 rewardPerRound; // escrowed up front: rewardPerRound × numRounds
        uint32 commitPeriod;
        uint32 revealPeriod;
        uint32 voteCommitPeriod;
        uint32 voteRevealPeriod;
        uint32 attestPeriod;
        uint32 slashWindow; // after vote reveal: finalize and every decided slash must happen within it
        uint16 maxUpdates; // ≤ 256: one uint256 bitmap holds a vote; slots are taken at reveal
        uint16 minUpdates; // the commit phase closes once this many updates are committed (0: at its deadline only); ≤ maxUpdates, and × min(missedRevealSlashAmount, rejectSlashAmount) ≥ the round's worker reward
        uint64 maxSamplesPerUpdate; // the largest sample count a worker may declare
        uint16 maxValidators; // committee size cap; bounds finalize
        uint16 quorumBps; // committed vote stake ≥ quorumBps × committee stake (≥ 5000)
        uint16 acceptBps; // approving stake ≥ acceptBps × committed vote stake
        uint16 attestBps; // attesting stake for one CID ≥ attestBps × revealed vote stake (> 5000)
        uint16 rejectSlashBps; // rejecting stake ≥ rejectSlashBps × committed vote stake makes the worker slashable
        uint16 validatorShareBps; // part of a round's reward paid to validators
        uint16 missedVoteSlashBps; // share of its round weight slashed from a validator that hid its committed vote
        uint16 maxMissedRounds; // ≥ 2: a member revealing no vote in this many rounds in a row stops counting and can be evicted
        uint16 maxIdleRounds; // the job expires after this many undecided rounds in a row (> maxMissedRounds)
        uint96 minWorkerStake; // free stake a worker needs to commit
        uint96 minValidatorStake; // free stake a validator needs to join, and round-start stake it needs to vote
        uint96 rejectSlashAmount; // slashed from a worker whose update a supermajority rejected
        uint96 missedRevealSlashAmount; // slashed from a worker who committed and never revealed
        uint96 absenceSlashAmount; // held from each committee member's stake; slashed when it is evicted
    }

    /// @notice Where a job's current round stands. Derived from timestamps and the round's counters: each of
    /// the four phases after NotStarted ends at its deadline, or as soon as everyone expected in it has
    /// acted; no transaction is needed to move a round between the first five. Deadlines never move (slashes and stake locks
    /// follow them), so a phase that closes early gives the next one more time.
    enum Phase {
        NotStarted,
        Commit,
        Reveal,
        VoteCommit,
        VoteReveal,
        Finalize, // vote reveal is over; anyone may finalize
        Attest, // finalized with accepted updates; validators attest the aggregate's CID
        AttestExpired, // no CID reached the threshold in time; anyone may move on
        Completed,
        Cancelled,
        Expired
    }

    enum JobStatus {
        None,
        Active,
        Completed,
        Cancelled,
        Expired // maxIdleRounds undecided rounds in a row: the sponsor takes back what was not paid
    }

    /// @notice How a round ended.
    enum Outcome {
        Pending,
        NoQuorum, // repeated on the same base model; no rewards, no acceptance
        Voided, // overlapped an emergency pause: repeated, and nobody is slashed for it
        Quorum, // decided: rewards credited, accepted updates aggregated
        NoUpdates // quorum but no update was revealed: repeated, unpaid
    }

    /// @notice Reasons a participant was slashed.
    enum SlashReason {
        RejectedUpdate,
        MissedUpdateReveal,
        MissedVoteReveal,
        Absence
    }

    event JobCreated(uint256 indexed jobId, address indexed sponsor, JobParams params);
    event JobCancelled(uint256 indexed jobId);
    event JobCompleted(uint256 indexed jobId, uint256 finalRound);
    event RemainderWithdrawn(uint256 indexed jobId, address indexed sponsor, uint256 amount);
    event CommitteeJoined(uint256 indexed jobId, address indexed validator);
    event CommitteeLeft(uint256 indexed jobId, address indexed validator);
    event RoundOpened(uint256 indexed jobId, uint256 indexed round, uint48 start, bytes32 baseDigest, uint16 baseCodec);
    event UpdateCommitted(uint256 indexed jobId, uint256 indexed round, address indexed worker, bytes32 commitment);
    event UpdateRevealed(
        uint256 indexed jobId,
        uint256 indexed round,
        address indexed worker,
        uint256 index,
        bytes32 cidDigest,
        uint16 cidCodec,
        uint64 numSamples
    );
    event VoteCommitted(uint256 indexed jobId, uint256 indexed round, address indexed validator, bytes32 commitment);
    event VoteRevealed(uint256 indexed jobId, uint256 indexed round, address indexed validator, uint256 acceptBitmap);
    event RoundFinalized(
        uint256 indexed jobId,
        uint256 indexed round,
        Outcome outcome,
        uint256 acceptedBitmap,
        uint256 slashableBitmap,
        uint256 committeeStake,
        uint256 committedStake,
        uint256 revealedStake,
        uint256 workerRewardEach,
        uint256 validatorPool
    );
    event ValidatorRewardCredited(uint256 indexed jobId, uint256 indexed round, address indexed validator, uint256 amount);
    event ModelAttested(
        uint256 indexed jobId, uint256 indexed round, address indexed validator, bytes32 digest, uint16 codec, uint256 stakeFor
    );
    /// @notice `validator`'s own held-out score of the model it attested in `round` (reportModelScore).
    event ModelScored(
        uint256 indexed jobId, uint256 indexed round, address indexed validator, uint16 accuracyBps, uint64 lossMicro, uint32 samples
    );
    event ModelAccepted(uint256 indexed jobId, uint256 indexed round, bytes32 digest, uint16 codec);
    event AttestationExpired(uint256 indexed jobId, uint256 indexed round);
    event RewardClaimed(uint256 indexed jobId, uint256 indexed round, address indexed account, uint256 amount);
    event SlashApplied(
        uint256 indexed jobId, uint256 indexed round, address indexed account, SlashReason reason, uint256 amount
    );
    event JobExpired(uint256 indexed jobId, uint256 round);
    event CommitteeDisplaced(uint256 indexed jobId, address indexed validator, address indexed displacedBy);
    event MemberEvicted(uint256 indexed jobId, uint256 indexed round, address indexed validator);
    /// @notice `validator` committed a vote in `round` and did not reveal it; `stake` is its round weight.
    event VoteWithheld(uint256 indexed jobId, uint256 indexed round, address indexed validator, uint256 stake);
    event UpdateLockReleased(uint256 indexed jobId, uint256 indexed round, uint256 index, address indexed worker);


    error InvalidParams(string what);
    error UnknownJob(uint256 jobId);
    error NotSponsor(uint256 jobId);
    error JobNotActive(uint256 jobId);
    error JobStillActive(uint256 jobId);
    error JobHasCommitments(uint256 jobId);
    error WrongRound(uint256 expected, uint256 given);
    error WrongPhase(Phase expected, Phase actual);
    error InsufficientStake(uint256 required, uint256 actual);
    error AlreadyCommitted();
    error NotCommitted();
    error AlreadyRevealed();
    error RevealMismatch();
    error InvalidCommitment();
    error TooManyUpdates(uint256 max);
    error ZeroSamples();
    error InvalidBitmap(uint256 bitmap, uint256 updateCount);
    error AlreadyInCommittee();
    error NotInCommittee();
    error CommitteeFull(uint256 max);
    error ValidatorCannotSubmit();
    error VotePending();
    error NotVoted();
    error AlreadyAttested();
    error NotAttested();
    error InvalidScore(uint16 accuracyBps);
    error RoundNotDecided(uint256 round);
    error NotAccepted(uint256 index);
    error NotYourUpdate(uint256 index);
    error AlreadyClaimed();
    error NothingToClaim();
    error NothingToSlash();
    error RoundVoided(uint256 round);
    error RoundWasFull(uint256 round);
    error NotAbsent(uint256 missedRounds, uint256 maxMissedRounds);
    error RevealNotOver();
    error TooManySamples(uint64 max, uint64 given);
    error DuplicateUpdate(bytes32 cidDigest);
    error InvalidDigest();
    error SlashWindowOver(uint256 deadline);
    error SlashPending(uint256 index);
    error UnsupportedToken(uint256 received, uint256 expected);
}
