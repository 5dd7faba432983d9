// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Bitmap256} from "../../contracts/libraries/Bitmap256.sol";
import {TestBase} from "./Vm.sol";

contract Bitmap256Test is TestBase {
    function _naivePopcount(uint256 x) private pure returns (uint256 c) {
        for (uint256 i; i < 256; ++i) if ((x >> i) & 1 == 1) ++c;
    }

    function testFuzz_popcountMatchesNaiveCount(uint256 x) public pure {
        assertEq(Bitmap256.popcount(x), _naivePopcount(x), "popcount");
    }

    function test_popcountEdges() public pure {
        assertEq(Bitmap256.popcount(0), 0, "zero");
        assertEq(Bitmap256.popcount(type(uint256).max), 256, "all ones");
        assertEq(Bitmap256.popcount(1 << 255), 1, "top bit");
    }

    function testFuzz_lowMask(uint16 n) public pure {
        uint256 m = Bitmap256.lowMask(n);
        assertEq(Bitmap256.popcount(m), n >= 256 ? 256 : n, "mask width");
        if (n < 256) assertEq(m >> n, 0, "nothing above n");
    }
}
