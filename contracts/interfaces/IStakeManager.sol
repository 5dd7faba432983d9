// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IStakeManager
/// @notice Stake, unbonding, stake locks, slashing and the endpoint registry of fedstake participants.
/// @dev Every slash the coordinator can decide is backed by a lock taken when the participant took on
/// the risk (a commitment, a vote, a committee seat). Locked stake cannot be unstaked, so every decided
/// slash is collectable in full. Two kinds of lock share one storage slot per account:
/// - a *hold* has no expiry (a committee seat's absence bond) and is released explicitly;
/// - a *timed lock* (commitments and votes) expires on its own at `until`, and may be released early.
/// Timed locks of one account merge into one amount with the latest expiry: a conservative merge that
/// never under-locks. An early release only applies before its own lock's expiry, which keeps the merge
/// sound (a reset of the merged amount only happens after every merged lock has expired).
interface IStakeManager {
    /// @notice `account` added `amount` to its active stake.
    event Staked(address indexed account, uint256 amount);
    /// @notice `account` moved `amount` from active stake to unbonding; withdrawable at `releaseTime`.
    event UnstakeRequested(address indexed account, uint256 amount, uint48 releaseTime);
    /// @notice `account` withdrew `amount` of unbonded tokens.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `amount` of `account`'s stake is locked until `until` (0: held until released).
    event StakeLocked(address indexed account, uint256 amount, uint48 until);
    /// @notice `amount` of `account`'s lock expiring at `until` (0: its hold) was released.
    event StakeUnlocked(address indexed account, uint256 amount, uint48 until);
    /// @notice `slashed` of the `requested` amount was taken from `account` and burned.
    event Slashed(address indexed account, uint256 requested, uint256 slashed);
    /// @notice `account` published its network endpoint (libp2p multiaddrs, UTF-8, newline-separated).
    event EndpointSet(address indexed account, bytes endpoint);
    /// @notice The coordinator (the only contract that may lock and slash) was set, once.
    event CoordinatorSet(address indexed coordinator);

    error ZeroAmount();
    error ZeroAddress();
    error InsufficientStake(uint256 available, uint256 requested);
    error InsufficientFreeStake(uint256 free, uint256 required);
    error NothingToWithdraw();
    error StillUnbonding(uint48 releaseTime);
    error EndpointTooLong(uint256 length, uint256 max);
    error FutureLookup(uint48 timepoint, uint48 currentTime);
    error NotCoordinator(address caller);
    error NotDeployer(address caller);
    error CoordinatorAlreadySet(address coordinator);
    error LockExpiryInPast(uint48 until);
    error UnsupportedToken(uint256 received, uint256 expected);

    /// @notice The staked ERC-20.
    function token() external view returns (IERC20);
    /// @notice Seconds between an unstake request and the withdrawal it allows.
    function unbondingPeriod() external view returns (uint48);
    /// @notice The only contract that may lock, release and slash stake (0 until set).
    function coordinator() external view returns (address);
    /// @notice Sets the coordinator, once, by the deployer. No key can change it afterwards.
    function setCoordinator(address coordinator_) external;

    /// @notice Stakes `amount` tokens (approve first, or use the token's permit). Refuses tokens that
    /// deliver less than `amount` (fee-on-transfer).
    function stake(uint256 amount) external;
    /// @notice Moves `amount` of free (unlocked) active stake into unbonding. It stops counting for future
    /// rounds at once and stays slashable until withdrawn. A new request restarts the unbonding clock.
    function requestUnstake(uint256 amount) external;
    /// @notice Withdraws everything unbonding once its release time has passed.
    function withdraw() external;

    /// @notice Locks `amount` of `account`'s free stake until `until`. Reverts unless the free stake is at
    /// least `max(amount, minFree)`. Only the coordinator.
    function lock(address account, uint256 amount, uint48 until, uint256 minFree) external;
    /// @notice Releases `amount` of the lock that expires at `until`; a no-op once that time has passed
    /// (the lock is gone already). Only the coordinator.
    function unlock(address account, uint256 amount, uint48 until) external;
    /// @notice Holds `amount` of `account`'s free stake with no expiry, after checking the free stake is at
    /// least `max(amount, minFree)`. Only the coordinator.
    function hold(address account, uint256 amount, uint256 minFree) external;
    /// @notice Releases `amount` of `account`'s hold. Only the coordinator.
    function releaseHold(address account, uint256 amount) external;
    /// @notice Releases `lockAmount` of the lock expiring at `until` and slashes `amount` from `account`, at
    /// most what the release freed (active stake first, then unbonding); the slashed tokens are burned.
    /// Only the coordinator. Returns what was taken.
    function slashLocked(address account, uint256 lockAmount, uint256 amount, uint48 until) external returns (uint256 slashed);
    /// @notice Releases `amount` of `account`'s hold and slashes what was held of it, as `slashLocked`. Only
    /// the coordinator.
    function slashHeld(address account, uint256 amount) external returns (uint256 slashed);

    /// @notice Publishes the caller's network endpoint (at most MAX_ENDPOINT_BYTES).
    function setEndpoint(bytes calldata endpoint) external;
    /// @notice The endpoint `account` published, empty if none.
    function endpointOf(address account) external view returns (bytes memory);

    /// @notice Current active stake of `account` (locked stake included).
    function stakeOf(address account) external view returns (uint256);
    /// @notice Active stake of `account` that no lock or hold covers.
    function freeStakeOf(address account) external view returns (uint256);
    /// @notice What covers `account`'s stake now: its hold and its unexpired timed lock (and that lock's expiry).
    function locksOf(address account) external view returns (uint256 held, uint256 locked, uint48 until);
    /// @notice Active stake of `account` at the end of second `timepoint` (must be in the past).
    function stakeAt(address account, uint48 timepoint) external view returns (uint256);
    /// @notice Current total active stake.
    function totalStake() external view returns (uint256);
    /// @notice Total active stake at the end of second `timepoint` (must be in the past).
    function totalStakeAt(uint48 timepoint) external view returns (uint256);
    /// @notice Tokens of `account` unbonding and when they can be withdrawn.
    function unbondingOf(address account) external view returns (uint256 amount, uint48 releaseTime);
    /// @notice Sum of all tokens unbonding.
    function totalUnbonding() external view returns (uint256);
}
