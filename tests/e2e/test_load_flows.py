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


FAMILIES = """
name = "families"
seed = 5

[[regions]]
code = "310000"
name = "上海市 Shanghai"
province = "上海 Shanghai"
enabled = true

[[regions]]
code = "420100"
name = "武汉市 Wuhan"
province = "湖北 Hubei"
enabled = true

[[regions]]
code = "510100"
name = "成都市 Chengdu"
province = "四川 Sichuan"
enabled = true

[population]
persons_per_region = 0

[bills]
amount_fen = { min = 1000, max = 26000 }

[[persons]]
number = "fam-son-sh"
region = "310000"
balance_fen = 800000
secret = "s1"

[[persons]]
number = "fam-son-wh"
region = "420100"
balance_fen = 3000
secret = "s2"

[[persons]]
number = "fam-mother-cd"
region = "510100"
insurance = "resident"

[[persons]]
number = "fam-daughter-sh"
region = "310000"
balance_fen = 0
secret = "s3"

[[persons]]
number = "fam-father-wh"
region = "420100"
balance_fen = 0
secret = "s4"

[[bindings]]
copayer = "fam-son-sh"
beneficiary = "fam-mother-cd"

[[bindings]]
copayer = "fam-son-wh"
beneficiary = "fam-mother-cd"

[[bindings]]
copayer = "fam-daughter-sh"
beneficiary = "fam-father-wh"
"""


@pytest.mark.timeout(240)
def test_a_scenarios_families_under_load(amqp_url: str, tmp_path: Path) -> None:
    """Named families seeded from a scenario and loaded with its amounts: a mother with
    two co-payers (one short), a father whose only co-payer has nothing."""
    import json

    scenario = tmp_path / "families.toml"
    scenario.write_text(FAMILIES, encoding="utf-8")
    with own_cluster(amqp_url, tmp_path / "cluster", "families") as state:
        seeded = subprocess.run(
            [
                sys.executable,
                "-m",
                "gongji.cli",
                "admin",
                "seed",
                "--scenario",
                str(scenario),
                "--data-dir",
                state.data_dir,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert seeded.returncode == 0, seeded.stderr
        assert "5 persons, 3 bindings" in seeded.stdout
        done = load_command(
            state,
            amqp_url,
            *("--rate", "50", "--duration", "4", "--drain", "60"),
            *(
                "--mix",
                "copay=0.7,wallet=0.2,binding=0.1",
                "--scenario",
                str(scenario),
                "--scenario-population",
            ),
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["conserved"] is True
    assert report["completed"] == report["sent"]
    copay = report["outcomes_by_flow"]["copay"]
    assert copay.get("COMMITTED", 0) > 0
    assert copay.get("ZERO_BALANCE", 0) > 0  # the father's co-payer has nothing
    assert sum(report["bills_paid"].values()) == sum(copay.values())


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
        # The independent audit of the files reads each bill away from home by its legs.
        audited = subprocess.run(
            [sys.executable, "-m", "gongji.cli", "audit", "--data-dir", state.data_dir, "--json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    audit = json.loads(audited.stdout)
    assert (audited.returncode, audit["violations"]) == (0, []), audited.stderr[-3000:]
    assert audit["checked"]["legs"] > 0 and audit["checked"]["clearing_entries"] > 0
    report = json.loads(done.stdout)
    by_flow = report["outcomes_by_flow"]
    assert set(by_flow) == {"copay", "away"}
    assert report["completed"] == report["sent"]
    # Registered before the load: every bill at a region of care is paid.
    assert by_flow["away"].get("COMMITTED", 0) > 0
    assert not [e for e in report["errors"] if e.startswith("setup_") and report["errors"][e]]
    assert report["conserved"] is True
