"""Reason codes: why a transfer (or binding) did not happen, or not in full.

One enum with stable string values. The values travel on the wire and appear in
metrics, logs and reports, so they never change once published; add, never rename.
``describe`` gives each one's one-line meaning, as listed in the README.
"""

from __future__ import annotations

from enum import StrEnum

COMMITTED = "COMMITTED"
"""The outcome name of a transfer that moved money (in full or in part)."""


class ReasonCode(StrEnum):
    """Why a request was refused or a transfer aborted."""

    REGION_NOT_ENABLED = "REGION_NOT_ENABLED"
    UNKNOWN_REGION = "UNKNOWN_REGION"
    NO_BINDING = "NO_BINDING"
    BENEFICIARY_NOT_INSURED = "BENEFICIARY_NOT_INSURED"
    UNKNOWN_PERSON = "UNKNOWN_PERSON"
    NO_PERSONAL_ACCOUNT = "NO_PERSONAL_ACCOUNT"
    ZERO_BALANCE = "ZERO_BALANCE"
    TIMEOUT = "TIMEOUT"
    HOLD_EXPIRED = "HOLD_EXPIRED"
    DUPLICATE_MISMATCH = "DUPLICATE_MISMATCH"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    UNKNOWN_TRANSFER = "UNKNOWN_TRANSFER"
    IDENTITY_CHECK_FAILED = "IDENTITY_CHECK_FAILED"
    POLICY_DISAGREEMENT = "POLICY_DISAGREEMENT"
    RELATIONSHIP_NOT_ALLOWED = "RELATIONSHIP_NOT_ALLOWED"
    WALLET_NOT_ENABLED = "WALLET_NOT_ENABLED"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    PREMIUM_ALREADY_PAID = "PREMIUM_ALREADY_PAID"
    INSUFFICIENT_BALANCE = "INSUFFICIENT_BALANCE"
    NOT_RESIDENT_INSURED = "NOT_RESIDENT_INSURED"
    UNKNOWN_BINDING = "UNKNOWN_BINDING"
    NOT_REGISTERED_AWAY = "NOT_REGISTERED_AWAY"
    REGISTRATION_EXPIRED = "REGISTRATION_EXPIRED"
    REGISTRATION_NOT_STARTED = "REGISTRATION_NOT_STARTED"
    CARE_REGION_NOT_ENABLED = "CARE_REGION_NOT_ENABLED"
    UNKNOWN_REGISTRATION = "UNKNOWN_REGISTRATION"
    INVALID_PERIOD = "INVALID_PERIOD"
    CARE_NOT_AWAY = "CARE_NOT_AWAY"


def describe(reason: ReasonCode) -> str:
    """The one-line meaning of a reason code."""
    return _DESCRIPTIONS[reason]


_DESCRIPTIONS: dict[ReasonCode, str] = {
    ReasonCode.REGION_NOT_ENABLED: (
        "A region the transfer touches has not enabled cross-region mutual aid."
    ),
    ReasonCode.UNKNOWN_REGION: "A region the transfer touches is not in the national registry.",
    ReasonCode.NO_BINDING: "The beneficiary has no co-payer bound in the national directory.",
    ReasonCode.BENEFICIARY_NOT_INSURED: (
        "The beneficiary is not insured in the region the bill was sent to."
    ),
    ReasonCode.UNKNOWN_PERSON: "The person number is not known to the region asked.",
    ReasonCode.NO_PERSONAL_ACCOUNT: "The co-payer has no personal account (not employee-insured).",
    ReasonCode.ZERO_BALANCE: "The chosen co-payer's available balance is zero.",
    ReasonCode.TIMEOUT: "A region did not answer in time; nothing was posted.",
    ReasonCode.HOLD_EXPIRED: (
        "The payer region released the hold (it expired) before the commit arrived."
    ),
    ReasonCode.DUPLICATE_MISMATCH: "The transfer id exists already with different fields.",
    ReasonCode.INVALID_AMOUNT: "The amount is zero or negative.",
    ReasonCode.UNKNOWN_TRANSFER: "The region has no record of the transfer it was asked to commit.",
    ReasonCode.IDENTITY_CHECK_FAILED: "The co-payer's identity check (face or password) failed.",
    ReasonCode.POLICY_DISAGREEMENT: (
        "One region's policy allows the binding and the other's refuses it."
    ),
    ReasonCode.RELATIONSHIP_NOT_ALLOWED: "No region's policy allows this relationship.",
    ReasonCode.WALLET_NOT_ENABLED: "A region of the wallet transfer has not enabled the wallet.",
    ReasonCode.LIMIT_EXCEEDED: "A wallet limit (per transfer or per day) would be exceeded.",
    ReasonCode.PREMIUM_ALREADY_PAID: (
        "The resident premium of this person and year is paid (or being paid)."
    ),
    ReasonCode.INSUFFICIENT_BALANCE: (
        "The account cannot cover an amount that must be paid in full."
    ),
    ReasonCode.NOT_RESIDENT_INSURED: (
        "The person is not resident-insured, so has no premium to pay."
    ),
    ReasonCode.UNKNOWN_BINDING: "No such binding of this co-payer.",
    ReasonCode.NOT_REGISTERED_AWAY: (
        "The beneficiary has no registration of care away from home (备案) for this region."
    ),
    ReasonCode.REGISTRATION_EXPIRED: (
        "The beneficiary's registration of care away from home ended before the bill."
    ),
    ReasonCode.REGISTRATION_NOT_STARTED: (
        "The beneficiary's registration of care away from home starts after the bill."
    ),
    ReasonCode.CARE_REGION_NOT_ENABLED: (
        "The region of care has not enabled direct settlement of care away from home."
    ),
    ReasonCode.UNKNOWN_REGISTRATION: "No such registration of care away from home of this person.",
    ReasonCode.INVALID_PERIOD: "The registration's end is not after its start.",
    ReasonCode.CARE_NOT_AWAY: "The region of care is the insured region itself.",
}
