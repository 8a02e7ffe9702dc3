"""Reason codes: why a transfer did not (fully) happen.

One enum with stable string values. The values travel on the wire and appear in
metrics, logs and reports, so they never change once published; add, never rename.
"""

from __future__ import annotations

from enum import StrEnum

COMMITTED = "COMMITTED"
"""The outcome name of a transfer that moved money (in full or in part)."""


class ReasonCode(StrEnum):
    """Why a request was refused or a transfer aborted."""

    REGION_NOT_ENABLED = "REGION_NOT_ENABLED"
    """A region the transfer touches has not enabled cross-region mutual aid."""
    UNKNOWN_REGION = "UNKNOWN_REGION"
    """A region the transfer touches is not in the national registry."""
    NO_BINDING = "NO_BINDING"
    """The beneficiary has no co-payer bound in the national directory."""
    BENEFICIARY_NOT_INSURED = "BENEFICIARY_NOT_INSURED"
    """The beneficiary is not insured in the region the bill was sent to."""
    UNKNOWN_PERSON = "UNKNOWN_PERSON"
    """The person number is not known to the region asked."""
    NO_PERSONAL_ACCOUNT = "NO_PERSONAL_ACCOUNT"
    """The co-payer has no personal account (not employee-insured)."""
    ZERO_BALANCE = "ZERO_BALANCE"
    """The chosen co-payer's available balance is zero."""
    TIMEOUT = "TIMEOUT"
    """A region did not answer in time; nothing was posted."""
    HOLD_EXPIRED = "HOLD_EXPIRED"
    """The payer region released the hold (it expired) before the commit arrived."""
    DUPLICATE_MISMATCH = "DUPLICATE_MISMATCH"
    """The transfer id exists already with different fields."""
    INVALID_AMOUNT = "INVALID_AMOUNT"
    """The amount is zero or negative."""
    UNKNOWN_TRANSFER = "UNKNOWN_TRANSFER"
    """The region has no record of the transfer it was asked to commit."""


def describe(reason: ReasonCode) -> str:
    """The one-line meaning of a reason code (its docstring in this module)."""
    return _DESCRIPTIONS[reason]


_DESCRIPTIONS: dict[ReasonCode, str] = {
    ReasonCode.REGION_NOT_ENABLED: "a region the transfer touches has not enabled mutual aid",
    ReasonCode.UNKNOWN_REGION: "a region the transfer touches is not in the national registry",
    ReasonCode.NO_BINDING: "the beneficiary has no co-payer bound in the national directory",
    ReasonCode.BENEFICIARY_NOT_INSURED: "the beneficiary is not insured in the bill's region",
    ReasonCode.UNKNOWN_PERSON: "the person number is not known to the region asked",
    ReasonCode.NO_PERSONAL_ACCOUNT: "the co-payer has no personal account",
    ReasonCode.ZERO_BALANCE: "the chosen co-payer's available balance is zero",
    ReasonCode.TIMEOUT: "a region did not answer in time; nothing was posted",
    ReasonCode.HOLD_EXPIRED: "the payer's hold expired before the commit arrived",
    ReasonCode.DUPLICATE_MISMATCH: "the transfer id exists already with different fields",
    ReasonCode.INVALID_AMOUNT: "the amount is zero or negative",
    ReasonCode.UNKNOWN_TRANSFER: "the region has no record of the transfer to commit",
}
