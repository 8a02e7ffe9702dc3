"""The image, proven: gongji's Dockerfile built on a real engine, its services run from
it against the test broker, a short load settled and the books audited.

The engine, the base image and the build come from this folder's conftest (skipped,
saying why, where no engine can be had). A clearinghouse and four regions (Beijing
registered but not enabled) run as containers on the host's network, each as its own
broker user; ``gongji admin seed``, ``gongji load`` and ``gongji audit`` run as one-shot
containers of the same image, over the data directory every service writes to.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from broker.testing import unique_namespace
from broker.users import rabbitmqctl
from clearinghouse.service import clearinghouse_database
from contracts.participants import HUB, region
from gongji.cluster.local import LOAD_CLIENT, OPERATOR
from regions.service import region_database
from tests.image.containers import IMAGE_UID, ContainerCluster, remove_stopped
from tests.image.engine import Engine

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CODES = ["310000", "420100", "510100", "110000"]
PERSONS = 100
RATE, DURATION_S = "100", "10"


@pytest.fixture(scope="module")
def cluster(
    docker_engine: Engine,
    gongji_image: str,
    amqp_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ContainerCluster]:
    remove_stopped(docker_engine)
    data_dir = tmp_path_factory.mktemp("image-data")
    os.chown(data_dir, IMAGE_UID, IMAGE_UID)  # the services write there as gongji
    cluster = ContainerCluster(
        docker_engine,
        gongji_image,
        amqp_url,
        data_dir,
        unique_namespace("image"),
        CODES,
        PERSONS,
    )
    try:
        cluster.provision()
        asyncio.run(cluster.declare_topology())
        cluster.start_services()
        asyncio.run(cluster.wait_consuming())
        seed = cluster.run(OPERATOR, "seed", "admin", "seed", *cluster.population_options())
        assert seed.returncode == 0, seed.stderr[-2000:]
        cluster.wait_seeded()
        yield cluster
    finally:
        cluster.down()


def broker_connections() -> dict[str, int]:
    """Open connections by broker user."""
    listed = subprocess.run(
        [*rabbitmqctl(), "-q", "--no-table-headers", "list_connections", "user"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    users: dict[str, int] = {}
    for line in listed.stdout.split():
        users[line] = users.get(line, 0) + 1
    return users


@pytest.mark.timeout(120)
def test_every_service_runs_as_uid_10001_and_as_its_own_broker_user(
    cluster: ContainerCluster,
) -> None:
    config = cluster.engine.docker(
        "image", "inspect", "--format", "{{.Config.User}}", cluster.image
    )
    assert config.stdout.strip() == f"{IMAGE_UID}:{IMAGE_UID}"
    files = [clearinghouse_database(cluster.data_dir)]
    files += [region_database(cluster.data_dir, code) for code in CODES]
    assert {path.name: path.stat().st_uid for path in files} == {p.name: IMAGE_UID for p in files}

    connected = broker_connections()
    for participant in (HUB, *(region(code) for code in CODES)):
        name = participant.user(cluster.namespace)
        assert connected.get(name, 0) >= 1, f"no connection as {name}: {sorted(connected)}"


@pytest.mark.timeout(300)
def test_a_short_load_settles_and_the_audit_finds_every_fen_in_place(
    cluster: ContainerCluster,
) -> None:
    load = cluster.run(
        LOAD_CLIENT,
        "load",
        "load",
        *cluster.population_options(),
        *("--data-dir", "/data", "--rate", RATE, "--duration", DURATION_S, "--drain", "60"),
        *("--mix", "copay=1.0"),  # bills only: each is one transfer the audit counts
        *("--json", "--no-progress"),
    )
    assert load.returncode == 0, load.stderr[-3000:]
    report = json.loads(load.stdout)
    assert report["sent"] == int(RATE) * int(DURATION_S) and report["unsent"] == 0
    assert report["completed"] == report["sent"], report["outcomes"]
    assert report["outcomes"].get("COMMITTED", 0) > 0, report["outcomes"]
    # Beijing is registered but not enabled: bills it is party to are refused.
    assert report["outcomes"].get("REGION_NOT_ENABLED", 0) > 0, report["outcomes"]
    assert report["conserved"] is True
    assert report["books"] is not None and report["books"]["balanced"] is True

    audit = cluster.run(OPERATOR, "audit", "audit", "--data-dir", "/data", "--json")
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-2000:]
    result = json.loads(audit.stdout)
    assert result["ok"] is True and result["violations"] == []
    assert result["checked"]["regions"] == len(CODES)
    # Every bill of the load is a transfer in the files, decided as the load was told.
    checked = result["checked"]
    assert checked["bills"] == checked["transfers"] == report["sent"]
    assert checked["committed"] == report["outcomes"]["COMMITTED"]
    assert checked["aborted"] == report["sent"] - report["outcomes"]["COMMITTED"]
    assert result["money"]["held"] == result["money"]["in_flight"] == 0
