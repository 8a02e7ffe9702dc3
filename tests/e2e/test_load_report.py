"""``gongji load --json`` against the local cluster: one object with the promised keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gongji.cluster.local import ClusterState
from gongji.load.charts import CHARTS
from tests.e2e.conftest import E2E_CODES, load_command

pytestmark = pytest.mark.broker


@pytest.mark.timeout(180)
def test_load_json_report_has_the_promised_keys(amqp_url: str, local_cluster: ClusterState) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "gongji.cli",
            "load",
            "--data-dir",
            local_cluster.data_dir,
            "--rate",
            "30",
            "--duration",
            "2",
            "--mix",
            "copay=1.0",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "AMQP_URL": amqp_url},
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    for key in ("achieved_per_second", "latency_ms", "outcomes", "errors", "conserved"):
        assert key in report
    assert set(report["latency_ms"]) == {"copay"}
    assert {"p50", "p90", "p99", "p999", "max"} <= set(report["latency_ms"]["copay"])
    latency = report["latency_ms"]["copay"]
    assert (
        0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["p999"] <= latency["max"]
    )
    assert sum(report["outcomes"].values()) == report["completed"] == report["sent"] == 60
    assert report["errors"] == {
        "timeouts": 0,
        "unroutable": 0,
        "publish_failed": 0,
        "duplicate_outcomes": 0,
    }
    assert report["conserved"] is True
    assert report["achieved_per_second"] > 0
    # The progress bar went to stderr, the report alone to stdout.
    assert "load [" in run.stderr


@pytest.mark.timeout(60)
def test_unknown_flow_in_the_mix_is_refused_clearly(local_cluster: ClusterState) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "gongji.cli", "load", "--data-dir", local_cluster.data_dir,
         "--mix", "copay=0.5,teleport=0.5"],
        capture_output=True,
        text=True,
        timeout=30,
    )  # fmt: skip
    assert run.returncode == 2
    assert "unknown flow 'teleport'" in run.stderr


@pytest.mark.timeout(180)
def test_load_report_writes_a_page_with_its_charts(
    amqp_url: str, local_cluster: ClusterState, tmp_path: Path
) -> None:
    directory = tmp_path / "report"
    run = load_command(
        local_cluster, amqp_url, "--rate", "30", "--duration", "3", "--report", str(directory)
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    page = directory / "index.html"
    assert f"report written to {page}" in run.stderr
    text = page.read_text(encoding="utf-8")
    for chart in CHARTS:
        assert f'src="{chart.file}"' in text
        png = (directory / chart.file).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    # The cluster's four regions, the outcomes it gave, and the money the report counted.
    for code in E2E_CODES:
        assert code in text
    for outcome in report["outcomes"]:
        assert outcome in text
    assert f"money moved: {report['moved_fen']} fen" in text
