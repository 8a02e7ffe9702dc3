"""deploy/prometheus: promtool's checks and unit tests, and agreement with compose.yaml."""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath
from typing import Any

import pytest

from tests.deploy import promql
from tests.deploy.artefacts import (
    ALERTS,
    ALERTS_TEST,
    PROMETHEUS_CONFIG,
    RABBITMQ_CONF,
    command,
    conf_settings,
    container_env,
    container_ports,
    enabled_plugins,
    gongji_services,
    load_yaml,
    long_running,
    mount_for,
    parse_command,
    promtool,
    services,
)

pytestmark = pytest.mark.timeout(60)


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=60, check=False
    )


def scrape_configs() -> list[dict[str, Any]]:
    configs = load_yaml(PROMETHEUS_CONFIG)["scrape_configs"]
    assert isinstance(configs, list)
    return configs


def targets() -> dict[str, str]:
    """Job name by ``host:port`` target."""
    found = {}
    for job in scrape_configs():
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                assert target not in found, f"{target} scraped twice"
                found[target] = job["job_name"]
    return found


def target_labels() -> frozenset[str]:
    return frozenset(
        label
        for job in scrape_configs()
        for static in job.get("static_configs", [])
        for label in static.get("labels", {})
    )


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_config() -> None:
    result = run_promtool("check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules() -> None:
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_unit_tests() -> None:
    result = run_promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_stuck_transfers_silent_regions_and_dead_letters() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {"GongjiTransfersStuck", "GongjiRegionDown", "GongjiRegionNotConsuming"} <= names
    assert {"GongjiDeadLettered", "GongjiDeadLetterQueueGrowing"} <= names
    tested = load_yaml(ALERTS_TEST)
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert fired == names, f"alerts never shown firing in alerts_test.yml: {names - fired}"


@pytest.mark.parametrize("alert", [rule["alert"] for rule in alert_rules()])
def test_alert_expressions_use_metrics_that_exist(alert: str) -> None:
    rule = next(r for r in alert_rules() if r["alert"] == alert)
    assert promql.problems(rule["expr"], extra_labels=target_labels()) == []


def test_target_labels_do_not_clash_with_exported_labels() -> None:
    """A target label named like an exported one would rename the latter to exported_*."""
    exported = set().union(*(m.labels for m in promql.gongji_metrics().values()))
    assert target_labels() & (exported | promql.RABBITMQ_LABELS) == set()


def test_alerts_select_the_jobs_the_config_scrapes() -> None:
    jobs = set(targets().values())
    for rule in alert_rules():
        for job in promql.references(rule["expr"]).selector_values.get("up", {}).get("job", []):
            assert job in jobs, f"{rule['alert']}: no scrape job {job!r}"


def test_every_scrape_target_is_a_compose_service_listening_there() -> None:
    for target, job in targets().items():
        host, port = target.rsplit(":", 1)
        if host == "localhost":
            assert job == "prometheus", f"{target}: only Prometheus scrapes itself"
            host = "prometheus"
        assert host in services(), f"{job}: {host} is not a compose service"
        assert int(port) in container_ports(services()[host]), f"{target}: port not exposed"


def test_every_long_running_gongji_service_is_scraped_on_its_metrics_port() -> None:
    scraped = targets()
    for name, service in gongji_services().items():
        if not long_running(service):
            continue
        args = parse_command(command(service), container_env(service))
        assert f"{name}:{args.metrics_port}" in scraped, f"{name} is not scraped"


def test_rabbitmq_is_scraped_where_its_prometheus_plugin_listens() -> None:
    assert "rabbitmq_prometheus" in enabled_plugins()
    port = conf_settings(RABBITMQ_CONF)["prometheus.tcp.port"]
    assert port == "15692"
    assert targets()[f"rabbitmq:{port}"] == "rabbitmq"
    # Per-queue depths and the dead-letter queue need per-object series on /metrics.
    assert conf_settings(RABBITMQ_CONF)["prometheus.return_per_object_metrics"] == "true"


def test_prometheus_in_compose_loads_this_config_and_its_rules() -> None:
    prometheus = services()["prometheus"]
    flags = dict(arg.split("=", 1) for arg in command(prometheus))
    config_path = flags["--config.file"]
    found = mount_for(prometheus, config_path)
    assert found is not None and found[1] == PROMETHEUS_CONFIG
    for rule_file in load_yaml(PROMETHEUS_CONFIG)["rule_files"]:
        in_container = PurePosixPath(config_path).parent / rule_file
        mounted = mount_for(prometheus, str(in_container))
        assert mounted is not None and mounted[1] == ALERTS, f"{in_container} is not mounted"
    listen_port = int(flags["--web.listen-address"].rsplit(":", 1)[1])
    assert listen_port in container_ports(prometheus)
    assert f"localhost:{listen_port}" in targets()
