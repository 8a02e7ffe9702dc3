"""A month, fast: a scenario's regions simulated over a month of days, windows closed
daily or monthly as its ``[clearing]`` says, settled between the regional funds.

The month is a calendar for the business, compressed in time: each simulated day is
``day_ms`` of virtual time, within which that day's requests arrive, and its window
closes at the day's end (``daily``) or once at the month's end (``monthly``). The cores'
own timers keep their real lengths in virtual time, so the faults and timeouts are as
in any run; a day is a span of activity, not 24 hours (wallet day limits, which follow
the China calendar day of the virtual clock, therefore span the whole month).

Nothing here knows a scenario by name: the regions, their policies, their enablement at
the end of the scenario's roll-out, the cadence and the advance all come from the file.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from gongji.population import RegionSpec
from gongji.scenario import load_scenario
from gongji.scenario.records import WindowCadence
from gongji.sim.config import SimConfig

DAYS_IN_A_MONTH = 30


def month_config(
    path: str | Path, base: SimConfig, *, days: int = DAYS_IN_A_MONTH, day_ms: int | None = None
) -> tuple[SimConfig, tuple[RegionSpec, ...]]:
    """The run of ``base``'s seed, requests and faults over the scenario at ``path``
    (``ScenarioError`` if the file is wrong), and its regions."""
    if days < 1:
        raise ValueError(f"a month has at least one day, not {days}")
    scenario = load_scenario(path)
    enabled = scenario.enabled_after(scenario.bills.count)
    regions = tuple(dataclasses.replace(r, enabled=r.code in enabled) for r in scenario.regions)
    day = base.day_ms if day_ms is None else day_ms
    month_ms = days * day
    daily = scenario.clearing.window is WindowCadence.DAILY
    config = dataclasses.replace(
        base,
        scenario=str(path),
        regions=len(regions),
        days=days,
        day_ms=day,
        window_ms=day if daily else month_ms,
        # The requests arrive over the month (a Poisson stream ending near its last day).
        requests_per_second=max(1, math.ceil(base.transfers * 1_000 / month_ms)),
        advance_fen=scenario.clearing.advance_fen,
    )
    return config, regions
