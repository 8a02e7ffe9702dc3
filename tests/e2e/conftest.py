"""Fixtures for end-to-end tests: a local multi-process cluster and a real Prometheus."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker.testing import unique_namespace
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import (
    ClusterConfig,
    ClusterState,
    cluster_down,
    cluster_up,
    delete_queues,
    free_port_block,
)

# Three enabled regions of three provinces and Beijing, which is not enabled: the load
# meets both COMMITTED and REGION_NOT_ENABLED.
E2E_CODES = ["310000", "420100", "510100", "110000"]
SCRAPE_INTERVAL_S = 1.0


def prometheus_binary() -> str:
    """The ``prometheus`` server binary. Missing, the test is skipped with the reason
    (``./check`` goes on when it cannot install it), except under CI (``CI`` set), where
    it fails."""
    path = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if path is None:
        reason = (
            "no Prometheus server here: install Debian's `prometheus` package "
            "(scripts/ensure-prometheus, or apt-get install prometheus)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


class Prometheus:
    """A Prometheus server on loopback with its own storage, queried over its HTTP API."""

    def __init__(self, binary: str, config: Path, storage: Path, port: int) -> None:
        self.port = port
        self.log = storage.parent / "prometheus.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={storage}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply,
            ):
                if reply.status == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(f"prometheus not ready within {timeout_s} s")

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.loads(reply.read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="module")
def local_cluster(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterState]:
    """A clearinghouse and four regions, each its own process, seeded and ready."""
    data_dir = tmp_path_factory.mktemp("cluster")
    config = ClusterConfig(
        amqp_url=amqp_url,
        data_dir=data_dir,
        regions=regions_by_code(E2E_CODES),
        namespace=unique_namespace("e2e"),
        base_port=free_port_block(len(E2E_CODES) + 1),
        persons_per_region=60,
        scrape_interval_s=SCRAPE_INTERVAL_S,
    )
    # Its own event loop: the processes outlive it, and each test has its own loop.
    state = asyncio.run(cluster_up(config))
    try:
        yield state
    finally:
        cluster_down(data_dir)
        asyncio.run(delete_queues(amqp_url, state))


@pytest.fixture(scope="module")
def prometheus(
    local_cluster: ClusterState, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """Prometheus scraping the cluster every second with the config ``cluster up`` wrote."""
    binary = prometheus_binary()
    storage = tmp_path_factory.mktemp("prometheus") / "data"
    server = Prometheus(binary, Path(local_cluster.scrape_config), storage, free_port_block(1))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def own_cluster(amqp_url: str, data_dir: Path, prefix: str) -> Iterator[ClusterState]:
    """A local cluster of a test's own (for one whose services are killed or whose broker
    restarts), 200 persons a region; down and cleaned up after."""
    config = ClusterConfig(
        amqp_url=amqp_url,
        data_dir=data_dir,
        regions=regions_by_code(E2E_CODES),
        namespace=unique_namespace(prefix),
        base_port=free_port_block(len(E2E_CODES) + 1),
        persons_per_region=200,
    )
    state = asyncio.run(cluster_up(config))
    try:
        yield state
    finally:
        cluster_down(Path(state.data_dir))
        asyncio.run(delete_queues(amqp_url, state))


def load_command(
    state: ClusterState, amqp_url: str, *args: str, timeout_s: float = 280
) -> subprocess.CompletedProcess[str]:
    """``gongji load --json --no-progress ARGS`` against ``state``'s cluster."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "gongji.cli",
            "load",
            "--data-dir",
            state.data_dir,
            "--json",
            "--no-progress",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "AMQP_URL": amqp_url},
        check=False,
    )
