"""The load's flows without a broker: binding requests and revocations, and a seeded
population whose beneficiaries have several co-payers."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from contracts.operations import BindingOutcome, RequestBinding, RevokeBinding
from contracts.reasons import ReasonCode
from gongji.cluster.catalog import regions_by_code
from gongji.cluster.seed import seed_population
from gongji.load.flows import REVOKE, BindingFlow

CODES = ["310000", "420100", "510100", "440100", "440300"]


def test_some_seeded_beneficiaries_have_two_or_three_distinct_copayers() -> None:
    seeded = seed_population(regions_by_code(CODES), 60, seed=1)
    copayers: dict[str, set[str]] = {}
    for b in seeded.population.bindings:
        copayers.setdefault(b.beneficiary, set()).add(b.copayer)
    counts = Counter(len(c) for c in copayers.values())
    assert counts[1] > counts[2] > counts[3] > 0
    bindings_per_beneficiary = Counter(b.beneficiary for b in seeded.population.bindings)
    assert bindings_per_beneficiary == Counter({k: len(v) for k, v in copayers.items()})


def test_the_binding_flow_revokes_only_what_it_saw_recorded_as_its_own() -> None:
    seeded = seed_population(regions_by_code(CODES), 20, seed=1)
    flow = BindingFlow(seeded, "client.test")
    rng = random.Random(3)
    binds = [flow.make(rng, f"b-{i}", "420100", True) for i in range(20)]
    assert all(isinstance(r.op, RequestBinding) and r.flow == "binding" for r in binds)
    # A cross-province bind asks a co-payer of another province, at the co-payer's region.
    provinces = {r.code: r.province for r in seeded.regions}
    for request in binds:
        assert isinstance(request.op, RequestBinding)
        copayer_region = request.address.rsplit(".", 1)[-1]
        assert provinces[copayer_region] != provinces["420100"]
    # Nothing answered yet: nothing to revoke, every request binds.
    assert all(
        isinstance(flow.make(rng, f"x-{i}", "420100", True).op, RequestBinding) for i in range(5)
    )
    flow.answered(BindingOutcome("b-0", "b-0"))  # recorded: ours
    flow.answered(BindingOutcome("b-1", "bind-seeded", None, "bound already"))  # not ours
    flow.answered(BindingOutcome("b-2", "b-2", ReasonCode.REGION_NOT_ENABLED))  # refused
    revokes = [
        r for r in (flow.make(rng, f"y-{i}", "420100", True) for i in range(40)) if r.flow == REVOKE
    ]
    assert len(revokes) == 1
    op = revokes[0].op
    assert isinstance(op, RevokeBinding) and op.binding_id == "b-0"
    first = binds[0].op
    assert isinstance(first, RequestBinding) and op.copayer == first.copayer


def test_a_scenarios_population_feeds_every_flow() -> None:
    """The national scenario's drawn population (zero and short balances, co-payers in
    regions not enabled or not registered) as the load's: every flow makes requests for
    every region it sends to, each to a person the population holds."""
    from typing import Any, cast

    from broker.topology import Topology
    from gongji.cluster.seed import seeded_from
    from gongji.load import LoadConfig, LoadGenerator
    from gongji.scenario import load_scenario, population_of
    from gongji.scenario.loader import scenario_path

    scenario = load_scenario(scenario_path("national"))
    seeded = seeded_from(population_of(scenario))
    known = {p.psn_no for p in seeded.population.persons}
    pooled = [b for pool in (seeded.cross_province, seeded.same_province) for b in pool.values()]
    assert sum(len(p) for p in pooled) > 0
    assert all(b in known for pool in pooled for b in pool)
    mix = {"copay": 0.6, "wallet": 0.2, "premium": 0.1, "binding": 0.1}
    generator = LoadGenerator(
        cast(Any, None),
        Topology(namespace="flows"),
        seeded,
        LoadConfig(rate=1, duration_s=1, mix=mix, cross_province=0.8),
    )
    requests = [generator._request(i) for i in range(2_000)]
    assert {r.flow for r in requests} == {"copay", "wallet", "premium", "binding"}
    for r in requests:
        person = getattr(r.op, "copayer", None) or getattr(r.op, "beneficiary", None)
        assert person in known
    # Cross-province pairs follow migration: most of the families at home in Henan are
    # paid for from the provinces people work in.
    henan = [
        b
        for b in seeded.population.bindings
        if b.beneficiary_region.startswith("41") and b.copayer in known
    ]
    at_work = [b for b in henan if b.copayer_region[:2] in {"44", "32", "31", "12", "37"}]
    assert len(at_work) > len(henan) / 2


def test_gongji_load_refuses_a_bad_scenario_before_sending(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gongji.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text('[[regions]]\ncode = "31"\n', encoding="utf-8")
    argv = ["load", "--scenario", str(bad), "--data-dir", str(tmp_path / "none")]
    assert main([*argv, "--scenario-population"]) == 2
    assert "bad.toml: regions[0] (31): field 'code'" in capsys.readouterr().err
    assert main(["load", "--scenario-population", "--data-dir", str(tmp_path / "none")]) == 2
    assert "--scenario-population goes with --scenario" in capsys.readouterr().err


def test_the_text_report_gives_each_flow_its_rate_and_outcomes() -> None:
    from gongji.load import LatencyHistogram, LoadConfig, LoadReport, format_report
    from gongji.load.generator import LoadResult

    result = LoadResult(LoadConfig(rate=10, duration_s=10), CODES)
    for flow, outcomes in (
        ("copay", {"COMMITTED": 60, "ZERO_BALANCE": 20}),
        ("binding", {"COMMITTED": 15}),
        (REVOKE, {"COMMITTED": 5}),
    ):
        result.latency[flow] = LatencyHistogram()
        result.outcomes[flow] = Counter(outcomes)
    result.bills_paid.update({"full": 50, "part": 10, "refused": 20})
    result.last_outcome = result.started + 10.0
    text = format_report(LoadReport("flows", result, books=None))
    assert "  copay          8.0/s  COMMITTED 60, ZERO_BALANCE 20" in text
    assert "  revoke         0.5/s  COMMITTED 5" in text
    assert "bills:       50 paid in full, 10 in part, 20 refused" in text
