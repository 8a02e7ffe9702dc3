"""The requests a scenario generates, the deliberately wrong ones above all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from contracts.identifiers import CLEARINGHOUSE
from contracts.operations import Insurance, RequestWalletTransfer, SetRegionEnabled
from contracts.vocabulary import SCOPE_RELATIONSHIPS, Scope
from gongji.population import Person, Population, region_of, secret_of
from gongji.scenario import (
    Scenario,
    bills_of,
    binding_requests_of,
    load_default_scenario,
    load_scenario,
    population_of,
    premium_payments_of,
    rollout_operations,
    wallet_transfers_of,
    wrong_secret,
)
from tests.scenario.conftest import SMALL

pytestmark = pytest.mark.timeout(60)

REPLY = "client.test"


@pytest.fixture(scope="module")
def default() -> tuple[Scenario, Population]:
    scenario = load_default_scenario()
    return scenario, population_of(scenario)


def persons(population: Population) -> dict[str, Person]:
    return {p.psn_no: p for p in population.persons}


def test_bills_follow_the_spec(default: tuple[Scenario, Population]) -> None:
    scenario, population = default
    bills = bills_of(scenario, REPLY, population)
    assert bills == bills_of(scenario, REPLY)
    assert len(bills) == scenario.bills.count
    assert len({b.transfer_id for b in bills}) == len(bills)
    spec = scenario.bills.amount_fen
    assert all(spec.min <= b.amount_fen <= spec.max and b.reply_to == REPLY for b in bills)
    assert all(region_of(b.beneficiary) in scenario.codes for b in bills)
    bound = {b.beneficiary for b in population.bindings}
    share = sum(b.beneficiary in bound for b in bills) / len(bills)
    assert share >= scenario.bills.bound_share - 0.05


def test_wallet_transfers_include_the_intended_wrong_cases(
    default: tuple[Scenario, Population],
) -> None:
    scenario, population = default
    ops = wallet_transfers_of(scenario, population, REPLY)
    assert ops == wallet_transfers_of(scenario, population, REPLY)
    assert len(ops) == scenario.bills.wallet_transfers == 40
    assert len({op.transfer_id for op in ops}) == len(ops)
    people = persons(population)
    pairs = {(b.copayer, b.beneficiary) for b in population.bindings}
    policy = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    wrong = [op for op in ops if op.secret != secret_of(op.copayer, scenario.seed)]
    assert len(wrong) == 4  # 10 % of 40
    assert all(op.secret == wrong_secret(people[op.copayer].secret) for op in wrong)
    over: list[RequestWalletTransfer] = []
    within: list[RequestWalletTransfer] = []
    for op in ops:
        assert (op.copayer, op.beneficiary) in pairs
        assert op.beneficiary_region == people[op.beneficiary].region
        limits = (
            policy[region_of(op.copayer)].wallet_max_per_transfer_fen,
            policy[op.beneficiary_region].wallet_max_per_transfer_fen,
        )
        (over if op.amount_fen > max(limits) else within).append(op)
        assert op.amount_fen > max(limits) or 0 < op.amount_fen <= min(limits)
    assert len(over) == 4
    for op in over:
        regions = {region_of(op.copayer), op.beneficiary_region}
        assert len(regions) == 2 and regions <= steady
        assert all(policy[r].wallet_enabled for r in regions)
        assert people[op.copayer].opening_balance_fen >= op.amount_fen
        assert op.secret == people[op.copayer].secret, "one thing wrong at a time"
    # No accidental LIMIT_EXCEEDED from the daily count.
    for copayer, n in Counter(op.copayer for op in ops).items():
        caps = [
            min(policy[region_of(copayer)].wallet_max_transfers_per_day,
                policy[op.beneficiary_region].wallet_max_transfers_per_day)
            for op in ops if op.copayer == copayer
        ]  # fmt: skip
        assert n <= min(caps)


def test_premium_payments_include_duplicates_after_their_originals(
    default: tuple[Scenario, Population],
) -> None:
    scenario, population = default
    ops = premium_payments_of(scenario, population, REPLY)
    assert ops == premium_payments_of(scenario, population, REPLY)
    assert len(ops) == scenario.bills.premium_payments == 20
    assert len({op.transfer_id for op in ops}) == len(ops)
    people = persons(population)
    pairs = {(b.copayer, b.beneficiary) for b in population.bindings}
    policy = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    for op in ops:
        assert (op.copayer, op.beneficiary) in pairs
        assert people[op.beneficiary].insurance is Insurance.RESIDENT
        assert op.beneficiary_region == people[op.beneficiary].region
    seen: dict[tuple[str, int], int] = {}
    duplicates = []
    for i, op in enumerate(ops):
        key = (op.beneficiary, op.year)
        if key in seen:
            duplicates.append((ops[seen[key]], op))
        else:
            seen[key] = i
    assert len(duplicates) == 2  # 10 % of 20
    assert [later for _, later in duplicates] == ops[-2:], "duplicates come last"
    for first, later in duplicates:
        for op in (first, later):
            assert op.secret == secret_of(op.copayer, scenario.seed)
            assert {region_of(op.copayer), op.beneficiary_region} <= steady
            premium = policy[op.beneficiary_region].resident_premium_fen
            assert people[op.copayer].opening_balance_fen >= premium
    wrong = [op for op in ops if op.secret != secret_of(op.copayer, scenario.seed)]
    assert len(wrong) == 2
    assert all(op.secret == wrong_secret(people[op.copayer].secret) for op in wrong)


def test_binding_requests_include_policy_disagreements(
    default: tuple[Scenario, Population],
) -> None:
    scenario, population = default
    ops = binding_requests_of(scenario, population, REPLY)
    assert ops == binding_requests_of(scenario, population, REPLY)
    assert len(ops) == scenario.bills.binding_requests == 20
    people = persons(population)
    bound = {(b.copayer, b.beneficiary) for b in population.bindings}
    policy = {r.code: r.policy for r in scenario.regions}
    steady = scenario.always_enabled()
    disagreeing = []
    for op in ops:
        copayer, beneficiary = people[op.copayer], people[op.beneficiary]
        assert copayer.insurance is Insurance.EMPLOYEE
        assert beneficiary.insurance is not Insurance.NONE
        assert copayer.region != beneficiary.region
        assert {copayer.region, beneficiary.region} <= steady
        assert (op.copayer, op.beneficiary) not in bound
        assert op.beneficiary_region == beneficiary.region
        verdicts = {
            policy[r].allows(op.relationship) for r in (copayer.region, op.beneficiary_region)
        }
        if verdicts == {True, False}:
            disagreeing.append(op)
            assert op.relationship not in SCOPE_RELATIONSHIPS[Scope.SCOPE_2021]
            assert op.secret == copayer.secret
        else:
            assert verdicts == {True}
    assert len(disagreeing) == 4  # 20 % of 20
    assert len({(op.copayer, op.beneficiary) for op in ops}) == len(ops)
    wrong = [op for op in ops if op.secret != secret_of(op.copayer, scenario.seed)]
    assert len(wrong) == 2


def test_no_requests_unless_asked(write: Callable[[str], Path]) -> None:
    scenario = load_scenario(write(SMALL))
    population = population_of(scenario)
    assert wallet_transfers_of(scenario, population, REPLY) == []
    assert premium_payments_of(scenario, population, REPLY) == []
    assert binding_requests_of(scenario, population, REPLY) == []


def test_a_positive_share_of_a_small_count_still_gives_one(
    write: Callable[[str], Path],
) -> None:
    text = (
        SMALL
        + """
[population]
persons_per_region = 60
[bills]
wallet_transfers = 3
premium_payments = 2
binding_requests = 3
wrong_secret_share = 0.01
over_limit_share = 0.01
duplicate_premium_share = 0.01
policy_disagreement_share = 0.01
"""
    )
    scenario = load_scenario(write(text))
    population = population_of(scenario)
    wallet = wallet_transfers_of(scenario, population, REPLY)
    assert sum(op.amount_fen > 200_000 for op in wallet) == 1
    premiums = premium_payments_of(scenario, population, REPLY)
    assert len({(op.beneficiary, op.year) for op in premiums}) == 1 < len(premiums)
    bindings = binding_requests_of(scenario, population, REPLY)
    narrow = SCOPE_RELATIONSHIPS[Scope.SCOPE_2021]
    assert sum(op.relationship not in narrow for op in bindings) >= 1


def test_rollout_operations_go_to_the_clearinghouse() -> None:
    step = load_default_scenario().rollout[0]
    out = rollout_operations(step)
    assert all(o.address == CLEARINGHOUSE for o in out)
    assert [o.op for o in out] == [SetRegionEnabled(c, True) for c in step.enable] + [
        SetRegionEnabled(c, False) for c in step.disable
    ]
