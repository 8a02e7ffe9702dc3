"""The transfer's state machine at the clearinghouse: every state, every event, one table.

The coordinator (``clearinghouse.coordinator``) decides; this module says which decisions
are possible. An event is what the coordinator learned, already judged (a reserve result
is ``RESERVE_HELD`` or ``RESERVE_REFUSED``), so that each (state, event) pair has one next
state. A pair missing from ``TRANSITIONS`` cannot happen under a correct protocol:
``transition`` raises ``TransferStateError``, which the coordinator reports as an anomaly.

Repeated and late answers are normal (the broker redelivers, a region answers after a
timeout); they are in the table, as transitions to the same state that say how to react::

    received --request_refused-------------------------------------------> aborted
        |  \\--quotes_asked--> quoting --quotes_failed--------------------> aborted
        |                        \\--quotes_complete--\\
        \\--payer_known------------------------------> reserving --reserve_refused--> aborted
                                                       |   \\--reserve_timeout--> aborting
                                               reserve_held                        |
                                                       v                   abort_confirmed
          aborted <--commit_expired-- committing                                   v
                                          |                                     aborted
                                    commit_posted      (aborted --reserve_held--> aborting:
                                          v             a late hold is released)
                                      crediting --credited--> committed
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TransferState(StrEnum):
    """A transfer's life at the clearinghouse; the stored ``state`` column.

    ``received`` is passed through inside the request's transaction (the request is
    checked and forwarded at once), so stored records show the others.
    """

    RECEIVED = "received"
    QUOTING = "quoting"
    """Asking the regions of several bound co-payers for their balances, or the
    beneficiary's region for the premium due."""
    RESERVING = "reserving"
    """Asking the payer region to hold the amount (until the reserve deadline)."""
    COMMITTING = "committing"
    """Decided: commit. Asking the payer region to post its hold, retried until answered."""
    CREDITING = "crediting"
    """The payer posted: crediting the payee region, retried until answered."""
    COMMITTED = "committed"
    """Final: the payer posted and the payee credited the same amount."""
    ABORTING = "aborting"
    """Decided: abort (the requester is told). Asking the payer region to release a hold
    it may have made, retried until answered."""
    ABORTED = "aborted"
    """Final: nothing moved, and no hold of it remains."""

    @property
    def final(self) -> bool:
        """Nothing is awaited any more."""
        return self in (TransferState.COMMITTED, TransferState.ABORTED)

    @property
    def decided_abort(self) -> bool:
        """The outcome is a refusal (told to the requester), whether or not a release is
        still awaited."""
        return self in (TransferState.ABORTING, TransferState.ABORTED)


class TransferEvent(StrEnum):
    """What the coordinator learned about a transfer, as it judged it."""

    REQUEST_RECEIVED = "request_received"
    """A new request: the transfer is created in ``received`` (not a transition)."""
    REQUEST_REFUSED = "request_refused"
    """A check before any money was held failed (region not enabled, no binding, ...)."""
    QUOTES_ASKED = "quotes_asked"
    """Several co-payers are bound (balances asked), or a premium's amount is asked."""
    PAYER_KNOWN = "payer_known"
    """One co-payer is bound, or the request names its payer (a wallet transfer)."""
    REQUEST_REPEATED = "request_repeated"
    """The same request again (its region did not hear the outcome, or redelivery)."""
    QUOTE_RECEIVED = "quote_received"
    """A balance quote, while others are still awaited; after the choice, a late one."""
    QUOTES_COMPLETE = "quotes_complete"
    """Every co-payer's region answered, or the quote deadline passed with an answer,
    and a payer is chosen; or the premium due was quoted."""
    QUOTES_FAILED = "quotes_failed"
    """No usable balance among the answers (or no answer in time), or the premium
    cannot be paid."""
    RESERVE_HELD = "reserve_held"
    RESERVE_REFUSED = "reserve_refused"
    RESERVE_TIMEOUT = "reserve_timeout"
    """The payer region did not answer the reserve by its deadline."""
    COMMIT_POSTED = "commit_posted"
    COMMIT_EXPIRED = "commit_expired"
    """The payer region's hold expired (or is unknown there) before the commit."""
    CREDITED = "credited"
    ABORT_CONFIRMED = "abort_confirmed"
    """The payer region answered the abort: nothing of the transfer is held there."""
    RETRY_DUE = "retry_due"
    """A decided step's answer is overdue: it is sent again."""
    RESUMED = "resumed"
    """The clearinghouse restarted: the current step is sent again, with fresh deadlines."""
    # A transfer with several payer legs (care away from home): each leg's answer moves
    # the leg; the transfer moves on (with the events above) once the last one is in.
    LEG_ANSWERED = "leg_answered"
    """A leg's reserve was answered and the next leg is asked."""
    LEG_POSTED = "leg_posted"
    """A leg's commit was answered while other legs' commits are awaited."""
    LEG_CREDITED = "leg_credited"
    """A leg's credit was answered while other legs' credits are awaited."""
    LEG_RELEASED = "leg_released"
    """A leg's abort was answered while other legs' aborts are awaited."""
    LEG_REPEATED = "leg_repeated"
    """An answer for a leg that has moved past it (a duplicate, or a late one)."""


class Reaction(StrEnum):
    """What the coordinator does on an allowed event."""

    ADVANCE = "advance"
    """The event moves the transfer on (or, for a quote, adds to it): the handler acts."""
    SEND_AGAIN = "send_again"
    """Send the current step's messages again (see ``TransferCoordinator.step``)."""
    DECISION_AGAIN = "decision_again"
    """Already decided: send the decision's final messages again. Its first sending may
    have been lost after the decision was saved (the broker then redelivers the answer
    that caused it)."""
    IGNORE = "ignore"
    """A stale answer while a later step is under way (its timer retries that step)."""


@dataclass(frozen=True, slots=True)
class Transition:
    next: TransferState
    reaction: Reaction


class TransferStateError(Exception):
    """An event that the transfer's state does not allow."""

    def __init__(self, state: TransferState, event: TransferEvent) -> None:
        super().__init__(f"{event.value} is not expected while {state.value}")
        self.state = state
        self.event = event


S, E, R = TransferState, TransferEvent, Reaction


def _stay(
    state: TransferState, reaction: Reaction, *events: TransferEvent
) -> dict[TransferEvent, Transition]:
    return {event: Transition(state, reaction) for event in events}


TRANSITIONS: dict[TransferState, dict[TransferEvent, Transition]] = {
    S.RECEIVED: {
        E.REQUEST_REFUSED: Transition(S.ABORTED, R.ADVANCE),
        E.QUOTES_ASKED: Transition(S.QUOTING, R.ADVANCE),
        E.PAYER_KNOWN: Transition(S.RESERVING, R.ADVANCE),
    },
    S.QUOTING: {
        E.QUOTE_RECEIVED: Transition(S.QUOTING, R.ADVANCE),
        E.QUOTES_COMPLETE: Transition(S.RESERVING, R.ADVANCE),
        E.QUOTES_FAILED: Transition(S.ABORTED, R.ADVANCE),
        **_stay(S.QUOTING, R.SEND_AGAIN, E.REQUEST_REPEATED, E.RESUMED),
    },
    S.RESERVING: {
        E.RESERVE_HELD: Transition(S.COMMITTING, R.ADVANCE),
        E.RESERVE_REFUSED: Transition(S.ABORTED, R.ADVANCE),
        E.RESERVE_TIMEOUT: Transition(S.ABORTING, R.ADVANCE),
        E.LEG_ANSWERED: Transition(S.RESERVING, R.ADVANCE),
        **_stay(S.RESERVING, R.SEND_AGAIN, E.REQUEST_REPEATED, E.RESUMED),
        **_stay(S.RESERVING, R.IGNORE, E.QUOTE_RECEIVED, E.LEG_REPEATED),
    },
    S.COMMITTING: {
        E.COMMIT_POSTED: Transition(S.CREDITING, R.ADVANCE),
        E.COMMIT_EXPIRED: Transition(S.ABORTED, R.ADVANCE),
        **_stay(S.COMMITTING, R.SEND_AGAIN, E.REQUEST_REPEATED, E.RETRY_DUE, E.RESUMED),
        # A reserve answered twice (a duplicated Reserve; after the hold expired, its
        # answer is a refusal): the commit's answer decides.
        **_stay(S.COMMITTING, R.IGNORE, E.QUOTE_RECEIVED, E.RESERVE_HELD, E.RESERVE_REFUSED),
        E.LEG_POSTED: Transition(S.COMMITTING, R.ADVANCE),
        **_stay(S.COMMITTING, R.IGNORE, E.LEG_REPEATED),
    },
    S.CREDITING: {
        E.CREDITED: Transition(S.COMMITTED, R.ADVANCE),
        **_stay(S.CREDITING, R.SEND_AGAIN, E.REQUEST_REPEATED, E.RETRY_DUE, E.RESUMED),
        **_stay(
            S.CREDITING,
            R.IGNORE,
            E.QUOTE_RECEIVED,
            E.RESERVE_HELD,
            E.RESERVE_REFUSED,
            E.COMMIT_POSTED,
            E.LEG_REPEATED,
        ),
        E.LEG_CREDITED: Transition(S.CREDITING, R.ADVANCE),
    },
    S.COMMITTED: {
        **_stay(S.COMMITTED, R.SEND_AGAIN, E.REQUEST_REPEATED),
        **_stay(
            S.COMMITTED,
            R.DECISION_AGAIN,
            E.QUOTE_RECEIVED,
            E.RESERVE_HELD,
            E.RESERVE_REFUSED,
            E.COMMIT_POSTED,
            E.CREDITED,
            E.LEG_REPEATED,
        ),
    },
    S.ABORTING: {
        E.ABORT_CONFIRMED: Transition(S.ABORTED, R.ADVANCE),
        # A hold that arrived after the reserve timed out: the Abort again, alone.
        E.RESERVE_HELD: Transition(S.ABORTING, R.ADVANCE),
        **_stay(S.ABORTING, R.SEND_AGAIN, E.REQUEST_REPEATED, E.RETRY_DUE, E.RESUMED),
        **_stay(
            S.ABORTING, R.DECISION_AGAIN, E.QUOTE_RECEIVED, E.RESERVE_REFUSED, E.COMMIT_EXPIRED
        ),
        E.LEG_RELEASED: Transition(S.ABORTING, R.ADVANCE),
        **_stay(S.ABORTING, R.IGNORE, E.LEG_REPEATED),
    },
    S.ABORTED: {
        # A hold that arrived after the abort was answered (reordered delivery): release it.
        E.RESERVE_HELD: Transition(S.ABORTING, R.ADVANCE),
        **_stay(S.ABORTED, R.SEND_AGAIN, E.REQUEST_REPEATED),
        **_stay(S.ABORTED, R.DECISION_AGAIN, E.QUOTE_RECEIVED, E.RESERVE_REFUSED, E.COMMIT_EXPIRED),
        **_stay(S.ABORTED, R.IGNORE, E.ABORT_CONFIRMED),
        **_stay(S.ABORTED, R.DECISION_AGAIN, E.LEG_REPEATED),
    },
}
"""state -> event -> transition. A pair not here raises ``TransferStateError``: e.g. a
posted commit for an aborted transfer, a credit confirmed before it was sent, an abort
confirmed for a transfer that never asked for one."""


def transition(state: TransferState, event: TransferEvent) -> Transition:
    """The transition ``event`` makes from ``state``, or ``TransferStateError``."""
    try:
        return TRANSITIONS[state][event]
    except KeyError:
        raise TransferStateError(state, event) from None


# --- the legs of a transfer with several payers (care away from home) ---------------------


class LegState(StrEnum):
    r"""One payer leg's life at the clearinghouse (the ``transfer_legs`` table).

    Legs are reserved one after another, each for what the earlier ones left unpaid::

        waiting --ask--> asking --held--> held --posted--> posted --credited--> credited
           \--skip--> skipped  \--refused--> not_held     \--not_posted--> not_posted
                                (asking, held, not_held) --released--> released
    """

    WAITING = "waiting"
    """Not asked yet: an earlier leg's answer decides what is left for it."""
    ASKING = "asking"
    """Its region was asked to hold (a prepared hold, which never expires by itself)."""
    HELD = "held"
    NOT_HELD = "not_held"
    """Refused (no account, zero balance, ...): the leg pays nothing."""
    SKIPPED = "skipped"
    """Nothing was left to pay when its turn came; never asked."""
    POSTED = "posted"
    NOT_POSTED = "not_posted"
    """The region has no record of the hold (restored from a backup): it paid nothing."""
    CREDITED = "credited"
    """The region of care booked the leg's money."""
    RELEASED = "released"
    """The transfer aborted and the region confirmed that nothing of the leg is held."""


class LegEvent(StrEnum):
    ASK = "ask"
    SKIP = "skip"
    HELD = "held"
    REFUSED = "refused"
    POSTED = "posted"
    NOT_POSTED = "not_posted"
    CREDITED = "credited"
    RELEASED = "released"


L, LE = LegState, LegEvent

LEG_TRANSITIONS: dict[LegState, dict[LegEvent, LegState]] = {
    L.WAITING: {LE.ASK: L.ASKING, LE.SKIP: L.SKIPPED},
    L.ASKING: {LE.HELD: L.HELD, LE.REFUSED: L.NOT_HELD, LE.RELEASED: L.RELEASED},
    L.HELD: {LE.POSTED: L.POSTED, LE.NOT_POSTED: L.NOT_POSTED, LE.RELEASED: L.RELEASED},
    L.NOT_HELD: {LE.RELEASED: L.RELEASED},
    L.POSTED: {LE.CREDITED: L.CREDITED},
}
"""state -> event -> next state. A leg's answer whose pair is missing is a repeat or a
late answer (``TransferEvent.LEG_REPEATED``), never applied."""

del L, LE


def leg_transition(state: LegState, event: LegEvent) -> LegState | None:
    """The leg's next state, or None when ``event`` does not apply to ``state``."""
    return LEG_TRANSITIONS.get(state, {}).get(event)
