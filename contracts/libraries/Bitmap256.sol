// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Bitmap256
/// @notice Helpers for the one-word vote bitmaps: bit i is the decision on update i of a round.
library Bitmap256 {
    /// @notice A word with the low `n` bits set (n ≤ 256).
    function lowMask(uint256 n) internal pure returns (uint256) {
        return n >= 256 ? type(uint256).max : (uint256(1) << n) - 1;
    }

    /// @notice Number of set bits (SWAR popcount: constant gas, no loop over bits).
    function popcount(uint256 x) internal pure returns (uint256 count) {
        unchecked {
            x = x - ((x >> 1) & 0x5555555555555555555555555555555555555555555555555555555555555555);
            x = (x & 0x3333333333333333333333333333333333333333333333333333333333333333)
                + ((x >> 2) & 0x3333333333333333333333333333333333333333333333333333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f;
            // Fold byte counts (≤ 8) into 16-bit lanes (≤ 16), then sum the 16 lanes with one
            // multiplication; the total (≤ 256) needs 9 bits, so it is read from the top 16-bit lane.
            x = (x + (x >> 8)) & 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff;
            count = (x * 0x0001000100010001000100010001000100010001000100010001000100010001) >> 240;
        }
    }

    /// @notice Whether bit `i` of `x` is set.
    function isSet(uint256 x, uint256 i) internal pure returns (bool) {
        return (x >> i) & 1 == 1;
    }
}
