"""``gongji sim`` on the command line: the JSON object and the exit status."""

from __future__ import annotations

import io
import json

import pytest

from gongji.cli import main
from gongji.commands.sim import ProgressBar
from gongji.sim import SimConfig, parse_faults, run_simulation

REQUIRED = {
    "seed",
    "trace_hash",
    "transfers",
    "faults_injected",
    "invariants_checked",
    "violations",
    "simulated_seconds",
    "wall_seconds",
    "transfers_per_wall_second",
}


@pytest.mark.timeout(120)
def test_json_has_the_required_keys(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["sim", "--seed", "3", "--transfers", "300", "--regions", "5", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report.keys() >= REQUIRED
    assert status == (0 if not report["violations"] else 1)
    assert report["seed"] == 3
    assert sum(report["transfers"].values()) == 300
    assert set(report["invariants_checked"]) >= {"conservation", "agreement", "liveness"}
    assert report["transfers_per_wall_second"] > 0


@pytest.mark.timeout(120)
def test_readable_summary_and_exit_status_on_a_planted_bug(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "sim",
        "--seed",
        "2",
        "--transfers",
        "300",
        "--regions",
        "4",
        "--faults",
        "duplicate=0.2",
    ]
    assert main([*argv, "--plant", "double-credit"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATIONS (seed 2)" in out and "replay: gongji sim --seed 2" in out


def test_bad_fault_list_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sim", "--faults", "delay,meteor"])
    assert exit_info.value.code == 2
    assert "unknown fault 'meteor'" in capsys.readouterr().err


@pytest.mark.timeout(120)
def test_the_replay_command_replays_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    config = SimConfig(
        seed=4,
        transfers=200,
        regions=4,
        faults=parse_faults("delay,crash=0.01"),
        requests_per_second=100,
        wallet_share=0.0,
        window_ms=0,
    )
    report = run_simulation(config, explain=False)
    argv = report.replay.split()
    assert argv[:2] == ["gongji", "sim"]
    main([*argv[1:], "--json"])
    assert json.loads(capsys.readouterr().out)["trace_hash"] == report.trace_hash


def test_progress_bar_draws_one_line() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=10)
    bar(50, 25, 100, "faults")
    bar.done()
    assert "[##........] 25/100 answered, 50 sent; faults on" in out.getvalue()
