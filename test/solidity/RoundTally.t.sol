// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {RoundTally} from "../../contracts/libraries/RoundTally.sol";
import {TestBase} from "./Vm.sol";

/// @notice Exposes the library's internal functions so that tests call them as the coordinator does.
contract RoundTallyWrapper {
    function decide(
        uint256[] memory stakes,
        uint256[] memory bitmaps,
        uint256 n,
        uint256 committedStake,
        uint256 revealedStake,
        uint256 acceptBps,
        uint256 rejectSlashBps
    ) external pure returns (uint256 accepted, uint256 slashable) {
        return RoundTally.decide(stakes, bitmaps, n, committedStake, revealedStake, acceptBps, rejectSlashBps);
    }

    function agreement(uint256 bitmap, uint256 accepted, uint256 n) external pure returns (uint256) {
        return RoundTally.agreement(bitmap, accepted, n);
    }
}

/// @notice `RoundTally.decide` (sparse/dense split, zero-byte skipping assembly) against a plain reference:
/// one loop per update and voter, bit by bit, up to 256 updates.
contract RoundTallyTest is TestBase {
    uint256 internal constant BPS = 10_000;
    RoundTallyWrapper internal tally;

    function setUp() public {
        tally = new RoundTallyWrapper();
    }

    /// @dev The specification: accepted when approving ≥ acceptBps × committed; otherwise slashable when
    /// revealed − approving ≥ rejectSlashBps × committed.
    function _reference(
        uint256[] memory stakes,
        uint256[] memory bitmaps,
        uint256 n,
        uint256 committed,
        uint256 revealed,
        uint256 acceptBps,
        uint256 rejectSlashBps
    ) internal pure returns (uint256 accepted, uint256 slashable) {
        for (uint256 i; i < n; ++i) {
            uint256 approving;
            for (uint256 j; j < stakes.length; ++j) {
                if ((bitmaps[j] >> i) & 1 == 1) approving += stakes[j];
            }
            if (approving * BPS >= acceptBps * committed) accepted |= uint256(1) << i;
            else if ((revealed - approving) * BPS >= rejectSlashBps * committed) slashable |= uint256(1) << i;
        }
    }

    function _mask(uint256 n) internal pure returns (uint256) {
        return n == 256 ? type(uint256).max : (uint256(1) << n) - 1;
    }

    /// @dev Bitmaps of several shapes, from sparse to dense, so that both sides of the split and long runs
    /// of zero bytes (the assembly's skip) are exercised; bit patterns in the low and high bytes alike.
    function _bitmap(uint256 seed, uint256 n) internal pure returns (uint256 b) {
        uint256 r = uint256(keccak256(abi.encode(seed, "r")));
        uint256 s = uint256(keccak256(abi.encode(seed, "s")));
        uint256 mode = seed % 10;
        if (mode == 0) b = r & s & uint256(keccak256(abi.encode(seed, "t"))); // ~1/8 density
        else if (mode == 1) b = uint256(1) << (r % 256); // one bit, anywhere
        else if (mode == 2) {
            // a few whole bytes set, the rest zero: long zero runs with dense islands
            for (uint256 k; k < 3; ++k) b |= uint256(0xff) << (8 * ((r >> (8 * k)) % 32));
        } else if (mode == 3) {
            // sparse bits at byte boundaries (bit 7 / bit 8 of each byte pair)
            b = (r & s) & 0x8001800180018001800180018001800180018001800180018001800180018001;
        } else if (mode == 4) b = ~(r & s & uint256(keccak256(abi.encode(seed, "t")))); // dense: sparse complement
        else if (mode == 5) b = type(uint256).max; // unanimous approval
        else if (mode == 6) b = 0; // unanimous rejection
        else if (mode == 7) b = ~(uint256(1) << (r % 256)); // approves all but one
        else if (mode == 8) b = r; // half density: either side of the split
        else b = r >> (r % 256); // random, low part only
        b &= _mask(n);
    }

    /// Random rounds of up to 256 updates and 24 voters, round-start stakes up to uint208 (the stake
    /// manager's checkpoint width), hidden committed stake on top of the revealed, any valid thresholds.
    function testFuzz_decideMatchesReference(
        uint256 seed,
        uint16 nSeed,
        uint8 votersSeed,
        uint16 acceptBps,
        uint16 rejectSlashBps,
        uint256 hiddenSeed
    ) public view {
        uint256 n = bound(nSeed, 1, 256);
        uint256 k = bound(votersSeed, 1, 24);
        acceptBps = uint16(bound(acceptBps, 1, BPS));
        rejectSlashBps = uint16(bound(rejectSlashBps, BPS + 1 - acceptBps, BPS));
        uint256[] memory stakes = new uint256[](k);
        uint256[] memory bitmaps = new uint256[](k);
        uint256 revealed;
        uint256 stakeCap = seed % 3 == 0 ? type(uint208).max : (seed % 3 == 1 ? 1e30 : 1000);
        for (uint256 j; j < k; ++j) {
            stakes[j] = bound(uint256(keccak256(abi.encode(seed, j, "stake"))), 1, stakeCap);
            bitmaps[j] = _bitmap(uint256(keccak256(abi.encode(seed, j, "bitmap"))), n);
            revealed += stakes[j];
        }
        // No hidden stake half of the time (the denominators then match), else up to 3× the revealed.
        uint256 committed = revealed + (hiddenSeed % 2 == 0 ? 0 : bound(hiddenSeed >> 1, 0, 3 * revealed));
        _check(stakes, bitmaps, n, committed, revealed, acceptBps, rejectSlashBps);
    }

    /// Every voter sparse (a handful of bits far apart) at the full 256 updates: the zero-byte skip
    /// carries the pointer across most of the word, and a bit after a long zero run lands in its own slot.
    function testFuzz_sparseAtFullWidth(uint256 seed, uint8 votersSeed) public view {
        uint256 n = 256;
        uint256 k = bound(votersSeed, 1, 16);
        uint256[] memory stakes = new uint256[](k);
        uint256[] memory bitmaps = new uint256[](k);
        uint256 revealed;
        for (uint256 j; j < k; ++j) {
            uint256 r = uint256(keccak256(abi.encode(seed, j)));
            stakes[j] = 1 + (r % 1e24);
            for (uint256 b; b < 1 + (r >> 200) % 6; ++b) bitmaps[j] |= uint256(1) << ((r >> (8 * b)) & 0xff);
            revealed += stakes[j];
        }
        // Thresholds low enough that a few sparse voters accept something.
        _check(stakes, bitmaps, n, revealed, revealed, 1 + (seed % 5000), BPS);
        _check(stakes, bitmaps, n, revealed + (seed % 1e24), revealed, 1 + (seed % 3000), 9999);
    }

    function _check(
        uint256[] memory stakes,
        uint256[] memory bitmaps,
        uint256 n,
        uint256 committed,
        uint256 revealed,
        uint256 acceptBps,
        uint256 rejectSlashBps
    ) internal view {
        (uint256 acc, uint256 sl) = tally.decide(stakes, bitmaps, n, committed, revealed, acceptBps, rejectSlashBps);
        (uint256 eAcc, uint256 eSl) = _reference(stakes, bitmaps, n, committed, revealed, acceptBps, rejectSlashBps);
        assertEq(acc, eAcc, "accepted");
        assertEq(sl, eSl, "slashable");
        assertEq(acc & sl, 0, "accepted and slashable");
        assertEq((acc | sl) & ~_mask(n), 0, "decision beyond n");
    }

    /// One voter with a single bit after 31 zero bytes: skipped to bit 248, then walked to 255.
    function test_bitAfterLongZeroRun() public view {
        uint256[] memory stakes = new uint256[](1);
        uint256[] memory bitmaps = new uint256[](1);
        stakes[0] = 7;
        for (uint256 bit = 0; bit < 256; bit += 7) {
            bitmaps[0] = uint256(1) << bit;
            (uint256 acc, uint256 sl) = tally.decide(stakes, bitmaps, 256, 7, 7, BPS, BPS);
            assertEq(acc, uint256(1) << bit, "the one approved update");
            assertEq(sl, ~(uint256(1) << bit), "all others rejected unanimously");
        }
        bitmaps[0] = uint256(1) << 255;
        (uint256 a255,) = tally.decide(stakes, bitmaps, 256, 7, 7, BPS, BPS);
        assertEq(a255, uint256(1) << 255, "top bit");
    }

    /// A dense voter (approves all but a few) next to a sparse one: the dense side walks the complement.
    function test_denseAndSparseVoters() public view {
        uint256[] memory stakes = new uint256[](2);
        uint256[] memory bitmaps = new uint256[](2);
        stakes[0] = 60;
        stakes[1] = 40;
        bitmaps[0] = ~((uint256(1) << 9) | (uint256(1) << 200)) & _mask(201); // rejects 9 and 200
        bitmaps[1] = (uint256(1) << 9) | (uint256(1) << 100); // approves 9 and 100
        // acceptBps 5000: ≥ 50 of 100 committed. Update 9: 40 → not accepted; 200: 0 → rejected by 100.
        (uint256 acc, uint256 sl) = tally.decide(stakes, bitmaps, 201, 100, 100, 5000, 6000);
        uint256 expected = _mask(201) & ~((uint256(1) << 9) | (uint256(1) << 200));
        assertEq(acc, expected, "accepted");
        // 9: rejecting 60 ≥ 60 → slashable; 200: rejecting 100 → slashable.
        assertEq(sl, (uint256(1) << 9) | (uint256(1) << 200), "slashable");
    }

    /// Hidden (committed, unrevealed) stake lowers acceptance and slashing alike.
    function test_hiddenStakeCountsInDenominator() public view {
        uint256[] memory stakes = new uint256[](1);
        uint256[] memory bitmaps = new uint256[](1);
        stakes[0] = 50;
        bitmaps[0] = 1; // approves update 0, rejects update 1
        (uint256 acc, uint256 sl) = tally.decide(stakes, bitmaps, 2, 50, 50, 6000, 6000);
        assertEq(acc, 1, "alone: accepted");
        assertEq(sl, 2, "alone: slashable");
        (acc, sl) = tally.decide(stakes, bitmaps, 2, 100, 50, 6000, 6000);
        assertEq(acc, 0, "with 50 hidden: 50 of 100 < 60%");
        assertEq(sl, 0, "with 50 hidden: rejecting 50 of 100 < 60%");
    }

    function testFuzz_agreementMatchesReference(uint256 bitmap, uint256 accepted, uint16 nSeed) public view {
        uint256 n = bound(nSeed, 0, 256);
        uint256 expected;
        for (uint256 i; i < n; ++i) if ((bitmap >> i) & 1 == (accepted >> i) & 1) ++expected;
        assertEq(tally.agreement(bitmap, accepted, n), expected, "agreement");
    }

    /// Thresholds exactly at, one below and one above the boundary of an update's approving (or rejecting)
    /// stake: small stakes in multiples of the committed stake's divisors, so that equality is common.
    function testFuzz_thresholdBoundaries(uint256 seed, uint8 nSeed, uint8 votersSeed, uint8 k, uint8 pick) public view {
        uint256 n = bound(nSeed, 1, 8);
        uint256 voters = bound(votersSeed, 1, 4);
        // Divisors of 10 000: approving × BPS / committed is then exact, and delta 0 sits on the boundary.
        uint256[12] memory divisors = [uint256(1), 2, 4, 5, 8, 10, 16, 20, 25, 40, 50, 80];
        uint256[] memory stakes = new uint256[](voters);
        uint256[] memory bitmaps = new uint256[](voters);
        uint256 revealed;
        for (uint256 j; j < voters; ++j) {
            stakes[j] = 1 + (uint256(keccak256(abi.encode(seed, j))) % 10);
            bitmaps[j] = uint256(keccak256(abi.encode(seed, j, "b"))) & _mask(n);
            revealed += stakes[j];
        }
        // Committed: a divisor of 10 000 at least the revealed stake (hidden stake fills the difference).
        uint256 d;
        while (divisors[d] < revealed) ++d;
        d += k % 2; // sometimes the next divisor: hidden stake
        uint256 committed = divisors[d < 12 ? d : 11];
        uint256 i = pick % n;
        uint256 approving;
        for (uint256 j; j < voters; ++j) if ((bitmaps[j] >> i) & 1 == 1) approving += stakes[j];
        int256 delta = int256(uint256(seed >> 200) % 3) - 1;
        uint256 acceptBps = uint256(int256((approving * BPS) / committed) + delta);
        uint256 rejectSlashBps = uint256(int256(((revealed - approving) * BPS) / committed) + delta);
        acceptBps = acceptBps == 0 ? 1 : (acceptBps > BPS ? BPS : acceptBps);
        rejectSlashBps = rejectSlashBps == 0 ? 1 : (rejectSlashBps > BPS ? BPS : rejectSlashBps);
        _check(stakes, bitmaps, n, committed, revealed, acceptBps, rejectSlashBps);
    }
}
