"""A window's settlement (清算), at the clearinghouse and at a region: states, events, one table.

The clearinghouse issues each region's settlement when it closes a window and marks it
booked when the region says it booked it::

    (none) --issue--> issued --booked--> booked
                        \\--reissue--> issued        (a close asked again, a restart)
                                          booked --booked_again--> booked

A region may hear of a settlement before it has every line of the window (the broker
may reorder); it waits for them, then books once::

    (none) --instructed--> awaiting_lines --lines_complete--> booked
    (none) --instructed_complete--> booked
    awaiting_lines --instructed--> awaiting_lines;  booked --instructed--> booked

A pair missing from ``TRANSITIONS`` cannot happen under a correct protocol:
``settlement_transition`` raises ``SettlementStateError``.
"""

from __future__ import annotations

from enum import StrEnum


class SettlementState(StrEnum):
    ABSENT = "absent"
    """No record yet (never stored)."""
    ISSUED = "issued"
    """Clearinghouse: computed at the close and sent to the region; not yet booked there."""
    AWAITING_LINES = "awaiting_lines"
    """Region: told to book, still missing some of the window's lines."""
    BOOKED = "booked"
    """Booked in the region's books (at the clearinghouse: the region said so)."""


class SettlementEvent(StrEnum):
    ISSUE = "issue"
    REISSUE = "reissue"
    BOOKED = "booked"
    BOOKED_AGAIN = "booked_again"
    INSTRUCTED = "instructed"
    INSTRUCTED_COMPLETE = "instructed_complete"
    LINES_COMPLETE = "lines_complete"


class SettlementStateError(Exception):
    """An event the table does not allow in the settlement's state."""

    def __init__(self, window: int, region: str, state: SettlementState, event: SettlementEvent):
        super().__init__(f"settlement of window {window} for {region}: {event} in {state}")
        self.window = window
        self.region = region


S, E = SettlementState, SettlementEvent

TRANSITIONS: dict[tuple[SettlementState, SettlementEvent], SettlementState] = {
    # the clearinghouse
    (S.ABSENT, E.ISSUE): S.ISSUED,
    (S.ISSUED, E.REISSUE): S.ISSUED,
    (S.BOOKED, E.REISSUE): S.BOOKED,
    (S.ISSUED, E.BOOKED): S.BOOKED,
    (S.BOOKED, E.BOOKED_AGAIN): S.BOOKED,
    # a region
    (S.ABSENT, E.INSTRUCTED): S.AWAITING_LINES,
    (S.ABSENT, E.INSTRUCTED_COMPLETE): S.BOOKED,
    (S.AWAITING_LINES, E.INSTRUCTED): S.AWAITING_LINES,
    (S.AWAITING_LINES, E.LINES_COMPLETE): S.BOOKED,
    (S.AWAITING_LINES, E.INSTRUCTED_COMPLETE): S.BOOKED,
    (S.BOOKED, E.INSTRUCTED): S.BOOKED,
    (S.BOOKED, E.INSTRUCTED_COMPLETE): S.BOOKED,
}


def settlement_transition(
    window: int, region: str, state: SettlementState, event: SettlementEvent
) -> SettlementState:
    """The next state, or ``SettlementStateError`` for a pair the table does not allow."""
    next_state = TRANSITIONS.get((state, event))
    if next_state is None:
        raise SettlementStateError(window, region, state, event)
    return next_state
