"""The transfer coordinator: a sans-I/O, durable state machine per transfer.

It decides, for each request for mutual aid, whether money moves and from whom, and
drives both regions to that decision so that money moves in both or in neither:

    received -> [quoting] -> reserving -> reserved -> committing -> committed
                         \\-> aborted (with a reason)

The commit point is the payer region's own post-or-expire decision, serialized in its
database: the payee is credited only after the payer reports the hold posted, and a
payer whose hold expired first reports ``HOLD_EXPIRED``, which aborts the transfer.
Every decision is saved (by the caller's transaction) before the messages it returns
are sent; ``tick`` times out silent regions and retries decided steps until answered;
``resume`` re-sends the current step of every unfinished transfer after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from clearinghouse.response_times import ResponseTimes
from clearinghouse.store import (
    Binding,
    Candidate,
    ClearinghouseStore,
    Quote,
    Transfer,
    TransferState,
)
from contracts.effects import (
    Anomaly,
    AnyEvent,
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


class TransferCoordinator:
    """The national clearinghouse's decisions, as a plain class over its store."""

    def __init__(
        self,
        store: ClearinghouseStore,
        settings: CoordinatorSettings | None = None,
        events: list[AnyEvent] | None = None,
        on_committed: Callable[[Transfer, int], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or CoordinatorSettings()
        self.events: list[AnyEvent] = [] if events is None else events
        self.on_committed = on_committed
        self.response_times = ResponseTimes()

    # --- a request for mutual aid ---

    def request_aid(self, op: RequestAid, now_ms: int) -> list[Outgoing]:
        known = self.store.transfer(op.transfer_id)
        if known is not None:
            same = (known.beneficiary, known.payee_region, known.amount_fen) == (
                op.beneficiary,
                op.beneficiary_region,
                op.amount_fen,
            )
            return self._repeated(known, same, op.beneficiary_region)
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
        self.events.append(TransferStarted(t.transfer_id, t.flow))
        refusal_reason = self._check_payee(t)
        if refusal_reason is not None:
            return self._refuse(t, *refusal_reason, now_ms)
        bindings = self.store.active_bindings_of(op.beneficiary, op.beneficiary_region)
        if not bindings:
            return self._refuse(
                t, ReasonCode.NO_BINDING, f"{op.beneficiary} has no bound co-payer", now_ms
            )
        candidates, refusal_reason = self._candidates(bindings)
        if refusal_reason is not None:
            return self._refuse(t, *refusal_reason, now_ms)
        t.candidates = candidates
        if len(candidates) == 1:
            return self._reserve(t, candidates[0], now_ms)
        t.state = TransferState.QUOTING
        t.next_action_ms = now_ms + self.settings.quote_timeout_ms
        self._save(t, now_ms)
        return [
            Outgoing(region_address(c.region), QueryBalance(t.transfer_id, c.psn_no))
            for c in candidates
        ]

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

    def request_transfer(self, op: RequestTransfer, now_ms: int) -> list[Outgoing]:
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
            return self._repeated(known, same, op.payer_region)
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
        self.events.append(TransferStarted(t.transfer_id, t.flow))
        why_not = self._check_known_payer(t)
        if why_not is not None:
            return self._refuse(t, *why_not, now_ms)
        if t.flow is Flow.PREMIUM:
            # The beneficiary's region says what is due, and earmarks (person, year).
            t.state = TransferState.QUOTING
            t.next_action_ms = now_ms + self.settings.quote_timeout_ms
            self._save(t, now_ms)
            check = CheckPremium(t.transfer_id, t.beneficiary, t.year)
            return [Outgoing(region_address(t.payee_region), check)]
        return self._reserve(t, Candidate(t.payer, t.payer_region), now_ms)

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

    def premium_quoted(self, op: PremiumQuoted, now_ms: int) -> list[Outgoing]:
        t = self.store.transfer(op.transfer_id)
        if t is None or op.region != t.payee_region:
            return []
        if t.state is not TransferState.QUOTING:
            return self._final_again(t)
        if op.reason is not None:
            return self._refuse(t, op.reason, f"payee region {op.region}: {op.reason}", now_ms)
        t.amount_fen = op.amount_fen
        return self._reserve(t, Candidate(t.payer, t.payer_region), now_ms)

    # --- choosing among several co-payers ---

    def balance_quoted(self, op: BalanceQuoted, now_ms: int) -> list[Outgoing]:
        t = self.store.transfer(op.transfer_id)
        if t is None or t.state is not TransferState.QUOTING:
            # A late or duplicate quote: the choice is made already.
            return [] if t is None else self._final_again(t)
        if Candidate(op.psn_no, op.region) not in t.candidates:
            self.events.append(Anomaly(op.transfer_id, f"quote from non-candidate {op.region}"))
            return []
        quote = Quote(op.psn_no, op.region, op.available_fen, op.reason)
        self.store.add_quote(op.transfer_id, quote)
        quotes = self.store.quotes(op.transfer_id)
        if len(quotes) < len(t.candidates):
            return []
        return self._choose(t, quotes, now_ms)

    def _choose(self, t: Transfer, quotes: list[Quote], now_ms: int) -> list[Outgoing]:
        """The co-payer with the largest balance; ties go to the lowest (region, psn_no)."""
        answered = {(q.psn_no, q.region) for q in quotes}
        silent = [
            f"{c.region}/{c.psn_no}" for c in t.candidates if (c.psn_no, c.region) not in answered
        ]
        left_out = f"left out, no answer in time: {', '.join(silent)}" if silent else ""
        usable = [q for q in quotes if q.reason is None and q.available_fen > 0]
        if not quotes:
            return self._refuse(t, ReasonCode.TIMEOUT, "no co-payer region answered", now_ms)
        if not usable:
            detail = "; ".join(filter(None, ["every bound co-payer has a zero balance", left_out]))
            return self._refuse(t, ReasonCode.ZERO_BALANCE, detail, now_ms)
        best = min(usable, key=lambda q: (-q.available_fen, q.region, q.psn_no))
        t.detail = left_out
        return self._reserve(t, Candidate(best.psn_no, best.region), now_ms)

    def _reserve(self, t: Transfer, payer: Candidate, now_ms: int) -> list[Outgoing]:
        t.state = TransferState.RESERVING
        t.payer, t.payer_region = payer.psn_no, payer.region
        t.next_action_ms = now_ms + self.settings.reserve_timeout_ms
        t.attempts = 0
        self._save(t, now_ms)
        return [Outgoing(region_address(t.payer_region), self._reserve_op(t))]

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

    def reserve_result(self, op: ReserveResult, now_ms: int) -> list[Outgoing]:
        t = self.store.transfer(op.transfer_id)
        if t is None or op.region != t.payer_region:
            self.events.append(Anomaly(op.transfer_id, f"reserve result from {op.region}"))
            return []
        held = op.reason is None and op.held_fen > 0
        if t.state is TransferState.RESERVING:
            self._answered(t, t.payer_region, now_ms)
            if not held:
                reason = op.reason or ReasonCode.ZERO_BALANCE
                return self._refuse(t, reason, f"payer region {op.region}: {reason.value}", now_ms)
            # reserved -> committing: the decision, saved before Commit is sent.
            t.state = TransferState.COMMITTING
            t.held_fen = op.held_fen
            t.attempts = 0
            t.next_action_ms = self._retry_at(t.payer_region, now_ms)
            self._save(t, now_ms)
            return [Outgoing(region_address(t.payer_region), Commit(t.transfer_id))]
        if t.state is TransferState.ABORTED and held:
            # A hold that arrived after we gave up on it (the reserve timed out): release
            # it. Only the Abort: the refusal was decided by the timer, not by this answer,
            # and while the abort is pending the timer re-sends both; sending the refusal
            # here again only gave the requester a duplicate outcome.
            if not t.abort_pending:
                t.abort_pending = True
                t.next_action_ms = self._retry_at(t.payer_region, now_ms)
                self._save(t, now_ms)
            return [Outgoing(region_address(t.payer_region), Abort(t.transfer_id))]
        return self._final_again(t)

    def commit_result(self, op: CommitResult, now_ms: int) -> list[Outgoing]:
        t = self.store.transfer(op.transfer_id)
        if t is None or op.region != t.payer_region:
            self.events.append(Anomaly(op.transfer_id, f"commit result from {op.region}"))
            return []
        posted = op.reason is None and op.posted_fen > 0
        if t.state is TransferState.COMMITTING and not t.payer_posted:
            self._answered(t, t.payer_region, now_ms)
            if not posted:
                # Nothing was posted at the payer (its hold expired first): abort, credit nothing.
                reason = op.reason or ReasonCode.HOLD_EXPIRED
                detail = f"payer region {op.region}: {reason.value}"
                return self._refuse(t, reason, detail, now_ms)
            t.payer_posted = True
            t.posted_fen = op.posted_fen
            t.attempts = 0
            t.next_action_ms = self._retry_at(t.payee_region, now_ms)
            self._save(t, now_ms)
            return [Outgoing(region_address(t.payee_region), self._credit_op(t))]
        if t.state is TransferState.ABORTED and posted:
            self.events.append(Anomaly(op.transfer_id, "payer posted an aborted transfer"))
            return []
        return self._final_again(t)

    def _credit_op(self, t: Transfer) -> Credit:
        return Credit(
            t.transfer_id, t.posted_fen, t.payer_region, t.flow, t.beneficiary, t.year, t.detail
        )

    def credited(self, op: Credited, now_ms: int) -> list[Outgoing]:
        t = self.store.transfer(op.transfer_id)
        if t is None or op.region != t.payee_region:
            self.events.append(Anomaly(op.transfer_id, f"credited from {op.region}"))
            return []
        if t.state is TransferState.COMMITTING and t.payer_posted:
            self._answered(t, t.payee_region, now_ms)
            t.state = TransferState.COMMITTED
            t.payee_credited = True
            t.next_action_ms = None
            self._save(t, now_ms)
            self._finished(t, now_ms)
            if self.on_committed is not None:
                self.on_committed(t, now_ms)
            if t.flow is not Flow.COPAY:
                return [Outgoing(region_address(t.payer_region), self._completed_op(t))]
            return []
        return self._final_again(t)

    def _repeated(self, known: Transfer, same: bool, requester_region: str) -> list[Outgoing]:
        """A request whose transfer id exists: its current step again ("exists"), or a
        refusal to the requester when its fields differ ("exists with different fields")."""
        if same:
            return self._resend(known)
        refusal = Refuse(
            known.transfer_id,
            ReasonCode.DUPLICATE_MISMATCH,
            f"transfer {known.transfer_id} exists with different fields",
        )
        return [Outgoing(region_address(requester_region), refusal)]

    def _final_again(self, t: Transfer) -> list[Outgoing]:
        """A repeated answer for a transfer already decided: send the decision again.

        The first answer's decision may have been committed without its messages being
        published (a crash or a broker failure in between); the broker redelivers that
        answer, and this re-sends them. Every receiver is idempotent, and none of them
        answers a final message with one that would come back here, so nothing loops.
        """
        if t.state is TransferState.ABORTED:
            return self._refusals(t)
        if t.state is TransferState.COMMITTED and t.flow is not Flow.COPAY:
            return [Outgoing(region_address(t.payer_region), self._completed_op(t))]
        return []  # under way (timers retry it), or a bill settled by its own credit

    def _completed_op(self, t: Transfer) -> Completed:
        return Completed(t.transfer_id, t.posted_fen, t.payee_region)

    def aborted(self, op: Aborted, now_ms: int) -> list[Outgoing]:
        t = self.store.transfer(op.transfer_id)
        if t is not None and t.abort_pending:
            t.abort_pending = False
            t.next_action_ms = None
            self._save(t, now_ms)
        return []

    # --- time and restarts ---

    def tick(self, now_ms: int) -> list[Outgoing]:
        """Time out silent regions and retry unanswered decided steps."""
        out: list[Outgoing] = []
        for t in self.store.due(now_ms):
            if t.state is TransferState.QUOTING and t.flow is Flow.PREMIUM:
                detail = f"payee region {t.payee_region} did not quote the premium in time"
                out += self._refuse(t, ReasonCode.TIMEOUT, detail, now_ms)
            elif t.state is TransferState.QUOTING:
                out += self._choose(t, self.store.quotes(t.transfer_id), now_ms)
            elif t.state is TransferState.RESERVING:
                out += self._time_out(t, now_ms)
            else:
                t.attempts += 1
                step, region = self._awaited(t)
                t.next_action_ms = self._retry_at(region, now_ms, t.attempts)
                self._save(t, now_ms)
                self.events.append(Retried(t.transfer_id, step, region))
                out += self._resend(t)
        return out

    def _time_out(self, t: Transfer, now_ms: int) -> list[Outgoing]:
        """The payer region did not answer the reserve: abort, and release any hold."""
        detail = (
            f"payer region {t.payer_region} did not answer within "
            f"{self.settings.reserve_timeout_ms} ms"
        )
        t.abort_pending = True
        return self._refuse(t, ReasonCode.TIMEOUT, detail, now_ms)

    def resume(self, now_ms: int) -> list[Outgoing]:
        """After a restart: re-send the current step of every unfinished transfer."""
        out: list[Outgoing] = []
        for t in self.store.unfinished():
            out += self._resend(t)
        return out

    def _resend(self, t: Transfer) -> list[Outgoing]:
        """The message(s) of the transfer's current step again (every receiver is idempotent)."""
        payer, payee = region_address(t.payer_region), region_address(t.payee_region)
        match t.state:
            case TransferState.QUOTING if t.flow is Flow.PREMIUM:
                return [Outgoing(payee, CheckPremium(t.transfer_id, t.beneficiary, t.year))]
            case TransferState.QUOTING:
                answered = {(q.psn_no, q.region) for q in self.store.quotes(t.transfer_id)}
                return [
                    Outgoing(region_address(c.region), QueryBalance(t.transfer_id, c.psn_no))
                    for c in t.candidates
                    if (c.psn_no, c.region) not in answered
                ]
            case TransferState.RESERVING:
                return [Outgoing(payer, self._reserve_op(t))]
            case TransferState.COMMITTING:
                if t.payer_posted:
                    return [Outgoing(payee, self._credit_op(t))]
                return [Outgoing(payer, Commit(t.transfer_id))]
            case TransferState.COMMITTED if t.flow is Flow.COPAY:
                return [Outgoing(payee, self._credit_op(t))]
            case TransferState.COMMITTED:
                return [Outgoing(payer, self._completed_op(t))]
            case TransferState.ABORTED:
                return self._refusals(t)
        return []

    # --- bookkeeping ---

    def _refuse(self, t: Transfer, reason: ReasonCode, detail: str, now_ms: int) -> list[Outgoing]:
        """Decide: aborted. Saved before the refusal is sent to the payee region."""
        t.state = TransferState.ABORTED
        t.reason = reason
        t.detail = "; ".join(filter(None, [detail, t.detail]))
        t.next_action_ms = self._retry_at(t.payer_region, now_ms) if t.abort_pending else None
        self._save(t, now_ms)
        self._finished(t, now_ms)
        return self._refusals(t)

    def _refusals(self, t: Transfer) -> list[Outgoing]:
        """The refusal to whoever asked, the abort of a hold, the release of an earmark."""
        assert t.reason is not None
        refusal = Refuse(t.transfer_id, t.reason, t.detail)
        out = [Outgoing(region_address(t.requester_region), refusal)]
        if t.flow is Flow.PREMIUM and t.payee_region != t.requester_region:
            out.append(Outgoing(region_address(t.payee_region), refusal))
        if t.abort_pending:
            out.append(Outgoing(region_address(t.payer_region), Abort(t.transfer_id)))
        return out

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

    @staticmethod
    def _awaited(t: Transfer) -> tuple[str, str]:
        """The step a decided transfer waits on, and whose answer (what ``_resend`` sends)."""
        match t.state:
            case TransferState.COMMITTING if t.payer_posted:
                return "credit", t.payee_region
            case TransferState.COMMITTING:
                return "commit", t.payer_region
            case TransferState.COMMITTED if t.flow is Flow.COPAY:
                return "credit", t.payee_region
            case TransferState.COMMITTED:
                return "completed", t.payer_region
        return "abort", t.payer_region

    def _save(self, t: Transfer, now_ms: int) -> None:
        t.updated_at_ms = now_ms
        self.store.save(t)

    def _finished(self, t: Transfer, now_ms: int) -> None:
        committed = t.state is TransferState.COMMITTED
        outcome = COMMITTED if committed or t.reason is None else t.reason.value
        self.events.append(
            TransferFinished(
                t.transfer_id,
                t.flow,
                outcome,
                t.created_at_ms,
                now_ms,
                t.posted_fen if t.state is TransferState.COMMITTED else 0,
                t.detail,
            )
        )
