// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Checkpoints} from "@openzeppelin/contracts/utils/structs/Checkpoints.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IStakeManager} from "./interfaces/IStakeManager.sol";

/// @title StakeManager
/// @notice Holds the stake of workers and validators: stake, request unstake (unbonding), withdraw; locks
/// that keep the stake backing open commitments and votes in place until their slashes are executed or
/// expire; slash execution; and a registry of network endpoints (libp2p multiaddrs) so peers find each
/// other through the chain.
/// @dev Active stake is checkpointed by timestamp so that a round weighs every vote by the stake held
/// before it opened: staking after the fact buys no votes. Unbonding tokens no longer count as stake but
/// stay slashable until withdrawn. Slashed tokens are burned (sent to BURN_ADDRESS, which works with any
/// ERC-20), all of them: nobody receives slashed stake, so no participant gains from a slash its own vote
/// caused (an executor bounty would pay exactly the voters who caused the slash, if they execute it).
/// There is no admin: the coordinator is set once by the deployer, and nothing else can
/// move staked tokens. There is no pause here, so stakers can always leave with their free stake.
contract StakeManager is IStakeManager, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using Checkpoints for Checkpoints.Trace208;

    /// @notice Longest endpoint record accepted, in bytes.
    uint256 public constant MAX_ENDPOINT_BYTES = 1024;
    /// @notice Where slashed tokens go: an address nobody holds a key for.
    address public constant BURN_ADDRESS = 0x000000000000000000000000000000000000dEaD;

    /// @inheritdoc IStakeManager
    IERC20 public immutable token;
    /// @inheritdoc IStakeManager
    uint48 public immutable unbondingPeriod;
    /// @inheritdoc IStakeManager
    address public coordinator;
    address private immutable _deployer;

    struct Unbonding {
        uint208 amount;
        uint48 releaseTime;
    }

    /// @dev One slot per account: the hold (no expiry) and the merged timed lock with its expiry.
    struct Locks {
        uint104 held;
        uint104 locked;
        uint48 until;
    }

    mapping(address account => Checkpoints.Trace208) private _stake;
    Checkpoints.Trace208 private _totalStake;
    mapping(address account => Unbonding) private _unbonding;
    mapping(address account => Locks) private _locks;
    mapping(address account => bytes) private _endpoint;
    uint256 private _totalUnbonding;

    modifier onlyCoordinator() {
        if (msg.sender != coordinator) revert NotCoordinator(msg.sender);
        _;
    }

    constructor(IERC20 token_, uint48 unbondingPeriod_) {
        token = token_;
        unbondingPeriod = unbondingPeriod_;
        _deployer = msg.sender;
    }

    /// @inheritdoc IStakeManager
    function setCoordinator(address coordinator_) external {
        if (msg.sender != _deployer) revert NotDeployer(msg.sender);
        if (coordinator != address(0)) revert CoordinatorAlreadySet(coordinator);
        if (coordinator_ == address(0)) revert ZeroAddress();
        coordinator = coordinator_;
        emit CoordinatorSet(coordinator_);
    }

    // ------------------------------------------------------------------ staking

    /// @inheritdoc IStakeManager
    function stake(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        uint256 before = token.balanceOf(address(this));
        token.safeTransferFrom(msg.sender, address(this), amount);
        uint256 received = token.balanceOf(address(this)) - before;
        if (received != amount) revert UnsupportedToken(received, amount);
        uint208 current = _stake[msg.sender].latest();
        _push(msg.sender, current + SafeCast.toUint208(amount), int256(amount));
        emit Staked(msg.sender, amount);
    }

    /// @inheritdoc IStakeManager
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        uint208 current = _stake[msg.sender].latest();
        uint256 free = _free(msg.sender, current);
        if (amount > free) revert InsufficientFreeStake(free, amount);
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

    // ------------------------------------------------------------------ locks (coordinator)

    /// @inheritdoc IStakeManager
    function lock(address account, uint256 amount, uint48 until, uint256 minFree) external onlyCoordinator {
        if (until <= clock()) revert LockExpiryInPast(until);
        _requireFree(account, amount > minFree ? amount : minFree);
        Locks memory l = _locks[account];
        if (l.until <= clock()) l.locked = 0; // every lock merged so far has expired
        l.locked += SafeCast.toUint104(amount);
        if (until > l.until) l.until = until;
        _locks[account] = l;
        emit StakeLocked(account, amount, until);
    }

    /// @inheritdoc IStakeManager
    function unlock(address account, uint256 amount, uint48 until) external onlyCoordinator {
        _unlock(account, amount, until);
    }

    /// @inheritdoc IStakeManager
    function hold(address account, uint256 amount, uint256 minFree) external onlyCoordinator {
        _requireFree(account, amount > minFree ? amount : minFree);
        _locks[account].held += SafeCast.toUint104(amount);
        emit StakeLocked(account, amount, 0);
    }

    /// @inheritdoc IStakeManager
    function releaseHold(address account, uint256 amount) external onlyCoordinator {
        _releaseHold(account, amount);
    }

    /// @inheritdoc IStakeManager
    function slashLocked(address account, uint256 lockAmount, uint256 amount, uint48 until)
        external
        onlyCoordinator
        nonReentrant
        returns (uint256)
    {
        uint256 released = _unlock(account, lockAmount, until);
        // Never more than the lock it consumes: every slash is backed, and none can eat another's lock.
        return _slash(account, amount, amount < released ? amount : released);
    }

    /// @inheritdoc IStakeManager
    function slashHeld(address account, uint256 amount) external onlyCoordinator nonReentrant returns (uint256) {
        return _slash(account, amount, _releaseHold(account, amount));
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
    function freeStakeOf(address account) external view returns (uint256) {
        return _free(account, _stake[account].latest());
    }

    /// @inheritdoc IStakeManager
    function locksOf(address account) external view returns (uint256 held, uint256 locked, uint48 until) {
        Locks memory l = _locks[account];
        if (l.until <= clock()) return (l.held, 0, 0);
        return (l.held, l.locked, l.until);
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

    // ------------------------------------------------------------------ internals

    function _free(address account, uint256 active) private view returns (uint256) {
        Locks memory l = _locks[account];
        uint256 covered = uint256(l.held) + (l.until > clock() ? l.locked : 0);
        return active > covered ? active - covered : 0;
    }

    function _requireFree(address account, uint256 required) private view {
        uint256 free = _free(account, _stake[account].latest());
        if (free < required) revert InsufficientFreeStake(free, required);
    }

    function _unlock(address account, uint256 amount, uint48 until) private returns (uint256) {
        // Past its own expiry the lock is gone already, and the merged amount may belong to newer locks.
        if (until <= clock() || amount == 0) return 0;
        Locks storage l = _locks[account];
        uint104 locked = l.locked;
        uint104 released = amount < locked ? uint104(amount) : locked;
        l.locked = locked - released;
        emit StakeUnlocked(account, released, until);
        return released;
    }

    function _releaseHold(address account, uint256 amount) private returns (uint256) {
        Locks storage l = _locks[account];
        uint104 held = l.held;
        uint104 released = amount < held ? uint104(amount) : held;
        l.held = held - released;
        emit StakeUnlocked(account, released, 0);
        return released;
    }

    /// @dev Takes up to `amount` of the `requested` (active stake first, then unbonding) and burns it.
    function _slash(address account, uint256 requested, uint256 amount) private returns (uint256 slashed) {
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
        emit Slashed(account, requested, slashed);
        if (slashed > 0) token.safeTransfer(BURN_ADDRESS, slashed);
    }

    function _push(address account, uint208 newStake, int256 delta) private {
        _stake[account].push(clock(), newStake);
        uint208 total = _totalStake.latest();
        _totalStake.push(clock(), delta >= 0 ? total + uint208(uint256(delta)) : total - uint208(uint256(-delta)));
    }
}
