// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title Committee
/// @notice A job's validator committee: seats, each member's round markers and accrued rewards, and the
/// liveness rule that evicts members who stop voting.
/// @dev One slot per member, read by every validator call and by finalize: round markers replace
/// per-round records. Records outlive membership (rewards owed stay claimable after leaving).
library Committee {
    struct Member {
        uint32 eligibleFrom; // first round whose votes it may cast (its stake is read at that round's start)
        uint16 position; // index in `members` + 1; 0 = not a member
        uint32 commitRound; // last round it committed a vote in
        uint32 revealRound; // last round it revealed a vote in
        uint32 attestRound; // last round it attested a model in
        uint96 owed; // validator rewards credited and not yet claimed
    }

    struct Seats {
        address[] members;
        mapping(address validator => Member) member;
    }

    /// @dev Seats `a`; its votes count from round `eligibleFrom`.
    function add(Seats storage seats, address a, uint32 eligibleFrom) internal {
        seats.members.push(a);
        Member storage m = seats.member[a];
        m.position = uint16(seats.members.length);
        m.eligibleFrom = eligibleFrom;
    }

    /// @dev Frees `a`'s seat (swap and pop). Its record, and what it is owed, stay.
    function remove(Seats storage seats, address a) internal {
        Member storage m = seats.member[a];
        uint16 position = m.position;
        address last = seats.members[seats.members.length - 1];
        seats.members[position - 1] = last;
        seats.member[last].position = position;
        seats.members.pop();
        m.position = 0;
    }

    /// @dev Rounds in a row up to and including `round` in which an eligible member revealed no vote.
    function missedRounds(Member memory m, uint32 round) internal pure returns (uint256) {
        uint32 lastActive = m.revealRound > m.eligibleFrom - 1 ? m.revealRound : m.eligibleFrom - 1;
        return round > lastActive ? round - lastActive : 0;
    }

    /// @dev Whether `m` has a vote in the job's current round still to be decided or attested: it may not
    /// leave or be displaced before that round has moved on.
    function votePending(Member memory m, uint32 currentRound) internal pure returns (bool) {
        return m.commitRound == currentRound;
    }
}
