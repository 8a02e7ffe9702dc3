"""The shipped ``national`` scenario: the roll-out's counts, real codes, and the file is
its generator's output."""

from __future__ import annotations

from collections import defaultdict

from contracts.identifiers import is_region_code
from gongji.scenario import load_scenario
from gongji.scenario.loader import scenario_path
from gongji.scenario.national import (
    ENABLED_PROVINCES,
    ENABLED_REGIONS,
    NATIONAL_SCENARIO_PATH,
    WALLET_PROVINCE_WIDE,
    WALLET_PROVINCES,
    WALLET_REGIONS,
    render,
)


def test_the_committed_file_is_the_generators_output() -> None:
    assert NATIONAL_SCENARIO_PATH.read_text(encoding="utf-8") == render()


def test_the_shipped_name_finds_the_file() -> None:
    assert scenario_path("national") == NATIONAL_SCENARIO_PATH


def test_146_regions_in_17_provinces_enabled_the_rest_registered() -> None:
    scenario = load_scenario(NATIONAL_SCENARIO_PATH)
    enabled = [r for r in scenario.regions if r.enabled]
    assert len(enabled) == ENABLED_REGIONS == 146
    assert len({r.province for r in enabled}) == ENABLED_PROVINCES == 17
    # Every province of the file has enabled regions; the others are registered, off.
    assert {r.province for r in scenario.regions} == {r.province for r in enabled}
    assert len(scenario.regions) > len(enabled)
    assert all(is_region_code(r.code) for r in scenario.regions)
    assert scenario.population.unregistered_region not in scenario.codes


def test_the_wallet_in_117_regions_of_14_provinces_6_province_wide() -> None:
    scenario = load_scenario(NATIONAL_SCENARIO_PATH)
    wallet = [r for r in scenario.regions if r.policy.wallet_enabled]
    assert len(wallet) == WALLET_REGIONS == 117
    assert all(r.enabled for r in wallet)
    assert len({r.province for r in wallet}) == WALLET_PROVINCES == 14
    by_province: dict[str, list[bool]] = defaultdict(list)
    for r in scenario.regions:
        by_province[r.province].append(r.policy.wallet_enabled)
    assert sum(1 for flags in by_province.values() if all(flags)) == WALLET_PROVINCE_WIDE == 6


def test_prefecture_codes_and_the_named_exceptions() -> None:
    """Prefecture-level codes end in 00; the county-level regions pooled on their own
    (Jiyuan, Hubei's four, the Corps' cities) sit under x90 of their province."""
    scenario = load_scenario(NATIONAL_SCENARIO_PATH)
    odd = sorted(r.code for r in scenario.regions if not r.code.endswith("00"))
    assert all(code[2:4] == "90" for code in odd)
    assert {"419001", "429004", "659001"} <= set(odd)
    assert scenario.region("410100").name.startswith("郑州市")
