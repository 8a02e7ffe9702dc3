"""ServiceMetrics series, as scraped over HTTP from serve_metrics."""

from __future__ import annotations

import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from telemetry.metrics import REGISTRY, ServiceMetrics, serve_metrics, stop_metrics_servers

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def service() -> str:
    """A service name no other test uses: the registry is shared by the whole process."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def port() -> Iterator[int]:
    bound = serve_metrics(0)
    yield bound
    stop_metrics_servers()


def scrape(port: int, service: str) -> Samples:
    """Every sample served on ``port`` that carries ``service=<service>``, by name+labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("service") == service:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_serve_metrics_picks_a_free_port(port: int) -> None:
    assert 0 < port < 65536
    other = serve_metrics(0)
    assert other != port


def test_transfer_series(port: int, service: str) -> None:
    metrics = ServiceMetrics(service)
    for _ in range(3):
        metrics.transfer_started("copay")
    metrics.transfer_finished("copay", "COMMITTED", 0.004)
    metrics.transfer_finished("copay", "COMMITTED", 0.3)
    metrics.transfer_finished("copay", "ZERO_BALANCE", 0.02)
    metrics.transfer_started("copay")

    got = scrape(port, service)
    s, f = service, "copay"
    assert got[key("gongji_transfers_total", service=s, flow=f, outcome="COMMITTED")] == 2
    assert got[key("gongji_transfers_total", service=s, flow=f, outcome="ZERO_BALANCE")] == 1
    assert got[key("gongji_transfers_in_flight", service=s, flow=f)] == 1
    assert got[key("gongji_transfer_duration_seconds_count", service=s, flow=f)] == 3
    duration_sum = got[key("gongji_transfer_duration_seconds_sum", service=s, flow=f)]
    assert duration_sum == pytest.approx(0.324)
    bucket = "gongji_transfer_duration_seconds_bucket"
    assert got[key(bucket, service=s, flow=f, le="0.005")] == 1
    assert got[key(bucket, service=s, flow=f, le="0.025")] == 2
    assert got[key(bucket, service=s, flow=f, le="0.25")] == 2
    assert got[key(bucket, service=s, flow=f, le="0.5")] == 3
    assert got[key(bucket, service=s, flow=f, le="+Inf")] == 3


def test_message_batch_dead_letter_and_money_series(port: int, service: str) -> None:
    metrics = ServiceMetrics(service)
    metrics.messages_in(2, 150)
    metrics.messages_in(n_operations=1)
    metrics.messages_out(1, 40)
    metrics.batch(150)
    metrics.batch(1)
    metrics.dead_letter("MalformedMessage")
    metrics.dead_letter("MalformedMessage")
    metrics.moved("copay", 12_345)
    metrics.moved("copay", 5)
    metrics.retried("commit", "420100")
    metrics.retried("commit", "420100")
    metrics.retried("credit", "510100")

    got = scrape(port, service)
    s = service
    assert got[key("gongji_messages_total", service=s, direction="in")] == 3
    assert got[key("gongji_messages_total", service=s, direction="out")] == 1
    assert got[key("gongji_operations_total", service=s, direction="in")] == 151
    assert got[key("gongji_operations_total", service=s, direction="out")] == 40
    assert got[key("gongji_batch_operations_count", service=s)] == 2
    assert got[key("gongji_batch_operations_sum", service=s)] == 151
    assert got[key("gongji_batch_operations_bucket", service=s, le="1.0")] == 1
    assert got[key("gongji_batch_operations_bucket", service=s, le="100.0")] == 1
    assert got[key("gongji_batch_operations_bucket", service=s, le="200.0")] == 2
    assert got[key("gongji_dead_letters_total", service=s, reason="MalformedMessage")] == 2
    assert got[key("gongji_moved_fen_total", service=s, flow="copay")] == 12_350
    retries = "gongji_retries_total"
    assert got[key(retries, service=s, step="commit", region="420100")] == 2
    assert got[key(retries, service=s, step="credit", region="510100")] == 1


def test_services_in_one_process_are_separate_series(service: str) -> None:
    ServiceMetrics(f"{service}-a").dead_letter("x")
    ServiceMetrics(f"{service}-b").dead_letter("x")
    ServiceMetrics(f"{service}-b").dead_letter("x")
    value = REGISTRY.get_sample_value
    name = "gongji_dead_letters_total"
    assert value(name, {"service": f"{service}-a", "reason": "x"}) == 1
    assert value(name, {"service": f"{service}-b", "reason": "x"}) == 2


def test_only_low_cardinality_labels() -> None:
    # region: one of a few hundred pooling regions; kind: one of three disagreement kinds;
    # step: one of four retried steps.
    allowed = {"service", "flow", "outcome", "direction", "reason", "kind", "region", "step", "le"}
    seen = False
    for family in REGISTRY.collect():
        if not family.name.startswith("gongji_"):
            continue
        for sample in family.samples:
            seen = True
            assert set(sample.labels) <= allowed, sample
    assert seen


def test_moved_rejects_negative_and_empty_service_rejected(service: str) -> None:
    with pytest.raises(ValueError):
        ServiceMetrics(service).moved("copay", -1)
    with pytest.raises(ValueError):
        ServiceMetrics("")
