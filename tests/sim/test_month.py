"""A month, fast: a scenario's regions over simulated days, windows closed daily or
monthly as its ``[clearing]`` says, every window settled between the regional funds, under
every fault; the checker checks the settlement and catches a region that books twice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gongji.cli import main
from gongji.flows import flows_json
from gongji.scenario import ROLLOUT_SCENARIO_PATH
from gongji.sim import SimConfig, parse_faults, run_simulation
from gongji.sim.month import month_config

pytestmark = pytest.mark.timeout(300)


def test_a_month_of_the_rollout_settles_every_day_under_every_fault() -> None:
    config, regions = month_config(
        ROLLOUT_SCENARIO_PATH,
        SimConfig(seed=5, transfers=800, faults=parse_faults("all")),
        days=6,
        day_ms=3_000,
    )
    assert config.window_ms == 3_000 and config.advance_fen == 10_000_000  # the file's
    assert config.regions == len(regions) == 34
    report = run_simulation(config, regions=regions, explain=False)
    assert report.ok, report.violations[:5]
    assert report.invariants_checked["settlement"] >= 1
    assert report.windows_closed >= 6  # one a day, and one after healing
    closed = [w for w in report.clearing_flows if w.state == "closed" and w.transfers]
    assert len(closed) >= 5
    for w in closed:
        assert w.settlement == "booked"
        assert sum(w.net.values()) == 0
    flows = flows_json(report.clearing_flows)
    assert flows["total"]["transfers"] == sum(w.transfers for w in report.clearing_flows)


def test_a_monthly_window_closes_once_in_the_month(tmp_path: Path) -> None:
    monthly = tmp_path / "monthly.toml"
    text = ROLLOUT_SCENARIO_PATH.read_text(encoding="utf-8")
    monthly.write_text(text.replace('window = "daily"', 'window = "monthly"'), encoding="utf-8")
    config, regions = month_config(monthly, SimConfig(seed=2, transfers=400), days=6, day_ms=2_000)
    assert config.window_ms == 12_000
    report = run_simulation(config, regions=regions, explain=False)
    assert report.ok, report.violations[:5]
    assert 1 <= report.windows_closed <= 2  # the month's end, and the final close if later


def test_a_region_that_books_a_settlement_twice_is_caught() -> None:
    config, regions = month_config(
        ROLLOUT_SCENARIO_PATH,
        SimConfig(
            seed=3, transfers=400, faults=parse_faults("duplicate=0.3"), plant="double-settle"
        ),
        days=4,
        day_ms=2_000,
    )
    report = run_simulation(config, regions=regions, explain=False)
    found = {v.invariant for v in report.violations}
    assert "settlement" in found, report.violations[:5]


def test_the_cli_prints_the_flow_report_and_replays(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sim", "--seed", "4", "--transfers", "300", "--faults", "delay,duplicate"]
    argv += ["--scenario", str(ROLLOUT_SCENARIO_PATH), "--days", "3", "--day-ms", "2000"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "a month of 3 simulated days" in text
    assert "money moved between provinces (gongji report flows):" in text
    assert "payer \\ payee" in text and "settlement booked" in text
    assert main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenario"] == str(ROLLOUT_SCENARIO_PATH) and report["days"] == 3
    windows = report["clearing_flows"]["windows"]
    assert any(w["settlement"] == "booked" for w in windows)
    replay = report["replay"].split()
    assert "--scenario" in replay and "--regions" not in replay
    assert main([*replay[1:], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trace_hash"] == report["trace_hash"]


def test_a_bad_scenario_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[clearing]\nwindow = "weekly"\n', encoding="utf-8")
    assert main(["sim", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "clearing" in err and "'weekly' is not one of daily, monthly" in err
