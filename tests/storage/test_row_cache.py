"""The stores' write-through caches: never a value SQLite does not hold."""

from __future__ import annotations

import pytest

from clearinghouse.store import Candidate, ClearinghouseStore, Transfer, TransferState
from contracts.vocabulary import Flow
from regions.store import BILLS_PAID, OPENING_FUND, HoldState, RegionStore, person_account
from storage.cache import MISS, RowCache


def test_oldest_key_goes_first_when_full() -> None:
    cache: RowCache[str, int] = RowCache("t", limit=2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("a", 3)  # an update keeps its place
    cache.put("c", 4)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (MISS, 2, 4)


def test_a_disabled_cache_remembers_nothing() -> None:
    cache: RowCache[str, int] = RowCache("t", enabled=False)
    cache.put("a", 1)
    assert cache.get("a") is MISS and len(cache) == 0


def _transfer(state: TransferState) -> Transfer:
    return Transfer(
        "t1", Flow.COPAY, "B1", "510100", 5_000, state, 1, 1, [Candidate("A1", "420100")]
    )


def test_a_rolled_back_save_is_not_read_back() -> None:
    store = ClearinghouseStore.open(":memory:")
    with store.db.transaction():
        store.save(_transfer(TransferState.RESERVING))
    with pytest.raises(RuntimeError), store.db.transaction():
        store.save(_transfer(TransferState.COMMITTING))
        assert store.transfer("t1").state is TransferState.COMMITTING  # type: ignore[union-attr]
        raise RuntimeError("the batch fails")
    t = store.transfer("t1")
    assert t is not None and t.state is TransferState.RESERVING


def test_changes_a_handler_does_not_save_stay_out_of_the_store() -> None:
    store = ClearinghouseStore.open(":memory:")
    with store.db.transaction():
        store.save(_transfer(TransferState.RESERVING))
    t = store.transfer("t1")
    assert t is not None
    t.state = TransferState.ABORTED
    t.candidates.append(Candidate("A2", "310000"))
    again = store.transfer("t1")
    assert again is not None
    assert again.state is TransferState.RESERVING and len(again.candidates) == 1


def test_cached_totals_follow_every_movement_and_a_rollback() -> None:
    store = RegionStore.open(":memory:")
    books = store.books
    payer = person_account("A1")
    with store.db.transaction():
        books.open_account(payer, no_overdraft=True)
        books.transfer("open", OPENING_FUND, payer, 10_000, 0)
        books.reserve("t1", payer, BILLS_PAID, 4_000, 1)
        books.post("t1", payer, BILLS_PAID, 4_000, 2)
    with pytest.raises(RuntimeError), store.db.transaction():
        books.reserve("t2", payer, BILLS_PAID, 1_000, 3)
        assert books.available(payer) == 5_000
        raise RuntimeError("the batch fails")
    cached = books.totals(payer)
    row = store.db.connection.execute(
        "SELECT debits_pending, debits_posted, credits_pending, credits_posted"
        " FROM ledger_accounts WHERE id = ?",
        (payer,),
    ).fetchone()
    assert cached is not None
    assert (
        (
            cached.debits_pending,
            cached.debits_posted,
            cached.credits_pending,
            cached.credits_posted,
        )
        == tuple(row)
        == (0, 4_000, 0, 10_000)
    )
    assert books.check() == []


def test_bills_and_holds_from_memory_equal_their_rows() -> None:
    store = RegionStore.open(":memory:")
    with store.db.transaction():
        store.add_bill("t1", "B1", 9_000, "client.x", 5, flow=Flow.COPAY)
        store.record_local_payment(
            "t1", own_paid_fen=1_000, wallet_paid_fen=500, aid_requested_fen=7_500
        )
        store.settle_bill(
            "t1", paid_fen=7_500, payer_region="420100", reason=None, detail="", at_ms=9
        )
        store.add_hold(
            "t2", "A1", "510100", 3_000, 2_000, HoldState.PENDING, None, 99, 5, Flow.WALLET
        )
        store.resolve_hold("t2", HoldState.POSTED, None, 7)
    cached = (store.bill("t1"), store.hold("t2"))
    store.db.forget_cached()
    assert cached == (store.bill("t1"), store.hold("t2"))
    assert cached[1] is not None and cached[1].flow == "wallet"


def test_a_second_save_updates_every_changed_column() -> None:
    store = ClearinghouseStore.open(":memory:")
    with store.db.transaction():
        store.save(_transfer(TransferState.QUOTING))
    t = store.transfer("t1")
    assert t is not None
    t.state, t.payer, t.payer_region, t.held_fen = TransferState.ABORTING, "A2", "310000", 900
    t.candidates = [Candidate("A2", "310000"), Candidate("A1", "420100")]
    t.next_action_ms, t.amount_fen = 77, 4_000
    with store.db.transaction():
        store.save(t)
    store.db.forget_cached()
    assert store.transfer("t1") == t


def test_a_save_whose_row_is_gone_inserts_it_again() -> None:
    store = ClearinghouseStore.open(":memory:")
    with store.db.transaction():
        store.save(_transfer(TransferState.RESERVING))
        # Not something gongji does: the row vanishes behind the cache's back.
        store.db.connection.execute("DELETE FROM transfers")
        store.save(_transfer(TransferState.COMMITTING))
    store.db.forget_cached()
    t = store.transfer("t1")
    assert t is not None and t.state is TransferState.COMMITTING


def test_fetch_loads_once_and_revise_changes_only_known_records() -> None:
    cache: RowCache[str, int] = RowCache("t")
    loads: list[str] = []

    def load(key: str) -> int | None:
        loads.append(key)
        return None if key == "absent" else 5

    assert [cache.fetch("a", load), cache.fetch("a", load)] == [5, 5]
    assert [cache.fetch("absent", load), cache.fetch("absent", load)] == [None, None]
    assert loads == ["a", "absent"]
    cache.revise("a", lambda v: v + 1)
    cache.revise("absent", lambda v: v + 1)
    cache.revise("unknown", lambda v: v + 1)
    assert (cache.get("a"), cache.get("absent"), cache.get("unknown")) == (6, None, MISS)
