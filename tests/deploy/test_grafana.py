"""deploy/grafana: the provisioned datasource and the dashboard, against compose and code."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy import promql
from tests.deploy.artefacts import (
    DASHBOARD,
    GRAFANA,
    PROMETHEUS_CONFIG,
    command,
    container_ports,
    environment,
    load_yaml,
    mount_for,
    promtool,
    services,
)

pytestmark = pytest.mark.timeout(60)

PROVISIONING = "/etc/grafana/provisioning"
"""Grafana's default provisioning directory (paths.provisioning)."""
# Grafana's range variables, replaced by fixed durations for promtool's syntax check.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}


def datasources() -> list[dict[str, Any]]:
    found = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    return list(found["datasources"])


def dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries() -> list[tuple[str, dict[str, Any]]]:
    """(panel title, target) for every query of the dashboard."""
    return [(p["title"], t) for p in panels() for t in p["targets"]]


def target_labels() -> frozenset[str]:
    return frozenset(
        label
        for job in load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
        for static in job.get("static_configs", [])
        for label in static.get("labels", {})
    )


def test_grafana_reads_the_provisioning_directory() -> None:
    found = mount_for(services()["grafana"], PROVISIONING)
    assert found is not None and found[1] == (GRAFANA / "provisioning").resolve()


def test_the_datasource_is_the_prometheus_service() -> None:
    (source,) = datasources()
    assert source["type"] == "prometheus" and source["isDefault"] is True
    url = urlsplit(source["url"])
    prometheus = services()["prometheus"]
    assert url.hostname == "prometheus"
    assert url.port in container_ports(prometheus)
    flags = dict(arg.split("=", 1) for arg in command(prometheus))
    assert flags["--web.listen-address"].endswith(f":{url.port}")
    scrape_interval = load_yaml(PROMETHEUS_CONFIG)["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape_interval


def test_the_dashboard_provider_reads_the_mounted_dashboards() -> None:
    grafana = services()["grafana"]
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "gongji.yml")["providers"]
    (provider,) = providers
    found = mount_for(grafana, provider["options"]["path"])
    assert found is not None and (found[1] / DASHBOARD.name).resolve() == DASHBOARD.resolve()
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    found = mount_for(grafana, home)
    assert found is not None and found[1].resolve() == DASHBOARD.resolve()


def test_every_panel_queries_the_provisioned_datasource() -> None:
    uid = datasources()[0]["uid"]
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]


def test_the_dashboard_is_well_formed() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} overflows the 24-column grid"
    for panel in panels():
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(t["expr"] for _, t in queries())
    for needed in (
        "gongji_transfers_total",  # throughput and outcomes by flow
        "gongji_transfer_duration_seconds_bucket",  # latency percentiles
        "gongji_transfers_in_flight",
        "rabbitmq_queue_messages_ready",  # queue depths
        "gongji_dead_letters_total",
        "dead-letter",  # the dead-letter queue's depth
        "gongji_clearing_net_position_fen",
    ):
        assert needed in exprs, needed
    assert re.search(r"histogram_quantile\(0\.99,", exprs)
    assert re.search(r"sum by \(flow, outcome\)", exprs)


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule), Grafana variables filled in."""
    rules = []
    for n, (_, target) in enumerate(queries()):
        expr = target["expr"]
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr.replace("$1", ""), f"unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:query_{n}", "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "title, target", queries(), ids=[f"{t}/{q['refId']}" for t, q in queries()]
)
def test_every_query_uses_metrics_and_labels_that_exist(title: str, target: dict[str, Any]) -> None:
    found = promql.problems(
        target["expr"], extra_labels=target_labels(), legend=target.get("legendFormat")
    )
    assert found == [], f"{title}: {found}"
