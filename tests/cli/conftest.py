"""The ``gongji`` command as an operator runs it: subprocesses, a real local cluster."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.testing import unique_namespace
from gongji.cluster.local import ClusterState, delete_queues, free_port_block, read_state

ROOT = Path(__file__).resolve().parents[2]
CLUSTER_CODES = "310000,420100"


def gongji(
    *args: str,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """``gongji ARGS`` in a subprocess, without the caller's AMQP_URL and GONGJI_* settings
    unless ``env`` gives them."""
    clean = {k: v for k, v in os.environ.items() if k != "AMQP_URL" and not k.startswith("GONGJI_")}
    return subprocess.run(
        [sys.executable, "-m", "gongji.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=cwd,
        check=False,
    )


@dataclass(frozen=True)
class RunningCluster:
    """A cluster ``gongji cluster up`` started in ``data_dir``, in its own namespace."""

    namespace: str
    data_dir: Path
    amqp_url: str
    state: ClusterState
    up: subprocess.CompletedProcess[str]
    """What ``gongji cluster up`` printed."""


@pytest.fixture(scope="session")
def running_cluster(
    amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningCluster]:
    """A clearinghouse and two regions started with ``gongji cluster up --namespace ...``."""
    data_dir = tmp_path_factory.mktemp("cluster")
    namespace = unique_namespace("cli")
    up = gongji(
        "cluster",
        "up",
        "--namespace",
        namespace,
        "--amqp-url",
        amqp_url,
        "--codes",
        CLUSTER_CODES,
        "--persons",
        "10",
        "--base-port",
        str(free_port_block(3)),
        "--data-dir",
        str(data_dir),
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    state = read_state(data_dir)
    assert state is not None
    try:
        yield RunningCluster(namespace, data_dir, amqp_url, state, up)
    finally:
        gongji("cluster", "down", "--data-dir", str(data_dir))
        asyncio.run(delete_queues(amqp_url, state))
