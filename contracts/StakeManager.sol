// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";

/// @title StakeManager
/// @notice Holds the stake of workers and validators: stake, request unstake (unbonding), withdraw,
/// and a registry of network endpoints (libp2p multiaddrs) so peers find each other through the chain.
/// @dev Active stake is checkpointed by timestamp so that a round weighs every vote by the stake held
/// before it opened: staking after the fact buys no votes. Unbonding tokens no longer count as stake but
/// stay slashable until withdrawn, so leaving cannot outrun a pending slash. Only SLASHER_ROLE (the
/// training coordinator) can slash, and slashed tokens always go to the slasher contract, which credits
/// them to a job's reward pool. The admin can grant and revoke roles and nothing else: there is no
/// pause here, so stakers can always leave.
contract StakeManager is IStakeManager, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using Checkpoints for Checkpoints.Trace208;

    /// @notice Role allowed to slash stake (the training coordinator).
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Longest endpoint record accepted, in bytes.
    uint256 public constant MAX_ENDPOINT_BYTES = 1024;

    /// @inheritdoc IStakeManager
    IERC20 public immutable token;
    /// @inheritdoc IStakeManager
    uint48 public immutable unbondingPeriod;

    struct Unbonding {
        uint208 amount;
        uint48 releaseTime;
    }

    mapping(address account => Checkpoints.Trace208) private _stake;
    Checkpoints.Trace208 private _totalStake;
    mapping(address account => Unbonding) private _unbonding;
    mapping(address account => bytes) private _endpoint;
    uint256 private _totalUnbonding;

    constructor(IERC20 token_, uint48 unbondingPeriod_, address admin) {
        token = token_;
        unbondingPeriod = unbondingPeriod_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IStakeManager
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint208 current = _stake[msg.sender].latest();
        _push(msg.sender, current + SafeCast.toUint208(amount), int256(amount));
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit Staked(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint208 current = _stake[msg.sender].latest();
        if (amount > current) revert InsufficientStake(current, amount);
        _push(msg.sender, current - uint208(amount), -int256(amount));
        Unbonding storage u = _unbonding[msg.sender];
        u.amount += uint208(amount);
        // A new request restarts the clock for everything unbonding: one entry per account keeps
        // every call O(1).
        u.releaseTime = clock() + unbondingPeriod;
        _totalUnbonding += amount;
        emit UnstakeRequested(msg.sender, amount, u.releaseTime);
    }

    /// @inheritdoc IStakeManager
    function withdraw() external nonReentrant {
        Unbonding memory u = _unbonding[msg.sender];
        if (u.amount == 0) revert NothingToWithdraw();
        if (clock() < u.releaseTime) revert StillUnbonding(u.releaseTime);
        delete _unbonding[msg.sender];
        _totalUnbonding -= u.amount;
        token.safeTransfer(msg.sender, u.amount);
        emit Withdrawn(msg.sender, u.amount);
    }

    /// @inheritdoc IStakeManager
    function slash(address account, uint256 amount) external onlyRole(SLASHER_ROLE) nonReentrant returns (uint256 slashed) {
        // Active stake first, then tokens still unbonding.
        uint208 active = _stake[account].latest();
        uint256 fromActive = amount < active ? amount : active;
        if (fromActive > 0) _push(account, active - uint208(fromActive), -int256(fromActive));
        uint256 fromUnbonding = amount - fromActive;
        Unbonding storage u = _unbonding[account];
        if (fromUnbonding > u.amount) fromUnbonding = u.amount;
        if (fromUnbonding > 0) {
            u.amount -= uint208(fromUnbonding);
            _totalUnbonding -= fromUnbonding;
        }
        slashed = fromActive + fromUnbonding;
        if (slashed > 0) token.safeTransfer(msg.sender, slashed);
        emit Slashed(account, msg.sender, amount, slashed);
    }

    // ------------------------------------------------------------------ endpoints

    /// @inheritdoc IStakeManager
    function setEndpoint(bytes calldata endpoint) external {
        if (endpoint.length > MAX_ENDPOINT_BYTES) revert EndpointTooLong(endpoint.length, MAX_ENDPOINT_BYTES);
        _endpoint[msg.sender] = endpoint;
        emit EndpointSet(msg.sender, endpoint);
    }

    /// @inheritdoc IStakeManager
    function endpointOf(address account) external view returns (bytes memory) {
        return _endpoint[account];
    }

    // ------------------------------------------------------------------ views

    /// @notice The protocol clock: block timestamps (ERC-6372 style).
    function clock() public view returns (uint48) {
        return uint48(block.timestamp);
    }

    /// @inheritdoc IStakeManager
    function stakeOf(address account) external view returns (uint256) {
        return _stake[account].latest();
    }

    /// @inheritdoc IStakeManager
    function stakeAt(address account, uint48 timepoint) external view returns (uint256) {
        if (timepoint >= clock()) revert FutureLookup(timepoint, clock());
        return _stake[account].upperLookupRecent(timepoint);
    }

    /// @inheritdoc IStakeManager
    function totalStake() external view returns (uint256) {
        return _totalStake.latest();
    }

    /// @inheritdoc IStakeManager
    function totalStakeAt(uint48 timepoint) external view returns (uint256) {
        if (timepoint >= clock()) revert FutureLookup(timepoint, clock());
        return _totalStake.upperLookupRecent(timepoint);
    }

    /// @inheritdoc IStakeManager
    function unbondingOf(address account) external view returns (uint256 amount, uint48 releaseTime) {
        Unbonding memory u = _unbonding[account];
        return (u.amount, u.releaseTime);
    }

    /// @inheritdoc IStakeManager
    function totalUnbonding() external view returns (uint256) {
        return _totalUnbonding;
    }

    function _push(address account, uint208 newStake, int256 delta) private {
        _stake[account].push(clock(), newStake);
        uint208 total = _totalStake.latest();
        _totalStake.push(clock(), delta >= 0 ? total + uint208(uint256(delta)) : total - uint208(uint256(-delta)));
    }
}
