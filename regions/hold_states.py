"""The life of a hold at the payer region: its states, and one table of its transitions.

A hold begins when the clearinghouse asks for a reserve and ends posted (the commit point
of the transfer), expired, released by an abort, or refused. Every (state, event) pair a
correct protocol can produce is an entry of ``TRANSITIONS``: the next state and the answer
the region gives. That includes every repeat a lossy, duplicating, reordering network
produces (a reserve, commit or abort delivered again; an abort after the hold expired),
answered as the first one was. Any other pair is a protocol error: ``transition`` raises
``HoldStateError`` before anything changes, and the region core reports an anomaly.

::

    ABSENT --reserve--------> PENDING --commit--> POSTED
      |                         |------expire---> EXPIRED
      |                         '------abort----> RELEASED_BY_ABORT
      |--reserve, prepared--> PREPARED --commit--> POSTED     (one leg of several: it
      |                         '--------abort---> RELEASED_BY_ABORT      never expires)
      |--reserve, refused---> REFUSED
      '--abort--------------> ABORTED_BEFORE_RESERVE   (a tombstone: no later reserve holds)

A pending hold whose time is up is expired before any event is applied to it, so a commit
that arrives after the deadline but before the region's timer ran meets ``EXPIRED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.reasons import ReasonCode


class HoldState(StrEnum):
    """Where a hold is in its life (stored in the ``holds`` table, except ``ABSENT``)."""

    ABSENT = "absent"
    """No record of the transfer here: where every hold starts. Never stored."""
    PENDING = "pending"
    """The amount is reserved on the co-payer's account, until commit, abort or expiry."""
    PREPARED = "prepared"
    """Reserved for one leg of a transfer with several payers (care away from home): it
    does not expire by itself, so that every leg posts or none does; only the
    clearinghouse's commit or abort ends it (the clearinghouse retries both until
    answered, also after a restart)."""
    POSTED = "posted"
    """The reserved amount moved: the transfer's commit point."""
    EXPIRED = "expired"
    """The hold's time ran out first; the amount was released."""
    RELEASED_BY_ABORT = "released_by_abort"
    """The clearinghouse gave up on the transfer (its reserve timed out); released."""
    REFUSED = "refused"
    """The reserve was refused (no account, no balance, ...); nothing was ever held."""
    ABORTED_BEFORE_RESERVE = "aborted_before_reserve"
    """The abort overtook its reserve: a tombstone, so the late reserve never holds."""


class HoldEvent(StrEnum):
    """What can happen to a hold; the payer side says which one an operation is."""

    RESERVE = "reserve"
    """A first reserve that the region's rules accept."""
    RESERVE_REFUSED = "reserve_refused"
    """A first reserve that the region's rules refuse."""
    RESERVE_PREPARED = "reserve_prepared"
    """A first reserve, accepted, for one leg of a transfer with several payers."""
    RESERVE_REPEATED = "reserve_repeated"
    """A reserve for a known transfer with the recorded fields (a tombstone has none)."""
    RESERVE_MISMATCH = "reserve_mismatch"
    """A reserve for a known transfer with other fields than the recorded ones."""
    COMMIT = "commit"
    ABORT = "abort"
    EXPIRE = "expire"
    """The hold's time is up (the region's timer, or an event arriving after it)."""
    REPAIR = "repair"
    """Reconciliation drives the region to a commit it lost (e.g. restored from a backup)."""


class Answer(StrEnum):
    """What the region sends back to the clearinghouse."""

    HELD = "held"
    """``ReserveResult`` with the held amount."""
    NOT_HELD = "not_held"
    """``ReserveResult`` of nothing, with a reason."""
    POSTED = "posted"
    """``CommitResult`` with the posted amount."""
    NOT_POSTED = "not_posted"
    """``CommitResult`` of nothing, with a reason."""
    ABORTED = "aborted"
    """``Aborted``: nothing is held any more."""
    NOTHING = "nothing"
    """No message (the expiry timer; a repair, which reconciliation answers)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One entry of the table: where the hold goes and what the region answers."""

    next_state: HoldState
    answer: Answer
    reason: ReasonCode | None = None
    """Why: recorded when the hold ends this way, and given in a ``NOT_*`` answer. None in
    a ``NOT_*`` answer: the reason of the reserve's refusal (decided now, or recorded)."""


class HoldStateError(Exception):
    """An event the hold's state does not allow: the protocol was broken somewhere."""

    def __init__(self, transfer_id: str, state: HoldState, event: HoldEvent) -> None:
        super().__init__(f"a hold that is {state} cannot take {event}")
        self.transfer_id = transfer_id
        self.state = state
        self.event = event


S, E, A, R = HoldState, HoldEvent, Answer, ReasonCode

TRANSITIONS: dict[HoldState, dict[HoldEvent, Transition]] = {
    S.ABSENT: {
        E.RESERVE: Transition(S.PENDING, A.HELD),
        E.RESERVE_REFUSED: Transition(S.REFUSED, A.NOT_HELD),
        E.RESERVE_PREPARED: Transition(S.PREPARED, A.HELD),
        # The record is lost (a database restored from an old backup): nothing posts, and
        # the clearinghouse aborts the transfer.
        E.COMMIT: Transition(S.ABSENT, A.NOT_POSTED, R.UNKNOWN_TRANSFER),
        E.ABORT: Transition(S.ABORTED_BEFORE_RESERVE, A.ABORTED, R.TIMEOUT),
        E.REPAIR: Transition(S.POSTED, A.NOTHING),
    },
    S.PENDING: {
        E.RESERVE_REPEATED: Transition(S.PENDING, A.HELD),
        E.RESERVE_MISMATCH: Transition(S.PENDING, A.NOT_HELD, R.DUPLICATE_MISMATCH),
        E.COMMIT: Transition(S.POSTED, A.POSTED),
        E.ABORT: Transition(S.RELEASED_BY_ABORT, A.ABORTED, R.TIMEOUT),
        E.EXPIRE: Transition(S.EXPIRED, A.NOTHING, R.HOLD_EXPIRED),
        E.REPAIR: Transition(S.POSTED, A.NOTHING),
    },
    S.PREPARED: {
        E.RESERVE_REPEATED: Transition(S.PREPARED, A.HELD),
        E.RESERVE_MISMATCH: Transition(S.PREPARED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
        E.COMMIT: Transition(S.POSTED, A.POSTED),
        E.ABORT: Transition(S.RELEASED_BY_ABORT, A.ABORTED, R.TIMEOUT),
        E.REPAIR: Transition(S.POSTED, A.NOTHING),
        # No EXPIRE: a leg's hold waits for the clearinghouse's decision.
    },
    S.POSTED: {
        E.RESERVE_REPEATED: Transition(S.POSTED, A.HELD),
        E.RESERVE_MISMATCH: Transition(S.POSTED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
        E.COMMIT: Transition(S.POSTED, A.POSTED),
        E.REPAIR: Transition(S.POSTED, A.NOTHING),
        # No ABORT: the clearinghouse never aborts a transfer it decided to commit.
    },
    S.EXPIRED: {
        E.RESERVE_REPEATED: Transition(S.EXPIRED, A.NOT_HELD, R.HOLD_EXPIRED),
        E.RESERVE_MISMATCH: Transition(S.EXPIRED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
        E.COMMIT: Transition(S.EXPIRED, A.NOT_POSTED, R.HOLD_EXPIRED),
        # The clearinghouse timed the reserve out while the hold was running out here.
        E.ABORT: Transition(S.EXPIRED, A.ABORTED),
        # Committed nationally, but this region lost the posting (restored from a backup
        # taken while the hold was pending) and the old hold then expired.
        E.REPAIR: Transition(S.POSTED, A.NOTHING),
    },
    S.RELEASED_BY_ABORT: {
        E.RESERVE_REPEATED: Transition(S.RELEASED_BY_ABORT, A.NOT_HELD, R.TIMEOUT),
        E.RESERVE_MISMATCH: Transition(S.RELEASED_BY_ABORT, A.NOT_HELD, R.DUPLICATE_MISMATCH),
        E.ABORT: Transition(S.RELEASED_BY_ABORT, A.ABORTED),
        # No COMMIT or REPAIR: an aborted transfer is never committed.
    },
    S.REFUSED: {
        E.RESERVE_REPEATED: Transition(S.REFUSED, A.NOT_HELD),
        E.RESERVE_MISMATCH: Transition(S.REFUSED, A.NOT_HELD, R.DUPLICATE_MISMATCH),
        # The clearinghouse timed the reserve out before the refusal reached it.
        E.ABORT: Transition(S.REFUSED, A.ABORTED),
        # No COMMIT or REPAIR: nothing was held, so the clearinghouse never commits.
    },
    S.ABORTED_BEFORE_RESERVE: {
        # The late reserve (or a repeat of it): never hold for an aborted transfer.
        E.RESERVE_REPEATED: Transition(S.ABORTED_BEFORE_RESERVE, A.NOT_HELD, R.TIMEOUT),
        E.ABORT: Transition(S.ABORTED_BEFORE_RESERVE, A.ABORTED),
    },
}
"""(state, event) -> transition. A pair missing here is a protocol error."""

del S, E, A, R


def transition(transfer_id: str, state: HoldState, event: HoldEvent) -> Transition:
    """The table's entry for ``event`` in ``state``; raise ``HoldStateError`` if none."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise HoldStateError(transfer_id, state, event) from None
