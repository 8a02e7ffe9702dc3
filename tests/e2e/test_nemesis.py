"""``gongji load --nemesis``: a bounded run of every kind of fault but the broker restart
(the shared broker must not be restarted), on a local cluster of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.connection import BrokerUnavailable
from broker.testing import PrivateBroker
from gongji.cluster.local import (
    ClusterState,
)
from gongji.load.nemesis import NemesisError, parse_nemesis
from tests.e2e.conftest import load_command, own_cluster

pytestmark = [pytest.mark.broker, pytest.mark.slow]

EVERY_KIND_BUT_THE_BROKER = "region-kill=1,clearinghouse-kill=1,crash-loop=1,pause=1,seed=5"


@pytest.fixture
def cluster(amqp_url: str, tmp_path: Path) -> Iterator[ClusterState]:
    with own_cluster(amqp_url, tmp_path / "cluster", "nemesis") as state:
        yield state


@pytest.mark.timeout(240)
def test_a_load_with_every_fault_loses_nothing_and_reports_each(
    cluster: ClusterState, amqp_url: str
) -> None:
    done = load_command(
        cluster,
        amqp_url,
        *("--rate", "150", "--duration", "30", "--drain", "90"),
        *("--nemesis", EVERY_KIND_BUT_THE_BROKER),
        timeout_s=220,
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
    with own_cluster(private_broker.url, tmp_path / "cluster", "restart") as state:
        done = load_command(
            state,
            private_broker.url,
            *("--rate", "100", "--duration", "20", "--drain", "120"),
            *("--nemesis", "broker-restart=1,seed=1"),
        )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["faults_injected"] == {"broker-restart": 1}
    assert (report["lost"], report["stuck"], report["duplicated_effects"]) == (0, 0, 0)
    assert report["completed"] == report["sent"], report["errors"]
    assert report["audit"]["ok"] is True
