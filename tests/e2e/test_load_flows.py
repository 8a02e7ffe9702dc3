"""``gongji load --mix``: co-payments, wallet transfers and premium payments under load."""

from __future__ import annotations

from pathlib import Path

import pytest

from gongji.load.flows import MixError, parse_mix
from tests.e2e.conftest import load_command, own_cluster

pytestmark = [pytest.mark.broker]


@pytest.mark.timeout(180)
def test_every_flow_is_carried_and_reported(amqp_url: str, tmp_path: Path) -> None:
    import json

    with own_cluster(amqp_url, tmp_path / "cluster", "flows") as state:
        done = load_command(
            state,
            amqp_url,
            *("--rate", "100", "--duration", "6", "--drain", "60"),
            *("--mix", "copay=0.5,wallet=0.3,premium=0.2"),
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    by_flow = report["outcomes_by_flow"]
    assert set(by_flow) == {"copay", "wallet", "premium"}
    assert report["completed"] == report["sent"]
    assert set(report["latency_ms"]) == {"copay", "wallet", "premium"}
    # Wallet transfers commit, and the daily limit (3 a day per co-payer) refuses some.
    assert by_flow["wallet"].get("COMMITTED", 0) > 0
    # A premium is paid once per person and year: repeats are refused.
    assert by_flow["premium"].get("COMMITTED", 0) > 0
    assert report["family_moved_fen"]["wallet"] > 0
    assert report["conserved"] is True


def test_a_flow_the_generator_does_not_send_is_refused() -> None:
    with pytest.raises(MixError, match="not sent by the load generator yet"):
        parse_mix("copay,binding")


@pytest.mark.timeout(180)
def test_bills_away_from_home_are_carried_and_the_books_agree(
    amqp_url: str, tmp_path: Path
) -> None:
    import json

    with own_cluster(amqp_url, tmp_path / "cluster", "away") as state:
        done = load_command(
            state,
            amqp_url,
            *("--rate", "60", "--duration", "4", "--drain", "60"),
            *("--mix", "copay=0.5,away=0.5"),
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    by_flow = report["outcomes_by_flow"]
    assert set(by_flow) == {"copay", "away"}
    assert report["completed"] == report["sent"]
    # Registered before the load: every bill at a region of care is paid.
    assert by_flow["away"].get("COMMITTED", 0) > 0
    assert not [e for e in report["errors"] if e.startswith("setup_") and report["errors"][e]]
    assert report["conserved"] is True
