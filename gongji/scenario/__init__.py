"""Scenario files: regions and their policies, the population to draw, the requests to
send and a roll-out schedule, read from TOML (keys documented in ``scenarios/README.md``).

``records`` holds what a validated scenario is, ``loader`` reads and validates a file
(all or nothing, with ``fields``' problem-collecting readers), and ``requests`` draws
the population and the requests a scenario describes.
"""

from __future__ import annotations

from gongji.population import secret_of
from gongji.scenario.loader import (
    DEFAULT_SCENARIO_PATH,
    ROLLOUT_SCENARIO_PATH,
    ScenarioError,
    load_default_scenario,
    load_scenario,
)
from gongji.scenario.records import (
    BillSpec,
    FenRange,
    InsuranceMix,
    PopulationSpec,
    RolloutStep,
    Scenario,
)
from gongji.scenario.requests import (
    bills_of,
    binding_requests_of,
    population_of,
    premium_payments_of,
    rollout_operations,
    wallet_transfers_of,
    wrong_secret,
)

__all__ = [
    "DEFAULT_SCENARIO_PATH",
    "ROLLOUT_SCENARIO_PATH",
    "BillSpec",
    "FenRange",
    "InsuranceMix",
    "PopulationSpec",
    "RolloutStep",
    "Scenario",
    "ScenarioError",
    "bills_of",
    "binding_requests_of",
    "load_default_scenario",
    "load_scenario",
    "population_of",
    "premium_payments_of",
    "rollout_operations",
    "secret_of",
    "wallet_transfers_of",
    "wrong_secret",
]
