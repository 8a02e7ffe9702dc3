"""Each repository's records are its tables' columns, and come back as they went in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from clearinghouse.store import ClearinghouseStore, Region
from clearinghouse.stores import clearing, directory, registry, transfers
from contracts.policy import Policy
from contracts.reasons import ReasonCode
from contracts.vocabulary import Flow, PaymentOrder, Scope
from regions.store import RegionStore
from regions.stores import (
    bills,
    binding_requests,
    credits,
    holds,
    persons,
    premiums,
    settlement,
)
from storage.table import Table

REGION_TABLES = [
    persons.PERSONS,
    holds.HOLDS,
    bills.BILLS,
    binding_requests.BINDING_REQUESTS,
    premiums.PREMIUMS,
    credits.CREDITS,
    settlement.LINES,
    settlement.REPORTS,
]
CLEARINGHOUSE_TABLES = [
    transfers.TRANSFERS,
    transfers.HISTORY,
    transfers.QUOTES,
    registry.REGIONS,
    directory.BINDINGS,
    clearing.WINDOWS,
    clearing.ENTRIES,
    clearing.RECONCILIATIONS,
    clearing.DISAGREEMENTS,
]


@pytest.mark.parametrize("table", REGION_TABLES, ids=lambda t: t.name)
def test_every_field_of_a_region_record_is_a_column(table: Table[Any]) -> None:
    store = RegionStore.open(":memory:")
    columns = {row[1] for row in store.db.connection.execute(f"PRAGMA table_info({table.name})")}
    assert set(table.columns) <= columns


@pytest.mark.parametrize("table", CLEARINGHOUSE_TABLES, ids=lambda t: t.name)
def test_every_field_of_a_clearinghouse_record_is_a_column(table: Table[Any]) -> None:
    store = ClearinghouseStore.open(":memory:")
    columns = {row[1] for row in store.db.connection.execute(f"PRAGMA table_info({table.name})")}
    assert set(table.columns) <= columns


def test_a_region_comes_back_with_its_policy_from_its_columns() -> None:
    store = ClearinghouseStore.open(":memory:")
    policy = Policy(Scope.SCOPE_2024, PaymentOrder.COPAYER_FIRST, False, 1_000, 2, 30_000)
    with store.db.transaction():
        store.registry.upsert(Region("420100", "Wuhan", "Hubei", True, policy))
    fresh = ClearinghouseStore(store.db)  # an empty cache: read from SQLite
    assert fresh.registry.get("420100") == Region("420100", "Wuhan", "Hubei", True, policy)
    row = store.db.connection.execute(
        "SELECT enabled, payment_order, wallet_enabled FROM regions"
    ).fetchone()
    assert row == (1, "copayer_first", 0)


def test_enums_and_absent_reasons_are_read_back_as_their_types() -> None:
    store = RegionStore.open(":memory:")
    with store.db.transaction():
        store.bills.add("t1", "B1", 500, "client", 7, flow=Flow.WALLET, payer="A1")
        store.bills.settle(
            "t1",
            paid_fen=0,
            payer_region="420100",
            reason=ReasonCode.LIMIT_EXCEEDED,
            detail="over",
            at_ms=9,
        )
    bill = RegionStore(store.db).bills.get("t1")
    assert bill is not None
    assert bill.flow is Flow.WALLET and bill.state is bills.BillState.SETTLED
    assert bill.reason is ReasonCode.LIMIT_EXCEEDED and bill.submitted_at_ms == 7


@dataclass(frozen=True)
class _Odd:
    when: object


def test_a_field_of_another_type_must_name_its_codec() -> None:
    with pytest.raises(TypeError, match="needs a Codec"):
        Table("odd", _Odd)
