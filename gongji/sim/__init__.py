"""Deterministic simulation: the real cores under seeded faults, with invariants.

``run_simulation`` runs one seed and returns its report; on a violation it runs the
seed again, watching the transfers involved, to print their story.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gongji.population import Population, RegionSpec
from gongji.scenario.records import Scenario
from gongji.scenario.requests import population_of
from gongji.sim.config import SimConfig
from gongji.sim.faults import DEFAULT_RATES, NO_FAULTS, FaultRates, parse_faults
from gongji.sim.node import CLIENT
from gongji.sim.places import sim_regions
from gongji.sim.report import SimReport, build_report, format_report
from gongji.sim.simulation import Simulation
from gongji.sim.workload import Request, build_workload

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
    scenario: Scenario | None = None,
) -> SimReport:
    """Run one seed; with ``explain``, replay it to trace the transfers of any violation.

    ``regions``: a scenario's (``gongji.sim.month``); by default the scenario's, else
    ``config.regions`` of the simulator's own places. With a ``scenario``, its population
    (drawn and named) is set up instead of a generated one, registered with ``regions``;
    the requests are the simulator's workload of ``config.transfers``, with the
    scenario's bill and wallet amounts.
    """
    population: Population | None = None
    requests: list[Request] | None = None
    if scenario is not None:
        regions = regions or scenario.regions
        population = population_of(scenario)
        population.regions = regions  # enabled as the run starts (a month: its end)
        requests = _workload(config, scenario, population)
    regions = regions or sim_regions(config.regions)
    started = time.perf_counter()
    result = Simulation(
        config, regions, population=population, requests=requests, progress=progress
    ).run()
    report = build_report(result, time.perf_counter() - started)
    if report.violations and explain:
        watch = result.checker.involved_transfers()
        again = Simulation(
            config, regions, population=population, requests=requests, watch=watch
        ).run()
        report.traces = again.trace_lines
        report.replay_hash_matches = again.trace_hash == result.trace_hash
    return report


def _workload(config: SimConfig, scenario: Scenario, population: Population) -> list[Request]:
    """The simulator's requests, with the amounts the scenario's ``[bills]`` gives."""
    bills = scenario.bills
    return build_workload(
        population,
        config.transfers,
        config.seed,
        CLIENT,
        wallet_share=config.wallet_share,
        premium_share=config.premium_share,
        bill_fen=(bills.amount_fen.min, bills.amount_fen.max),
        wallet_fen=(bills.wallet_amount_fen.min, bills.wallet_amount_fen.max),
    )
