"""Regions hosted by province with mailboxes, under simulation: the host's own step code
(``regions.host``'s mailbox engine) on the simulated broker, every fault on, a host's
regions and mailbox dying and losing the broker together, as one process."""

from __future__ import annotations

from collections import Counter

import pytest

from contracts.identifiers import province_of
from gongji.sim import SimConfig, parse_faults, run_simulation
from gongji.sim.node import Network
from gongji.sim.places import sim_regions

REGIONS = 42
"""All the simulator's places: the last ones are second cities of provinces already in."""


def config(seed: int, faults: str = "all", **settings: object) -> SimConfig:
    return SimConfig(
        seed=seed,
        transfers=1_000,
        regions=REGIONS,
        faults=parse_faults(faults),
        requests_per_second=100,
        mailboxes=True,
        **settings,  # type: ignore[arg-type]
    )


def test_each_province_has_one_mailbox_serving_its_regions() -> None:
    regions = sim_regions(REGIONS)
    network = Network(config(1), regions)
    provinces = Counter(province_of(r.code) for r in regions)
    assert sorted(network.mailbox_nodes) == sorted(provinces)
    assert max(provinces.values()) > 1  # some host serves several regions
    for code, mailbox in network.mailbox_nodes.items():
        assert [n.code for n in mailbox.hosted] == [
            r.code for r in regions if province_of(r.code) == code
        ]
        for region_node in mailbox.hosted:
            # One process: its regions' timers run in the mailbox, and they go together.
            assert region_node.tick_ms == 0 and region_node.host is mailbox
            assert region_node.group() == mailbox.group() == [mailbox, *mailbox.hosted]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("seed", [3, 4])
def test_every_fault_with_mailboxes_keeps_every_invariant(seed: int) -> None:
    report = run_simulation(config(seed), explain=False)
    assert report.ok, [str(v) for v in report.violations[:5]]
    # The clearinghouse's operations went through the mailboxes, faults happened there.
    assert report.network["mailbox_deliveries"] > 1_000
    assert report.faults_injected["crash"] > 0 and report.faults_injected["loss"] > 0


@pytest.mark.timeout(180)
def test_a_crash_loop_of_a_host_keeps_every_invariant() -> None:
    report = run_simulation(config(5, "crash_loop=30"), explain=False)
    assert report.faults_injected["crash_loop"] > 0
    assert report.ok, [str(v) for v in report.violations[:5]]


@pytest.mark.timeout(180)
def test_the_same_seed_gives_the_same_run_and_mailboxes_change_it() -> None:
    first = run_simulation(config(11), explain=False)
    assert first.trace_hash == run_simulation(config(11), explain=False).trace_hash
    without = SimConfig(
        seed=11,
        transfers=1_000,
        regions=REGIONS,
        faults=parse_faults("all"),
        requests_per_second=100,
    )
    assert run_simulation(without, explain=False).trace_hash != first.trace_hash
    assert "--mailboxes" in first.replay


@pytest.mark.timeout(180)
def test_a_planted_engine_bug_is_caught_in_a_mailbox_too() -> None:
    # Acking before the commit loses what a crash mid-transaction rolled back.
    report = run_simulation(config(1, "crash=0.05", plant="ack-before-commit"), explain=False)
    details = [v.detail for v in report.violations if v.invariant == "ack after commit and confirm"]
    assert any("province." in d and "before its step committed" in d for d in details)
