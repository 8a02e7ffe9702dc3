"""``gongji load --nemesis``: a bounded run of every kind of fault but the broker restart
(the shared broker must not be restarted), on a local cluster of its own."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.connection import BrokerUnavailable
from broker.testing import PrivateBroker, unique_namespace
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.local import (
    ClusterConfig,
    ClusterState,
    cluster_down,
    cluster_up,
    delete_queues,
    free_port_block,
)
from gongji.load.nemesis import NemesisError, parse_nemesis
from tests.e2e.conftest import E2E_CODES

pytestmark = [pytest.mark.broker, pytest.mark.slow]

EVERY_KIND_BUT_THE_BROKER = "region-kill=1,clearinghouse-kill=1,crash-loop=1,pause=1,seed=5"


@pytest.fixture
def cluster(amqp_url: str, tmp_path: Path) -> Iterator[ClusterState]:
    config = ClusterConfig(
        amqp_url=amqp_url,
        data_dir=tmp_path / "cluster",
        regions=regions_by_code(E2E_CODES),
        namespace=unique_namespace("nemesis"),
        base_port=free_port_block(len(E2E_CODES) + 1),
        persons_per_region=200,
    )
    state = asyncio.run(cluster_up(config))
    try:
        yield state
    finally:
        cluster_down(Path(state.data_dir))
        asyncio.run(delete_queues(amqp_url, state))


@pytest.mark.timeout(240)
def test_a_load_with_every_fault_loses_nothing_and_reports_each(
    cluster: ClusterState, amqp_url: str
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gongji.cli",
            "load",
            "--data-dir",
            cluster.data_dir,
            "--rate",
            "150",
            "--duration",
            "30",
            "--drain",
            "90",
            "--nemesis",
            EVERY_KIND_BUT_THE_BROKER,
            "--json",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=220,
        env={**os.environ, "AMQP_URL": amqp_url},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["faults_injected"] == {
        "region-kill": 1,
        "clearinghouse-kill": 1,
        "crash-loop": 1,
        "pause": 1,
    }
    assert (report["lost"], report["stuck"], report["duplicated_effects"]) == (0, 0, 0)
    assert report["audit"] == {"ok": True, "violations": []}
    assert report["conserved"] is True
    assert report["completed"] == report["sent"]
    assert len(report["recovery_seconds"]) == 4
    # The live line names each fault as it happens.
    for kind in report["faults_injected"]:
        assert f"nemesis: {kind} of " in done.stderr


def test_a_bad_spec_is_refused_in_one_line() -> None:
    for spec, why in [
        ("meteor=1", "unknown fault 'meteor'"),
        ("pause=x", "not a whole number"),
        ("pause=99", "between 0 and 20"),
        ("seed=7", "no fault named"),
    ]:
        with pytest.raises(NemesisError, match=why):
            parse_nemesis(spec)
    assert parse_nemesis("all,seed=3").kinds == [
        "region-kill",
        "clearinghouse-kill",
        "crash-loop",
        "pause",
        "broker-restart",
    ]


@pytest.fixture
def private_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrivateBroker]:
    """A broker of the test's own, since this one is restarted."""
    broker = PrivateBroker()
    try:
        broker.start()
    except BrokerUnavailable as error:
        pytest.skip(f"no private RabbitMQ node here: {error}")
    monkeypatch.setenv("GONGJI_RABBITMQCTL", broker.rabbitmqctl)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.mark.timeout(300)
def test_a_broker_restart_mid_load_loses_no_request(
    private_broker: PrivateBroker, tmp_path: Path
) -> None:
    config = ClusterConfig(
        amqp_url=private_broker.url,
        data_dir=tmp_path / "cluster",
        regions=regions_by_code(E2E_CODES),
        namespace=unique_namespace("restart"),
        base_port=free_port_block(len(E2E_CODES) + 1),
        persons_per_region=200,
    )
    state = asyncio.run(cluster_up(config))
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gongji.cli",
                "load",
                "--data-dir",
                state.data_dir,
                "--rate",
                "100",
                "--duration",
                "20",
                "--drain",
                "120",
                "--nemesis",
                "broker-restart=1,seed=1",
                "--json",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=280,
            env={**os.environ, "AMQP_URL": private_broker.url},
            check=False,
        )
    finally:
        cluster_down(Path(state.data_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["faults_injected"] == {"broker-restart": 1}
    assert (report["lost"], report["stuck"], report["duplicated_effects"]) == (0, 0, 0)
    assert report["completed"] == report["sent"], report["errors"]
    assert report["audit"]["ok"] is True
