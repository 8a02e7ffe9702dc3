"""Who may send what: one table for every operation, checked before any state changes.

The sender is the authenticated participant (``contracts.participants``), never a field
of the message. Each operation names the roles that may send it and, for those that
speak for someone, which field must name the sender itself: a region answers only for
itself (``ReserveResult.region``), asks aid only for its own bills
(``RequestAid.beneficiary_region``), and a province host sends what a region may, for
the regions of its province only; a client's or operator's answers go back to it
alone (``reply_to``). Anything else is refused with one of the reasons below.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.operations import (
    ALL_OPERATIONS,
    Abort,
    Aborted,
    AwayRegistrationDecided,
    AwayRegistrationOutcome,
    AwaySettled,
    BalanceQuoted,
    BeneficiaryVerified,
    BillOutcome,
    BindingDecided,
    BindingOutcome,
    CheckPremium,
    CloseWindow,
    Commit,
    CommitResult,
    Completed,
    ConfigureRegion,
    Credit,
    Credited,
    Disagreement,
    EnrollPerson,
    InsuranceChanged,
    Operation,
    PayPremium,
    PremiumQuoted,
    ProposeAwayRegistration,
    ProposeBinding,
    QueryBalance,
    QueryWindow,
    Reconciled,
    RecordBinding,
    Refuse,
    RegisterRegion,
    RegistryChanged,
    Repair,
    RequestAid,
    RequestAwayRegistration,
    RequestAwaySettlement,
    RequestBinding,
    RequestPremiumPayment,
    RequestTransfer,
    RequestWalletTransfer,
    Reserve,
    ReserveResult,
    RevokeAwayRegistration,
    RevokeBinding,
    SetRegionEnabled,
    Settle,
    SettlementBooked,
    SettlementLine,
    SettlementReport,
    SubmitAwayBill,
    SubmitBill,
    VerifyBeneficiary,
    WindowPosition,
    WindowSummary,
    WithdrawAwayRegistration,
    WithdrawBinding,
)
from contracts.participants import Participant, Role

UNAUTHENTICATED = "unauthenticated"
"""Refusal: the message has no ``user_id``, or its user is no participant here."""
FORBIDDEN = "forbidden"
"""Refusal: the sender's role may not send this operation."""
IMPERSONATION = "impersonation"
"""Refusal: the operation speaks for another region or another client than the sender."""

REFUSALS = (UNAUTHENTICATED, FORBIDDEN, IMPERSONATION)

HUB, REGION, CLIENT, ADMIN = Role.CLEARINGHOUSE, Role.REGION, Role.CLIENT, Role.ADMIN
PROVINCE = Role.PROVINCE


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may send one operation, and which field (if any) must name the sender."""

    roles: frozenset[Role]
    own_region: str = ""
    """For a region sender: the field that must be its own region code."""
    own_address: str = ""
    """For a client or operator sender: the field that must be its own address."""
    answer_optional: bool = False
    """``own_address`` may be empty: the sender wants no answer (so none goes anywhere)."""


def _rule(
    *roles: Role, own_region: str = "", own_address: str = "", answer_optional: bool = False
) -> Rule:
    return Rule(frozenset(roles), own_region, own_address, answer_optional)


RULES: dict[type[Operation], Rule] = {
    # The national clearinghouse decides; only it drives the regions' money.
    ConfigureRegion: _rule(HUB),
    QueryBalance: _rule(HUB),
    Reserve: _rule(HUB),
    Commit: _rule(HUB),
    Abort: _rule(HUB),
    Credit: _rule(HUB),
    Refuse: _rule(HUB),
    Completed: _rule(HUB),
    CheckPremium: _rule(HUB),
    VerifyBeneficiary: _rule(HUB),
    BindingDecided: _rule(HUB),
    SettlementReport: _rule(HUB),
    SettlementLine: _rule(HUB),  # (carried inside a SettlementReport)
    Repair: _rule(HUB),
    Settle: _rule(HUB),
    WindowSummary: _rule(HUB),
    WindowPosition: _rule(HUB),
    RegistryChanged: _rule(HUB),
    AwaySettled: _rule(HUB),
    AwayRegistrationDecided: _rule(HUB),
    # A region answers for itself only.
    RequestAid: _rule(REGION, own_region="beneficiary_region"),
    RequestTransfer: _rule(REGION, own_region="payer_region"),
    BalanceQuoted: _rule(REGION, own_region="region"),
    ReserveResult: _rule(REGION, own_region="region"),
    CommitResult: _rule(REGION, own_region="region"),
    Aborted: _rule(REGION, own_region="region"),
    Credited: _rule(REGION, own_region="region"),
    PremiumQuoted: _rule(REGION, own_region="region"),
    ProposeBinding: _rule(REGION, own_region="copayer_region"),
    WithdrawBinding: _rule(REGION, own_region="copayer_region"),
    BeneficiaryVerified: _rule(REGION, own_region="region"),
    InsuranceChanged: _rule(REGION, own_region="region"),
    Disagreement: _rule(REGION, own_region="region"),
    Reconciled: _rule(REGION, own_region="region"),
    RequestAwaySettlement: _rule(REGION, own_region="care_region"),
    ProposeAwayRegistration: _rule(REGION, own_region="insured_region"),
    WithdrawAwayRegistration: _rule(REGION, own_region="insured_region"),
    SettlementBooked: _rule(REGION, own_region="region"),
    BillOutcome: _rule(REGION),
    BindingOutcome: _rule(REGION),
    AwayRegistrationOutcome: _rule(REGION),
    # Clients (hospitals, insured persons' apps) make requests whose answers come back
    # to themselves; an operator may do the same.
    SubmitBill: _rule(CLIENT, ADMIN, own_address="reply_to"),
    RequestBinding: _rule(CLIENT, ADMIN, own_address="reply_to"),
    RevokeBinding: _rule(CLIENT, ADMIN, own_address="reply_to"),
    RequestWalletTransfer: _rule(CLIENT, ADMIN, own_address="reply_to"),
    RequestPremiumPayment: _rule(CLIENT, ADMIN, own_address="reply_to"),
    PayPremium: _rule(CLIENT, ADMIN, own_address="reply_to"),
    SubmitAwayBill: _rule(CLIENT, ADMIN, own_address="reply_to"),
    RequestAwayRegistration: _rule(CLIENT, ADMIN, own_address="reply_to"),
    RevokeAwayRegistration: _rule(CLIENT, ADMIN, own_address="reply_to"),
    # The operator: the registry, the population's seed, clearing windows.
    # Set-up scripts and the simulator send these without reply_to (no answer wanted).
    RegisterRegion: _rule(ADMIN, own_address="reply_to", answer_optional=True),
    SetRegionEnabled: _rule(ADMIN, own_address="reply_to", answer_optional=True),
    EnrollPerson: _rule(ADMIN),
    RecordBinding: _rule(ADMIN),
    CloseWindow: _rule(ADMIN, own_address="reply_to"),
    QueryWindow: _rule(ADMIN, own_address="reply_to"),
}

_missing = [op.__name__ for op in ALL_OPERATIONS if op not in RULES]
if _missing:  # every operation has a rule: a new one must be placed in the table
    raise RuntimeError(f"operations without a sending rule: {', '.join(_missing)}")


def refusal(sender: Participant | None, op: Operation) -> str | None:
    """Why ``sender`` may not send ``op`` (one of ``REFUSALS``), or None if it may."""
    if sender is None:
        return UNAUTHENTICATED
    rule = RULES.get(type(op))
    # A province host acts as each region of its province: a region's rules apply.
    role = REGION if sender.role is PROVINCE else sender.role
    if rule is None or role not in rule.roles:
        return FORBIDDEN
    if rule.own_region and role is REGION and not sender.speaks_for(getattr(op, rule.own_region)):
        return IMPERSONATION
    if rule.own_address and sender.role in (CLIENT, ADMIN):
        address = getattr(op, rule.own_address)
        if address != sender.address and not (rule.answer_optional and address == ""):
            return IMPERSONATION
    return None
