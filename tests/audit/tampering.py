"""Corruptions of a cluster's files, each what one bug (or one hand) would leave behind.

Written with plain SQL, as a faulty service would: where the bug would also move the
account totals (a post done twice), the totals move too, so that only the audit's
cross-checks, not a trivially inconsistent file, give it away.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Committed:
    transfer_id: str
    flow: str
    payer_region: str
    payee_region: str
    posted_fen: int


@contextlib.contextmanager
def writing(path: Path) -> Iterator[sqlite3.Connection]:
    """One transaction on a file of the copy (committed on leaving)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        yield db
        db.execute("COMMIT")
    finally:
        db.close()


def region_file(data_dir: Path, code: str) -> Path:
    return data_dir / f"region-{code}.sqlite"


def clearinghouse_file(data_dir: Path) -> Path:
    return data_dir / "clearinghouse.sqlite"


def committed(data_dir: Path, flow: str = "copay", *, cross: bool = True) -> list[Committed]:
    """The clearinghouse's committed transfers of a flow, between two regions or within one."""
    with contextlib.closing(sqlite3.connect(clearinghouse_file(data_dir))) as db:
        rows = db.execute(
            "SELECT transfer_id, flow, payer_region, payee_region, posted_fen FROM transfers"
            " WHERE state = 'committed' AND flow = ? AND (payer_region != payee_region) = ?"
            " ORDER BY transfer_id",
            (flow, cross),
        ).fetchall()
    return [Committed(*row) for row in rows]


def committed_legs(data_dir: Path) -> list[Committed]:
    """The legs that paid of the committed bills at a region of care, each as the transfer
    of its own that its payer and the region of care book it as."""
    with contextlib.closing(sqlite3.connect(clearinghouse_file(data_dir))) as db:
        rows = db.execute(
            "SELECT l.leg_id, t.flow, l.region, t.payee_region, l.posted_fen"
            " FROM transfer_legs l JOIN transfers t USING (transfer_id)"
            " WHERE t.state = 'committed' AND l.posted_fen > 0 ORDER BY l.leg_id"
        ).fetchall()
    return [Committed(*row) for row in rows]


def _add(db: sqlite3.Connection, account: str, column: str, amount: int) -> None:
    db.execute(
        f"UPDATE ledger_accounts SET {column} = {column} + ? WHERE id = ?", (amount, account)
    )


def post_twice(data_dir: Path, t: Committed) -> None:
    """The payer posts the transfer's hold a second time (journal and totals)."""
    with writing(region_file(data_dir, t.payer_region)) as db:
        debit, credit, amount, at_ms = db.execute(
            "SELECT debit_account, credit_account, amount_fen, at_ms FROM journal"
            " WHERE transfer_id = ? AND phase = 'post'",
            (t.transfer_id,),
        ).fetchone()
        db.execute(
            "INSERT INTO journal (transfer_id, phase, debit_account, credit_account, amount_fen,"
            " at_ms) VALUES (?, 'post', ?, ?, ?, ?)",
            (t.transfer_id, debit, credit, amount, at_ms + 1),
        )
        _add(db, debit, "debits_pending", -amount)
        _add(db, debit, "debits_posted", amount)
        _add(db, credit, "credits_pending", -amount)
        _add(db, credit, "credits_posted", amount)


def delete_credit(data_dir: Path, t: Committed) -> None:
    """The payee loses the credit: its record, its journal entry and what it did to totals."""
    with writing(region_file(data_dir, t.payee_region)) as db:
        debit, credit, amount = db.execute(
            "SELECT debit_account, credit_account, amount_fen FROM journal"
            " WHERE transfer_id = ? AND debit_account LIKE 'interregion:%'",
            (t.transfer_id,),
        ).fetchone()
        db.execute(
            "DELETE FROM journal WHERE transfer_id = ? AND debit_account = ?",
            (t.transfer_id, debit),
        )
        db.execute("DELETE FROM credits WHERE transfer_id = ?", (t.transfer_id,))
        _add(db, debit, "debits_posted", -amount)
        _add(db, credit, "credits_posted", -amount)


def flip_to_aborted(data_dir: Path, t: Committed) -> None:
    """The clearinghouse's record says aborted where it had committed."""
    with writing(clearinghouse_file(data_dir)) as db:
        db.execute(
            "UPDATE transfers SET state = 'aborted', reason = 'TIMEOUT' WHERE transfer_id = ?",
            (t.transfer_id,),
        )


def rewind_to_posted(data_dir: Path, t: Committed) -> None:
    """A co-payment as it is between the payer's post and the payee's credit: the
    clearinghouse crediting, awaiting the payee's answer; the payee has neither credit nor outcome
    (they are written together); nothing cleared yet (clearing comes with the commit)."""
    delete_credit(data_dir, t)
    with writing(region_file(data_dir, t.payee_region)) as db:
        db.execute(
            "UPDATE bills SET state = 'requested', paid_fen = 0, payer_region = '',"
            " settled_at_ms = NULL WHERE transfer_id = ?",
            (t.transfer_id,),
        )
    with writing(clearinghouse_file(data_dir)) as db:
        db.execute(
            "UPDATE transfers SET state = 'crediting' WHERE transfer_id = ?",
            (t.transfer_id,),
        )
        db.execute("DELETE FROM clearing_entries WHERE transfer_id = ?", (t.transfer_id,))


def richest_account(data_dir: Path, code: str) -> str:
    """The personal account of ``code`` with the most available."""
    with contextlib.closing(sqlite3.connect(region_file(data_dir, code))) as db:
        (account,) = db.execute(
            "SELECT id FROM ledger_accounts WHERE id LIKE 'psn:%'"
            " ORDER BY credits_posted - debits_posted - debits_pending DESC, id LIMIT 1"
        ).fetchone()
    return str(account)


def add_a_fen(data_dir: Path, code: str, account: str) -> None:
    """One fen more in an account's posted credits, from nowhere."""
    with writing(region_file(data_dir, code)) as db:
        _add(db, account, "credits_posted", 1)


def leave_hold_pending(
    data_dir: Path, transfer_id: str, code: str, account: str, state: str = "pending"
) -> None:
    """Turn a refused reserve into a 100-fen hold on ``account`` that was never released
    after its expiry (or, ``prepared``, a leg's hold that never expires): hold record,
    pending journal entry and totals all agree."""
    amount = 100
    with writing(region_file(data_dir, code)) as db:
        payee, created = db.execute(
            "SELECT payee_region, created_at_ms FROM holds WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
        creditor = f"interregion:{payee}"
        db.execute(
            "INSERT OR IGNORE INTO ledger_accounts (id, no_overdraft) VALUES (?, 0)", (creditor,)
        )
        db.execute(
            "UPDATE holds SET payer = ?, held_fen = ?, state = ?, reason = NULL,"
            " expires_at_ms = ?, resolved_at_ms = NULL WHERE transfer_id = ?",
            (account.removeprefix("psn:"), amount, state, created + 1, transfer_id),
        )
        db.execute(
            "INSERT INTO journal (transfer_id, phase, debit_account, credit_account, amount_fen,"
            " at_ms) VALUES (?, 'pending', ?, ?, ?, ?)",
            (transfer_id, account, creditor, amount, created),
        )
        _add(db, account, "debits_pending", amount)
        _add(db, creditor, "credits_pending", amount)


def refused_hold(data_dir: Path) -> tuple[str, str]:
    """(transfer id, payer region) of an aborted transfer whose payer refused the reserve."""
    with contextlib.closing(sqlite3.connect(clearinghouse_file(data_dir))) as db:
        candidates = db.execute(
            "SELECT transfer_id, payer_region FROM transfers WHERE state = 'aborted'"
            " AND payer_region != '' ORDER BY transfer_id"
        ).fetchall()
    for transfer_id, code in candidates:
        path = region_file(data_dir, code)
        if not path.exists():
            continue
        with contextlib.closing(sqlite3.connect(path)) as db:
            row = db.execute(
                "SELECT 1 FROM holds WHERE transfer_id = ? AND state = 'refused'", (transfer_id,)
            ).fetchone()
        if row is not None:
            return str(transfer_id), str(code)
    raise AssertionError("the played cluster has no refused reserve")


def refused_leg(data_dir: Path) -> tuple[str, str]:
    """(leg id, region) of a leg that paid nothing because its region refused the hold, at
    a region with a personal account that has 100 fen to hold (``leave_hold_pending``)."""
    with contextlib.closing(sqlite3.connect(clearinghouse_file(data_dir))) as db:
        candidates = db.execute(
            "SELECT leg_id, region FROM transfer_legs WHERE state = 'not_held' ORDER BY leg_id"
        ).fetchall()
    for leg_id, code in candidates:
        with contextlib.closing(sqlite3.connect(region_file(data_dir, code))) as db:
            row = db.execute("SELECT 1 FROM holds WHERE transfer_id = ?", (leg_id,)).fetchone()
            room = db.execute(
                "SELECT 1 FROM ledger_accounts WHERE id LIKE 'psn:%'"
                " AND credits_posted - debits_posted - debits_pending >= 100"
            ).fetchone()
        if row is not None and room is not None:
            return str(leg_id), str(code)
    raise AssertionError("the played bills away from home have no refused leg")


def unbalance_post(data_dir: Path, t: Committed) -> None:
    """The payer's journal posts 1 fen more than its pending reserve (totals follow it)."""
    with writing(region_file(data_dir, t.payer_region)) as db:
        debit, credit = db.execute(
            "SELECT debit_account, credit_account FROM journal"
            " WHERE transfer_id = ? AND phase = 'post'",
            (t.transfer_id,),
        ).fetchone()
        db.execute(
            "UPDATE journal SET amount_fen = amount_fen + 1"
            " WHERE transfer_id = ? AND phase = 'post'",
            (t.transfer_id,),
        )
        _add(db, debit, "debits_pending", -1)
        _add(db, debit, "debits_posted", 1)
        _add(db, credit, "credits_pending", -1)
        _add(db, credit, "credits_posted", 1)


def enrol_twice(data_dir: Path, code: str) -> str:
    """A person's opening balance paid in a second time; returns the person number."""
    with writing(region_file(data_dir, code)) as db:
        transfer_id, debit, credit, amount, at_ms = db.execute(
            "SELECT transfer_id, debit_account, credit_account, amount_fen, at_ms FROM journal"
            " WHERE transfer_id LIKE 'open:%' ORDER BY seq LIMIT 1"
        ).fetchone()
        db.execute(
            "INSERT INTO journal (transfer_id, phase, debit_account, credit_account, amount_fen,"
            " at_ms) VALUES (?, 'posted', ?, ?, ?, ?)",
            (transfer_id, debit, credit, amount, at_ms),
        )
        _add(db, debit, "debits_posted", amount)
        _add(db, credit, "credits_posted", amount)
    return str(transfer_id).removeprefix("open:")


def person_numbers(data_dir: Path) -> set[str]:
    """Every person number in the regions' files."""
    numbers: set[str] = set()
    for path in data_dir.glob("region-*.sqlite"):
        with contextlib.closing(sqlite3.connect(path)) as db:
            numbers |= {row[0] for row in db.execute("SELECT psn_no FROM persons")}
    return numbers
