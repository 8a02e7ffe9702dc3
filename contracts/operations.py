"""The operations that travel between clients, regions and the clearinghouse.

Each operation is a frozen record with a short wire ``TAG``. Fields are positional
on the wire in declaration order, so a field is only ever appended (with a default)
within one schema version. Money is integer fen; fields ending in ``_fen`` are
checked to be non-negative integers when decoded.

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
from enum import StrEnum
from typing import ClassVar

from contracts.reasons import COMMITTED, ReasonCode


class Insurance(StrEnum):
    """How a person is insured in the region that owns the person's records."""

    EMPLOYEE = "employee"
    """Employee insurance: the person has a personal account."""
    RESIDENT = "resident"
    """Resident insurance: no personal account; a yearly premium."""
    NONE = "none"
    """Not insured."""


class Relationship(StrEnum):
    """The beneficiary's relationship to the co-payer."""

    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    GRANDPARENT = "grandparent"
    GRANDCHILD = "grandchild"


@dataclass(frozen=True, slots=True)
class Operation:
    """Base of every operation; ``TAG`` names it on the wire."""

    TAG: ClassVar[str] = ""


# --- set-up: population, registry, directory -------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrollPerson(Operation):
    """Record a person insured in the receiving region (idempotent by ``psn_no``)."""

    TAG: ClassVar[str] = "enroll_person"
    psn_no: str
    insurance: Insurance
    opening_balance_fen: int = 0


@dataclass(frozen=True, slots=True)
class RegisterRegion(Operation):
    """Add or update a region in the clearinghouse's national registry."""

    TAG: ClassVar[str] = "register_region"
    region: str
    name: str
    province: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class SetRegionEnabled(Operation):
    """Enable or disable cross-region mutual aid for a registered region."""

    TAG: ClassVar[str] = "set_region_enabled"
    region: str
    enabled: bool


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
    """The one final outcome of a bill, sent to the submitter.

    ``reason`` is None when money moved (``paid_fen`` > 0; ``remaining_fen`` is left
    to other means such as cash).
    """

    TAG: ClassVar[str] = "bill_outcome"
    transfer_id: str
    paid_fen: int
    remaining_fen: int
    payer_region: str
    reason: ReasonCode | None = None
    detail: str = ""

    @property
    def outcome(self) -> str:
        """``COMMITTED`` or the reason code's value."""
        return COMMITTED if self.reason is None else self.reason.value


ALL_OPERATIONS: tuple[type[Operation], ...] = (
    EnrollPerson,
    RegisterRegion,
    SetRegionEnabled,
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
)
