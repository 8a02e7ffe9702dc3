"""The broker baseline runs on the real broker, as the participants it plays."""

from __future__ import annotations

import pytest

from bench.baseline import measure_baseline
from broker.users import list_users

pytestmark = pytest.mark.broker


@pytest.mark.timeout(120)
async def test_the_baseline_round_trips_through_an_authorizing_echo(amqp_url: str) -> None:
    before = list_users()
    result = await measure_baseline(amqp_url, ops_per_message=5, seconds=1.0, warmup_s=0.5)
    # The echo's shell refuses what an unknown user sends: nothing would come back.
    assert result.round_trips > 0 and result.messages > 0
    assert result.round_trips % 5 == 0
    assert list_users() == before  # its two users are gone again
