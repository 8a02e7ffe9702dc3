"""The national directory of family bindings: proposals, verification, revocation, endings;
and of registrations of care away from home (异地就医备案).

A co-payer's region (identity checked) proposes a binding; the directory checks both
regions (registered, enabled when they differ) and both regions' policies (relationship
scope), asks the beneficiary's region whether the beneficiary is insured, and records it.
A binding ends when the co-payer revokes it or either person's insurance stops.

A beneficiary's insured region (identity checked) records a registration of care away
from home: the region of care must be registered and settle such bills directly
(``direct_settlement``); a bill at the region of care is settled only within the period
of an active registration.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from clearinghouse.store import (
    AwayRegistration,
    Binding,
    BindingStatus,
    ClearinghouseStore,
    Region,
    RegistrationStatus,
)
from contracts.effects import Anomaly, Effects, Outgoing
from contracts.identifiers import region_address
from contracts.operations import (
    AwayRegistrationDecided,
    BeneficiaryVerified,
    BindingDecided,
    InsuranceChanged,
    ProposeAwayRegistration,
    ProposeBinding,
    RecordBinding,
    VerifyBeneficiary,
    WithdrawAwayRegistration,
    WithdrawBinding,
)
from contracts.reasons import ReasonCode
from contracts.vocabulary import Insurance, Relationship

if TYPE_CHECKING:  # the coordinator's settings; it imports the checks below
    from clearinghouse.coordinator import CoordinatorSettings


def policy_refusal(
    payer: Region, beneficiary: Region, relationship: Relationship
) -> tuple[ReasonCode, str] | None:
    """Both regions' policies must allow the relationship; say who refuses, and by what rule."""
    refusing = [r for r in (payer, beneficiary) if not r.policy.allows(relationship)]
    if not refusing:
        return None
    if len(refusing) == 2 or payer.code == beneficiary.code:
        scopes = ", ".join(f"{r.label()}: scope {r.policy.scope}" for r in refusing)
        return ReasonCode.RELATIONSHIP_NOT_ALLOWED, f"{relationship} is not allowed ({scopes})"
    refuser = refusing[0]
    allower = beneficiary if refuser is payer else payer
    return (
        ReasonCode.POLICY_DISAGREEMENT,
        f"region {refuser.label()} refuses: its scope {refuser.policy.scope} does not include"
        f" {relationship}; region {allower.label()} (scope {allower.policy.scope}) allows it",
    )


def care_region_refusal(store: ClearinghouseStore, code: str) -> tuple[ReasonCode, str] | None:
    """Why ``code`` cannot be a region of care for direct settlement, if it cannot."""
    region = store.region(code)
    if region is None:
        return ReasonCode.UNKNOWN_REGION, f"region of care {code} is not registered"
    if not region.enabled:
        return ReasonCode.REGION_NOT_ENABLED, f"region of care {region.label()} is not enabled"
    if not region.policy.direct_settlement:
        detail = f"region of care {region.label()} does not settle care away from home directly"
        return ReasonCode.CARE_REGION_NOT_ENABLED, detail
    return None


def registration_refusal(
    store: ClearinghouseStore, beneficiary: str, insured_region: str, care_region: str, at_ms: int
) -> tuple[ReasonCode, str] | None:
    """Why a bill at ``care_region`` at ``at_ms`` is not covered by a registration."""
    active = [
        r
        for r in store.away_registrations.of(beneficiary, insured_region, care_region)
        if r.status is RegistrationStatus.ACTIVE
    ]
    if any(r.covers(at_ms) for r in active):
        return None
    where = f"{beneficiary} of {insured_region} at {care_region}"
    if any(r.until_ms and r.until_ms <= at_ms for r in active):
        return ReasonCode.REGISTRATION_EXPIRED, f"the registration of {where} has ended"
    if active:
        return ReasonCode.REGISTRATION_NOT_STARTED, f"the registration of {where} starts later"
    return ReasonCode.NOT_REGISTERED_AWAY, f"no registration of care away from home of {where}"


class BindingDirectory:
    """Handlers for bindings, as a plain class over the clearinghouse store."""

    def __init__(self, store: ClearinghouseStore, settings: CoordinatorSettings) -> None:
        self.store = store
        self.settings = settings

    def record_binding(self, op: RecordBinding, now_ms: int) -> Effects:
        """Seed the directory directly (scenario set-up), without the request flow."""
        binding = Binding(
            op.binding_id,
            op.copayer,
            op.copayer_region,
            op.beneficiary,
            op.beneficiary_region,
            op.relationship,
        )
        self.store.add_binding(binding, now_ms)
        return Effects()

    def propose_binding(self, op: ProposeBinding, now_ms: int) -> Effects:
        to_copayer = region_address(op.copayer_region)
        known = self.store.binding(op.binding_id)
        if known is not None:
            if known.status is BindingStatus.VERIFYING:
                verify = VerifyBeneficiary(known.binding_id, known.beneficiary)
                return Effects([Outgoing(region_address(known.beneficiary_region), verify)])
            decided = BindingDecided(op.binding_id, op.binding_id, known.reason, known.detail)
            return Effects([Outgoing(to_copayer, decided)])
        for existing in self.store.active_bindings_by(op.copayer, op.copayer_region):
            if (existing.beneficiary, existing.beneficiary_region) == (
                op.beneficiary,
                op.beneficiary_region,
            ):
                detail = f"bound already as {existing.binding_id}"
                decided = BindingDecided(op.binding_id, existing.binding_id, None, detail)
                return Effects([Outgoing(to_copayer, decided)])
        proposal = Binding(
            op.binding_id,
            op.copayer,
            op.copayer_region,
            op.beneficiary,
            op.beneficiary_region,
            op.relationship,
            BindingStatus.VERIFYING,
        )
        refusal = self._refusal(op)
        if refusal is not None:
            refused = dataclasses.replace(
                proposal, status=BindingStatus.REFUSED, reason=refusal[0], detail=refusal[1]
            )
            self.store.add_binding(refused, now_ms)
            decided = BindingDecided(op.binding_id, op.binding_id, *refusal)
            return Effects([Outgoing(to_copayer, decided)])
        deadline = now_ms + self.settings.quote_timeout_ms
        self.store.add_binding(proposal, now_ms, next_action_ms=deadline)
        verify = VerifyBeneficiary(op.binding_id, op.beneficiary)
        return Effects([Outgoing(region_address(op.beneficiary_region), verify)])

    def _refusal(self, op: ProposeBinding) -> tuple[ReasonCode, str] | None:
        payer = self.store.region(op.copayer_region)
        beneficiary = self.store.region(op.beneficiary_region)
        for role, code, region in (
            ("co-payer", op.copayer_region, payer),
            ("beneficiary", op.beneficiary_region, beneficiary),
        ):
            if region is None:
                return ReasonCode.UNKNOWN_REGION, f"{role} region {code} is not registered"
        assert payer is not None and beneficiary is not None
        if payer.code != beneficiary.code:
            for role, region in (("co-payer", payer), ("beneficiary", beneficiary)):
                if not region.enabled:
                    detail = f"{role} region {region.label()} is not enabled"
                    return ReasonCode.REGION_NOT_ENABLED, detail
        return policy_refusal(payer, beneficiary, op.relationship)

    def beneficiary_verified(self, op: BeneficiaryVerified, now_ms: int) -> Effects:
        binding = self.store.binding(op.binding_id)
        if binding is None or binding.status is not BindingStatus.VERIFYING:
            return Effects()
        if op.region != binding.beneficiary_region:
            return Effects(events=[Anomaly(op.binding_id, f"verification from {op.region}")])
        refusal: tuple[ReasonCode, str] | None = None
        if op.insurance is None:
            refusal = ReasonCode.UNKNOWN_PERSON, f"{op.beneficiary} is not known in {op.region}"
        elif op.insurance is Insurance.NONE:
            refusal = ReasonCode.BENEFICIARY_NOT_INSURED, f"{op.beneficiary} is not insured"
        return self._decide(binding, refusal, now_ms)

    def _decide(
        self, binding: Binding, refusal: tuple[ReasonCode, str] | None, now_ms: int
    ) -> Effects:
        if refusal is None:
            self.store.set_binding_status(binding.binding_id, BindingStatus.ACTIVE, now_ms)
            decided = BindingDecided(binding.binding_id, binding.binding_id)
        else:
            self.store.set_binding_status(
                binding.binding_id, BindingStatus.REFUSED, now_ms, *refusal
            )
            decided = BindingDecided(binding.binding_id, binding.binding_id, *refusal)
        return Effects([Outgoing(region_address(binding.copayer_region), decided)])

    def withdraw_binding(self, op: WithdrawBinding, now_ms: int) -> Effects:
        to_copayer = region_address(op.copayer_region)
        binding = self.store.binding(op.binding_id)
        if binding is None or (binding.copayer, binding.copayer_region) != (
            op.copayer,
            op.copayer_region,
        ):
            detail = f"{op.copayer} has no binding {op.binding_id}"
            decided = BindingDecided(
                op.request_id, op.binding_id, ReasonCode.UNKNOWN_BINDING, detail
            )
            return Effects([Outgoing(to_copayer, decided)])
        if binding.status is BindingStatus.ACTIVE:
            self.store.set_binding_status(
                op.binding_id, BindingStatus.ENDED, now_ms, None, "revoked by the co-payer"
            )
        decided = BindingDecided(op.request_id, op.binding_id, None, "revoked")
        return Effects([Outgoing(to_copayer, decided)])

    def insurance_changed(self, op: InsuranceChanged, now_ms: int) -> Effects:
        """End the bindings a change of insurance invalidates."""
        ending: list[Binding] = []
        if op.insurance is not Insurance.EMPLOYEE:  # no personal account to share any more
            ending += self.store.active_bindings_by(op.psn_no, op.region)
        if op.insurance is Insurance.NONE:  # nobody to pay for
            ending += self.store.active_bindings_of(op.psn_no, op.region)
        detail = f"insurance of {op.psn_no} in {op.region} is now {op.insurance}"
        for binding in ending:
            self.store.set_binding_status(
                binding.binding_id, BindingStatus.ENDED, now_ms, None, detail
            )
        return Effects()

    # --- registrations of care away from home ---

    def propose_away_registration(self, op: ProposeAwayRegistration, now_ms: int) -> Effects:
        """Record a registration (idempotent by id: a known one is answered as decided)."""
        known = self.store.away_registrations.get(op.registration_id)
        if known is None:
            refusal = self._away_refusal(op)
            status = RegistrationStatus.ACTIVE if refusal is None else RegistrationStatus.REFUSED
            reason, detail = refusal or (None, "")
            known = AwayRegistration(
                op.registration_id,
                op.beneficiary,
                op.insured_region,
                op.care_region,
                op.from_ms,
                op.until_ms,
                status,
                reason,
                detail,
            )
            self.store.away_registrations.add(known, now_ms)
        decided = AwayRegistrationDecided(
            op.registration_id, op.registration_id, known.reason, known.detail
        )
        return Effects([Outgoing(region_address(op.insured_region), decided)])

    def _away_refusal(self, op: ProposeAwayRegistration) -> tuple[ReasonCode, str] | None:
        insured = self.store.region(op.insured_region)
        if insured is None:
            detail = f"insured region {op.insured_region} is not registered"
            return ReasonCode.UNKNOWN_REGION, detail
        if op.care_region == op.insured_region:
            detail = f"care in {op.care_region} is not away from the insured region"
            return ReasonCode.CARE_NOT_AWAY, detail
        if op.until_ms and op.until_ms <= op.from_ms:
            return ReasonCode.INVALID_PERIOD, "the registration ends before it starts"
        return care_region_refusal(self.store, op.care_region)

    def withdraw_away_registration(self, op: WithdrawAwayRegistration, now_ms: int) -> Effects:
        to_insured = region_address(op.insured_region)
        known = self.store.away_registrations.get(op.registration_id)
        if known is None or (known.beneficiary, known.insured_region) != (
            op.beneficiary,
            op.insured_region,
        ):
            detail = f"{op.beneficiary} has no registration {op.registration_id}"
            decided = AwayRegistrationDecided(
                op.request_id, op.registration_id, ReasonCode.UNKNOWN_REGISTRATION, detail
            )
            return Effects([Outgoing(to_insured, decided)])
        if known.status is RegistrationStatus.ACTIVE:
            self.store.away_registrations.set_status(
                op.registration_id, RegistrationStatus.REVOKED, now_ms, "revoked by the person"
            )
        decided = AwayRegistrationDecided(op.request_id, op.registration_id, None, "revoked")
        return Effects([Outgoing(to_insured, decided)])

    def tick(self, now_ms: int) -> Effects:
        """A beneficiary's region that does not answer in time: the proposal is refused."""
        decided: list[Effects] = []
        for binding in self.store.due_bindings(now_ms):
            if binding.status is BindingStatus.VERIFYING:
                detail = f"region {binding.beneficiary_region} did not answer in time"
                decided.append(self._decide(binding, (ReasonCode.TIMEOUT, detail), now_ms))
        return Effects.join(decided)

    def resume(self, now_ms: int) -> Effects:
        """After a restart: ask again about proposals still being verified."""
        return Effects(
            [
                Outgoing(
                    region_address(b.beneficiary_region),
                    VerifyBeneficiary(b.binding_id, b.beneficiary),
                )
                for b in self.store.due_bindings(2**62)
                if b.status is BindingStatus.VERIFYING
            ]
        )
