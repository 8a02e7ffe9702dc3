"""``gongji clearinghouse`` and ``gongji region``: side by side with their defaults, and a
start-up failure is one line and a non-zero exit."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from broker.testing import unique_namespace
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import ClusterState, delete_queues, port_free
from tests.cli.conftest import ROOT, gongji

METRICS_LINE = re.compile(r"^(\S+): metrics on http://127\.0\.0\.1:(\d+)/metrics$")


def start(argv: list[str], cwd: Path, amqp_url: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GONGJI_")}
    return subprocess.Popen(
        [sys.executable, "-m", "gongji.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=cwd,
        env={**env, "AMQP_URL": amqp_url, "PYTHONPATH": str(ROOT)},
    )


def metrics_port_of(process: subprocess.Popen[str]) -> int:
    """The port a service printed it serves metrics on (its first line on stdout)."""
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    found = METRICS_LINE.match(line)
    assert found, f"not a metrics line: {line!r}"
    return int(found.group(2))


def serves_metrics(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        return reply.status == 200 and b"gongji_" in reply.read()


@pytest.mark.broker
@pytest.mark.timeout(60)
def test_clearinghouse_and_region_start_side_by_side_with_their_defaults(
    amqp_url: str, tmp_path: Path
) -> None:
    if not port_free(9464):
        pytest.skip("port 9464 (the clearinghouse's default) is taken on this machine")
    namespace = unique_namespace("cli-side")
    services = [
        start(["clearinghouse", "--namespace", namespace], tmp_path, amqp_url),
        start(["region", "--code", "420100", "--namespace", namespace], tmp_path, amqp_url),
    ]
    try:
        ports = [metrics_port_of(process) for process in services]
        time.sleep(0.5)  # long enough for a service that failed after printing to exit

        assert [process.poll() for process in services] == [None, None]
        assert ports[0] == 9464
        assert ports[1] not in (0, 9464)
        assert all(serves_metrics(port) for port in ports)
        assert sorted(p.name for p in (tmp_path / "data").glob("*.sqlite")) == [
            "clearinghouse.sqlite",
            "region-420100.sqlite",
        ]
    finally:
        for process in services:
            process.terminate()
        for process in services:
            process.wait(timeout=20)
        state = ClusterState(
            namespace=namespace,
            data_dir=str(tmp_path),
            regions=list(regions_by_code(["420100"])),
            persons_per_region=0,
            seed=0,
            base_port=0,
            scrape_config="",
        )
        asyncio.run(delete_queues(amqp_url, state))


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "argv",
    [["clearinghouse"], ["region", "--code", "420100"]],
    ids=["clearinghouse", "region"],
)
def test_a_metrics_port_in_use_is_one_line_and_exit_1(argv: list[str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        done = gongji(*argv, "--metrics-port", str(port), "--data-dir", str(tmp_path))

    name = "clearinghouse" if argv[0] == "clearinghouse" else "region-420100"
    assert done.returncode == 1
    assert done.stderr == (
        f"gongji: {name}: cannot serve metrics on 127.0.0.1:{port} (Address already in use);"
        " choose another --metrics-port, or 0 for any free port\n"
    )
    assert done.stdout == ""


@pytest.mark.broker
@pytest.mark.timeout(30)
def test_a_data_dir_that_cannot_be_opened_is_one_line_and_exit_1(
    amqp_url: str, tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("")

    done = gongji(
        "region",
        "--code",
        "420100",
        "--namespace",
        unique_namespace("cli-db"),
        "--data-dir",
        str(not_a_dir),
        env={"AMQP_URL": amqp_url, "GONGJI_LOG_LEVEL": "WARNING"},
    )

    assert done.returncode == 1
    assert done.stderr == (
        f"gongji: region-420100: cannot open its database in {not_a_dir}: "
        f"[Errno 17] File exists: '{not_a_dir}'\n"
    )
