"""The same seed and code give the same run; another seed gives another."""

from __future__ import annotations

import pytest

from gongji.sim import SimConfig, parse_faults, run_simulation


def config(seed: int) -> SimConfig:
    return SimConfig(seed=seed, transfers=600, regions=6, faults=parse_faults("all"))


@pytest.mark.timeout(120)
def test_same_seed_same_trace_hash() -> None:
    first = run_simulation(config(11), explain=False)
    second = run_simulation(config(11), explain=False)
    assert first.trace_hash == second.trace_hash
    assert first.transfers == second.transfers
    assert first.faults_injected == second.faults_injected
    assert sum(first.faults_injected.values()) > 0


@pytest.mark.timeout(120)
def test_another_seed_another_trace_hash() -> None:
    assert run_simulation(config(11), explain=False).trace_hash != (
        run_simulation(config(12), explain=False).trace_hash
    )
