"""The audit of the settlement between regional funds, on a real cluster's files: the
clean copy is settled and passes; each tampered settlement row is caught, with its region."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from gongji.ledger_audit import AuditResult, audit_data_dir
from tests.audit import tampering

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def audit(data_dir: Path) -> AuditResult:
    return audit_data_dir(data_dir, person_key=b"test key")


def settlement_problems(result: AuditResult) -> list[tuple[str, str]]:
    return [(v.region, v.detail) for v in result.violations if v.kind == "settlement"]


def a_settled_region(data_dir: Path) -> tuple[int, str, int]:
    """(window, region, net) of a settlement that moved money out of a region's fund."""
    with contextlib.closing(sqlite3.connect(tampering.clearinghouse_file(data_dir))) as db:
        row = db.execute(
            "SELECT window, region, net_fen FROM settlements WHERE net_fen < 0"
            " ORDER BY window, region LIMIT 1"
        ).fetchone()
    assert row is not None, "the played cluster settled no window"
    return int(row[0]), str(row[1]), int(row[2])


def test_the_closed_window_moved_money_between_the_funds(data_dir: Path) -> None:
    with contextlib.closing(sqlite3.connect(tampering.clearinghouse_file(data_dir))) as db:
        rows = db.execute("SELECT window, region, net_fen, state FROM settlements").fetchall()
    assert rows and {state for *_, state in rows} == {"booked"}
    windows = {w for w, *_ in rows}
    for window in windows:
        assert sum(net for w, _, net, _ in rows if w == window) == 0
    assert any(net > 0 for _, _, net, _ in rows) and any(net < 0 for _, _, net, _ in rows)
    window, region, net = a_settled_region(data_dir)
    with contextlib.closing(sqlite3.connect(tampering.region_file(data_dir, region))) as db:
        fund = db.execute(
            "SELECT credits_posted - debits_posted FROM ledger_accounts"
            " WHERE id = 'settlement:fund'"
        ).fetchone()
        positions = db.execute(
            "SELECT COALESCE(SUM(credits_posted - debits_posted), 0) FROM ledger_accounts"
            " WHERE id LIKE 'interregion:%'"
        ).fetchone()
    # No advance in the audit's cluster: the fund paid its net out, its positions are paid.
    assert fund[0] == -net > 0
    assert positions[0] == 0
    result = audit(data_dir)
    assert result.ok, result.violations
    assert result.checked["settlements"] == len(rows)


def test_a_tampered_net_at_the_clearinghouse_is_caught(data_dir: Path) -> None:
    window, region, _ = a_settled_region(data_dir)
    with tampering.writing(tampering.clearinghouse_file(data_dir)) as db:
        db.execute(
            "UPDATE settlements SET net_fen = net_fen - 100, received_fen = received_fen - 100"
            " WHERE window = ? AND region = ?",
            (window, region),
        )
    problems = settlement_problems(audit(data_dir))
    regions = {r for r, _ in problems}
    assert region in regions
    assert any("sum to -100" in detail for _, detail in problems)
    assert any("the clearing entries give" in detail for _, detail in problems)


def test_a_tampered_top_up_at_a_region_is_caught(data_dir: Path) -> None:
    window, region, _ = a_settled_region(data_dir)
    with tampering.writing(tampering.region_file(data_dir, region)) as db:
        db.execute(
            "UPDATE fund_settlements SET top_up_fen = top_up_fen + 1 WHERE window = ?", (window,)
        )
    problems = settlement_problems(audit(data_dir))
    assert {r for r, _ in problems} == {region}
    assert any("issued" in detail for _, detail in problems)


def test_a_settlement_booked_twice_in_the_journal_is_caught(data_dir: Path) -> None:
    """The region's journal pays one counterparty's position twice (totals moved too)."""
    window, region, _ = a_settled_region(data_dir)
    with tampering.writing(tampering.region_file(data_dir, region)) as db:
        tid, debit, credit, amount, at_ms = db.execute(
            "SELECT transfer_id, debit_account, credit_account, amount_fen, at_ms FROM journal"
            " WHERE transfer_id LIKE ? ORDER BY seq LIMIT 1",
            (f"settle:{window}:%",),
        ).fetchone()
        db.execute(
            "INSERT INTO journal (transfer_id, phase, debit_account, credit_account,"
            " amount_fen, at_ms) VALUES (?, 'posted', ?, ?, ?, ?)",
            (tid, debit, credit, amount, at_ms + 1),
        )
        for account, column in ((debit, "debits_posted"), (credit, "credits_posted")):
            db.execute(
                f"UPDATE ledger_accounts SET {column} = {column} + ? WHERE id = ?",
                (amount, account),
            )
    result = audit(data_dir)
    problems = settlement_problems(result)
    assert any(r == region and "the journal settled" in d for r, d in problems)
    assert any(r == region and "advance account holds" in d for r, d in problems)


def test_a_deleted_state_change_is_caught(data_dir: Path) -> None:
    window, region, _ = a_settled_region(data_dir)
    with tampering.writing(tampering.clearinghouse_file(data_dir)) as db:
        db.execute(
            "DELETE FROM settlement_changes WHERE window = ? AND region = ? AND state = 'booked'",
            (window, region),
        )
    problems = settlement_problems(audit(data_dir))
    assert any(r == region and "last state change says issued" in d for r, d in problems)


def test_a_settlement_the_region_never_booked_is_caught(data_dir: Path) -> None:
    window, region, _ = a_settled_region(data_dir)
    with tampering.writing(tampering.region_file(data_dir, region)) as db:
        db.execute("DELETE FROM fund_settlements WHERE window = ?", (window,))
    problems = settlement_problems(audit(data_dir))
    assert any(r == region and "booked at the clearinghouse, not here" in d for r, d in problems)
