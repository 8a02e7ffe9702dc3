"""Settlement between regional funds in the cores: a close settles each region once,
through its advance; a ``Settle`` that overtakes its lines waits for them; a repeated one
books nothing more; one that disagrees with the lines books nothing."""

from __future__ import annotations

import pytest

from clearinghouse.settlement import SettlementRule
from contracts.effects import Anomaly
from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    CloseWindow,
    Settle,
    SettlementBooked,
    SettlementLine,
    SettlementReport,
)
from contracts.settlement_states import SettlementState
from contracts.vocabulary import Flow
from gongji.loopback import Loopback
from regions.store import SETTLEMENT_ADVANCE, SETTLEMENT_FUND
from tests.cores.test_copayment_flow import CHENGDU, CLIENT, SHANGHAI, WUHAN, bill, world


def balance(net: Loopback, code: str, account: str) -> int:
    totals = net.regions[code].books.totals(account)
    return 0 if totals is None else totals.posted_balance


def settle_entries(net: Loopback, code: str) -> int:
    (count,) = (
        net.regions[code]
        .store.db.connection.execute(
            "SELECT COUNT(*) FROM journal WHERE transfer_id LIKE 'settle:%'"
            " OR transfer_id LIKE 'topup:%'"
        )
        .fetchone()
    )
    return int(count)


def paid_window(advance_fen: int = 0) -> Loopback:
    """Wuhan pays 30,000 and Shanghai 20,000 fen into Chengdu in window 1."""
    net = world()
    net.clearinghouse.settlement.rule = SettlementRule(advance_fen)
    bill(net, "t1", "B1", 30_000)  # A1 in Wuhan
    net.send(CLEARINGHOUSE, SettlementBooked(9, WUHAN, 0, 0))  # unknown window: an anomaly
    net.deliver_all()
    assert any(isinstance(e, Anomaly) for e in net.events[CLEARINGHOUSE])
    net.events[CLEARINGHOUSE].clear()
    net.send(CLEARINGHOUSE, CloseWindow("close-1", CLIENT))
    return net


def test_a_close_settles_every_region_through_its_fund() -> None:
    net = paid_window()
    net.deliver_all()
    rows = {s.region: s for s in net.clearinghouse.store.settlements.of_window(1)}
    assert {code: s.net_fen for code, s in rows.items()} == {WUHAN: -30_000, CHENGDU: 30_000}
    assert {s.state for s in rows.values()} == {SettlementState.BOOKED}
    # No advance: Wuhan's fund pays its net, Chengdu's takes it; the positions are paid.
    assert balance(net, WUHAN, SETTLEMENT_FUND) == 30_000
    assert balance(net, CHENGDU, SETTLEMENT_FUND) == -30_000
    assert balance(net, WUHAN, SETTLEMENT_ADVANCE) == balance(net, CHENGDU, SETTLEMENT_ADVANCE) == 0
    assert balance(net, WUHAN, f"interregion:{CHENGDU}") == 0
    assert balance(net, CHENGDU, f"interregion:{WUHAN}") == 0
    assert SHANGHAI not in rows  # no transfer in the window: nothing to settle


def test_a_resent_close_settles_nothing_more() -> None:
    net = paid_window(advance_fen=100_000)
    net.deliver_all()
    before = {code: settle_entries(net, code) for code in (WUHAN, CHENGDU)}
    funds = {code: balance(net, code, SETTLEMENT_FUND) for code in (WUHAN, CHENGDU)}
    for _ in range(2):
        net.send(CLEARINGHOUSE, CloseWindow("close-1", CLIENT))
    net.deliver_all()
    assert {code: settle_entries(net, code) for code in (WUHAN, CHENGDU)} == before
    assert {code: balance(net, code, SETTLEMENT_FUND) for code in (WUHAN, CHENGDU)} == funds
    # The first close paid the advance in: Wuhan its net besides, Chengdu less its net.
    assert funds == {WUHAN: 130_000, CHENGDU: 70_000}
    assert -balance(net, WUHAN, SETTLEMENT_ADVANCE) == 100_000
    assert net.clearinghouse.store.settlements.advance(WUHAN) == 100_000
    assert not [e for e in net.events[CLEARINGHOUSE] if isinstance(e, Anomaly)]


def test_a_settle_before_its_lines_waits_for_them() -> None:
    net = paid_window()
    net.deliver_all()  # window 1 closes; now a second window, delivered out of order
    bill(net, "t2", "B1", 5_000)
    net.send(CLEARINGHOUSE, CloseWindow("close-2", CLIENT))
    deliver_settles_first(net)
    chengdu = net.regions[CHENGDU].store.fund_settlements
    record = chengdu.get(2)
    assert record is not None and record.state is SettlementState.BOOKED
    changes = (
        net.regions[CHENGDU]
        .store.db.connection.execute(
            "SELECT event, state FROM fund_settlement_changes WHERE window = 2 ORDER BY seq"
        )
        .fetchall()
    )
    assert changes == [("instructed", "awaiting_lines"), ("lines_complete", "booked")]
    assert balance(net, CHENGDU, SETTLEMENT_FUND) == -35_000


def deliver_settles_first(net: Loopback, limit: int = 100_000) -> None:
    """Deliver everything, except that each ``Settle`` overtakes the lines queued before it."""
    for _ in range(limit):
        if not net.queue:
            return
        settles = [i for i in net.queue if isinstance(i.op, Settle)]
        item = settles[0] if settles else net.queue[0]
        net.queue.remove(item)
        net._deliver(item)
    raise RuntimeError("messages still in flight after the delivery limit")


def test_a_settle_that_disagrees_with_the_lines_books_nothing() -> None:
    net = paid_window()
    net.deliver_all()
    core = net.regions[SHANGHAI]  # had no transfer: give it a window of its own
    line = SettlementLine(7, "x1", Flow.COPAY, SHANGHAI, WUHAN, 1_000)
    with core.store.db.transaction():
        core.handle(line, 0)
        core.handle(SettlementReport(7, SHANGHAI, 1_000, 0, -1_000, 1, 0, 1), 0)
        effects = core.handle(Settle(7, SHANGHAI, -900, 1, 900, 0), 0)
    assert effects.outgoing == []
    assert any("not booked" in e.what for e in effects.events if isinstance(e, Anomaly))
    assert settle_entries(net, SHANGHAI) == 0
    record = core.store.fund_settlements.get(7)
    assert record is None or record.state is not SettlementState.BOOKED


def test_a_booking_at_another_net_leaves_the_settlement_issued() -> None:
    net = paid_window()
    net.deliver_all()
    ch = net.clearinghouse
    with ch.store.db.transaction():
        s = ch.store.settlements.get(1, WUHAN)
        assert s is not None
        ch.store.db.connection.execute(
            "UPDATE settlements SET state = 'issued' WHERE window = 1 AND region = ?", (WUHAN,)
        )
        effects = ch.handle(SettlementBooked(1, WUHAN, -1, s.top_up_fen), 0)
    assert any(isinstance(e, Anomaly) for e in effects.events)
    again = ch.store.settlements.get(1, WUHAN)
    assert again is not None and again.state is SettlementState.ISSUED
    # A restart re-sends it; the region answers as booked already, and it is marked booked.
    net.take(CLEARINGHOUSE, ch.resume(0))
    net.deliver_all()
    booked = ch.store.settlements.get(1, WUHAN)
    assert booked is not None and booked.state is SettlementState.BOOKED
    assert region_address(WUHAN) in net.events


def test_an_advance_is_never_negative() -> None:
    with pytest.raises(ValueError):
        SettlementRule(-1)
    assert SettlementRule(500).top_up(advance_before=500, net=-200) == 200
    assert SettlementRule(0).top_up(advance_before=0, net=300) == -300
