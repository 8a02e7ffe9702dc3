"""``gongji load --mix``: co-payments, wallet transfers, premium payments, binding requests
and revocations under load."""

from __future__ import annotations

import subprocess
import sys
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
            *("--mix", "copay=0.5,wallet=0.2,premium=0.1,binding=0.2"),
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    by_flow = report["outcomes_by_flow"]
    flows = {"copay", "wallet", "premium", "binding", "revoke"}
    assert set(by_flow) == flows
    assert report["completed"] == report["sent"]
    assert set(report["latency_ms"]) == flows
    # New relatives are bound (the directory records them) and some of those the load
    # made are revoked again once their binding was seen recorded.
    assert by_flow["binding"].get("COMMITTED", 0) > 0
    assert by_flow["revoke"].get("COMMITTED", 0) > 0
    assert report["latency_ms"]["revoke"]["count"] == sum(by_flow["revoke"].values())
    # Wallet transfers commit, and the daily limit (3 a day per co-payer) refuses some.
    assert by_flow["wallet"].get("COMMITTED", 0) > 0
    # A premium is paid once per person and year: repeats are refused.
    assert by_flow["premium"].get("COMMITTED", 0) > 0
    assert report["family_moved_fen"]["wallet"] > 0
    assert report["conserved"] is True
    # Co-payments end paid in full, in part or refused, and the run compares with the
    # national scenario's targets.
    assert sum(report["bills_paid"].values()) == sum(by_flow["copay"].values())
    saved = tmp_path / "load.json"
    saved.write_text(done.stdout, encoding="utf-8")
    compared = subprocess.run(
        [
            *(sys.executable, "-m", "gongji.cli", "report", "calibration", str(saved)),
            *("--scenario", "national", "--json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert compared.returncode == 0, compared.stderr
    figures = {f["name"]: f for f in json.loads(compared.stdout)["figures"]}
    assert sum(
        figures[f"flow_shares.{f}"]["measured"] for f in ("copay", "wallet", "premium", "binding")
    ) == pytest.approx(1.0)
    assert 10_000 <= figures["wallet_amount_fen"]["measured"] <= 126_000


def test_the_mix_of_the_issue_parses_and_an_unknown_flow_is_refused() -> None:
    assert parse_mix("copay=0.6,wallet=0.2,premium=0.1,binding=0.1") == pytest.approx(
        {"copay": 0.6, "wallet": 0.2, "premium": 0.1, "binding": 0.1}
    )
    with pytest.raises(MixError, match="unknown flow 'bind'"):
        parse_mix("copay,bind")
