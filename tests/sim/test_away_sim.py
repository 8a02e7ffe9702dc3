"""Care away from home in the simulator: bills at the region of care, their legs across
up to three regions, under faults (crashes of the regions of care among them)."""

from __future__ import annotations

import pytest

from gongji.sim import SimConfig, parse_faults, run_simulation


@pytest.mark.timeout(180)
def test_bills_away_from_home_keep_every_invariant_under_all_faults() -> None:
    config = SimConfig(
        seed=3, transfers=1_500, regions=6, faults=parse_faults("all"), away_share=0.4
    )
    report = run_simulation(config, explain=False)
    assert report.ok, [str(v) for v in report.violations[:5]]
    away = report.flows["away"]
    assert away.get("COMMITTED", 0) > 0
    assert report.invariants_checked["clearing"] and report.invariants_checked["agreement"]


@pytest.mark.timeout(180)
def test_regions_of_care_crashing_mid_way_lose_and_double_nothing() -> None:
    """Every request is a bill away from home, so every region is a region of care with
    bills under way when it crashes (and restarts from its file)."""
    config = SimConfig(
        seed=11,
        transfers=800,
        regions=5,
        faults=parse_faults("crash=0.02,duplicate=0.05,loss=0.02"),
        wallet_share=0.0,
        premium_share=0.0,
        away_share=1.0,
    )
    report = run_simulation(config, explain=False)
    assert report.faults_injected["crash"] > 0
    assert report.ok, [str(v) for v in report.violations[:5]]
    assert set(report.flows) == {"away"}
    assert report.flows["away"].get("COMMITTED", 0) > 0
