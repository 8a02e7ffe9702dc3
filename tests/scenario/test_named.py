"""A scenario may name its persons and families, beside the drawn population."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from contracts.operations import EnrollPerson, Insurance, RecordBinding, Relationship
from gongji.scenario import ScenarioError, load_scenario, population_of
from tests.scenario.conftest import SMALL

FAMILY = """
[[persons]]
number = "son-guangzhou"
region = "420100"
insurance = "employee"
balance_fen = 1234500
secret = "pw-son"

[[persons]]
number = "mother-chengdu"
region = "510100"
insurance = "resident"

[[bindings]]
copayer = "son-guangzhou"
beneficiary = "mother-chengdu"
relationship = "parent"
"""


def test_named_persons_and_bindings_join_the_drawn_population(
    write: Callable[[str], Path],
) -> None:
    scenario = load_scenario(write(SMALL + FAMILY))
    population = population_of(scenario)
    son = next(p for p in population.persons if p.psn_no == "son-guangzhou")
    assert (son.region, son.insurance, son.opening_balance_fen, son.secret) == (
        "420100",
        Insurance.EMPLOYEE,
        1_234_500,
        "pw-son",
    )
    [binding] = [b for b in population.bindings if b.copayer == "son-guangzhou"]
    assert (binding.beneficiary, binding.beneficiary_region, binding.relationship) == (
        "mother-chengdu",
        "510100",
        Relationship.PARENT,
    )
    # They are enrolled and recorded by the same set-up operations as everyone else.
    ops = [o.op for o in population.setup_operations()]
    assert EnrollPerson("son-guangzhou", Insurance.EMPLOYEE, 1_234_500, "pw-son") in ops
    assert any(isinstance(op, RecordBinding) and op.copayer == "son-guangzhou" for op in ops)


@pytest.mark.parametrize(
    ("change", "broken", "problem"),
    [
        (
            'region = "420100"',
            'region = "999999"',
            "persons[0] (son-guangzhou): field 'region': 999999 is not a region of this scenario",
        ),
        (
            'insurance = "employee"',
            'insurance = "martian"',
            "persons[0] (son-guangzhou): field 'insurance': 'martian' is not one of",
        ),
        (
            'copayer = "son-guangzhou"',
            'copayer = "nobody"',
            "bindings[0]: field 'copayer': nobody is not a person of [[persons]]",
        ),
        (
            'number = "son-guangzhou"',
            'number = "bad number!"',
            "persons[0] (bad number!): field 'number': a person number is 1 to 64 of",
        ),
    ],
)
def test_a_bad_named_entry_names_its_file_entry_and_field(
    write: Callable[[str], Path], change: str, broken: str, problem: str
) -> None:
    path = write(SMALL + FAMILY.replace(change, broken, 1))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert f"{path}: {problem}" in str(caught.value)
