// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

/// @title IStakeManager
/// @notice Stake, unbonding, slashing and endpoint registry of fedstake participants.
interface IStakeManager {
    /// @notice `account` added `amount` to its active stake.
    event Staked(address indexed account, uint256 amount);
    /// @notice `account` moved `amount` from active stake to unbonding; withdrawable at `releaseTime`.
    event UnstakeRequested(address indexed account, uint256 amount, uint48 releaseTime);
    /// @notice `account` withdrew `amount` of unbonded tokens.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `slasher` asked to slash `requested` from `account` and took `slashed` (less if the account had less).
    event Slashed(address indexed account, address indexed slasher, uint256 requested, uint256 slashed);
    /// @notice `account` published its network endpoint (libp2p multiaddrs, UTF-8, newline-separated).
    event EndpointSet(address indexed account, bytes endpoint);

    error ZeroAmount();
    error InsufficientStake(uint256 available, uint256 requested);
    error NothingToWithdraw();
    error StillUnbonding(uint48 releaseTime);
    error EndpointTooLong(uint256 length, uint256 max);
    error FutureLookup(uint48 timepoint, uint48 currentTime);

    /// @notice The staked ERC-20.
    function token() external view returns (IERC20);
    /// @notice Seconds between an unstake request and the withdrawal it allows.
    function unbondingPeriod() external view returns (uint48);

    /// @notice Stakes `amount` tokens (approve first, or use the token's permit).
    function stake(uint256 amount) external;
    /// @notice Moves `amount` of active stake into unbonding. It stops counting for future rounds at once
    /// and stays slashable until withdrawn. A new request restarts the unbonding clock.
    function requestUnstake(uint256 amount) external;
    /// @notice Withdraws everything unbonding once its release time has passed.
    function withdraw() external;
    /// @notice Slashes up to `amount` from `account` (active stake first, then unbonding) and sends the
    /// tokens to the caller. Only SLASHER_ROLE. Returns what was actually taken.
    function slash(address account, uint256 amount) external returns (uint256 slashed);

    /// @notice Publishes the caller's network endpoint (at most MAX_ENDPOINT_BYTES).
    function setEndpoint(bytes calldata endpoint) external;
    /// @notice The endpoint `account` published, empty if none.
    function endpointOf(address account) external view returns (bytes memory);

    /// @notice Current active stake of `account`.
    function stakeOf(address account) external view returns (uint256);
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
