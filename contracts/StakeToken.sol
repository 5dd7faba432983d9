// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";

/// @title StakeToken
/// @notice The ERC-20 (with EIP-2612 permit) that fedstake participants stake and are paid in.
/// @dev Devnets mint it through MINTER_ROLE. A real deployment may point the stake manager and the
/// coordinator at any existing ERC-20 instead; nothing else in the protocol depends on this contract.
contract StakeToken is ERC20, ERC20Permit, AccessControl {
    /// @notice Role allowed to mint new tokens (a faucet on devnets).
    bytes32 public constant MINTER_ROLE = keccak256("MINTER_ROLE");

    constructor(string memory name_, string memory symbol_, address admin) ERC20(name_, symbol_) ERC20Permit(name_) {
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(MINTER_ROLE, admin);
    }

    /// @notice Mints `amount` tokens to `to`. Only MINTER_ROLE.
    function mint(address to, uint256 amount) external onlyRole(MINTER_ROLE) {
        _mint(to, amount);
    }
}
