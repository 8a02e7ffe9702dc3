"""The ``--faults`` list: kinds, rates, ``all`` and ``none``, and clear errors."""

from __future__ import annotations

import pytest

from gongji.sim import SimConfig, run_simulation
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


@pytest.mark.timeout(180)
def test_a_crash_loop_dead_letters_nothing_with_the_real_delivery_limit() -> None:
    """Each kill hands a whole prefetch back to the broker, which counts it as a
    delivery. With the old delivery limit of 5 a crash loop dead-lettered healthy
    messages (and lost their requests) in some seeds; the limit is now a backstop far
    above that, and the same seeds dead-letter nothing."""
    crash_loop = parse_faults("crash_loop=1")

    def dead_lettered(seed: int, limit: int) -> list[str]:
        config = SimConfig(
            seed=seed, transfers=5_000, regions=10, faults=crash_loop, delivery_limit=limit
        )
        report = run_simulation(config, explain=False)
        assert report.faults_injected["crash_loop"] > 0
        return [v.detail for v in report.violations if "dead-lettered" in v.detail]

    seeds = (4, 5, 6)
    assert all(any("delivery_limit" in d for d in dead_lettered(s, 5)) for s in seeds)
    assert all(dead_lettered(s, SimConfig().delivery_limit) == [] for s in seeds)
