"""Bills at a region of care (异地就医直接结算): one transfer, several payer legs.

The region of care is the payee. The payers are legs, reserved one after another in the
insured region's order of payment (its policy: the beneficiary's wallet first, then the
own account and the co-payer, or the co-payer and then the own account), each for what the
earlier ones left unpaid. A leg's hold is *prepared* (``regions.hold_states``): it never
expires by itself, so once every leg has answered the clearinghouse's decision is the
commit point: it commits every held leg (retried until answered), then credits every
posted leg to the region of care, then tells it what each paid. An abort releases every
leg. Every leg is cleared and reconciled as a transfer of its own (its ``leg_id``).

The transfer's states are the usual ones (``clearinghouse.transfer_states``); a leg's
answer that leaves the transfer where it is, is a ``LEG_*`` event, and the leg's own
states are ``LegState``. Every change of either is a row of the transfer's history.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TYPE_CHECKING, Any

from clearinghouse.directory import care_region_refusal, registration_refusal
from clearinghouse.store import Candidate, Leg, Transfer, TransferState
from clearinghouse.transfer_states import LegEvent, LegState, leg_transition
from clearinghouse.transfer_states import TransferEvent as Event
from contracts.effects import Anomaly, Effects, Outgoing
from contracts.identifiers import MAX_IDENTIFIER_LENGTH, region_address
from contracts.operations import (
    Abort,
    Aborted,
    AwaySettled,
    Commit,
    CommitResult,
    Credit,
    Credited,
    Refuse,
    RequestAwaySettlement,
    Reserve,
    ReserveResult,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow, PaymentOrder

if TYPE_CHECKING:
    from clearinghouse.coordinator import Step, TransferCoordinator

WALLET, OWN, COPAYER = "wallet", "own", "copayer"
"""A leg's source: the beneficiary's wallet or own personal account (at the insured
region), or the co-payer's personal account (at the co-payer's region)."""

ORDER: dict[PaymentOrder, tuple[str, ...]] = {
    PaymentOrder.OWN_FIRST: (WALLET, OWN, COPAYER),
    PaymentOrder.COPAYER_FIRST: (WALLET, COPAYER, OWN),
}
"""The insured region's order of payment, as legs."""

WAITING_FOR_RELEASE = (LegState.ASKING, LegState.HELD)
"""Legs that may hold money: an abort awaits their answer."""


_HISTORY_EVENT = {
    LegEvent.ASK: Event.LEG_ANSWERED,
    LegEvent.SKIP: Event.LEG_ANSWERED,
    LegEvent.HELD: Event.LEG_ANSWERED,
    LegEvent.REFUSED: Event.LEG_ANSWERED,
    LegEvent.POSTED: Event.LEG_POSTED,
    LegEvent.NOT_POSTED: Event.LEG_POSTED,
    LegEvent.CREDITED: Event.LEG_CREDITED,
    LegEvent.RELEASED: Event.LEG_RELEASED,
}
"""The event a leg's change is recorded under in the transfer's history."""


def leg_id(transfer_id: str, source: str) -> str:
    """The id a leg's hold, commit and credit carry: the transfer id and the source's
    initial; for a transfer id too long to take it, a digest of it (still unique)."""
    suffix = f":{source[0]}"
    if len(transfer_id) + len(suffix) <= MAX_IDENTIFIER_LENGTH:
        return transfer_id + suffix
    return hashlib.sha256(transfer_id.encode()).hexdigest()[:40] + suffix


class AwaySettlements:
    """The legs of bills at a region of care, driven through the coordinator's machinery."""

    def __init__(self, coordinator: TransferCoordinator) -> None:
        self.c = coordinator
        self.store = coordinator.store

    # --- the request ---

    def request(self, op: RequestAwaySettlement, now_ms: int) -> Effects:
        c = self.c
        known = self.store.transfer(op.transfer_id)
        if known is not None:
            same = (
                known.flow,
                known.beneficiary,
                known.insured_region,
                known.payee_region,
                known.amount_fen,
            ) == (Flow.AWAY, op.beneficiary, op.insured_region, op.care_region, op.amount_fen)
            return c._repeated(known, same, op.care_region, now_ms)
        t = Transfer(
            transfer_id=op.transfer_id,
            flow=Flow.AWAY,
            beneficiary=op.beneficiary,
            payee_region=op.care_region,
            amount_fen=op.amount_fen,
            state=TransferState.RECEIVED,
            created_at_ms=now_ms,
            updated_at_ms=now_ms,
            candidates=[],
            insured_region=op.insured_region,
        )
        what = (
            f"{op.amount_fen} fen for {op.beneficiary} of {op.insured_region} at {op.care_region}"
        )
        started = c._start(t, now_ms, what)
        refusal = self._refusal(t, now_ms)
        if refusal is not None:
            return started + c._abort(t, Event.REQUEST_REFUSED, *refusal, now_ms)
        bindings = self.store.active_bindings_of(t.beneficiary, t.insured_region)
        candidates, why_none = c._candidates(bindings) if bindings else ([], None)
        if not bindings:
            why_none = ReasonCode.NO_BINDING, f"{t.beneficiary} has no bound co-payer"
        t.candidates = candidates
        if len(candidates) > 1:
            t.next_action_ms = now_ms + c.settings.quote_timeout_ms
            asked = ", ".join(f"{x.region}/{x.psn_no}" for x in candidates)
            c._enter(t, Event.QUOTES_ASKED, now_ms, f"balances of {asked}")
            return Effects(c.step(t).messages, started.events)
        copayer = candidates[0] if candidates else None
        return started + self.start(t, Event.PAYER_KNOWN, copayer, now_ms, why_none)

    def _refusal(self, t: Transfer, now_ms: int) -> tuple[ReasonCode, str] | None:
        refusal = care_region_refusal(self.store, t.payee_region)
        if refusal is not None:
            return refusal
        insured = self.store.region(t.insured_region)
        if insured is None:
            return ReasonCode.UNKNOWN_REGION, f"insured region {t.insured_region} is not registered"
        if not insured.enabled:
            return ReasonCode.REGION_NOT_ENABLED, f"insured region {insured.label()} is not enabled"
        return registration_refusal(
            self.store, t.beneficiary, t.insured_region, t.payee_region, now_ms
        )

    def start(
        self,
        t: Transfer,
        event: Event,
        copayer: Candidate | None,
        now_ms: int,
        why_no_copayer: tuple[ReasonCode, str] | None = None,
    ) -> Effects:
        """Lay out the legs in the insured region's order of payment and ask the first."""
        insured = self.store.region(t.insured_region)
        order = ORDER[insured.policy.payment_order if insured else PaymentOrder.OWN_FIRST]
        if copayer is not None:
            t.payer, t.payer_region = copayer.psn_no, copayer.region
        for seq, source in enumerate(order):
            leg = Leg(
                leg_id(t.transfer_id, source),
                t.transfer_id,
                seq,
                source,
                t.insured_region,
                t.beneficiary,
                LegState.WAITING,
            )
            if source == COPAYER:
                if copayer is None:
                    # No co-payer to ask: the leg pays nothing, and says why.
                    reason = why_no_copayer or (ReasonCode.NO_BINDING, "no co-payer")
                    leg = Leg(
                        leg.leg_id, t.transfer_id, seq, source, "", "", LegState.NOT_HELD, 0, 0
                    )
                    leg = _with(leg, reason=reason[0])
                else:
                    leg = _with(leg, region=copayer.region, payer=copayer.psn_no)
            self.store.put_leg(leg)
        return self._ask_next(t, event, now_ms)

    def _ask_next(self, t: Transfer, event: Event, now_ms: int) -> Effects:
        """Ask the next waiting leg for what is still unpaid; when none is left (or nothing
        is unpaid), decide: commit what is held, or abort when nothing is."""
        c = self.c
        legs = self.store.legs(t.transfer_id)
        unpaid = t.amount_fen - sum(leg.held_fen for leg in legs)
        waiting = [leg for leg in legs if leg.state is LegState.WAITING]
        if unpaid > 0 and waiting:
            leg = self._move(t, waiting[0], LegEvent.ASK, now_ms, f"{unpaid} fen")
            t.next_action_ms = now_ms + c.settings.reserve_timeout_ms
            t.attempts = 0
            c._enter(t, event, now_ms, f"{leg.source} of {leg.payer} in {leg.region}")
            return Effects(c.step(t).messages)
        for leg in waiting:
            self._move(t, leg, LegEvent.SKIP, now_ms, "nothing left to pay")
        held = t.amount_fen - unpaid
        if held == 0:
            reason, detail = self._no_aid(legs) or (ReasonCode.ZERO_BALANCE, "nothing held")
            return c._abort(t, Event.RESERVE_REFUSED, reason, detail, now_ms)
        t.held_fen = held
        t.attempts = 0
        t.next_action_ms = c._retry_at(t.payer_region or t.insured_region, now_ms)
        c._enter(t, Event.RESERVE_HELD, now_ms, f"held {held} fen in all")
        return Effects(c.step(t).messages)

    @staticmethod
    def _no_aid(legs: list[Leg]) -> tuple[ReasonCode, str] | None:
        """Why the co-payer paid nothing, if a leg was refused for a reason."""
        refused = [leg for leg in legs if leg.state is LegState.NOT_HELD and leg.reason]
        copayer = [leg for leg in refused if leg.source == COPAYER]
        for leg in copayer or refused:
            assert leg.reason is not None
            return leg.reason, f"{leg.source}: {leg.reason.value}"
        return None

    def _move(self, t: Transfer, leg: Leg, event: LegEvent, now_ms: int, detail: str = "") -> Leg:
        """Move a leg by ``event`` (the caller checked it applies) with its history row."""
        state = leg_transition(leg.state, event)
        assert state is not None, f"{leg.state} cannot take {event}"
        moved = _with(leg, state=state)
        self.store.put_leg(moved)
        self.store.add_history(
            t.transfer_id,
            now_ms,
            t.state,
            t.state,
            _HISTORY_EVENT[event],
            f"leg {leg.leg_id}: {leg.state} -> {state}" + (f" ({detail})" if detail else ""),
        )
        return moved

    # --- the legs' answers ---

    def reserve_result(self, leg: Leg, op: ReserveResult, now_ms: int) -> Effects:
        t = self._transfer(leg, op.region, leg.region)
        if isinstance(t, Anomaly):
            return Effects(events=[t])
        held = op.reason is None and op.held_fen > 0
        if t.state is TransferState.RESERVING and leg.state is LegState.ASKING:
            self.c._answered(t, leg.region, now_ms)
            if held:
                leg = self._move(t, _with(leg, held_fen=op.held_fen), LegEvent.HELD, now_ms)
            else:
                refused = _with(leg, reason=op.reason or ReasonCode.ZERO_BALANCE)
                self._move(t, refused, LegEvent.REFUSED, now_ms, str(refused.reason))
            return self._ask_next(t, Event.LEG_ANSWERED, now_ms)
        if held and t.state.decided_abort:
            # A hold that arrived after the abort was decided: release it (again).
            return Effects([Outgoing(region_address(leg.region), Abort(leg.leg_id))])
        return self.c._react(t, Event.LEG_REPEATED, now_ms)

    def commit_result(self, leg: Leg, op: CommitResult, now_ms: int) -> Effects:
        t = self._transfer(leg, op.region, leg.region)
        if isinstance(t, Anomaly):
            return Effects(events=[t])
        if t.state is not TransferState.COMMITTING or leg.state is not LegState.HELD:
            return self.c._react(t, Event.LEG_REPEATED, now_ms)
        c = self.c
        c._answered(t, leg.region, now_ms)
        events: list[Anomaly] = []
        if op.reason is None and op.posted_fen > 0:
            self._move(t, _with(leg, posted_fen=op.posted_fen), LegEvent.POSTED, now_ms)
        else:
            # A prepared hold never expires: the region lost its record of it.
            self._move(t, _with(leg, reason=op.reason), LegEvent.NOT_POSTED, now_ms)
            events.append(Anomaly(leg.leg_id, f"leg not posted at {leg.region}: {op.reason}"))
        legs = self.store.legs(t.transfer_id)
        if any(x.state is LegState.HELD for x in legs):
            c._enter(t, Event.LEG_POSTED, now_ms)
            return Effects(events=list(events))
        posted = sum(x.posted_fen for x in legs)
        if posted == 0:
            reason = op.reason or ReasonCode.UNKNOWN_TRANSFER
            detail = f"no leg was posted ({reason.value})"
            aborted = c._abort(t, Event.COMMIT_EXPIRED, reason, detail, now_ms)
            return aborted + Effects(events=list(events))
        t.posted_fen = posted
        t.attempts = 0
        t.next_action_ms = c._retry_at(t.payee_region, now_ms)
        c._enter(t, Event.COMMIT_POSTED, now_ms, f"posted {posted} fen in all")
        return Effects(c.step(t).messages, list(events))

    def credited(self, leg: Leg, op: Credited, now_ms: int) -> Effects:
        t = self.store.transfer(leg.transfer_id)
        if t is None or op.region != t.payee_region:
            return Effects(events=[Anomaly(op.transfer_id, f"credited from {op.region}")])
        if t.state is not TransferState.CREDITING or leg.state is not LegState.POSTED:
            return self.c._react(t, Event.LEG_REPEATED, now_ms)
        c = self.c
        c._answered(t, t.payee_region, now_ms)
        self._move(t, leg, LegEvent.CREDITED, now_ms)
        if any(x.state is LegState.POSTED for x in self.store.legs(t.transfer_id)):
            c._enter(t, Event.LEG_CREDITED, now_ms)
            return Effects()
        t.next_action_ms = None
        c._enter(t, Event.CREDITED, now_ms, f"credited {t.posted_fen} fen at {op.region}")
        finished = c._finished(t, now_ms)
        if c.on_committed is not None:
            c.on_committed(t, now_ms)
        return Effects(self.decision(t), [finished])

    def aborted(self, leg: Leg, op: Aborted, now_ms: int) -> Effects:
        t = self._transfer(leg, op.region, leg.region)
        if isinstance(t, Anomaly):
            return Effects(events=[t])
        if t.state is not TransferState.ABORTING or leg.state not in WAITING_FOR_RELEASE:
            return self.c._react(t, Event.ABORT_CONFIRMED, now_ms)
        self._move(t, leg, LegEvent.RELEASED, now_ms)
        if any(x.state in WAITING_FOR_RELEASE for x in self.store.legs(t.transfer_id)):
            self.c._enter(t, Event.LEG_RELEASED, now_ms)
            return Effects()
        t.next_action_ms = None
        self.c._enter(t, Event.ABORT_CONFIRMED, now_ms, "nothing held in any leg")
        return Effects()

    def _transfer(self, leg: Leg, sender: str, expected: str) -> Transfer | Anomaly:
        t = self.store.transfer(leg.transfer_id)
        if t is None or sender != expected:
            return Anomaly(leg.leg_id, f"answer for leg {leg.leg_id} from {sender}")
        return t

    # --- what to send ---

    def step(self, t: Transfer) -> Step | None:
        """The messages of ``t``'s current step, for the states whose step is the legs'."""
        from clearinghouse.coordinator import Step

        legs = self.store.legs(t.transfer_id)
        match t.state:
            case TransferState.RESERVING:
                asking = [leg for leg in legs if leg.state is LegState.ASKING]
                unpaid = t.amount_fen - sum(leg.held_fen for leg in legs)
                return Step(
                    "reserve",
                    tuple(leg.region for leg in asking),
                    [
                        Outgoing(region_address(leg.region), self._reserve(t, leg, unpaid))
                        for leg in asking
                    ],
                )
            case TransferState.COMMITTING:
                held = [leg for leg in legs if leg.state is LegState.HELD]
                return Step(
                    "commit",
                    tuple(leg.region for leg in held),
                    [Outgoing(region_address(leg.region), Commit(leg.leg_id)) for leg in held],
                )
            case TransferState.CREDITING:
                posted = [leg for leg in legs if leg.state is LegState.POSTED]
                care = region_address(t.payee_region)
                return Step(
                    "credit",
                    (t.payee_region,),
                    [Outgoing(care, self._credit(t, leg)) for leg in posted],
                )
            case TransferState.COMMITTED:
                return Step("completed", (), self.decision(t))
            case TransferState.ABORTING:
                releasing = [leg for leg in legs if leg.state in WAITING_FOR_RELEASE]
                return Step("abort", tuple(leg.region for leg in releasing), self.decision(t))
        return None

    def _reserve(self, t: Transfer, leg: Leg, unpaid: int) -> Reserve:
        return Reserve(
            leg.leg_id,
            leg.payer,
            unpaid,
            t.payee_region,
            self.c.settings.hold_timeout_ms,
            Flow.AWAY,
            from_wallet=leg.source == WALLET,
            prepared=True,
        )

    @staticmethod
    def _credit(t: Transfer, leg: Leg) -> Credit:
        return Credit(leg.leg_id, leg.posted_fen, leg.region, Flow.AWAY, t.beneficiary)

    def decision(self, t: Transfer) -> list[Outgoing]:
        """A decided transfer's final messages: what each source paid, to the region of
        care; or the refusal to it, and the release of every leg that may hold."""
        care = region_address(t.payee_region)
        legs = self.store.legs(t.transfer_id)
        if t.state is TransferState.COMMITTED:
            paid = {leg.source: leg.posted_fen for leg in legs}
            unpaid = t.amount_fen - sum(paid.values())
            copayer = next((leg for leg in legs if leg.source == COPAYER), None)
            no_aid = self._no_aid(legs) if unpaid > 0 and not paid.get(COPAYER) else None
            settled = AwaySettled(
                t.transfer_id,
                paid.get(WALLET, 0),
                paid.get(OWN, 0),
                paid.get(COPAYER, 0),
                copayer.region if copayer is not None and paid.get(COPAYER) else "",
                no_aid[0] if no_aid else None,
                no_aid[1] if no_aid else t.detail,
            )
            return [Outgoing(care, settled)]
        assert t.reason is not None and t.state.decided_abort
        out = [Outgoing(care, Refuse(t.transfer_id, t.reason, t.detail))]
        if t.state is TransferState.ABORTING:
            out += [
                Outgoing(region_address(leg.region), Abort(leg.leg_id))
                for leg in legs
                if leg.state in WAITING_FOR_RELEASE
            ]
        return out


def _with(leg: Leg, **changes: Any) -> Leg:
    return dataclasses.replace(leg, **changes)
