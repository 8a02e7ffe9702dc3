"""``[clearing]``: the clearing period and the regions' advances, read and checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gongji.scenario import ScenarioError, load_scenario
from gongji.scenario.records import ClearingSpec, WindowCadence
from tests.scenario.conftest import SMALL


def test_without_the_section_windows_are_monthly_without_advance(
    write: Callable[[str], Path],
) -> None:
    assert load_scenario(write(SMALL)).clearing == ClearingSpec(WindowCadence.MONTHLY, 0)


def test_the_section_is_read(write: Callable[[str], Path]) -> None:
    path = write(SMALL + '\n[clearing]\nwindow = "daily"\nadvance_fen = 500000\n')
    assert load_scenario(path).clearing == ClearingSpec(WindowCadence.DAILY, 500_000)


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        ('window = "weekly"', "clearing: field 'window': 'weekly' is not one of daily, monthly"),
        ("advance_fen = -1", "clearing: field 'advance_fen': -1 is less than 0"),
        ("advance_fen = 1.5", "clearing: field 'advance_fen': expected an integer, got float"),
        ("advance = 10", "clearing: field 'advance': unknown field (did you mean 'advance_fen'?)"),
    ],
)
def test_a_wrong_key_is_reported_with_its_entry_and_field(
    write: Callable[[str], Path], lines: str, problem: str
) -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario(write(SMALL + f"\n[clearing]\n{lines}\n"))
    assert any(problem in p for p in error.value.problems), error.value.problems
