"""The benchmark's CPU accounting reads real processes' times from /proc."""

from __future__ import annotations

import os

from bench.cpu import CpuMeter, _cpu_seconds


def test_a_process_cpu_time_is_read_and_grows_with_work() -> None:
    before = _cpu_seconds(os.getpid())
    assert before is not None
    total = 0
    for i in range(3_000_000):
        total += i * i
    after = _cpu_seconds(os.getpid())
    assert after is not None and after > before and total > 0
    assert _cpu_seconds(2**22 + 12345) is None  # no such process


def test_per_copayment_figures_add_up() -> None:
    before = {"clearinghouse": 1.0, "regions": 2.0, "broker": 3.0, "load": 4.0}
    after = {"clearinghouse": 1.5, "regions": 3.0, "broker": 3.5, "load": 4.25}
    per = CpuMeter.per_copayment_ms(before, after, 250)
    assert per == {
        "clearinghouse": 2.0,
        "regions": 4.0,
        "broker": 2.0,
        "load": 1.0,
        "total": 9.0,
    }
