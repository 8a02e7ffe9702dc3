"""``gongji demo`` without a broker runs on the simulated network."""

from __future__ import annotations

import json

import pytest

from gongji.cli import main
from gongji.demo import run_demo_simulated


@pytest.mark.timeout(120)
def test_demo_on_the_simulated_network_balances_and_conserves() -> None:
    report = run_demo_simulated(transfers=200, persons_per_region=100, seed=2, faults="all")
    assert report.transport == "sim"
    assert report.books_balanced and report.conserved, report.problems
    assert report.outcomes.get("COMMITTED", 0) > 0 and report.moved_fen > 0
    assert report.duplicates_same_outcome == report.duplicates_replayed == 10
    assert report.outcomes.get("DUPLICATE_MISMATCH") == 1
    assert report.simulation is not None and report.simulation["violations"] == 0


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
