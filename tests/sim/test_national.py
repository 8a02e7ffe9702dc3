"""The ``national`` scenario (205 regions) in the simulator, under every fault."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gongji.cli import main
from gongji.scenario import load_scenario
from gongji.scenario.loader import scenario_path
from gongji.sim import DEFAULT_RATES, SimConfig, run_simulation


@pytest.mark.timeout(60)
def test_the_national_scenario_runs_with_all_faults_and_no_violation() -> None:
    scenario = load_scenario(scenario_path("national"))
    config = SimConfig(
        seed=7,
        transfers=2_000,
        regions=len(scenario.regions),
        faults=DEFAULT_RATES,
        scenario="national",
    )
    report = run_simulation(config, scenario=scenario, explain=False)
    assert report.violations == []
    assert len(report.regions) == len(scenario.regions)
    assert report.transfers_submitted == 2_000
    assert "NO_OUTCOME" not in report.transfers
    # The roll-out shows: refusals for regions not enabled beside committed transfers
    # that cross provinces, under faults that actually happened.
    assert report.transfers["COMMITTED"] > 0
    assert report.transfers["REGION_NOT_ENABLED"] > 0
    assert report.committed_cross_province > 0
    assert sum(report.faults_injected.values()) > 0
    assert "--scenario national" in config.replay_command()


@pytest.mark.timeout(60)
def test_gongji_sim_takes_a_scenario_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["sim", "--scenario", "national", "--transfers", "300", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert len(report["regions"]) == len(load_scenario(scenario_path("national")).regions)
    assert "410100" in report["regions"]


def test_gongji_sim_refuses_a_bad_scenario_in_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[regions]]\ncode = "4101"\n', encoding="utf-8")
    assert main(["sim", "--scenario", str(bad), "--transfers", "10"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: regions[0] (4101): field 'code'" in err


@pytest.mark.timeout(60)
def test_the_demo_plays_the_national_scenario_conserved_and_reconciled() -> None:
    """Its population, bills, wallet transfers, premiums and binding requests, through the
    real cores on the simulated network, then audited."""
    import asyncio

    from gongji.demo import play_on_sim

    result = asyncio.run(play_on_sim(load_scenario(scenario_path("national")), "none"))
    assert result.problems == []
    assert result.books_balanced and result.conserved
