// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Bitmap256} from "./Bitmap256.sol";

/// @title RoundTally
/// @notice Decides a round's updates from its revealed votes, measured against *committed* vote stake:
/// a committed vote that is never revealed approves nothing and rejects nothing, but still counts in the
/// denominator, so hiding a vote can never raise acceptance or create a slash.
library RoundTally {
    using Bitmap256 for uint256;

    uint256 internal constant BPS = 10_000;

    /// @dev Accepted: approving stake ≥ acceptBps of committed stake. Slashable: revealed stake that did not
    /// approve ≥ rejectSlashBps of committed stake. A voter approving most updates is counted as "approves
    /// all, minus the few it rejected", so only the sparse side of each bitmap is walked: at most n/2 bit
    /// visits per voter, and none for a unanimous vote (the common case).
    function decide(
        uint256[] memory stakes,
        uint256[] memory bitmaps,
        uint256 n,
        uint256 committedStake,
        uint256 revealedStake,
        uint256 acceptBps,
        uint256 rejectSlashBps
    ) internal pure returns (uint256 accepted, uint256 slashable) {
        uint256 mask = Bitmap256.lowMask(n);
        uint256[] memory plus = new uint256[](n); // stake of sparse approvers, per update
        uint256[] memory minus = new uint256[](n); // stake of dense approvers that rejected it, per update
        uint256 dense; // stake of dense approvers
        for (uint256 j; j < stakes.length; ++j) {
            uint256 st = stakes[j];
            uint256 b = bitmaps[j];
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
        uint256 acceptThreshold = acceptBps * committedStake;
        uint256 rejectThreshold = rejectSlashBps * committedStake;
        for (uint256 i; i < n; ++i) {
            uint256 approving = dense + plus[i] - minus[i];
            if (approving * BPS >= acceptThreshold) {
                accepted |= uint256(1) << i;
            } else if ((revealedStake - approving) * BPS >= rejectThreshold) {
                slashable |= uint256(1) << i;
            }
        }
    }

    /// @dev Decisions of `bitmap` that match the outcome `accepted`, over the round's `n` updates.
    function agreement(uint256 bitmap, uint256 accepted, uint256 n) internal pure returns (uint256) {
        return (~(bitmap ^ accepted) & Bitmap256.lowMask(n)).popcount();
    }
}
