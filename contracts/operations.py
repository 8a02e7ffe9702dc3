"""The operations that travel between clients, regions and the clearinghouse.

Each operation is a frozen record with a short wire ``TAG``. Fields are positional
on the wire in declaration order, so a field is only ever appended (with a default)
within one schema version. Money is integer fen. Every field is bounded, by its name,
in the table at the end of this module (``FIELD_BOUNDS``): region codes, identifiers,
addresses, text lengths, amounts. The codec enforces the bounds on every message.

The co-payment flow (payer region A, payee region B, clearinghouse CH)::

    client -> B   SubmitBill
    B  -> CH      RequestAid
    CH -> A       QueryBalance      (only when several co-payers are bound)
    A  -> CH      BalanceQuoted
    CH -> A       Reserve           A -> CH  ReserveResult
    CH -> A       Commit            A -> CH  CommitResult
    CH -> B       Credit            B -> CH  Credited
    CH -> A       Abort             A -> CH  Aborted          (when aborting after a hold)
    CH -> B       Refuse                                      (final refusal)
    B  -> client  BillOutcome                                 (exactly one final outcome)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Final

from contracts.identifiers import (
    IDENTIFIER_CHARACTERS,
    MAX_ADDRESS_LENGTH,
    MAX_IDENTIFIER_LENGTH,
)
from contracts.policy import (
    DEFAULT_RESIDENT_PREMIUM_FEN,
    FULL_CATALOGUE_PERMILLE,
    NATIONAL_WALLET_MAX_PER_TRANSFER_FEN,
    NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY,
)
from contracts.reasons import COMMITTED, ReasonCode
from contracts.vocabulary import (
    Flow,
    Insurance,
    PaymentOrder,
    RegistryResult,
    Relationship,
    Scope,
)

__all__ = [
    "Flow",
    "Insurance",
    "PaymentOrder",
    "RegistryResult",
    "Relationship",
    "Scope",
]  # and the records below


@dataclass(frozen=True, slots=True)
class Operation:
    """Base of every operation; ``TAG`` names it on the wire."""

    TAG: ClassVar[str] = ""
    SIGNED: ClassVar[frozenset[str]] = frozenset()
    """Money fields (``*_fen``) that may be negative, such as net positions."""
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset()
    """Region-code and identifier fields that may be ``""`` although they have no ``""``
    default (one with that default may always be empty)."""


# --- set-up: population, registry, directory -------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrollPerson(Operation):
    """Record a person insured in the receiving region (idempotent by ``psn_no``).

    For a person known already, a different ``insurance`` is a change of insurance
    (``none`` ends it, which ends the person's bindings); the balance is not touched.
    ``secret`` stands in for the identity check (face or password in real life).
    """

    TAG: ClassVar[str] = "enroll_person"
    psn_no: str
    insurance: Insurance
    opening_balance_fen: int = 0
    secret: str = ""


@dataclass(frozen=True, slots=True)
class RegisterRegion(Operation):
    """Add or update a region in the clearinghouse's national registry."""

    TAG: ClassVar[str] = "register_region"
    region: str
    name: str
    province: str
    enabled: bool
    scope: Scope = Scope.SCOPE_2024
    payment_order: PaymentOrder = PaymentOrder.OWN_FIRST
    wallet_enabled: bool = True
    wallet_max_per_transfer_fen: int = NATIONAL_WALLET_MAX_PER_TRANSFER_FEN
    wallet_max_transfers_per_day: int = NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY
    resident_premium_fen: int = DEFAULT_RESIDENT_PREMIUM_FEN
    reply_to: str = ""
    """Where to send the ``RegistryChanged`` answer; empty: no answer wanted."""
    direct_settlement: bool = True
    """The region settles bills of persons insured elsewhere (异地就医直接结算)."""
    catalogue_share_permille: int = FULL_CATALOGUE_PERMILLE


@dataclass(frozen=True, slots=True)
class ConfigureRegion(Operation):
    """The clearinghouse tells a region its registered policy (see ``contracts.policy``)."""

    TAG: ClassVar[str] = "configure_region"
    region: str
    enabled: bool
    scope: Scope
    payment_order: PaymentOrder
    wallet_enabled: bool
    wallet_max_per_transfer_fen: int
    wallet_max_transfers_per_day: int
    resident_premium_fen: int
    direct_settlement: bool = True
    catalogue_share_permille: int = FULL_CATALOGUE_PERMILLE


@dataclass(frozen=True, slots=True)
class SetRegionEnabled(Operation):
    """Enable or disable cross-region mutual aid for a registered region."""

    TAG: ClassVar[str] = "set_region_enabled"
    region: str
    enabled: bool
    reply_to: str = ""
    """Where to send the ``RegistryChanged`` answer; empty: no answer wanted."""


@dataclass(frozen=True, slots=True)
class RegistryChanged(Operation):
    """The clearinghouse's answer to ``RegisterRegion`` or ``SetRegionEnabled``."""

    TAG: ClassVar[str] = "registry_changed"
    region: str
    result: RegistryResult


@dataclass(frozen=True, slots=True)
class RecordBinding(Operation):
    """Record a family binding in the national directory (idempotent by ``binding_id``)."""

    TAG: ClassVar[str] = "record_binding"
    binding_id: str
    copayer: str
    copayer_region: str
    beneficiary: str
    beneficiary_region: str
    relationship: Relationship


# --- the co-payment flow ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitBill(Operation):
    """A bill's out-of-pocket share arrives at the beneficiary's region (the payee)."""

    TAG: ClassVar[str] = "submit_bill"
    transfer_id: str
    beneficiary: str
    amount_fen: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class RequestAid(Operation):
    """The payee region asks the clearinghouse for mutual aid towards a bill."""

    TAG: ClassVar[str] = "request_aid"
    transfer_id: str
    beneficiary: str
    beneficiary_region: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class QueryBalance(Operation):
    """Ask a co-payer's region for the available balance (choosing among co-payers)."""

    TAG: ClassVar[str] = "query_balance"
    transfer_id: str
    psn_no: str


@dataclass(frozen=True, slots=True)
class BalanceQuoted(Operation):
    """A region's answer to ``QueryBalance``; ``reason`` is set when it has no account."""

    TAG: ClassVar[str] = "balance_quoted"
    transfer_id: str
    psn_no: str
    region: str
    available_fen: int
    reason: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Reserve(Operation):
    """Hold up to ``amount_fen`` of the payer's personal account (pending transfer)."""

    TAG: ClassVar[str] = "reserve"
    transfer_id: str
    payer: str
    amount_fen: int
    payee_region: str
    hold_timeout_ms: int
    flow: Flow = Flow.COPAY
    all_or_nothing: bool = False
    """Wallet transfers and premiums are paid in full or not at all."""
    from_wallet: bool = False
    """Hold the payer's medical-insurance wallet rather than the personal account."""
    prepared: bool = False
    """One leg of a transfer with several payers: the hold never expires by itself (only
    the clearinghouse's commit or abort ends it), so every leg posts or none does."""


@dataclass(frozen=True, slots=True)
class ReserveResult(Operation):
    """The payer region's answer to ``Reserve``: ``held_fen`` > 0, or a ``reason``."""

    TAG: ClassVar[str] = "reserve_result"
    transfer_id: str
    region: str
    held_fen: int
    reason: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Commit(Operation):
    """Post the held amount (the clearinghouse has decided to commit)."""

    TAG: ClassVar[str] = "commit"
    transfer_id: str


@dataclass(frozen=True, slots=True)
class CommitResult(Operation):
    """The payer region's answer to ``Commit``: posted, or ``HOLD_EXPIRED``."""

    TAG: ClassVar[str] = "commit_result"
    transfer_id: str
    region: str
    posted_fen: int
    reason: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Abort(Operation):
    """Release the hold, if any (the clearinghouse has decided to abort)."""

    TAG: ClassVar[str] = "abort"
    transfer_id: str


@dataclass(frozen=True, slots=True)
class Aborted(Operation):
    """The payer region's answer to ``Abort``: nothing of this transfer is held or posted."""

    TAG: ClassVar[str] = "aborted"
    transfer_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Credit(Operation):
    """Record an incoming co-payment against the beneficiary's bill in the payee region."""

    TAG: ClassVar[str] = "credit"
    transfer_id: str
    amount_fen: int
    payer_region: str
    flow: Flow = Flow.COPAY
    beneficiary: str = ""
    """Whose wallet or premium is credited (wallet and premium flows)."""
    year: int = 0
    """The premium year (premium flow)."""
    detail: str = ""
    """What the requester should know, e.g. co-payers left out for not answering in time."""


@dataclass(frozen=True, slots=True)
class Credited(Operation):
    """The payee region's answer to ``Credit``."""

    TAG: ClassVar[str] = "credited"
    transfer_id: str
    region: str


@dataclass(frozen=True, slots=True)
class Refuse(Operation):
    """The clearinghouse's final refusal of a request, sent to the payee region."""

    TAG: ClassVar[str] = "refuse"
    transfer_id: str
    reason: ReasonCode
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BillOutcome(Operation):
    """The one final outcome of a request (a bill, a wallet transfer, a premium payment),
    sent to the submitter.

    ``reason`` is None when the request was carried out (money may have moved from the
    co-payer, the beneficiary's own account or wallet); otherwise it says why the mutual
    aid did not happen (other parts may still have paid).
    """

    TAG: ClassVar[str] = "bill_outcome"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"payer_region"})
    transfer_id: str
    paid_fen: int
    """Paid by the co-payer (the mutual-aid part), or moved by a wallet/premium transfer."""
    remaining_fen: int
    """Left to other means (cash)."""
    payer_region: str
    reason: ReasonCode | None = None
    detail: str = ""
    own_paid_fen: int = 0
    """Paid from the beneficiary's own personal account."""
    wallet_paid_fen: int = 0
    """Paid from the beneficiary's medical-insurance wallet."""
    flow: Flow = Flow.COPAY

    @property
    def outcome(self) -> str:
        """``COMMITTED`` or the reason code's value."""
        return COMMITTED if self.reason is None else self.reason.value


# --- care away from home (异地就医) ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitAwayBill(Operation):
    """A hospital's bill (its out-of-pocket share) for a person insured in another region,
    sent to the region of care, where the care happened."""

    TAG: ClassVar[str] = "submit_away_bill"
    transfer_id: str
    beneficiary: str
    insured_region: str
    amount_fen: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class RequestAwaySettlement(Operation):
    """The region of care asks the clearinghouse to have the in-catalogue part of a bill
    paid under the insured region's policy."""

    TAG: ClassVar[str] = "request_away_settlement"
    transfer_id: str
    beneficiary: str
    insured_region: str
    care_region: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class AwaySettled(Operation):
    """The clearinghouse tells the region of care what each source paid (every leg is
    credited there already)."""

    TAG: ClassVar[str] = "away_settled"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"copayer_region"})
    transfer_id: str
    wallet_paid_fen: int
    own_paid_fen: int
    copayer_paid_fen: int
    copayer_region: str
    reason: ReasonCode | None = None
    """Why the co-payer paid nothing towards what was left (no binding, zero balance)."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RequestAwayRegistration(Operation):
    """A beneficiary registers care away from home (异地就医备案) with the insured region."""

    TAG: ClassVar[str] = "request_away_registration"
    request_id: str
    beneficiary: str
    secret: str
    care_region: str
    from_ms: int
    until_ms: int
    """The first instant after the stay; 0: no end."""
    reply_to: str


@dataclass(frozen=True, slots=True)
class RevokeAwayRegistration(Operation):
    """A beneficiary revokes a registration of care away from home, at the insured region."""

    TAG: ClassVar[str] = "revoke_away_registration"
    request_id: str
    beneficiary: str
    secret: str
    registration_id: str
    reply_to: str


@dataclass(frozen=True, slots=True)
class ProposeAwayRegistration(Operation):
    """The insured region, identity checked, records a registration in the national
    directory (``registration_id`` is the request's id)."""

    TAG: ClassVar[str] = "propose_away_registration"
    registration_id: str
    beneficiary: str
    insured_region: str
    care_region: str
    from_ms: int
    until_ms: int


@dataclass(frozen=True, slots=True)
class WithdrawAwayRegistration(Operation):
    """The insured region, identity checked, revokes a registration in the directory."""

    TAG: ClassVar[str] = "withdraw_away_registration"
    request_id: str
    registration_id: str
    beneficiary: str
    insured_region: str


@dataclass(frozen=True, slots=True)
class AwayRegistrationDecided(Operation):
    """The directory's decision on a registration or its revocation, to the insured region."""

    TAG: ClassVar[str] = "away_registration_decided"
    request_id: str
    registration_id: str
    reason: ReasonCode | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AwayRegistrationOutcome(Operation):
    """The final answer to a registration or revocation, to the requester."""

    TAG: ClassVar[str] = "away_registration_outcome"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"registration_id"})
    request_id: str
    registration_id: str
    reason: ReasonCode | None = None
    detail: str = ""

    @property
    def outcome(self) -> str:
        return COMMITTED if self.reason is None else self.reason.value


# --- bindings (family mutual aid authorisations) ------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestBinding(Operation):
    """A co-payer asks, through his or her own region, to bind a relative."""

    TAG: ClassVar[str] = "request_binding"
    request_id: str
    copayer: str
    secret: str
    beneficiary: str
    beneficiary_region: str
    relationship: Relationship
    reply_to: str


@dataclass(frozen=True, slots=True)
class RevokeBinding(Operation):
    """A co-payer revokes one of his or her bindings, through his or her own region."""

    TAG: ClassVar[str] = "revoke_binding"
    request_id: str
    copayer: str
    secret: str
    binding_id: str
    reply_to: str


@dataclass(frozen=True, slots=True)
class ProposeBinding(Operation):
    """The co-payer's region, identity checked, proposes a binding to the directory."""

    TAG: ClassVar[str] = "propose_binding"
    binding_id: str
    copayer: str
    copayer_region: str
    beneficiary: str
    beneficiary_region: str
    relationship: Relationship


@dataclass(frozen=True, slots=True)
class WithdrawBinding(Operation):
    """The co-payer's region, identity checked, withdraws a binding from the directory."""

    TAG: ClassVar[str] = "withdraw_binding"
    request_id: str
    binding_id: str
    copayer: str
    copayer_region: str


@dataclass(frozen=True, slots=True)
class VerifyBeneficiary(Operation):
    """The clearinghouse asks the beneficiary's region how the beneficiary is insured."""

    TAG: ClassVar[str] = "verify_beneficiary"
    binding_id: str
    beneficiary: str


@dataclass(frozen=True, slots=True)
class BeneficiaryVerified(Operation):
    """The beneficiary's region answers; ``insurance`` None: unknown there."""

    TAG: ClassVar[str] = "beneficiary_verified"
    binding_id: str
    region: str
    beneficiary: str
    insurance: Insurance | None


@dataclass(frozen=True, slots=True)
class BindingDecided(Operation):
    """The directory's decision on a proposal or withdrawal, to the co-payer's region."""

    TAG: ClassVar[str] = "binding_decided"
    request_id: str
    binding_id: str
    reason: ReasonCode | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BindingOutcome(Operation):
    """The final answer to ``RequestBinding`` or ``RevokeBinding``, to the requester."""

    TAG: ClassVar[str] = "binding_outcome"
    MAY_BE_EMPTY: ClassVar[frozenset[str]] = frozenset({"binding_id"})
    request_id: str
    binding_id: str
    reason: ReasonCode | None = None
    detail: str = ""

    @property
    def outcome(self) -> str:
        return COMMITTED if self.reason is None else self.reason.value


@dataclass(frozen=True, slots=True)
class InsuranceChanged(Operation):
    """A region tells the directory a person's insurance changed (bindings may end)."""

    TAG: ClassVar[str] = "insurance_changed"
    psn_no: str
    region: str
    insurance: Insurance


# --- wallet transfers and premium payments ----------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestWalletTransfer(Operation):
    """A co-payer moves money from the personal account into a relative's wallet."""

    TAG: ClassVar[str] = "request_wallet_transfer"
    transfer_id: str
    copayer: str
    secret: str
    beneficiary: str
    beneficiary_region: str
    amount_fen: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class RequestPremiumPayment(Operation):
    """A co-payer pays a resident relative's yearly premium (代缴居民医保)."""

    TAG: ClassVar[str] = "request_premium_payment"
    transfer_id: str
    copayer: str
    secret: str
    beneficiary: str
    beneficiary_region: str
    year: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class RequestTransfer(Operation):
    """The payer's region, identity checked, asks the clearinghouse for a transfer
    with a known payer (wallet or premium flow)."""

    TAG: ClassVar[str] = "request_transfer"
    transfer_id: str
    flow: Flow
    payer: str
    payer_region: str
    beneficiary: str
    beneficiary_region: str
    amount_fen: int
    year: int = 0


@dataclass(frozen=True, slots=True)
class CheckPremium(Operation):
    """Ask the beneficiary's region for the premium due, and earmark the (person, year)."""

    TAG: ClassVar[str] = "check_premium"
    transfer_id: str
    beneficiary: str
    year: int


@dataclass(frozen=True, slots=True)
class PremiumQuoted(Operation):
    """The premium due, or why none can be paid (already paid, not resident-insured)."""

    TAG: ClassVar[str] = "premium_quoted"
    transfer_id: str
    region: str
    amount_fen: int
    reason: ReasonCode | None = None


@dataclass(frozen=True, slots=True)
class Completed(Operation):
    """The clearinghouse tells the requesting (payer) region the transfer is committed."""

    TAG: ClassVar[str] = "completed"
    transfer_id: str
    amount_fen: int
    payee_region: str


@dataclass(frozen=True, slots=True)
class PayPremium(Operation):
    """Pay a resident's own premium in his or her region from his or her wallet."""

    TAG: ClassVar[str] = "pay_premium"
    transfer_id: str
    psn_no: str
    year: int
    reply_to: str


# --- clearing (清算) and reconciliation (对账) -------------------------------------------


@dataclass(frozen=True, slots=True)
class CloseWindow(Operation):
    """Close the open clearing window and open the next (an admin request)."""

    TAG: ClassVar[str] = "close_window"
    request_id: str
    reply_to: str = ""


@dataclass(frozen=True, slots=True)
class SettlementLine(Operation):
    """One committed cross-region transfer of a closed window, as the clearinghouse has it."""

    TAG: ClassVar[str] = "settlement_line"
    window: int
    transfer_id: str
    flow: Flow
    payer_region: str
    payee_region: str
    amount_fen: int


@dataclass(frozen=True, slots=True)
class SettlementReport(Operation):
    """A region's settlement report for a closed window (its lines come with it)."""

    TAG: ClassVar[str] = "settlement_report"
    SIGNED: ClassVar[frozenset[str]] = frozenset({"net_fen"})
    window: int
    region: str
    paid_fen: int
    received_fen: int
    net_fen: int
    """Received less paid: what the region is owed (negative: what it owes)."""
    lines: int
    opened_at_ms: int
    closed_at_ms: int


@dataclass(frozen=True, slots=True)
class Disagreement(Operation):
    """A region's books differ from the settlement report on one transfer."""

    TAG: ClassVar[str] = "disagreement"
    window: int
    region: str
    transfer_id: str
    kind: str
    """``missing_here`` (report has it, region lacks it), ``amount_differs``,
    ``missing_there`` (region has it, report lacks it)."""
    region_fen: int
    report_fen: int


@dataclass(frozen=True, slots=True)
class Reconciled(Operation):
    """A region's verdict on a window: clean, or how many disagreements it reported."""

    TAG: ClassVar[str] = "reconciled"
    window: int
    region: str
    disagreements: int
    paid_fen: int
    received_fen: int


@dataclass(frozen=True, slots=True)
class Repair(Operation):
    """Drive a region to the clearinghouse's recorded decision on a committed transfer."""

    TAG: ClassVar[str] = "repair"
    transfer_id: str
    window: int
    role: str
    """``payer`` or ``payee``."""
    psn_no: str
    counterparty_region: str
    amount_fen: int
    flow: Flow = Flow.COPAY
    year: int = 0
    from_wallet: bool = False
    """The payer's side was a hold on the wallet (a leg of a bill away from home)."""


@dataclass(frozen=True, slots=True)
class Settle(Operation):
    """Book a closed window's settlement (清算) against the region's fund.

    The clearinghouse draws what the region owes from its advance (预付金) and adds what it
    is owed, then tops the advance up to its target (``top_up_fen`` negative: the surplus
    goes back to the fund). The region books its window's lines, counterparty by
    counterparty, against the advance, and the top-up against its fund account."""

    TAG: ClassVar[str] = "settle"
    SIGNED: ClassVar[frozenset[str]] = frozenset({"net_fen", "top_up_fen"})
    window: int
    region: str
    net_fen: int
    """Received less paid in the window (the report's net position)."""
    lines: int
    """The window's settlement lines this region must have before it books."""
    top_up_fen: int
    advance_fen: int
    """The region's advance at the clearinghouse after this close."""


@dataclass(frozen=True, slots=True)
class SettlementBooked(Operation):
    """A region booked a window's settlement (or had already: the same answer again)."""

    TAG: ClassVar[str] = "settlement_booked"
    SIGNED: ClassVar[frozenset[str]] = frozenset({"net_fen", "top_up_fen"})
    window: int
    region: str
    net_fen: int
    """The net the region computed from its lines (the clearinghouse checks it)."""
    top_up_fen: int


@dataclass(frozen=True, slots=True)
class QueryWindow(Operation):
    """Ask the clearinghouse for a window's report (``window`` 0: the latest closed)."""

    TAG: ClassVar[str] = "query_window"
    window: int
    reply_to: str


@dataclass(frozen=True, slots=True)
class WindowSummary(Operation):
    """A window's state, sent to whoever asked (``QueryWindow``, ``CloseWindow``)."""

    TAG: ClassVar[str] = "window_summary"
    window: int
    state: str
    opened_at_ms: int
    closed_at_ms: int
    transfers: int
    amount_fen: int
    regions: int
    """Regions that take part: registered and enabled, or with a transfer in the window."""
    reconciled_regions: int
    """Of those, the ones that have reconciled the window (so never more than ``regions``)."""
    disagreements: int
    repaired: int
    disabled_regions: int = 0
    """Registered regions that are disabled and had no transfer in the window: listed
    (``WindowPosition.taking_part`` false), not counted in ``regions``."""


@dataclass(frozen=True, slots=True)
class WindowPosition(Operation):
    """One region's net position in a window (the positions of a window sum to zero)."""

    TAG: ClassVar[str] = "window_position"
    SIGNED: ClassVar[frozenset[str]] = frozenset({"net_fen"})
    window: int
    region: str
    paid_fen: int
    received_fen: int
    net_fen: int
    reconciled: bool
    disagreements: int
    taking_part: bool = True
    """False for a disabled region without transfers in the window."""


ALL_OPERATIONS: tuple[type[Operation], ...] = (
    EnrollPerson,
    RegisterRegion,
    ConfigureRegion,
    SetRegionEnabled,
    RegistryChanged,
    RecordBinding,
    SubmitBill,
    RequestAid,
    QueryBalance,
    BalanceQuoted,
    Reserve,
    ReserveResult,
    Commit,
    CommitResult,
    Abort,
    Aborted,
    Credit,
    Credited,
    Refuse,
    BillOutcome,
    RequestBinding,
    RevokeBinding,
    ProposeBinding,
    WithdrawBinding,
    VerifyBeneficiary,
    BeneficiaryVerified,
    BindingDecided,
    BindingOutcome,
    InsuranceChanged,
    RequestWalletTransfer,
    RequestPremiumPayment,
    RequestTransfer,
    CheckPremium,
    PremiumQuoted,
    Completed,
    PayPremium,
    CloseWindow,
    SettlementLine,
    SettlementReport,
    Disagreement,
    Reconciled,
    Repair,
    Settle,
    SettlementBooked,
    QueryWindow,
    WindowSummary,
    WindowPosition,
    SubmitAwayBill,
    RequestAwaySettlement,
    AwaySettled,
    RequestAwayRegistration,
    RevokeAwayRegistration,
    ProposeAwayRegistration,
    WithdrawAwayRegistration,
    AwayRegistrationDecided,
    AwayRegistrationOutcome,
)


# --- bounds: what every field may hold ------------------------------------------------------


class Form(Enum):
    """The format a text field's value must have (formats: ``contracts.identifiers``)."""

    FREE = "text"
    REGION_CODE = "a 6-digit region code"
    IDENTIFIER = f"an identifier (1 to {MAX_IDENTIFIER_LENGTH} of {IDENTIFIER_CHARACTERS})"
    ADDRESS = "an address (clearinghouse, region.<code> or client.<identifier>)"


@dataclass(frozen=True, slots=True)
class Text:
    """A text field: at most ``max_length`` characters, in the format ``form``."""

    max_length: int
    form: Form = Form.FREE
    truncated: bool = False
    """Encoding cuts a longer value short rather than refusing it. Only for prose the
    cores compose from several parts (a refusal's detail): refusing to send it, after
    the state change it reports is durable, would leave the transfer without its answer,
    while the reason code, not the prose, carries the meaning."""


@dataclass(frozen=True, slots=True)
class Whole:
    """An integer field from 0 to ``maximum`` (from ``-maximum`` when the record lists it
    in ``SIGNED``)."""

    maximum: int


MAX_AMOUNT_FEN: Final = 10**12
"""¥10 billion: above any bill, balance or window total, far below int64 (SQLite)."""
MAX_TIME_MS: Final = 10**13
"""Instants (epoch ms, until the year 2286) and durations in milliseconds."""
MAX_COUNT: Final = 10**9
"""Window numbers and counts (lines, transfers, regions, disagreements)."""
MAX_YEAR: Final = 9999
MAX_NAME_LENGTH: Final = 64
"""A region's or province's name, e.g. ``石家庄市 Shijiazhuang``."""
MAX_SECRET_LENGTH: Final = 128
MAX_DETAIL_LENGTH: Final = 512
"""A refusal's or outcome's explanation (longer ones are cut short when encoded)."""
MAX_CODE_LENGTH: Final = 32
"""A short vocabulary word carried as text (``flow``, ``kind``, ``role``, ``state``)."""

REGION_CODE: Final = Text(6, Form.REGION_CODE)
PERSON_NUMBER: Final = Text(MAX_IDENTIFIER_LENGTH, Form.IDENTIFIER)
IDENTIFIER: Final = Text(MAX_IDENTIFIER_LENGTH, Form.IDENTIFIER)
ADDRESS: Final = Text(MAX_ADDRESS_LENGTH, Form.ADDRESS)
AMOUNT: Final = Whole(MAX_AMOUNT_FEN)
MILLISECONDS: Final = Whole(MAX_TIME_MS)
COUNT: Final = Whole(MAX_COUNT)

FIELD_BOUNDS: Final[dict[str, Text | Whole]] = {
    # persons
    "psn_no": PERSON_NUMBER,
    "payer": PERSON_NUMBER,
    "copayer": PERSON_NUMBER,
    "beneficiary": PERSON_NUMBER,
    "secret": Text(MAX_SECRET_LENGTH),
    # regions (and every field named ``*_region``, below)
    "region": REGION_CODE,
    "name": Text(MAX_NAME_LENGTH),
    "province": Text(MAX_NAME_LENGTH),
    # requests and their answers
    "transfer_id": IDENTIFIER,
    "binding_id": IDENTIFIER,
    "request_id": IDENTIFIER,
    "registration_id": IDENTIFIER,
    "reply_to": ADDRESS,
    "detail": Text(MAX_DETAIL_LENGTH, truncated=True),
    "flow": Text(MAX_CODE_LENGTH),
    "kind": Text(MAX_CODE_LENGTH),
    "role": Text(MAX_CODE_LENGTH),
    "state": Text(MAX_CODE_LENGTH),
    # numbers (and every field named ``*_fen`` or ``*_ms``, below)
    "year": Whole(MAX_YEAR),
    "window": COUNT,
    "lines": COUNT,
    "transfers": COUNT,
    "regions": COUNT,
    "reconciled_regions": COUNT,
    "disagreements": COUNT,
    "repaired": COUNT,
    "disabled_regions": COUNT,
    "wallet_max_transfers_per_day": COUNT,
    "catalogue_share_permille": Whole(1000),
}
"""The bound of every field, by name: a name means the same thing in every record."""

_BOUNDS_BY_SUFFIX: Final[tuple[tuple[str, Text | Whole], ...]] = (
    ("_region", REGION_CODE),
    ("_fen", AMOUNT),
    ("_ms", MILLISECONDS),
)


def field_bound(name: str) -> Text | Whole:
    """The bound of a field of that name; ``KeyError`` for a name that has none yet."""
    bound = FIELD_BOUNDS.get(name)
    if bound is not None:
        return bound
    for suffix, by_suffix in _BOUNDS_BY_SUFFIX:
        if name.endswith(suffix):
            return by_suffix
    raise KeyError(f"no bound declared for a field named {name!r}")
