"""``gongji report calibration``: a load report's figures against a scenario's targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gongji.calibration import CalibrationError, compare
from gongji.cli import main
from gongji.scenario.records import CalibrationTargets

LOAD = {
    "outcomes_by_flow": {
        "copay": {"COMMITTED": 50, "ZERO_BALANCE": 10},
        "wallet": {"COMMITTED": 4, "LIMIT_EXCEEDED": 6},
        "premium": {"COMMITTED": 10},
        "binding": {"COMMITTED": 15},
        "revoke": {"COMMITTED": 5},
    },
    "family_moved_fen": {"wallet": 4 * 70_000, "premium": 10 * 40_000},
    "copayer_paid_fen": 1_600_000,
    "bills_paid": {"full": 40, "part": 10, "refused": 10},
}
TARGETS = CalibrationTargets(
    wallet_amount_fen=68_000,
    premium_money_share=0.171,
    flow_shares=(("copay", 0.6), ("wallet", 0.2), ("premium", 0.1), ("binding", 0.1)),
    bills_paid=(("full", 0.55), ("part", 0.15), ("refused", 0.3)),
)


def test_each_figure_is_measured_and_its_deviation_given() -> None:
    figures = {f.name: f for f in compare(TARGETS, LOAD)}
    assert figures["wallet_amount_fen"].measured == 70_000
    assert figures["wallet_amount_fen"].deviation == 2_000
    assert figures["wallet_amount_fen"].relative == pytest.approx(2_000 / 68_000)
    assert figures["premium_money_share"].measured == pytest.approx(400_000 / 2_000_000)
    # 100 requests: revocations count with the binding flow.
    assert figures["flow_shares.copay"].measured == pytest.approx(0.6)
    assert figures["flow_shares.binding"].measured == pytest.approx(0.2)
    assert figures["flow_shares.binding"].deviation == pytest.approx(0.1)
    assert figures["bills_paid.full"].measured == pytest.approx(40 / 60)
    assert figures["bills_paid.refused"].deviation == pytest.approx(10 / 60 - 0.3)


def test_a_figure_without_requests_is_not_measured() -> None:
    load = dict(LOAD, outcomes_by_flow={"copay": {"COMMITTED": 1}}, family_moved_fen={})
    [wallet] = compare(CalibrationTargets(wallet_amount_fen=68_000), load)
    assert wallet.measured is None and wallet.deviation is None


def test_not_a_load_report_is_refused() -> None:
    with pytest.raises(CalibrationError, match="not a gongji load --json report"):
        compare(TARGETS, {"seed": 7})


def test_the_command_prints_the_table_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "load.json"
    path.write_text(json.dumps(LOAD), encoding="utf-8")
    assert main(["report", "calibration", str(path), "--scenario", "national"]) == 0
    table = capsys.readouterr().out
    assert "calibration of the run against scenario national:" in table
    assert "wallet_amount_fen" in table and "+2,000" in table
    assert main(["report", "calibration", str(path), "--scenario", "national", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"] == "national"
    names = [f["name"] for f in data["figures"]]
    assert names[:2] == ["wallet_amount_fen", "premium_money_share"]
    assert "bills_paid.part" in names


def test_the_command_refuses_a_file_that_is_no_load_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sim.json"
    path.write_text('{"seed": 7}', encoding="utf-8")
    assert main(["report", "calibration", str(path), "--scenario", "national"]) == 2
    assert "not a gongji load --json report" in capsys.readouterr().err
    assert main(["report", "calibration", str(tmp_path / "none.json"), "--scenario", "x"]) == 2
