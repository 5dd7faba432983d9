// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";

/// @title BoundedPausable
/// @notice An emergency stop whose power is bounded: one guardian, fixed at deployment, may pause for at
/// most MAX_PAUSE and not again until PAUSE_COOLDOWN after the last pause ended. Every pause window is
/// remembered (as cumulative counts of pause starts and ends, checkpointed by time), so that a round
/// overlapping any pause, however many there were, can be told apart from one that overlapped none.
/// @dev Rounds that overlap a pause are voided by the coordinator (never decided, nobody slashed), so the
/// bounds are what stop a guardian from voiding every round: at most one pause per MAX_PAUSE + PAUSE_COOLDOWN.
abstract contract BoundedPausable {
    using Checkpoints for Checkpoints.Trace208;

    /// @notice The longest a pause lasts; after it the contract is unpaused without a transaction.
    uint48 public constant MAX_PAUSE = 7 days;
    /// @notice How long after a pause ends before the next may start.
    uint48 public constant PAUSE_COOLDOWN = 7 days;

    /// @notice The account that may pause (the zero address: nobody ever can).
    address public immutable guardian;

    /// @dev Start of the pause in force or last ended-by-expiry and not yet recorded (0: none).
    uint48 private _pausedAt;
    /// @dev When the last pause ended (for the cooldown).
    uint48 private _lastPauseEnd;
    Checkpoints.Trace208 private _pauseStarts; // time → number of pauses started up to then
    Checkpoints.Trace208 private _pauseEnds; // time → number of pauses ended up to then

    event Paused(address indexed guardian, uint48 at);
    event Unpaused(address indexed by, uint48 at);

    error NotGuardian(address caller);
    error EnforcedPause();
    error NotPaused();
    error PauseCooldown(uint48 until);

    modifier whenNotPaused() {
        if (paused()) revert EnforcedPause();
        _;
    }

    constructor(address guardian_) {
        guardian = guardian_;
    }

    /// @notice Whether protocol steps are stopped now.
    function paused() public view returns (bool) {
        uint48 at = _pausedAt;
        return at != 0 && block.timestamp < uint256(at) + MAX_PAUSE;
    }

    /// @notice Stops protocol steps for at most MAX_PAUSE. Only the guardian, and not within PAUSE_COOLDOWN
    /// of the end of the previous pause.
    function pause() external {
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        if (paused()) revert EnforcedPause();
        _recordExpiredPause();
        uint48 last = _lastPauseEnd;
        if (last != 0 && block.timestamp < uint256(last) + PAUSE_COOLDOWN) revert PauseCooldown(last + PAUSE_COOLDOWN);
        uint48 now_ = uint48(block.timestamp);
        _pausedAt = now_;
        _pauseStarts.push(now_, _pauseStarts.latest() + 1);
        emit Paused(msg.sender, now_);
    }

    /// @notice Resumes protocol steps. The guardian may do so at any time; anyone may record the end of a
    /// pause that has run out.
    function unpause() external {
        if (!paused()) {
            if (_pausedAt == 0) revert NotPaused();
            _recordExpiredPause();
            return;
        }
        if (msg.sender != guardian) revert NotGuardian(msg.sender);
        _end(uint48(block.timestamp));
    }

    /// @dev Records the end of a pause that ran out without an unpause, at the time it ran out.
    function _recordExpiredPause() internal {
        uint48 at = _pausedAt;
        if (at != 0 && block.timestamp >= uint256(at) + MAX_PAUSE) _end(at + MAX_PAUSE);
    }

    function _end(uint48 at) private {
        _pausedAt = 0;
        _lastPauseEnd = at;
        _pauseEnds.push(at, _pauseEnds.latest() + 1);
        emit Unpaused(msg.sender, at);
    }

    /// @dev Whether any pause overlapped [start, end]: a pause started by `end` that had not ended by
    /// `start`. Pauses still in force count as not ended. Call after `_recordExpiredPause`.
    function _overlapsPause(uint256 start, uint256 end) internal view returns (bool) {
        if (_pauseStarts.length() == 0) return false;
        return _pauseStarts.upperLookupRecent(uint48(end)) > _pauseEnds.upperLookupRecent(uint48(start));
    }
}
