"""``gongji audit`` as a user runs it: a subprocess, its output and its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audit import tampering

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.broker, pytest.mark.timeout(120)]


def gongji(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gongji.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
        cwd=ROOT,
        check=False,
    )


def test_a_clean_cluster_exits_0_with_a_one_line_verdict(data_dir: Path) -> None:
    run = gongji("audit", "--data-dir", str(data_dir))
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith("gongji: audit OK: 5 regions,")
    assert run.stdout.count("\n") == 1


def test_violations_are_printed_and_exit_1(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[0]
    tampering.post_twice(data_dir, t)
    run = gongji("audit", "--data-dir", str(data_dir))
    assert run.returncode == 1
    *violations, verdict = run.stdout.splitlines()
    assert f"double_post {t.transfer_id} region {t.payer_region}: posted 2 times" in run.stdout
    assert verdict.startswith(f"gongji: audit FAILED: {len(violations)} violations (")
    assert run.stderr == ""


def test_json_reports_every_violation(data_dir: Path) -> None:
    t = tampering.committed(data_dir)[1]
    tampering.delete_credit(data_dir, t)
    run = gongji("audit", "--data-dir", str(data_dir), "--json")
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["ok"] is False
    assert {
        "kind": "missing_credit",
        "transfer_id": t.transfer_id,
        "region": t.payee_region,
        "detail": f"committed {t.posted_fen} fen from {t.payer_region} to {t.payee_region};"
        " the payee credited nothing",
    } in report["violations"]
    assert all(set(v) == {"kind", "transfer_id", "region", "detail"} for v in report["violations"])
    assert report["checked"]["regions"] == 5 and report["checked"]["committed"] > 0


def test_json_of_a_clean_cluster(data_dir: Path) -> None:
    run = gongji("audit", "--data-dir", str(data_dir), "--json")
    assert run.returncode == 0
    report = json.loads(run.stdout)
    assert (report["ok"], report["violations"]) == (True, [])
    assert report["money"]["opening"] > 0


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_no_cluster_there_is_a_usage_error(tmp_path: Path, where: str) -> None:
    data_dir = tmp_path / "nowhere" if where == "missing" else tmp_path
    run = gongji("audit", "--data-dir", str(data_dir))
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.startswith("gongji: no ") and run.stderr.count("\n") == 1
    assert "Traceback" not in run.stderr


def test_a_file_that_is_not_a_region_database_is_a_usage_error(data_dir: Path) -> None:
    tampering.region_file(data_dir, "999900").write_text("not a database")
    run = gongji("audit", "--data-dir", str(data_dir))
    assert run.returncode == 2
    assert run.stderr.startswith("gongji: ") and run.stderr.count("\n") == 1
    assert "region-999900.sqlite" in run.stderr


def test_bad_arguments_exit_2() -> None:
    assert gongji("audit").returncode == 2  # --data-dir is required
    run = gongji("audit", "--data-dir", ".", "--as-of-ms", "soon")
    assert run.returncode == 2 and "not a whole number of ms" in run.stderr


def test_help_states_the_expiry_rule() -> None:
    run = gongji("audit", "--help")
    assert run.returncode == 0
    assert "newest timestamp in the files" in run.stdout
    assert "psn#" in run.stdout
