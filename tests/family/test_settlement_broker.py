"""Settlement between regional funds over the real RabbitMQ: closing a window moves each
region's net position between the funds (through the advances at the clearinghouse),
every region books it, reconciles, and the audit agrees; a re-sent close (and with it
every ``Settle``) has exactly one effect."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest

from clearinghouse.settlement import SettlementRule
from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import CloseWindow, SubmitBill, WindowSummary
from contracts.reasons import COMMITTED
from gongji.ledger_audit import audit_data_dir
from tests.family.conftest import CHENGDU, SHANGHAI, WUHAN, Family
from tests.family.test_clearing_broker import _until_reconciled, gongji

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


async def pay(f: Family, tid: str, psn: str, amount: int) -> None:
    outcome = await f.client.submit(CHENGDU, SubmitBill(tid, psn, amount, f.client.address), 30)
    assert outcome.outcome == COMMITTED, outcome


async def until_booked(f: Family, window: int, timeout_s: float = 30) -> list[Any]:
    """The window's settlements once every region booked them (bounded)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        store = f.cluster.clearinghouse_store()
        try:
            rows = store.settlements.of_window(window)
        finally:
            store.close()
        if rows and all(r.state == "booked" for r in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"window {window} was not booked everywhere: {rows}")
        await asyncio.sleep(0.2)


def region_figures(f: Family, code: str) -> dict[str, int]:
    """Posted balances of a region's settlement and inter-region accounts, and how many
    settlement journal rows and state changes it has."""
    store = f.cluster.region_store(code)
    try:
        sql = store.db.connection
        balances = dict(
            sql.execute(
                "SELECT id, credits_posted - debits_posted FROM ledger_accounts"
                " WHERE id LIKE 'settlement:%'"
            ).fetchall()
        )
        (positions,) = sql.execute(
            "SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM ledger_accounts"
            " WHERE id LIKE 'interregion:%'"
        ).fetchone()
        (entries,) = sql.execute(
            "SELECT COUNT(*) FROM journal WHERE transfer_id LIKE 'settle:%'"
            " OR transfer_id LIKE 'topup:%'"
        ).fetchone()
        (changes,) = sql.execute("SELECT COUNT(*) FROM fund_settlement_changes").fetchone()
    finally:
        store.close()
    return {
        "fund": balances.get("settlement:fund", 0),
        "advance": -balances.get("settlement:advance", 0),
        "positions": positions,
        "entries": entries,
        "changes": changes,
    }


async def test_a_closed_window_moves_money_between_the_regional_funds(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await f.seed_binding("b2", "S1", SHANGHAI, "B2", CHENGDU)
    await pay(f, "t1", "B1", 4_000)  # Wuhan pays 4,000 fen into Chengdu
    await pay(f, "t2", "B2", 5_000)  # Chengdu's own account first: Shanghai pays the rest
    closed = await gongji(f, "admin", "close-window")
    assert closed["regions_reconciled"] == closed["regions"]
    nets = {p["region"]: p["net_fen"] for p in closed["positions"]}
    rows = {r.region: r for r in await until_booked(f, closed["window"])}
    assert {code: r.net_fen for code, r in rows.items()} == {
        code: net for code, net in nets.items() if net or code in rows
    }
    assert sum(r.net_fen for r in rows.values()) == 0 and nets[CHENGDU] > 0
    for code, row in rows.items():
        figures = region_figures(f, code)
        # No advance: each fund paid its net out (Wuhan, Shanghai) or took it in (Chengdu),
        # and the window's positions between the regions are paid off.
        assert (figures["fund"], figures["advance"]) == (-row.net_fen, 0), code
        assert figures["positions"] == 0, code
    final = await _until_reconciled(f, window=closed["window"])
    assert final["disagreements"] == 0
    audit = audit_data_dir(f.cluster.data_dir)
    assert audit.ok, audit.violations
    assert audit.checked["settlements"] == len(rows)


async def test_a_resent_close_settles_once_with_an_advance(family: Family) -> None:
    f = family
    # The clearinghouse restarts keeping a standing advance of ¥500 per region.
    await f.cluster.stop("clearinghouse")
    f.cluster.rule = SettlementRule(advance_fen=50_000)
    await f.cluster.start_clearinghouse()
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await pay(f, "t1", "B1", 3_000)
    close = CloseWindow("close-once", f.client.address)
    for _ in range(3):  # the operator's close, re-sent: the same window, settled once
        await f.client.send(CLEARINGHOUSE, close)
    rows = {r.region: r for r in await until_booked(f, 1)}
    assert rows[WUHAN].net_fen == -3_000 and rows[CHENGDU].net_fen == 3_000
    # First close: each fund pays in the advance, and the payer its net besides.
    assert rows[WUHAN].top_up_fen == 53_000 and rows[CHENGDU].top_up_fen == 47_000
    first = {code: region_figures(f, code) for code in rows}
    assert first[WUHAN]["advance"] == first[CHENGDU]["advance"] == 50_000
    assert first[WUHAN]["fund"] == 53_000 and first[CHENGDU]["fund"] == 47_000
    assert first[WUHAN]["entries"] == 2 and first[CHENGDU]["entries"] == 2  # a leg, a top-up
    assert first[WUHAN]["changes"] == 1  # booked once (issued and booked in one step)

    await f.client.send(CLEARINGHOUSE, close)  # once more, after everything was booked
    await pay(f, "t2", "B1", 1_000)
    await gongji(f, "admin", "close-window")
    second = {r.region: r for r in await until_booked(f, 2)}
    # Window 1 stayed as it was; window 2 only moved its own net; the advances held.
    again = {code: region_figures(f, code) for code in rows}
    assert again[WUHAN]["fund"] == 53_000 + 1_000 and again[CHENGDU]["fund"] == 47_000 - 1_000
    assert again[WUHAN]["advance"] == again[CHENGDU]["advance"] == 50_000
    assert again[WUHAN]["entries"] == 4 and again[WUHAN]["changes"] == 2
    assert second[WUHAN].advance_before_fen == 50_000 == second[WUHAN].advance_after_fen
    store = f.cluster.clearinghouse_store()
    try:
        changes = store.db.connection.execute(
            "SELECT window, region, event, state FROM settlement_changes ORDER BY seq"
        ).fetchall()
    finally:
        store.close()
    window_one = [c for c in changes if c[0] == 1]
    assert sorted(window_one) == sorted(
        [
            (1, code, event, state)
            for code in rows
            for event, state in (
                ("issue", "issued"),
                ("booked", "booked"),
            )
        ]
    )
    audit = audit_data_dir(f.cluster.data_dir)
    assert audit.ok, audit.violations
    while not f.client.replies.empty():  # the close's answers: summaries of window 1
        reply = f.client.replies.get_nowait()
        assert not isinstance(reply, WindowSummary) or reply.window in (1, 2)


async def test_report_flows_prints_the_province_matrix(family: Family) -> None:
    f = family
    await f.seed_binding("b1", "A1", WUHAN, "B1", CHENGDU)
    await pay(f, "t1", "B1", 2_500)
    await gongji(f, "admin", "close-window")
    await until_booked(f, 1)
    flows = json.loads(await report_flows(f, "--json"))
    window, now_open = flows["windows"]
    assert (now_open["window"], now_open["state"], now_open["transfers"]) == (2, "open", 0)
    assert window["moved_fen"] == {"420000": {"510000": 2_500}}
    assert window["net_fen"] == {"420000": -2_500, "510000": 2_500}
    assert window["settlement"] == "booked"
    assert flows["total"]["net_fen"] == {"420000": -2_500, "510000": 2_500}
    text = await report_flows(f, "--window", "1")
    assert "window 1 (closed): 1 cross-region transfers; settlement booked" in text
    payer_row = next(line for line in text.splitlines() if line.startswith("420000"))
    assert payer_row.split()[1:] == ["-", "25.00", "-25.00"]
    missing = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gongji.cli",
        "report",
        "flows",
        "--window",
        "9",
        "--data-dir",
        str(f.cluster.data_dir),
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await missing.communicate()
    assert missing.returncode == 1 and b"no clearing window 9" in err


async def report_flows(f: Family, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gongji.cli",
        "report",
        "flows",
        *args,
        "--data-dir",
        str(f.cluster.data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    return out.decode()
