"""The load generator's own counts agree with what a real Prometheus scraped."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from gongji.cluster.local import LOAD_CLIENT, ClusterState
from gongji.load import LoadConfig, Target, run_load
from tests.e2e.conftest import SCRAPE_INTERVAL_S, Prometheus

pytestmark = pytest.mark.broker

REGIONS_COPAY = '{job="gongji-regions", service=~"region-.*", flow="copay"}'
BY_OUTCOME = f"sum by (outcome) (gongji_transfers_total{REGIONS_COPAY})"
FINISHED = f"sum(gongji_transfer_duration_seconds_count{REGIONS_COPAY})"
IN_FLIGHT = (
    'sum(gongji_transfers_in_flight{job="gongji-regions", service=~"region-.*", flow="copay"})'
)


def wait_for_scrape_after(prometheus: Prometheus, moment: float, timeout_s: float = 30.0) -> None:
    """Until every target has been scraped (successfully) after ``moment`` (epoch s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        up = prometheus.query('up{job=~"gongji-.*"}')
        scraped = prometheus.query('timestamp(up{job=~"gongji-.*"})')
        if (
            up
            and all(float(s["value"][1]) == 1 for s in up)
            and all(float(s["value"][1]) > moment for s in scraped)
        ):
            return
        time.sleep(SCRAPE_INTERVAL_S / 4)
    raise AssertionError(f"no successful scrape of every target within {timeout_s} s: {up}")


def by_outcome(prometheus: Prometheus) -> Counter[str]:
    return Counter(
        {s["metric"]["outcome"]: round(float(s["value"][1])) for s in prometheus.query(BY_OUTCOME)}
    )


def scalar(prometheus: Prometheus, promql: str) -> float:
    result = prometheus.query(promql)
    return float(result[0]["value"][1]) if result else 0.0


@pytest.mark.timeout(240)
async def test_promql_agrees_with_the_load_generators_counts(
    amqp_url: str, local_cluster: ClusterState, prometheus: Prometheus
) -> None:
    wait_for_scrape_after(prometheus, time.time())
    before = by_outcome(prometheus)
    finished_before = scalar(prometheus, FINISHED)
    target = Target(
        local_cluster.namespace, local_cluster.population(), Path(local_cluster.data_dir)
    )
    config = LoadConfig(rate=40, duration_s=4, cross_province=0.8, skew=0.5, drain_s=60)

    report = await run_load(local_cluster.url_for(LOAD_CLIENT), target, config)

    quiet = time.time()
    assert report.errors()["timeouts"] == 0, report.errors()
    assert report.conserved is True, report.books
    expected = Counter(report.outcomes())
    # The mix reaches both a commit and the refusal of the region that is not enabled.
    assert expected["COMMITTED"] > 0 and expected["REGION_NOT_ENABLED"] > 0, expected
    wait_for_scrape_after(prometheus, quiet + SCRAPE_INTERVAL_S)
    scraped = by_outcome(prometheus)
    scraped.subtract(before)
    assert +scraped == expected
    assert scalar(prometheus, FINISHED) - finished_before == sum(expected.values())
    assert scalar(prometheus, IN_FLIGHT) == 0
