"""Deterministic simulation: the real cores under seeded faults, with invariants.

``run_simulation`` runs one seed and returns its report; on a violation it runs the
seed again, watching the transfers involved, to print their story.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gongji.population import RegionSpec
from gongji.sim.config import SimConfig
from gongji.sim.faults import DEFAULT_RATES, NO_FAULTS, FaultRates, parse_faults
from gongji.sim.places import sim_regions
from gongji.sim.report import SimReport, build_report, format_report
from gongji.sim.simulation import Simulation

__all__ = [
    "DEFAULT_RATES",
    "NO_FAULTS",
    "FaultRates",
    "SimConfig",
    "SimReport",
    "format_report",
    "parse_faults",
    "run_simulation",
]

Progress = Callable[[int, int, int, str], None]


def run_simulation(
    config: SimConfig,
    *,
    progress: Progress | None = None,
    explain: bool = True,
    regions: tuple[RegionSpec, ...] | None = None,
) -> SimReport:
    """Run one seed; with ``explain``, replay it to trace the transfers of any violation.

    ``regions``: a scenario's (``gongji.sim.month``); by default ``config.regions`` of the
    simulator's own places."""
    regions = regions or sim_regions(config.regions)
    started = time.perf_counter()
    result = Simulation(config, regions, progress=progress).run()
    report = build_report(result, time.perf_counter() - started)
    if report.violations and explain:
        watch = result.checker.involved_transfers()
        again = Simulation(config, regions, watch=watch).run()
        report.traces = again.trace_lines
        report.replay_hash_matches = again.trace_hash == result.trace_hash
    return report
