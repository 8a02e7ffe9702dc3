"""What the services record in the process-wide Prometheus registry during a flow.

The registry is shared by every test of the process, so each check is a difference
between before and after the flow.
"""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from contracts.reasons import COMMITTED, ReasonCode
from telemetry.metrics import REGISTRY
from tests.integration.conftest import CHENGDU, World, eventually, sample

pytestmark = [pytest.mark.broker, pytest.mark.timeout(30)]

CH = "clearinghouse"
PAYEE = f"region-{CHENGDU}"
OUTCOMES = (COMMITTED, ReasonCode.NO_BINDING.value, ReasonCode.ZERO_BALANCE.value)


def snapshot() -> dict[str, float]:
    values = {}
    for service in (CH, PAYEE):
        for outcome in OUTCOMES:
            values[f"{service}:{outcome}"] = sample(
                "gongji_transfers_total", service=service, flow="copay", outcome=outcome
            )
        labels = {"service": service, "flow": "copay"}
        values[f"{service}:count"] = sample("gongji_transfer_duration_seconds_count", **labels)
        values[f"{service}:sum"] = sample("gongji_transfer_duration_seconds_sum", **labels)
        values[f"{service}:in_flight"] = sample("gongji_transfers_in_flight", **labels)
        values[f"{service}:moved"] = sample("gongji_moved_fen_total", **labels)
    return values


async def run_flow(world: World) -> dict[str, float]:
    """One bill of each outcome in OUTCOMES; returns the registry's differences."""
    before = snapshot()
    committed = await world.pay(CHENGDU, "B1", 6_000, "m-commit")
    no_binding = await world.pay(CHENGDU, "B5", 6_000, "m-nobinding")
    zero = await world.pay(CHENGDU, "B3", 6_000, "m-zero")
    assert [committed.outcome, no_binding.outcome, zero.outcome] == list(OUTCOMES)
    await world.settle_and_check()

    def recorded() -> bool:
        # Services record after acking, a moment after the state is committed.
        now = snapshot()
        return all(now[f"{s}:count"] - before[f"{s}:count"] >= 3 for s in (CH, PAYEE))

    await eventually(recorded, "both services recorded three finished transfers")
    after = snapshot()
    return {key: after[key] - before[key] for key in after}


async def test_transfers_by_service_flow_and_outcome_and_durations(world: World) -> None:
    delta = await run_flow(world)

    for service in (CH, PAYEE):
        for outcome in OUTCOMES:
            assert delta[f"{service}:{outcome}"] == 1, (service, outcome)
        assert delta[f"{service}:count"] == 3
        assert delta[f"{service}:in_flight"] == 0
        assert delta[f"{service}:moved"] == 6_000
    text = generate_latest(REGISTRY).decode()
    for service, outcome in ((CH, COMMITTED), (PAYEE, "ZERO_BALANCE")):
        series = f'{{flow="copay",outcome="{outcome}",service="{service}"}}'
        assert f"gongji_transfers_total{series}" in text
    # Low-cardinality labels only: no transfer id or person number in any series.
    for value in ("m-commit", "m-zero", "B1", "A1"):
        assert f'"{value}"' not in text


async def test_durations_are_those_of_the_flow(world: World) -> None:
    delta = await run_flow(world)

    # A generous sanity bound (an hour for three bills), not a speed measurement: a
    # duration measured from time 0 instead of the bill's submission would be ~1.7e9 s.
    for service in (CH, PAYEE):
        assert 0 <= delta[f"{service}:sum"] < 3_600, service
