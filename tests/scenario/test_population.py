"""Populations drawn from scenarios, and the generator's older entry points unchanged."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts.operations import EnrollPerson, Insurance, RegisterRegion, Relationship
from contracts.policy import Policy, policy_of
from contracts.vocabulary import SCOPE_RELATIONSHIPS, PaymentOrder, Scope
from gongji import population as generator
from gongji.population import (
    DEMO_REGIONS,
    Person,
    RegionSpec,
    generate_bills,
    generate_population,
    secret_of,
)
from gongji.scenario import load_scenario, population_of
from tests.scenario.conftest import SMALL

pytestmark = pytest.mark.timeout(60)

LEGACY_DIGEST = "e0471a967adf2206ec23353ddd0e80900e7ae596a4fc8747fc13623729ce52d7"
"""Of what generate_population / generate_bills gave before scenarios existed."""


def test_generate_population_and_bills_are_unchanged() -> None:
    h = hashlib.sha256()
    for seed, n in ((1, 40), (5, 120)):
        pop = generate_population(DEMO_REGIONS, n, seed)
        for p in pop.persons:
            h.update(repr((p.psn_no, p.region, p.insurance.value, p.opening_balance_fen)).encode())
        for b in pop.bindings:
            fields = (b.binding_id, b.copayer, b.copayer_region, b.beneficiary)
            h.update(repr((*fields, b.beneficiary_region, b.relationship.value)).encode())
        for bill in generate_bills(pop, 200, seed, "client.x"):
            h.update(
                repr((bill.transfer_id, bill.beneficiary, bill.amount_fen, bill.reply_to)).encode()
            )
    assert h.hexdigest() == LEGACY_DIGEST


def test_older_constructors_still_work() -> None:
    spec = RegionSpec("420100", "武汉市 Wuhan", "湖北 Hubei", True)
    assert spec.policy == Policy()
    assert Person("420100-000001", "420100", Insurance.EMPLOYEE, 5).secret == ""
    assert generator.region_of("420100-000001") == "420100"


def test_secrets_are_deterministic_and_personal() -> None:
    assert secret_of("420100-000001", 1) == secret_of("420100-000001", 1)
    assert secret_of("420100-000001", 1) != secret_of("420100-000002", 1)
    assert secret_of("420100-000001", 1) != secret_of("420100-000001", 2)
    pop = generate_population(DEMO_REGIONS, 20, 9)
    assert all(p.secret == secret_of(p.psn_no, 9) for p in pop.persons)


def test_population_of_is_deterministic(write: Callable[[str], Path]) -> None:
    path = write(SMALL + "[population]\npersons_per_region = 300\n")
    a, b = population_of(load_scenario(path)), population_of(load_scenario(path))
    assert a.persons == b.persons and a.bindings == b.bindings
    other = population_of(load_scenario(write(SMALL.replace("seed = 3", "seed = 4"))))
    assert other.persons != a.persons


MIXED = """
seed = 11
[[regions]]
code = "420100"
name = "n"
province = "p"
enabled = true
[[regions]]
code = "510100"
name = "n"
province = "p"
enabled = true
[[regions]]
code = "310000"
name = "n"
province = "p"
enabled = true
[[regions]]
code = "440100"
name = "n"
province = "p"
enabled = false

[population]
persons_per_region = 3000
insurance_mix = { employee = 0.5, resident = 0.4, none = 0.1 }
zero_balance_share = 0.2
balance_fen = { min = 1000, max = 2000 }
beneficiary_share = 0.6
bindings_per_beneficiary = { 1 = 0.5, 2 = 0.25, 3 = 0.25 }
cross_region_share = 0.7
relationship_mix = { spouse = 0.5, parent = 0.3, sibling = 0.2 }
unregistered_copayer_share = 0.05
unregistered_region = "650100"
"""


def test_population_of_follows_the_mixes(write: Callable[[str], Path]) -> None:
    pop = population_of(load_scenario(write(MIXED)))
    persons = pop.persons
    assert len(persons) == 12_000
    kinds = Counter(p.insurance for p in persons)
    assert kinds[Insurance.EMPLOYEE] / 12_000 == pytest.approx(0.5, abs=0.02)
    assert kinds[Insurance.RESIDENT] / 12_000 == pytest.approx(0.4, abs=0.02)
    employees = [p for p in persons if p.insurance is Insurance.EMPLOYEE]
    zero = [p for p in employees if p.opening_balance_fen == 0]
    assert len(zero) / len(employees) == pytest.approx(0.2, abs=0.02)
    assert all(1000 <= p.opening_balance_fen <= 2000 for p in employees if p.opening_balance_fen)
    assert all(p.opening_balance_fen == 0 for p in persons if p.insurance is not Insurance.EMPLOYEE)

    insured = [p for p in persons if p.insurance is not Insurance.NONE]
    copayers_of = Counter(b.beneficiary for b in pop.bindings)
    assert len(copayers_of) / len(insured) == pytest.approx(0.6, abs=0.02)
    uninsured = {p.psn_no for p in persons if p.insurance is Insurance.NONE}
    assert not any(b.beneficiary in uninsured for b in pop.bindings)

    unregistered = {b.beneficiary for b in pop.bindings if b.copayer_region == "650100"}
    assert len(unregistered) / len(copayers_of) == pytest.approx(0.05, abs=0.015)
    counts = Counter(n for psn, n in copayers_of.items() if psn not in unregistered)
    total = sum(counts.values())
    assert counts[1] / total == pytest.approx(0.5, abs=0.03)
    assert counts[2] / total == pytest.approx(0.25, abs=0.03)
    assert counts[3] / total == pytest.approx(0.25, abs=0.03)

    registered = [b for b in pop.bindings if b.copayer_region != "650100"]
    cross = sum(b.copayer_region != b.beneficiary_region for b in registered)
    assert cross / len(registered) == pytest.approx(0.7, abs=0.02)
    by_psn = {p.psn_no: p for p in persons}
    assert all(by_psn[b.copayer].insurance is Insurance.EMPLOYEE for b in registered)
    assert all(b.copayer != b.beneficiary for b in pop.bindings)
    assert len({(b.copayer, b.beneficiary) for b in pop.bindings}) == len(pop.bindings)

    relationships = Counter(b.relationship for b in pop.bindings)
    assert set(relationships) == {Relationship.SPOUSE, Relationship.PARENT, Relationship.SIBLING}
    assert relationships[Relationship.SPOUSE] / len(pop.bindings) == pytest.approx(0.5, abs=0.02)
    assert relationships[Relationship.SIBLING] / len(pop.bindings) == pytest.approx(0.2, abs=0.02)
    assert len({b.binding_id for b in pop.bindings}) == len(pop.bindings)


def test_bindings_respect_both_regions_scopes(write: Callable[[str], Path]) -> None:
    scenario = load_scenario(write(SMALL + "[population]\npersons_per_region = 400\n"))
    pop = population_of(scenario)
    narrow = SCOPE_RELATIONSHIPS[Scope.SCOPE_2021]
    touching = [b for b in pop.bindings if "510100" in (b.copayer_region, b.beneficiary_region)]
    assert touching and all(b.relationship in narrow for b in touching)
    others = [b for b in pop.bindings if b not in touching]
    assert {b.relationship for b in others} - narrow, "the 2024 scope is used elsewhere"


def test_setup_operations_carry_policies_and_secrets(write: Callable[[str], Path]) -> None:
    scenario = load_scenario(write(SMALL + "[population]\npersons_per_region = 20\n"))
    pop = population_of(scenario)
    ops = [o.op for o in pop.setup_operations()]
    registers = {op.region: op for op in ops if isinstance(op, RegisterRegion)}
    assert set(registers) == set(scenario.codes)
    for spec in scenario.regions:
        op = registers[spec.code]
        assert (op.name, op.province, op.enabled) == (spec.name, spec.province, spec.enabled)
        assert policy_of(op) == spec.policy
    assert registers["510100"].scope is Scope.SCOPE_2021
    assert registers["510100"].payment_order is PaymentOrder.COPAYER_FIRST
    assert registers["110000"].wallet_enabled is False
    enrolls = [op for op in ops if isinstance(op, EnrollPerson)]
    assert len(enrolls) == 60
    assert all(op.secret == secret_of(op.psn_no, scenario.seed) for op in enrolls)
    # Set-up order: the registry first, then persons, then the directory.
    kinds = [type(op).__name__ for op in ops]
    assert kinds == sorted(kinds, key=["RegisterRegion", "EnrollPerson", "RecordBinding"].index)


def test_legacy_setup_operations_register_the_default_policy() -> None:
    ops = [o.op for o in generate_population(DEMO_REGIONS, 5, 1).setup_operations()]
    registers = [op for op in ops if isinstance(op, RegisterRegion)]
    assert [op.region for op in registers] == [r.code for r in DEMO_REGIONS]
    assert all(policy_of(op) == Policy() for op in registers)
    assert all(op.secret for op in ops if isinstance(op, EnrollPerson))
