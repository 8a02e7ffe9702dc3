"""``gongji province`` and ``gongji region --code A,B``: what one process may host, and
``cluster up --scenario``'s names, refused before anything connects."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from broker.testing import unique_namespace
from contracts.participants import HUB, region
from contracts.vocabulary import PaymentOrder
from gongji.cluster.local import LOAD_CLIENT, OPERATOR, delete_queues, free_port_block, read_state
from gongji.scenario import ROLLOUT_SCENARIO_PATH
from tests.cli.conftest import gongji

pytestmark = pytest.mark.timeout(60)


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def test_several_regions_in_one_process_must_share_a_province() -> None:
    done = gongji("region", "--code", "420100,310000")
    assert done.returncode == 2
    assert last_line(done.stderr) == (
        "gongji region: error: argument --code: regions of 2 provinces (310000, 420000): one "
        "process hosts the regions of one province (its broker user speaks for that province)"
    )


def test_a_region_listed_twice_is_refused() -> None:
    done = gongji("region", "--code", "440100,440100")
    assert done.returncode == 2
    assert "a region code is listed twice" in last_line(done.stderr)


def test_a_province_is_named_by_its_province_code() -> None:
    done = gongji("province", "--code", "440100", "--regions", "440100")
    assert done.returncode == 2
    assert last_line(done.stderr).endswith(
        "'440100' is not a province code (6 digits ending 0000, e.g. 420000 for Hubei)"
    )


def test_a_province_hosts_its_own_regions_only() -> None:
    done = gongji("province", "--code", "440000", "--regions", "420100")
    assert (done.returncode, done.stderr) == (
        2,
        "gongji: --regions: 420100 not in province 440000\n",
    )


def test_a_province_without_a_region_in_the_scenario_is_refused() -> None:
    done = gongji("province", "--code", "650000", "--scenario", str(ROLLOUT_SCENARIO_PATH))
    assert (done.returncode, done.stderr) == (
        2,
        f"gongji: {ROLLOUT_SCENARIO_PATH} lists no region of province 650000\n",
    )


def test_cluster_up_names_the_shipped_scenarios_when_one_is_unknown() -> None:
    done = gongji("cluster", "up", "--scenario", "atlantis")
    assert done.returncode == 2
    assert "'atlantis' is no scenario file nor one of: " in last_line(done.stderr)
    assert "rollout" in last_line(done.stderr)


SMALL_SCENARIO = """
name = "small"
seed = 3

[population]
persons_per_region = 20

[[regions]]
code = "440100"
name = "广州市 Guangzhou"
province = "广东 Guangdong"
enabled = true
payment_order = "copayer_first"

[[regions]]
code = "440300"
name = "深圳市 Shenzhen"
province = "广东 Guangdong"
enabled = true
wallet_enabled = false

[[regions]]
code = "310000"
name = "上海市 Shanghai"
province = "上海 Shanghai"
enabled = true
"""


@pytest.mark.broker
@pytest.mark.timeout(240)
def test_cluster_up_from_a_scenario_hosts_by_province_and_carries_a_load(
    amqp_url: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL_SCENARIO, encoding="utf-8")
    data_dir = tmp_path / "cluster"
    common = ["--data-dir", str(data_dir)]
    up = gongji(
        "cluster",
        "up",
        "--scenario",
        str(scenario),
        "--namespace",
        unique_namespace("cli-province"),
        "--amqp-url",
        amqp_url,
        "--base-port",
        str(free_port_block(3)),
        "--log-level",
        "WARNING",
        *common,
        timeout=180,
    )
    state = read_state(data_dir)
    try:
        assert up.returncode == 0, up.stderr
        assert state is not None
        names = [line.split()[0] for line in up.stdout.splitlines()[:3]]
        assert names == ["clearinghouse", "province-440000", "province-310000"]
        assert "(2 regions)" in up.stdout.splitlines()[1]
        # The scenario's regions, policies and size, read back from the state file.
        assert state.scenario == str(scenario.resolve())
        assert state.persons_per_region == 20 and state.seed == 3
        policies = {r.code: r.policy for r in state.regions}
        assert policies["440100"].payment_order is PaymentOrder.COPAYER_FIRST
        assert policies["440300"].wallet_enabled is False
        load = gongji("load", "--rate", "40", "--duration", "3", "--no-progress", *common)
        assert load.returncode == 0, load.stdout + load.stderr
        assert "conserved:   yes" in load.stdout
        audit = gongji("audit", *common)
        assert audit.returncode == 0 and audit.stdout.startswith("gongji: audit OK"), audit
    finally:
        if state is not None:
            gongji("cluster", "down", *common)
            asyncio.run(delete_queues(amqp_url, state))


@pytest.mark.broker
@pytest.mark.timeout(120)
def test_cluster_up_can_still_run_a_process_per_region(amqp_url: str, tmp_path: Path) -> None:
    common = ["--data-dir", str(tmp_path)]
    up = gongji(
        "cluster",
        "up",
        "--codes",
        "440100,440300",
        "--process-per-region",
        "--persons",
        "4",
        "--namespace",
        unique_namespace("cli-per-region"),
        "--amqp-url",
        amqp_url,
        "--base-port",
        str(free_port_block(3)),
        *common,
        timeout=100,
    )
    state = read_state(tmp_path)
    try:
        assert up.returncode == 0, up.stderr
        assert state is not None
        assert [s.name for s in state.services] == [
            "clearinghouse",
            "region-440100",
            "region-440300",
        ]
        assert sorted(state.users) == sorted(
            p.user(state.namespace)
            for p in (HUB, region("440100"), region("440300"), OPERATOR, LOAD_CLIENT)
        )
    finally:
        if state is not None:
            gongji("cluster", "down", *common)
            asyncio.run(delete_queues(amqp_url, state))


def test_logs_of_a_hosted_region_are_its_hosts(tmp_path: Path) -> None:
    """``gongji logs 440300`` in a cluster hosted by province prints province-440000's log."""
    from gongji.cluster.local import ClusterState, ServiceRecord, _write_state

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "clearinghouse.log").write_text('{"event": "a"}\n')
    (logs / "province-440000.log").write_text('{"event": "b", "service": "region-440300"}\n')
    state = ClusterState("ns", str(tmp_path), [], 1, 1, 0, "", hosting="province")
    for name, codes in (("clearinghouse", []), ("province-440000", ["440100", "440300"])):
        record = ServiceRecord(name, "", 1, 0, 0, str(logs / f"{name}.log"), [])
        record.codes = codes
        state.services.append(record)
    _write_state(state)
    done = gongji("logs", "440300", "--data-dir", str(tmp_path))
    assert (done.returncode, done.stdout) == (0, '{"event": "b", "service": "region-440300"}\n')


def test_a_cluster_of_many_regions_gives_the_clearinghouse_a_deeper_pipeline() -> None:
    from gongji.cluster.local import MANY_REGIONS, clearinghouse_tuning

    assert clearinghouse_tuning(MANY_REGIONS - 1, {}) == {}
    deep = clearinghouse_tuning(146, {})
    assert deep["GONGJI_SHELL_PIPELINE_DEPTH"] == "8"
    # What the caller set wins.
    assert "GONGJI_SHELL_PIPELINE_DEPTH" not in clearinghouse_tuning(
        146, {"GONGJI_SHELL_PIPELINE_DEPTH": "4"}
    )
