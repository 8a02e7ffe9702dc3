"""``gongji demo`` without a broker plays the scenario on the simulated network."""

from __future__ import annotations

import asyncio
import json

import pytest

from contracts.reasons import COMMITTED
from gongji.cli import main
from gongji.demo import play_on_sim
from gongji.scenario import load_default_scenario

# What the default scenario can reach: each is deliberately provoked by its requests.
REACHABLE = {
    COMMITTED,
    "REGION_NOT_ENABLED",
    "UNKNOWN_REGION",
    "NO_BINDING",
    "BENEFICIARY_NOT_INSURED",
    "ZERO_BALANCE",
    "DUPLICATE_MISMATCH",
    "IDENTITY_CHECK_FAILED",
    "POLICY_DISAGREEMENT",
    "WALLET_NOT_ENABLED",
    "LIMIT_EXCEEDED",
    "PREMIUM_ALREADY_PAID",
    "INSUFFICIENT_BALANCE",
}


@pytest.mark.timeout(120)
def test_default_scenario_reaches_every_reason_and_reconciles_clean() -> None:
    result = asyncio.run(play_on_sim(load_default_scenario()))
    assert result.transport == "sim" and result.regions == 31
    assert set(result.outcomes) >= REACHABLE, set(result.outcomes) ^ REACHABLE
    assert result.books_balanced and result.conserved, result.problems
    assert result.problems == []
    window = result.window
    assert window["net_sum_fen"] == 0 and window["reconciled_clean"]
    assert window["regions_reconciled"] == window["regions"] > 0
    assert window["regions"] + window["regions_disabled"] == 31
    assert result.duplicates_same_outcome == result.duplicates_replayed == 10
    assert result.simulation is not None and result.simulation["violations"] == 0


@pytest.mark.timeout(180)
def test_default_scenario_under_faults_still_balances() -> None:
    result = asyncio.run(play_on_sim(load_default_scenario(), faults="all"))
    assert result.books_balanced and result.conserved, result.problems
    assert result.simulation is not None and result.simulation["violations"] == 0


@pytest.mark.timeout(120)
def test_demo_command_without_a_broker_uses_the_simulation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AMQP_URL", raising=False)
    assert main(["demo", "--transfers", "100", "--persons", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["transport"] == "sim"
    for key in ("outcomes", "moved_fen", "books_balanced", "conserved"):
        assert key in report
    assert report["books_balanced"] is True and report["conserved"] is True


@pytest.mark.timeout(120)
def test_demo_summary_names_the_regions_the_disabled_ones_and_the_money_by_pair(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AMQP_URL", raising=False)
    scenario = load_default_scenario()
    off = [r for r in scenario.regions if r.code not in scenario.enabled_after(100)]
    assert off  # the default scenario leaves some regions out
    assert main(["demo", "--transfers", "100", "--persons", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("outcomes", "moved_fen", "books_balanced", "conserved", "window", "regions"):
        assert key in report  # the keys it had
    assert report["region_names"] == {r.code: r.name for r in scenario.regions}
    assert report["not_enabled"] == [r.code for r in off]
    pairs = report["money_by_region_pair"]
    assert sum(p["fen"] for p in pairs) == report["moved_fen"]
    assert any(p["payer"] != p["payee"] for p in pairs)  # the mutual aid crosses regions
    assert [p["fen"] for p in pairs] == sorted((p["fen"] for p in pairs), reverse=True)

    assert main(["demo", "--transfers", "100", "--persons", "50"]) == 0
    text = capsys.readouterr().out
    assert f"regions ({len(scenario.regions)}):" in text
    assert all(f"{r.code} {r.name}" in text for r in scenario.regions)
    assert f"not enabled at the end ({len(off)}):" in text
    biggest = next(p for p in pairs if p["payer"] != p["payee"])
    assert f"{biggest['payer']} → {biggest['payee']}  {biggest['fen']:>12}" in text
