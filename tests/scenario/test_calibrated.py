"""A calibrated population: short balances, migration-shaped pairs, and the targets a run
is compared with (``[calibration]``); the loader checks each new key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gongji.population import Migration
from gongji.scenario import ScenarioError, load_scenario, population_of
from tests.scenario.conftest import SMALL

GUANGZHOU = """
[[regions]]
code = "440100"
name = "广州市 Guangzhou"
province = "广东 Guangdong"
enabled = true
"""

CALIBRATED = """
[population]
persons_per_region = 200
zero_balance_share = 0.1
short_balance_share = 0.3
short_balance_max_fen = 5000
balance_fen = { min = 10000, max = 20000 }

[population.migration]
share = 1.0
work = ["44"]
home = ["42", "51"]

[calibration]
wallet_amount_fen = 68000
premium_money_share = 0.171
flow_shares = { copay = 0.7, wallet = 0.2, premium = 0.1 }
bills_paid = { full = 0.5, part = 0.2, refused = 0.3 }
"""


def test_short_balances_and_migration_shape_the_population(
    write: Callable[[str], Path],
) -> None:
    scenario = load_scenario(write(SMALL + GUANGZHOU + CALIBRATED))
    assert scenario.population.migration == Migration(
        1.0, frozenset({"44"}), frozenset({"42", "51"})
    )
    population = population_of(scenario)
    balances = [p.opening_balance_fen for p in population.persons if p.insurance == "employee"]
    short = [b for b in balances if 0 < b <= 5_000]
    assert 0.15 < len(short) / len(balances) < 0.4
    assert all(b == 0 or b <= 5_000 or 10_000 <= b <= 20_000 for b in balances)
    # Families at home in Hubei and Sichuan: every co-payer from another region works in
    # Guangdong (share 1.0); Beijing's families are not "home" and draw from anywhere.
    for b in population.bindings:
        if b.beneficiary_region in ("420100", "510100") and b.copayer_region not in (
            b.beneficiary_region,
            scenario.population.unregistered_region,
        ):
            assert b.copayer_region == "440100"
    targets = scenario.calibration
    assert targets.wallet_amount_fen == 68_000
    assert targets.premium_money_share == pytest.approx(0.171)
    assert dict(targets.flow_shares) == {"copay": 0.7, "wallet": 0.2, "premium": 0.1, "binding": 0}
    assert dict(targets.bills_paid) == {"full": 0.5, "part": 0.2, "refused": 0.3}


def test_without_the_new_keys_the_drawn_population_is_unchanged(
    write: Callable[[str], Path],
) -> None:
    """Short balances and migration cost no draw when off: older populations stay."""
    from gongji.population import Draws, draw_population

    scenario = load_scenario(write(SMALL))
    old = Draws(
        **{
            k: getattr(scenario.population.draws(), k)
            for k in Draws.__slots__
            if k not in ("short_balance_share", "short_balance_max_fen", "migration")
        }
    )
    drawn = draw_population(scenario.regions, 100, scenario.seed, old)
    assert population_of(scenario).persons == drawn.persons
    assert population_of(scenario).bindings == drawn.bindings


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[population.migration]\nshare = 0.5\nwork = ["44"]\nhome = ["42"]\n',
            "population: field 'migration.work': 44: no region of this scenario is in that"
            " province",
        ),
        (
            '[population.migration]\nshare = 0.5\nwork = ["420"]\nhome = ["51"]\n',
            "population: field 'migration.work': '420' is not a 2-digit province code",
        ),
        (
            '[population.migration]\nshare = 0.5\nwork = ["42"]\nhome = ["42"]\n',
            "population: field 'migration.home': 42 is also a 'work' province",
        ),
        (
            '[population.migration]\nshare = 2\nwork = ["42"]\n',
            "population: field 'migration.home': missing (required)",
        ),
        (
            '[population.migration]\nshare = 0.5\nwork = ["42"]\nhome = ["51"]\nhomes = []\n',
            "population: field 'migration.homes': unknown field (did you mean 'home'?)",
        ),
        (
            "[population]\nshort_balance_share = 1.5\n",
            "population: field 'short_balance_share': 1.5 is not a share from 0 to 1",
        ),
        (
            "[calibration]\nflow_shares = { copay = 0.5, walet = 0.5 }\n",
            "calibration: field 'flow_shares.walet': unknown key (did you mean 'wallet'?)",
        ),
        (
            "[calibration]\nbills_paid = { full = 0.5, part = 0.2 }\n",
            "calibration: field 'bills_paid': shares sum to 0.7, not 1",
        ),
        (
            "[calibration]\nwallet_amount_fen = 0\n",
            "calibration: field 'wallet_amount_fen': 0 is less than 1",
        ),
        (
            "[calibration]\npremium_share = 0.2\n",
            "calibration: field 'premium_share': unknown field (did you mean"
            " 'premium_money_share'?)",
        ),
    ],
)
def test_each_bad_key_is_named_by_file_entry_and_field(
    write: Callable[[str], Path], text: str, problem: str
) -> None:
    path = write(SMALL + text)
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    problems = caught.value.problems
    assert any(p.startswith(f"{path}: {problem}") for p in problems), problems
