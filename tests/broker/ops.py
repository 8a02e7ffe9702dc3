"""Small operations for broker tests."""

from __future__ import annotations

from contracts.operations import Commit, Operation, SubmitBill

REGION_A = "region.420100"
REGION_B = "region.110000"


def commits(count: int, prefix: str = "t") -> list[Operation]:
    """``count`` distinct ``Commit`` operations."""
    return [Commit(transfer_id=f"{prefix}{i}") for i in range(count)]


def bill(transfer_id: str) -> SubmitBill:
    """A ``SubmitBill`` with every field set."""
    return SubmitBill(
        transfer_id=transfer_id,
        beneficiary="P-001",
        amount_fen=12_345,
        reply_to="client.test",
    )
