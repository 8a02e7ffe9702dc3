"""``gongji load --json`` against the local cluster: one object with the promised keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gongji.cluster.local import ClusterState

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
