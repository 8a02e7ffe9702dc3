"""The transfer coordinator: a sans-I/O, durable state machine per transfer.

It decides, for each request for mutual aid, whether money moves and from whom, and
drives both regions to that decision so that money moves in both or in neither:

    received -> [quoting] -> reserving -> committing -> crediting -> committed
                         \\-> [aborting] -> aborted (with a reason)

(every state and transition: ``clearinghouse.transfer_states``).

The commit point is the payer region's own post-or-expire decision, serialized in its
database: the payee is credited only after the payer reports the hold posted, and a
payer whose hold expired first reports ``HOLD_EXPIRED``, which aborts the transfer.
Every decision is saved (by the caller's transaction) before the messages it returns
(with its events, as ``Effects``) are sent; ``tick`` times out silent regions and
retries decided steps until answered; ``resume`` re-sends the current step of every
unfinished transfer after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clearinghouse.away import AwaySettlements
from clearinghouse.response_times import ResponseTimes
from clearinghouse.store import (
    Binding,
    Candidate,
    ClearinghouseStore,
    Quote,
    Transfer,
)
from clearinghouse.transfer_states import (
    TRANSITIONS,
    Reaction,
    TransferState,
    TransferStateError,
    Transition,
    transition,
)
from clearinghouse.transfer_states import TransferEvent as Event
from contracts.effects import (
    Anomaly,
    AnyEvent,
    Effects,
    Outgoing,
    Retried,
    TransferFinished,
    TransferStarted,
)
from contracts.identifiers import region_address
from contracts.operations import (
    Abort,
    Aborted,
    BalanceQuoted,
    CheckPremium,
    Commit,
    CommitResult,
    Completed,
    Credit,
    Credited,
    PremiumQuoted,
    QueryBalance,
    Refuse,
    RequestAid,
    RequestAwaySettlement,
    RequestTransfer,
    Reserve,
    ReserveResult,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import Flow


@dataclass(frozen=True, slots=True)
class CoordinatorSettings:
    """Deadlines and retry pacing, in milliseconds."""

    reserve_timeout_ms: int = 5_000
    """How long the payer region has to answer a reserve before the transfer aborts."""
    quote_timeout_ms: int = 2_000
    """How long co-payers' regions have to quote balances; silent ones are left out."""
    hold_timeout_ms: int = 60_000
    """How long a payer region keeps a hold before releasing it by itself."""
    retry_ms: int = 2_000
    """First retry of an unanswered commit, credit or abort, at least: a region whose
    answers take longer (``ResponseTimes``) gets more; doubles up to ``max_retry_ms``."""
    max_retry_ms: int = 30_000


@dataclass(frozen=True, slots=True)
class Step:
    """What a transfer in its state awaits, and the messages that ask for it."""

    name: str
    """``quote``, ``premium``, ``reserve``, ``commit``, ``credit``, ``abort``, or for a
    final transfer ``credit``, ``completed`` or ``refusal`` (its decision's messages)."""
    awaits: tuple[str, ...]
    """The regions whose answer is awaited (none for a final transfer's messages)."""
    messages: list[Outgoing]


class TransferCoordinator:
    """The national clearinghouse's decisions, as a plain class over its store.

    Each handler judges its input as a ``TransferEvent`` and asks the table of
    ``clearinghouse.transfer_states`` what the transfer's state allows: a pair the table
    does not have becomes an ``Anomaly`` and changes nothing. Each returns its ``Effects``.
    """

    def __init__(
        self,
        store: ClearinghouseStore,
        settings: CoordinatorSettings | None = None,
        on_committed: Callable[[Transfer, int], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or CoordinatorSettings()
        self.on_committed = on_committed
        self.response_times = ResponseTimes()
        self.away = AwaySettlements(self)

    def request_away_settlement(self, op: RequestAwaySettlement, now_ms: int) -> Effects:
        """A bill at a region of care, paid by several legs (``clearinghouse.away``)."""
        return self.away.request(op, now_ms)

    # --- a request for mutual aid ---

    def request_aid(self, op: RequestAid, now_ms: int) -> Effects:
        known = self.store.transfer(op.transfer_id)
        if known is not None:
            same = (known.beneficiary, known.payee_region, known.amount_fen) == (
                op.beneficiary,
                op.beneficiary_region,
                op.amount_fen,
            )
            return self._repeated(known, same, op.beneficiary_region, now_ms)
        t = Transfer(
            transfer_id=op.transfer_id,
            flow=Flow.COPAY,
            beneficiary=op.beneficiary,
            payee_region=op.beneficiary_region,
            amount_fen=op.amount_fen,
            state=TransferState.RECEIVED,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            candidates=[],
        )
        started = self._start(t, now_ms, f"{op.amount_fen} fen for {op.beneficiary}")
        refusal_reason = self._check_payee(t)
        if refusal_reason is not None:
            return started + self._abort(t, Event.REQUEST_REFUSED, *refusal_reason, now_ms)
        bindings = self.store.active_bindings_of(op.beneficiary, op.beneficiary_region)
        if not bindings:
            detail = f"{op.beneficiary} has no bound co-payer"
            no_binding = ReasonCode.NO_BINDING
            return started + self._abort(t, Event.REQUEST_REFUSED, no_binding, detail, now_ms)
        candidates, refusal_reason = self._candidates(bindings)
        if refusal_reason is not None:
            return started + self._abort(t, Event.REQUEST_REFUSED, *refusal_reason, now_ms)
        t.candidates = candidates
        if len(candidates) == 1:
            return started + self._reserve(t, Event.PAYER_KNOWN, candidates[0], now_ms)
        t.next_action_ms = now_ms + self.settings.quote_timeout_ms
        asked = ", ".join(f"{c.region}/{c.psn_no}" for c in candidates)
        self._enter(t, Event.QUOTES_ASKED, now_ms, f"balances of {asked}")
        return Effects(self.step(t).messages, started.events)

    def _check_payee(self, t: Transfer) -> tuple[ReasonCode, str] | None:
        region = self.store.region(t.payee_region)
        if region is None:
            return ReasonCode.UNKNOWN_REGION, f"payee region {t.payee_region} is not registered"
        if not region.enabled:
            return ReasonCode.REGION_NOT_ENABLED, f"payee region {region.label()} is not enabled"
        return None

    def _candidates(
        self, bindings: list[Binding]
    ) -> tuple[list[Candidate], tuple[ReasonCode, str] | None]:
        """Co-payers whose regions are registered and enabled, or why there are none."""
        usable: list[Candidate] = []
        unknown: list[str] = []
        disabled: list[str] = []
        for b in bindings:
            region = self.store.region(b.copayer_region)
            if region is None:
                unknown.append(b.copayer_region)
            elif not region.enabled:
                disabled.append(region.label())
            else:
                usable.append(Candidate(b.copayer, b.copayer_region))
        if usable:
            return usable, None
        if disabled:
            regions = ", ".join(sorted(set(disabled)))
            return [], (ReasonCode.REGION_NOT_ENABLED, f"payer region {regions} is not enabled")
        regions = ", ".join(sorted(set(unknown)))
        return [], (ReasonCode.UNKNOWN_REGION, f"payer region {regions} is not registered")

    # --- a transfer with a known payer: wallet transfers and premium payments ---

    def request_transfer(self, op: RequestTransfer, now_ms: int) -> Effects:
        known = self.store.transfer(op.transfer_id)
        if known is not None:
            same = (
                known.flow,
                known.payer,
                known.payer_region,
                known.beneficiary,
                known.payee_region,
                known.year,
            ) == (
                op.flow,
                op.payer,
                op.payer_region,
                op.beneficiary,
                op.beneficiary_region,
                op.year,
            )
            if op.flow is Flow.WALLET:
                same = same and known.amount_fen == op.amount_fen
            return self._repeated(known, same, op.payer_region, now_ms)
        t = Transfer(
            transfer_id=op.transfer_id,
            flow=op.flow,
            beneficiary=op.beneficiary,
            payee_region=op.beneficiary_region,
            amount_fen=op.amount_fen,
            state=TransferState.RECEIVED,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            candidates=[Candidate(op.payer, op.payer_region)],
            payer=op.payer,
            payer_region=op.payer_region,
            year=op.year,
        )
        what = f"premium {op.year}" if op.flow is Flow.PREMIUM else f"{op.amount_fen} fen"
        started = self._start(t, now_ms, f"{op.flow} of {what} for {op.beneficiary} by {op.payer}")
        why_not = self._check_known_payer(t)
        if why_not is not None:
            return started + self._abort(t, Event.REQUEST_REFUSED, *why_not, now_ms)
        if t.flow is Flow.PREMIUM:
            # The beneficiary's region says what is due, and earmarks (person, year).
            t.next_action_ms = now_ms + self.settings.quote_timeout_ms
            self._enter(t, Event.QUOTES_ASKED, now_ms, f"premium due at {t.payee_region}")
            return Effects(self.step(t).messages, started.events)
        payer = Candidate(t.payer, t.payer_region)
        return started + self._reserve(t, Event.PAYER_KNOWN, payer, now_ms)

    def _check_known_payer(self, t: Transfer) -> tuple[ReasonCode, str] | None:
        regions = {}
        for role, code in (("payer", t.payer_region), ("payee", t.payee_region)):
            region = self.store.region(code)
            if region is None:
                return ReasonCode.UNKNOWN_REGION, f"{role} region {code} is not registered"
            if not region.enabled:
                return (
                    ReasonCode.REGION_NOT_ENABLED,
                    f"{role} region {region.label()} is not enabled",
                )
            regions[role] = region
        bound = any(
            b.copayer == t.payer and b.copayer_region == t.payer_region
            for b in self.store.active_bindings_of(t.beneficiary, t.payee_region)
        )
        if not bound:
            return ReasonCode.NO_BINDING, f"{t.payer} has not bound {t.beneficiary}"
        if t.flow is Flow.WALLET:
            for region in regions.values():
                if not region.policy.wallet_enabled:
                    return (
                        ReasonCode.WALLET_NOT_ENABLED,
                        f"region {region.label()} has not enabled the wallet",
                    )
        return None

    def premium_quoted(self, op: PremiumQuoted, now_ms: int) -> Effects:
        t = self.store.transfer(op.transfer_id)
        if t is None or op.region != t.payee_region:
            return Effects()
        if t.state is not TransferState.QUOTING:
            return self._react(t, Event.QUOTE_RECEIVED, now_ms)
        if op.reason is not None:
            detail = f"payee region {op.region}: {op.reason}"
            return self._abort(t, Event.QUOTES_FAILED, op.reason, detail, now_ms)
        t.amount_fen = op.amount_fen
        payer = Candidate(t.payer, t.payer_region)
        return self._reserve(t, Event.QUOTES_COMPLETE, payer, now_ms)

    # --- choosing among several co-payers ---

    def balance_quoted(self, op: BalanceQuoted, now_ms: int) -> Effects:
        t = self.store.transfer(op.transfer_id)
        if t is None:
            return Effects()
        if t.state is not TransferState.QUOTING:
            # A late or duplicate quote: the choice is made already.
            return self._react(t, Event.QUOTE_RECEIVED, now_ms)
        if Candidate(op.psn_no, op.region) not in t.candidates:
            anomaly = Anomaly(op.transfer_id, f"quote from non-candidate {op.region}")
            return Effects(events=[anomaly])
        quote = Quote(op.psn_no, op.region, op.available_fen, op.reason)
        self.store.add_quote(op.transfer_id, quote)
        quotes = self.store.quotes(op.transfer_id)
        if len(quotes) < len(t.candidates):
            return Effects()
        return self._choose(t, quotes, now_ms)

    def _choose(self, t: Transfer, quotes: list[Quote], now_ms: int) -> Effects:
        """The co-payer with the largest balance; ties go to the lowest (region, psn_no)."""
        answered = {(q.psn_no, q.region) for q in quotes}
        silent = [
            f"{c.region}/{c.psn_no}" for c in t.candidates if (c.psn_no, c.region) not in answered
        ]
        left_out = f"left out, no answer in time: {', '.join(silent)}" if silent else ""
        usable = [q for q in quotes if q.reason is None and q.available_fen > 0]
        failed = Event.QUOTES_FAILED
        if t.flow is Flow.AWAY and not usable:
            # The wallet and own account may still pay: go on without a co-payer.
            why = (ReasonCode.ZERO_BALANCE, "every bound co-payer has a zero balance")
            if not quotes:
                why = (ReasonCode.TIMEOUT, "no co-payer region answered")
            t.detail = left_out
            return self.away.start(t, Event.QUOTES_COMPLETE, None, now_ms, why)
        if not quotes:
            return self._abort(t, failed, ReasonCode.TIMEOUT, "no co-payer region answered", now_ms)
        if not usable:
            detail = "; ".join(filter(None, ["every bound co-payer has a zero balance", left_out]))
            return self._abort(t, failed, ReasonCode.ZERO_BALANCE, detail, now_ms)
        best = min(usable, key=lambda q: (-q.available_fen, q.region, q.psn_no))
        t.detail = left_out
        payer = Candidate(best.psn_no, best.region)
        return self._reserve(t, Event.QUOTES_COMPLETE, payer, now_ms)

    def _reserve(self, t: Transfer, event: Event, payer: Candidate, now_ms: int) -> Effects:
        if t.flow is Flow.AWAY:
            return self.away.start(t, event, payer, now_ms)
        t.payer, t.payer_region = payer.psn_no, payer.region
        t.next_action_ms = now_ms + self.settings.reserve_timeout_ms
        t.attempts = 0
        self._enter(t, event, now_ms, f"payer {payer.psn_no} in {payer.region}")
        return Effects(self.step(t).messages)

    def _reserve_op(self, t: Transfer) -> Reserve:
        return Reserve(
            t.transfer_id,
            t.payer,
            t.amount_fen,
            t.payee_region,
            self.settings.hold_timeout_ms,
            t.flow,
            # Wallet transfers and premiums are paid in full or not at all.
            all_or_nothing=t.flow is not Flow.COPAY,
        )

    # --- answers from the regions ---

    def reserve_result(self, op: ReserveResult, now_ms: int) -> Effects:
        t = self.store.transfer(op.transfer_id)
        if t is None and (leg := self.store.leg(op.transfer_id)) is not None:
            return self.away.reserve_result(leg, op, now_ms)
        if t is None or op.region != t.payer_region:
            return Effects(events=[Anomaly(op.transfer_id, f"reserve result from {op.region}")])
        held = op.reason is None and op.held_fen > 0
        event = Event.RESERVE_HELD if held else Event.RESERVE_REFUSED
        if not self._advances(t, event):
            return self._react(t, event, now_ms)
        if t.state is TransferState.RESERVING:
            self._answered(t, t.payer_region, now_ms)
            if not held:
                reason = op.reason or ReasonCode.ZERO_BALANCE
                detail = f"payer region {op.region}: {reason.value}"
                return self._abort(t, event, reason, detail, now_ms)
            # The decision, saved before Commit is sent.
            t.held_fen = op.held_fen
            t.attempts = 0
            t.next_action_ms = self._retry_at(t.payer_region, now_ms)
            self._enter(t, event, now_ms, f"held {op.held_fen} fen")
            return Effects(self.step(t).messages)
        # A hold that arrived after we gave up on it (the reserve timed out): release it.
        # Only the Abort: the refusal was decided by the timer, not by this answer, and
        # while the abort is pending the timer re-sends both; sending the refusal here
        # again only gave the requester a duplicate outcome.
        if t.state is TransferState.ABORTED:
            t.next_action_ms = self._retry_at(t.payer_region, now_ms)
            self._enter(t, event, now_ms, f"late hold of {op.held_fen} fen: release it")
        return Effects([Outgoing(region_address(t.payer_region), Abort(t.transfer_id))])

    def commit_result(self, op: CommitResult, now_ms: int) -> Effects:
        t = self.store.transfer(op.transfer_id)
        if t is None and (leg := self.store.leg(op.transfer_id)) is not None:
            return self.away.commit_result(leg, op, now_ms)
        if t is None or op.region != t.payer_region:
            return Effects(events=[Anomaly(op.transfer_id, f"commit result from {op.region}")])
        posted = op.reason is None and op.posted_fen > 0
        event = Event.COMMIT_POSTED if posted else Event.COMMIT_EXPIRED
        if not self._advances(t, event):
            return self._react(t, event, now_ms)
        self._answered(t, t.payer_region, now_ms)
        if not posted:
            # Nothing was posted at the payer (its hold expired first): abort, credit nothing.
            reason = op.reason or ReasonCode.HOLD_EXPIRED
            detail = f"payer region {op.region}: {reason.value}"
            return self._abort(t, event, reason, detail, now_ms)
        t.posted_fen = op.posted_fen
        t.attempts = 0
        t.next_action_ms = self._retry_at(t.payee_region, now_ms)
        self._enter(t, event, now_ms, f"posted {op.posted_fen} fen at {op.region}")
        return Effects(self.step(t).messages)

    def _credit_op(self, t: Transfer) -> Credit:
        return Credit(
            t.transfer_id, t.posted_fen, t.payer_region, t.flow, t.beneficiary, t.year, t.detail
        )

    def credited(self, op: Credited, now_ms: int) -> Effects:
        t = self.store.transfer(op.transfer_id)
        if t is None and (leg := self.store.leg(op.transfer_id)) is not None:
            return self.away.credited(leg, op, now_ms)
        if t is None or op.region != t.payee_region:
            return Effects(events=[Anomaly(op.transfer_id, f"credited from {op.region}")])
        if not self._advances(t, Event.CREDITED):
            return self._react(t, Event.CREDITED, now_ms)
        self._answered(t, t.payee_region, now_ms)
        t.next_action_ms = None
        self._enter(t, Event.CREDITED, now_ms, f"credited {t.posted_fen} fen at {op.region}")
        finished = self._finished(t, now_ms)
        if self.on_committed is not None:
            self.on_committed(t, now_ms)
        return Effects(self._decision(t), [finished])

    def aborted(self, op: Aborted, now_ms: int) -> Effects:
        t = self.store.transfer(op.transfer_id)
        if t is None and (leg := self.store.leg(op.transfer_id)) is not None:
            return self.away.aborted(leg, op, now_ms)
        if t is None or op.region != t.payer_region:
            anomaly = Anomaly(op.transfer_id, f"abort confirmed from {op.region}")
            return Effects(events=[anomaly])
        if not self._advances(t, Event.ABORT_CONFIRMED):
            return self._react(t, Event.ABORT_CONFIRMED, now_ms)
        t.next_action_ms = None
        self._enter(t, Event.ABORT_CONFIRMED, now_ms, f"nothing held at {op.region}")
        return Effects()

    def _repeated(self, known: Transfer, same: bool, requester_region: str, now_ms: int) -> Effects:
        """A request whose transfer id exists: its current step again ("exists"), or a
        refusal to the requester when its fields differ ("exists with different fields",
        which concerns another request and leaves this transfer as it is)."""
        if same:
            return self._react(known, Event.REQUEST_REPEATED, now_ms)
        refusal = Refuse(
            known.transfer_id,
            ReasonCode.DUPLICATE_MISMATCH,
            f"transfer {known.transfer_id} exists with different fields",
        )
        return Effects([Outgoing(region_address(requester_region), refusal)])

    # --- time and restarts ---

    def tick(self, now_ms: int) -> Effects:
        """Time out silent regions and retry unanswered decided steps."""
        results: list[Effects] = []
        for t in self.store.due(now_ms):
            if t.state is TransferState.QUOTING and t.flow is Flow.PREMIUM:
                detail = f"payee region {t.payee_region} did not quote the premium in time"
                results.append(
                    self._abort(t, Event.QUOTES_FAILED, ReasonCode.TIMEOUT, detail, now_ms)
                )
            elif t.state is TransferState.QUOTING:
                results.append(self._choose(t, self.store.quotes(t.transfer_id), now_ms))
            elif t.state is TransferState.RESERVING:
                results.append(self._time_out(t, now_ms))
            else:
                results.append(self._retry(t, now_ms))
        return Effects.join(results)

    def _retry(self, t: Transfer, now_ms: int) -> Effects:
        allowed = self._allowed(t, Event.RETRY_DUE)
        if isinstance(allowed, Anomaly):
            t.next_action_ms = None  # nothing to retry: never due again
            self._save(t, now_ms)
            return Effects(events=[allowed])
        t.attempts += 1
        step = self.step(t)
        region = step.awaits[0]  # several only for the legs of a bill away from home
        t.next_action_ms = self._retry_at(region, now_ms, t.attempts)
        self._save(t, now_ms)
        return Effects(step.messages, [Retried(t.transfer_id, step.name, region)])

    def _time_out(self, t: Transfer, now_ms: int) -> Effects:
        """The payer region did not answer the reserve: abort, and release any hold."""
        detail = (
            f"payer region {t.payer_region} did not answer within "
            f"{self.settings.reserve_timeout_ms} ms"
        )
        return self._abort(t, Event.RESERVE_TIMEOUT, ReasonCode.TIMEOUT, detail, now_ms)

    def resume(self, now_ms: int) -> Effects:
        """After a restart: re-send the current step of every unfinished transfer, with
        fresh deadlines: the time the clearinghouse was down is not the regions' delay."""
        out: list[Outgoing] = []
        events: list[AnyEvent] = []
        for t in self.store.unfinished():
            allowed = self._allowed(t, Event.RESUMED)
            if isinstance(allowed, Anomaly):
                events.append(allowed)
                continue
            step = self.step(t)
            if t.state is TransferState.QUOTING:
                t.next_action_ms = now_ms + self.settings.quote_timeout_ms
            elif t.state is TransferState.RESERVING:
                t.next_action_ms = now_ms + self.settings.reserve_timeout_ms
            else:
                region = step.awaits[0]
                t.next_action_ms = self._retry_at(region, now_ms, t.attempts)
            self._save(t, now_ms)
            out += step.messages
        return Effects(out, events)

    def step(self, t: Transfer) -> Step:
        """What ``t`` awaits in its state, and the messages that ask for it (every
        receiver is idempotent, so they may be sent again at any time)."""
        if t.flow is Flow.AWAY and (legs_step := self.away.step(t)) is not None:
            return legs_step
        payer, payee = region_address(t.payer_region), region_address(t.payee_region)
        match t.state:
            case TransferState.QUOTING if t.flow is Flow.PREMIUM:
                check = CheckPremium(t.transfer_id, t.beneficiary, t.year)
                return Step("premium", (t.payee_region,), [Outgoing(payee, check)])
            case TransferState.QUOTING:
                answered = {(q.psn_no, q.region) for q in self.store.quotes(t.transfer_id)}
                silent = [c for c in t.candidates if (c.psn_no, c.region) not in answered]
                return Step(
                    "quote",
                    tuple(c.region for c in silent),
                    [
                        Outgoing(region_address(c.region), QueryBalance(t.transfer_id, c.psn_no))
                        for c in silent
                    ],
                )
            case TransferState.RESERVING:
                return Step("reserve", (t.payer_region,), [Outgoing(payer, self._reserve_op(t))])
            case TransferState.COMMITTING:
                return Step("commit", (t.payer_region,), [Outgoing(payer, Commit(t.transfer_id))])
            case TransferState.CREDITING:
                return Step("credit", (t.payee_region,), [Outgoing(payee, self._credit_op(t))])
            case TransferState.COMMITTED if t.flow is Flow.COPAY:
                # Asked again for a settled bill: its credit again (which settles it there).
                return Step("credit", (), [Outgoing(payee, self._credit_op(t))])
            case TransferState.COMMITTED:
                return Step("completed", (), self._decision(t))
            case TransferState.ABORTING:
                return Step("abort", (t.payer_region,), self._decision(t))
            case TransferState.ABORTED:
                return Step("refusal", (), self._decision(t))
        return Step("", (), [])  # received: passed through within its request

    def _decision(self, t: Transfer) -> list[Outgoing]:
        """A decided transfer's final messages: the refusal to whoever asked (and the
        payee of a premium), the abort of a hold, or the payer's Completed. A bill's
        commit has none: the payee's credit settles it, and sending the credit again on
        its answer would loop."""
        if t.flow is Flow.AWAY:
            return self.away.decision(t)
        if t.state is TransferState.COMMITTED:
            if t.flow is Flow.COPAY:
                return []
            completed = Completed(t.transfer_id, t.posted_fen, t.payee_region)
            return [Outgoing(region_address(t.payer_region), completed)]
        assert t.reason is not None and t.state.decided_abort
        refusal = Refuse(t.transfer_id, t.reason, t.detail)
        out = [Outgoing(region_address(t.requester_region), refusal)]
        if t.flow is Flow.PREMIUM and t.payee_region != t.requester_region:
            out.append(Outgoing(region_address(t.payee_region), refusal))
        if t.state is TransferState.ABORTING:
            out.append(Outgoing(region_address(t.payer_region), Abort(t.transfer_id)))
        return out

    # --- the state machine ---

    def _allowed(self, t: Transfer, event: Event) -> Transition | Anomaly:
        """The table's transition, or the anomaly to report for a pair it lacks."""
        try:
            return transition(t.state, event)
        except TransferStateError as error:
            return Anomaly(t.transfer_id, str(error))

    def _advances(self, t: Transfer, event: Event) -> bool:
        """Whether ``event`` moves ``t`` on; if not, ``_react`` says what to do instead."""
        found = TRANSITIONS[t.state].get(event)
        return found is not None and found.reaction is Reaction.ADVANCE

    def _react(self, t: Transfer, event: Event, now_ms: int) -> Effects:
        """An event that leaves ``t`` as it is: what the table says to send, if anything."""
        found = self._allowed(t, event)
        if isinstance(found, Anomaly):
            return Effects(events=[found])
        match found.reaction:
            case Reaction.SEND_AGAIN:
                return Effects(self.step(t).messages)
            case Reaction.DECISION_AGAIN:
                return Effects(self._decision(t))
            case Reaction.IGNORE:
                return Effects()
        raise AssertionError(f"{event} advances {t.state}: its handler moves it")

    def _start(self, t: Transfer, now_ms: int, detail: str) -> Effects:
        self.store.add_history(
            t.transfer_id, now_ms, None, t.state, Event.REQUEST_RECEIVED, f"{t.flow}: {detail}"
        )
        return Effects(events=[TransferStarted(t.transfer_id, t.flow)])

    def _enter(self, t: Transfer, event: Event, now_ms: int, detail: str = "") -> None:
        """Move ``t`` by ``event`` and save it with its history row (one transaction: the
        caller's)."""
        before = t.state
        t.state = transition(before, event).next
        self._save(t, now_ms)
        if t.state is not before:
            self.store.add_history(t.transfer_id, now_ms, before, t.state, event, detail)

    def _abort(
        self, t: Transfer, event: Event, reason: ReasonCode, detail: str, now_ms: int
    ) -> Effects:
        """Decide: abort (``aborting`` while a hold may need releasing). Saved before the
        refusal is sent."""
        t.reason = reason
        t.detail = "; ".join(filter(None, [detail, t.detail]))
        aborting = transition(t.state, event).next is TransferState.ABORTING
        t.next_action_ms = self._retry_at(t.payer_region, now_ms) if aborting else None
        self._enter(t, event, now_ms, detail if reason.value in detail else f"{reason}: {detail}")
        return Effects(self._decision(t), [self._finished(t, now_ms)])

    # --- retry pacing ---

    def _answered(self, t: Transfer, region: str, now_ms: int) -> None:
        """The answer to the step sent at the transfer's last save (a first attempt only:
        an answer after a resend may belong to either send)."""
        if t.attempts == 0:
            self.response_times.observe(region, now_ms - t.updated_at_ms)

    def _retry_at(self, region: str, now_ms: int, attempts: int = 0) -> int:
        """When to resend a step awaited from ``region``: its retry timeout, doubled per
        attempt, at most ``max_retry_ms``."""
        timeout = self.response_times.timeout_ms(region, self.settings.retry_ms)
        return now_ms + min(timeout << min(attempts, 10), self.settings.max_retry_ms)

    def _save(self, t: Transfer, now_ms: int) -> None:
        t.updated_at_ms = now_ms
        self.store.save(t)

    def _finished(self, t: Transfer, now_ms: int) -> TransferFinished:
        committed = t.state is TransferState.COMMITTED
        outcome = COMMITTED if committed or t.reason is None else t.reason.value
        return TransferFinished(
            t.transfer_id,
            t.flow,
            outcome,
            t.created_at_ms,
            now_ms,
            t.posted_fen if committed else 0,
            t.detail,
        )
