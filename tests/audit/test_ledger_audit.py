"""The audit on a real cluster's files: the clean copy passes, each corruption is caught
with its kind, its transfer id and its region."""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gongji.ledger_audit import AuditResult, PersonTags, Violation, audit_data_dir
from gongji.ledger_snapshot import SnapshotError
from tests.audit import tampering
from tests.audit.conftest import Played

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def audit(data_dir: Path) -> AuditResult:
    return audit_data_dir(data_dir, person_key=b"test key")


def found(result: AuditResult) -> set[tuple[str, str, str]]:
    return {(v.kind, v.transfer_id, v.region) for v in result.violations}


def test_the_played_cluster_has_every_kind_of_transfer(data_dir: Path) -> None:
    """What the corruptions below need: committed flows between and within regions, aborts."""
    assert len(tampering.committed(data_dir, "copay")) >= 5
    assert tampering.committed(data_dir, "wallet")
    assert tampering.committed(data_dir, "premium") or tampering.committed(
        data_dir, "premium", cross=False
    )
    assert tampering.committed(data_dir, "copay", cross=False)
    assert tampering.refused_hold(data_dir)


def test_the_clean_copy_passes(data_dir: Path) -> None:
    result = audit(data_dir)
    assert result.violations == []
    assert result.ok
    checked, money = result.checked, result.money
    assert checked["regions"] == 5
    assert checked["committed"] > 0 and checked["aborted"] > 0
    assert checked["in_flight"] == 0
    assert checked["transfers"] == checked["committed"] + checked["aborted"]
    assert checked["credits"] == checked["committed"]
    assert money["opening"] > 0
    assert money["opening"] == sum(
        money[k] for k in ("accounts", "wallets", "bills_paid", "premiums_paid", "positions")
    )
    assert money["positions"] == 0 and money["held"] == 0
    assert money["bills_paid"] > 0 and money["wallets"] > 0 and money["premiums_paid"] > 0


def test_the_audit_while_the_services_ran_passed(played: Played) -> None:
    assert played.audit_while_running.violations == []
    assert played.audit_while_running.checked["committed"] > 0


def test_a_transfer_in_flight_is_no_violation(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[4]
    tampering.rewind_to_posted(data_dir, t)
    result = audit(data_dir)
    # The rewound transfer was in the closed, settled window, which settled it as
    # committed: the settlement check rightly disagrees; the position checks must not.
    assert [v for v in result.violations if v.kind != "settlement"] == []
    assert result.checked["in_flight"] == 1
    # Posted at the payer, not yet credited: between the two regions, for now.
    assert result.money["in_flight"] == t.posted_fen == result.money["positions"]


def test_the_audit_reads_no_service_code() -> None:
    """Independent of the stores it audits: importing it loads none of their modules."""
    probe = (
        "import sys, gongji.ledger_audit; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('regions', 'clearinghouse', 'storage', 'contracts') or m == 'gongji.audit'))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_a_double_post_at_the_payer_is_caught(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[0]
    tampering.post_twice(data_dir, t)
    violations = found(audit(data_dir))
    assert ("double_post", t.transfer_id, t.payer_region) in violations
    # A post that settles no reserve, and A now says it paid B more than B received.
    assert ("journal", t.transfer_id, t.payer_region) in violations
    assert "position_mismatch" in {kind for kind, _, _ in violations}


def test_a_deleted_credit_at_the_payee_is_caught(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[1]
    tampering.delete_credit(data_dir, t)
    violations = found(audit(data_dir))
    assert ("missing_credit", t.transfer_id, t.payee_region) in violations
    assert ("bill_mismatch", t.transfer_id, t.payee_region) in violations
    assert "position_mismatch" in {kind for kind, _, _ in violations}


def test_a_wallet_transfer_credited_nowhere_is_caught(data_dir: Path) -> None:
    t = tampering.committed(data_dir, "wallet")[0]
    tampering.delete_credit(data_dir, t)
    assert ("missing_credit", t.transfer_id, t.payee_region) in found(audit(data_dir))


def test_a_flipped_decision_is_caught_at_both_ends(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[2]
    tampering.flip_to_aborted(data_dir, t)
    violations = found(audit(data_dir))
    assert ("posted_for_aborted", t.transfer_id, t.payer_region) in violations
    assert ("credited_for_aborted", t.transfer_id, t.payee_region) in violations
    assert ("clearing", t.transfer_id, "") in violations  # cleared as committed


def test_an_extra_fen_in_an_account_is_caught(data_dir: Path) -> None:
    code = tampering.committed(data_dir)[0].payer_region
    account = tampering.richest_account(data_dir, code)
    tampering.add_a_fen(data_dir, code, account)
    result = audit(data_dir)
    assert ("conservation", "", code) in found(result)
    conservation = next(v for v in result.violations if v.kind == "conservation")
    assert "found" in conservation.detail
    # The journal never moved that fen: the account is named, by a tag, not its number.
    journal = [v for v in result.violations if v.kind == "journal"]
    assert len(journal) == 2  # that account, and posted debits != posted credits
    psn_no = account.removeprefix("psn:")
    assert all(psn_no not in v.detail for v in result.violations)
    assert any(v.region == code and "psn:psn#" in v.detail for v in journal)


def test_an_expired_pending_hold_is_caught_and_nothing_else(data_dir: Path) -> None:
    transfer_id, code = tampering.refused_hold(data_dir)
    account = tampering.richest_account(data_dir, code)
    tampering.leave_hold_pending(data_dir, transfer_id, code, account)
    result = audit(data_dir)
    assert found(result) == {("expired_hold", transfer_id, code)}
    assert result.money["held"] == 100


def test_a_pending_hold_before_its_expiry_is_no_violation(data_dir: Path) -> None:
    transfer_id, code = tampering.refused_hold(data_dir)
    account = tampering.richest_account(data_dir, code)
    tampering.leave_hold_pending(data_dir, transfer_id, code, account)
    with contextlib.closing(sqlite3.connect(tampering.region_file(data_dir, code))) as db:
        (expires,) = db.execute(
            "SELECT expires_at_ms FROM holds WHERE transfer_id = ?", (transfer_id,)
        ).fetchone()
    assert audit_data_dir(data_dir, as_of_ms=expires - 1).violations == []
    assert audit_data_dir(data_dir, as_of_ms=expires).violations != []


def test_a_journal_that_does_not_balance_is_caught(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[3]
    tampering.unbalance_post(data_dir, t)
    violations = found(audit(data_dir))
    assert ("journal", t.transfer_id, t.payer_region) in violations  # post != its pending
    assert ("amount_mismatch", t.transfer_id, t.payer_region) in violations  # != committed


def test_a_transfer_within_one_region_is_checked_too(data_dir: Path) -> None:
    t = tampering.committed(data_dir, "copay", cross=False)[0]
    tampering.post_twice(data_dir, t)
    violations = found(audit(data_dir))
    assert ("double_post", t.transfer_id, t.payer_region) in violations
    assert ("position_mismatch", "", t.payer_region) in violations


def test_violations_name_no_person(data_dir: Path) -> None:
    code = tampering.committed(data_dir)[0].payer_region
    account = tampering.richest_account(data_dir, code)
    tampering.add_a_fen(data_dir, code, account)
    psn_no = tampering.enrol_twice(data_dir, code)
    result = audit(data_dir)
    repeated = [v for v in result.violations if v.kind == "repeated_entry"]
    assert [(v.transfer_id, v.region) for v in repeated] == [
        (f"open:{PersonTags(b'test key').tag(psn_no)}", code)
    ]
    text = "\n".join(map(str, result.violations))
    assert "psn:psn#" in text
    for number in tampering.person_numbers(data_dir):
        assert number not in text


def test_the_audit_changes_nothing_and_takes_no_lock(data_dir: Path) -> None:
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir.iterdir()}
    assert audit(data_dir).ok
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in data_dir.iterdir()}
    assert after == before  # no file changed, and no -wal or -shm left behind
    # A service holding its write lock mid-transaction neither blocks the audit nor shows
    # it what is not committed.
    code = tampering.committed(data_dir)[0].payer_region
    writer = sqlite3.connect(tampering.region_file(data_dir, code), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE ledger_accounts SET credits_posted = credits_posted + 1")
        assert audit(data_dir).ok
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_a_directory_that_is_no_cluster_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="no data directory"):
        audit(tmp_path / "nowhere")
    with pytest.raises(SnapshotError, match=r"no clearinghouse\.sqlite"):
        audit(tmp_path)


def test_a_violation_prints_its_transfer_and_region() -> None:
    v = Violation("double_post", "t-1", "420100", "posted 2 times")
    assert str(v) == "double_post t-1 region 420100: posted 2 times"
    assert v.as_json() == {
        "kind": "double_post",
        "transfer_id": "t-1",
        "region": "420100",
        "detail": "posted 2 times",
    }
