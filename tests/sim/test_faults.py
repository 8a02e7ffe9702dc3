"""The ``--faults`` list: kinds, rates, ``all`` and ``none``, and clear errors."""

from __future__ import annotations

import pytest

from gongji.sim.faults import DEFAULT_RATES, KINDS, NO_FAULTS, parse_faults


def test_all_none_and_a_list_with_rates() -> None:
    assert parse_faults("all") == DEFAULT_RATES
    assert parse_faults("all").enabled() == list(KINDS)
    assert parse_faults("none") == NO_FAULTS
    rates = parse_faults("delay, crash=0.01")
    assert rates.enabled() == ["delay", "crash"]
    assert (rates.delay, rates.crash) == (DEFAULT_RATES.delay, 0.01)
    assert parse_faults(rates.spec()) == rates
    assert DEFAULT_RATES.spec() == "all" and NO_FAULTS.spec() == "none"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("delay,meteor", "unknown fault 'meteor'"),
        ("crash=lots", "not a number"),
        ("loss=0.9", "at most 0.5"),
        ("delay=-1", ">= 0"),
        ("all=0.1", "'all' takes no rate"),
    ],
)
def test_bad_lists_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_faults(text)
