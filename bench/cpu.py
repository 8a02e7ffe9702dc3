"""CPU seconds of the processes a benchmark run involves, read from /proc.

A co-payment's cost is the machine's, not one process's: the services, the broker and the
load generator each take their share. ``CpuMeter`` reads each one's user+system time before
and after a run, so a figure is CPU milliseconds per co-payment, by process and in total.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

from gongji.cluster.local import ClusterState

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def broker_pids() -> list[int]:
    """The RabbitMQ node's Erlang VM (``beam.smp``) on this machine."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "beam.smp":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _self_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(slots=True)
class CpuMeter:
    """CPU seconds by process group: ``clearinghouse``, ``regions``, ``broker``, ``load``."""

    state: ClusterState

    def read(self) -> dict[str, float]:
        totals = {"clearinghouse": 0.0, "regions": 0.0, "broker": 0.0, "load": 0.0}
        for service in self.state.services:
            seconds = _cpu_seconds(service.pid) or 0.0
            group = "clearinghouse" if service.name == "clearinghouse" else "regions"
            totals[group] += seconds
        totals["broker"] = sum(_cpu_seconds(pid) or 0.0 for pid in broker_pids())
        totals["load"] = _self_seconds()  # the load generator runs in this process
        return totals

    def read_processes(self) -> dict[str, float]:
        """CPU seconds of each process: every service by name, ``broker`` and ``load``."""
        each = {service.name: _cpu_seconds(service.pid) or 0.0 for service in self.state.services}
        each["broker"] = sum(_cpu_seconds(pid) or 0.0 for pid in broker_pids())
        each["load"] = _self_seconds()
        return each

    @staticmethod
    def per_copayment_ms(
        before: dict[str, float], after: dict[str, float], copayments: int, *, total: bool = True
    ) -> dict[str, float]:
        """CPU ms per co-payment by key, and (unless not ``total``) their sum, ``total``
        (the machine's)."""
        n = max(1, copayments)
        per = {k: round(1000 * (after.get(k, v) - v) / n, 3) for k, v in before.items()}
        if total:
            per["total"] = round(sum(per.values()), 3)
        return per
