"""The audit on bills at a region of care (异地就医): each is checked by its legs.

The family of ``tests.family.test_away_broker`` (parents insured in Henan treated in
Guangzhou, sons in Guangzhou and Shanghai) on the real services and the real RabbitMQ:
bills paid by a co-payer in the region of care, across three regions, under a
co-payer-first policy, and refused. The clean files pass; a leg that went wrong is caught
under its leg id and its region.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contracts.reasons import COMMITTED, ReasonCode
from gongji.ledger_audit import AuditResult, audit_data_dir
from tests.audit import tampering
from tests.family import test_away_broker as family
from tests.family.test_away_broker import DAY_MS, GUANGZHOU, HENAN, HUBEI, SHANGHAI, Away, now_ms

away = family.away
"""The family's running cluster (its fixture)."""

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def audit(data_dir: Path) -> AuditResult:
    return audit_data_dir(data_dir, person_key=b"test key")


def found(result: AuditResult) -> set[tuple[str, str, str]]:
    return {(v.kind, v.transfer_id, v.region) for v in result.violations}


def copy_of(data_dir: Path, into: Path) -> Path:
    into.mkdir()
    for path in data_dir.glob("*.sqlite*"):
        shutil.copy2(path, into / path.name)
    return into


async def _bills_played(away: Away) -> None:
    for rid, psn, care, insured in (
        ("r1", "P1", GUANGZHOU, HENAN),
        ("r2", "P2", GUANGZHOU, HENAN),
        ("r3", "H1", SHANGHAI, HUBEI),
    ):
        registered = await away.register(rid, psn, care, now_ms() - DAY_MS, insured=insured)
        assert registered.outcome == COMMITTED
    outcomes = [
        await away.bill("t1", "P1", GUANGZHOU, 10_000),  # the co-payer in the region of care
        await away.bill("t2", "P2", GUANGZHOU, 20_000),  # own account in Henan, son in Shanghai
        await away.bill("t3", "H1", SHANGHAI, 10_000, insured=HUBEI),  # co-payer first
        await away.bill("t4", "P1", SHANGHAI, 1_000),  # not registered there
    ]
    assert [o.outcome for o in outcomes] == [
        COMMITTED,
        COMMITTED,
        COMMITTED,
        ReasonCode.NOT_REGISTERED_AWAY,
    ]


async def test_bills_away_from_home_audit_clean_and_a_bad_leg_is_caught(
    away: Away, tmp_path: Path
) -> None:
    await _bills_played(away)
    data_dir = away.cluster.data_dir
    clean = audit(data_dir)
    assert clean.violations == []
    assert clean.checked["legs"] >= 4 and clean.checked["clearing_entries"] >= 2
    assert clean.money["in_flight"] == 0 and clean.money["held"] == 0
    legs = tampering.committed_legs(data_dir)
    crossing = [leg for leg in legs if leg.payer_region != leg.payee_region]
    assert {leg.payer_region for leg in crossing} >= {HENAN, SHANGHAI}
    assert any(leg.payer_region == leg.payee_region for leg in legs)  # paid in the region of care

    # A leg posted at its payer but never credited at the region of care.
    lost = copy_of(data_dir, tmp_path / "lost")
    leg = crossing[0]
    tampering.delete_credit(lost, leg)
    violations = found(audit(lost))
    assert ("missing_credit", leg.transfer_id, leg.payee_region) in violations
    assert "position_mismatch" in {kind for kind, _, _ in violations}
    assert not {v for v in violations if v[0] in ("clearing", "unknown_transfer")}

    # A leg posted twice at its payer.
    twice = copy_of(data_dir, tmp_path / "twice")
    tampering.post_twice(twice, leg)
    assert ("double_post", leg.transfer_id, leg.payer_region) in found(audit(twice))

    # A leg its region refused, yet its hold is still there (prepared: it never expires).
    held = copy_of(data_dir, tmp_path / "held")
    refused, code = tampering.refused_leg(held)
    account = tampering.richest_account(held, code)
    tampering.leave_hold_pending(held, refused, code, account, state="prepared")
    assert found(audit(held)) == {("leg_still_held", refused, code)}

    # The clearinghouse's record of a bill flipped to aborted: every leg that paid is wrong.
    flipped = copy_of(data_dir, tmp_path / "flipped")
    tampering.flip_to_aborted(flipped, tampering.Committed(leg.transfer_id[:-2], "", "", "", 0))
    violations = found(audit(flipped))
    assert ("posted_for_aborted", leg.transfer_id, leg.payer_region) in violations
    assert ("credited_for_aborted", leg.transfer_id, leg.payee_region) in violations
    assert ("clearing", leg.transfer_id, "") in violations
