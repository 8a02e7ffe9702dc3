"""End-to-end benchmark: durable cross-province co-payments through a real local cluster.

In one run on this machine (broker included):

1. for 4, 8 and 32 regions and the national scenario's 146 enabled regions: a local
   cluster (``gongji cluster up``: the clearinghouse and a process per province hosting
   its regions, SQLite per region, quorum queues, persistent messages, publisher confirms)
   and saturating loads of cross-province co-payments with a bounded number in flight,
   starting at ``Plan.in_flight_per_region`` per region and doubling until the steady
   completion rate stops growing (or ``Plan.max_in_flight``); the best rate is that
   size's maximum. More requests in flight fill each hop's messages fuller (the
   services batch), which is how the system trades latency for throughput; a fixed
   window shared by 32 regions leaves each region's messages nearly empty;
2. with 4 regions, an open-loop load at half of that maximum: its p99 latency,
   measured from each request's intended send time; and before the saturating runs, the
   same at a few fixed light rates (``Plan.curve_rates``), each with the CPU seconds of
   every process (each service, the broker, the load generator) per co-payment;
3. the raw broker baseline (``bench.baseline``): operation round trips through an echo
   service on the same shell, at the ops per message the services averaged in step 1.

Prints every figure and the ratio e2e / baseline; ``--json`` prints one object.
Usage: ``python -m bench.e2e [--quick] [--json] [--sqlite-synchronous NORMAL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.baseline import BaselineResult, measure_baseline
from bench.cpu import CpuMeter
from gongji.cluster.catalog import first_regions, with_enabled
from gongji.cluster.local import (
    LOAD_CLIENT,
    ClusterConfig,
    ClusterState,
    cluster_down,
    cluster_up,
    delete_queues,
    free_port_block,
)
from gongji.load import LoadConfig, LoadReport, Target, run_load
from gongji.population import RegionSpec
from gongji.scenario import load_scenario
from gongji.scenario.loader import SCENARIO_DIR
from telemetry.logs import configure_logging

# The per-message-cost issue's targets, broker included, on a 2-core machine.
NATIONAL_REGIONS = 146
"""The roll-out's enabled regions (``gongji/scenarios/national.toml``), hosted by province."""
TARGET_PER_SECOND = 5_000
"""Durable co-payments per second at saturation with 4 regions."""
TARGET_P99_MS = 500.0
"""p99 latency at half the maximum rate."""
TARGET_LIGHT_RATE = 200
TARGET_LIGHT_CPU_MS = 2.0
"""Machine CPU ms per co-payment at ``TARGET_LIGHT_RATE``."""
TARGET_LIGHT_P99_MS = 50.0
TARGET_SCALING = 0.90
"""32 regions' maximum over 4 regions'."""


@dataclass(slots=True)
class Plan:
    """How long and how hard to push; ``--quick`` halves it."""

    region_counts: tuple[int, ...] = (4, 8, 32, NATIONAL_REGIONS)
    """Sizes: the first N catalog regions, all enabled; ``NATIONAL_REGIONS``: the enabled
    regions of the national scenario."""
    persons_per_region: int = 100
    saturation_s: float = 20.0
    """Each saturating run; its second half is the steady window (the first fills the
    pipeline: a large window takes seconds to reach its steady state)."""
    in_flight_per_region: int = 200
    """The sweep's first window, per region."""
    max_in_flight: int = 6_400
    """A latency bound: 6,400 at about 1,900/s is 3.4 s per co-payment, near the 5 s reserve
    timeout; a larger window also takes longer to fill than a run's first half."""
    plateau_gain: float = 1.05
    """The sweep stops once doubling the window gains less than this factor."""
    latency_s: float = 10.0
    baseline_s: float = 8.0
    sqlite_synchronous: str = "FULL"
    curve_rates: tuple[int, ...] = (200, 400, 800)

    @classmethod
    def quick(cls, sqlite_synchronous: str) -> Plan:
        return cls(
            saturation_s=10.0, latency_s=5.0, baseline_s=4.0, sqlite_synchronous=sqlite_synchronous
        )


@dataclass(slots=True)
class Figures:
    sqlite_synchronous: str
    by_regions: dict[int, float] = field(default_factory=dict)
    sweeps: dict[int, dict[int, float]] = field(default_factory=dict)
    """Region count -> {requests in flight -> steady co-payments per second}."""
    ops_per_message: float = 0.0
    p99_ms: float = 0.0
    p99_rate: float = 0.0
    latency_run: dict[str, Any] = field(default_factory=dict)
    """The open-loop run at half the maximum: its latency summary (ms)."""
    latency_by_rate: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Open-loop runs at ``Plan.curve_rates``: rate -> latency summary (ms)."""
    baseline: BaselineResult | None = None
    cpu_ms_by_rate: dict[int, dict[str, float]] = field(default_factory=dict)
    """Fixed rate -> CPU ms per co-payment, by process group and in total (4 regions)."""
    cpu_ms_by_process: dict[str, dict[str, float]] = field(default_factory=dict)
    """Run ("200/s", "saturation-4", ...) -> CPU ms per co-payment of each process."""
    cpu_ms_at_saturation: dict[int, dict[str, float]] = field(default_factory=dict)
    """Region count -> the same at that size's best saturating run."""
    messages_per_copayment: dict[str, float] = field(default_factory=dict)
    """Run ("200/s", "saturation-4", ...) -> service messages received per co-payment."""
    conserved: bool = True
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def e2e_per_second(self) -> float:
        return self.by_regions.get(4, max(self.by_regions.values(), default=0.0))

    @property
    def ratio(self) -> float:
        base = self.baseline.round_trips_per_second if self.baseline else 0.0
        return self.e2e_per_second / base if base else 0.0

    @property
    def scaling(self) -> float:
        four, many = self.by_regions.get(4), self.by_regions.get(32)
        return many / four if four and many else 0.0

    def light(self) -> tuple[float | None, float | None]:
        """(CPU ms per co-payment, p99 ms) at the light target rate, if it was run."""
        cpu = self.cpu_ms_by_rate.get(TARGET_LIGHT_RATE, {}).get("total")
        latency = self.latency_by_rate.get(TARGET_LIGHT_RATE, {}).get("p99")
        return cpu, latency

    def scaling_of(self, regions: int) -> float:
        four, many = self.by_regions.get(4), self.by_regions.get(regions)
        return many / four if four and many else 0.0

    def targets(self) -> dict[str, Any]:
        cpu, p99 = self.light()
        return {
            "per_second": TARGET_PER_SECOND,
            "p99_ms": TARGET_P99_MS,
            "scaling": TARGET_SCALING,
            "light_rate": TARGET_LIGHT_RATE,
            "light_cpu_ms": TARGET_LIGHT_CPU_MS,
            "light_p99_ms": TARGET_LIGHT_P99_MS,
            "met_per_second": self.e2e_per_second >= TARGET_PER_SECOND,
            "met_p99": 0 < self.p99_ms <= TARGET_P99_MS,
            "met_scaling": self.scaling >= TARGET_SCALING,
            "met_scaling_by_regions": {
                str(n): self.scaling_of(n) >= TARGET_SCALING
                for n in sorted(self.by_regions)
                if n > 4
            },
            "met_light_cpu": cpu is not None and cpu <= TARGET_LIGHT_CPU_MS,
            "met_light_p99": p99 is not None and 0 < p99 <= TARGET_LIGHT_P99_MS,
        }

    def as_json(self) -> dict[str, Any]:
        base = self.baseline
        return {
            "sqlite_synchronous": self.sqlite_synchronous,
            "baseline_round_trips_per_second": round(base.round_trips_per_second, 1)
            if base
            else None,
            "baseline_messages_per_second": round(base.messages_per_second, 1) if base else None,
            "baseline_ops_per_message": base.ops_per_message if base else None,
            "e2e_per_second": round(self.e2e_per_second, 1),
            "ratio": round(self.ratio, 4),
            "p99_ms": round(self.p99_ms, 1),
            "p99_at_per_second": round(self.p99_rate, 1),
            "latency_ms_at_half_max": self.latency_run,
            "latency_ms_by_rate": {str(r): s for r, s in sorted(self.latency_by_rate.items())},
            "by_regions": {str(n): round(v, 1) for n, v in sorted(self.by_regions.items())},
            "in_flight_sweeps": {
                str(n): {str(w): round(v, 1) for w, v in sorted(sweep.items())}
                for n, sweep in sorted(self.sweeps.items())
            },
            "scaling_32_over_4": round(self.scaling, 3),
            "service_ops_per_message": round(self.ops_per_message, 2),
            "cpu_ms_per_copayment": {str(r): c for r, c in sorted(self.cpu_ms_by_rate.items())},
            "cpu_ms_per_copayment_at_saturation": {
                str(n): c for n, c in sorted(self.cpu_ms_at_saturation.items())
            },
            "cpu_ms_per_copayment_by_process": self.cpu_ms_by_process,
            "messages_per_copayment": self.messages_per_copayment,
            "conserved": self.conserved,
            "errors": self.errors,
            "targets": self.targets(),
            "machine": {
                "cpus": os.cpu_count(),
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            },
            "seconds": round(self.seconds, 1),
        }


def say(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def _message_totals(state: ClusterState) -> tuple[float, float]:
    """(operations, messages) received by every service so far, from their metrics."""
    ops = messages = 0.0
    for service in state.services:
        url = f"http://127.0.0.1:{service.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        for name, value in re.findall(
            r'^gongji_(operations|messages)_total\{direction="in",[^}]*\} (\S+)$', text, re.M
        ):
            if name == "operations":
                ops += float(value)
            else:
                messages += float(value)
    return ops, messages


def _regions(count: int) -> list[RegionSpec]:
    """The regions of a run of ``count`` regions (every one enabled)."""
    if count == NATIONAL_REGIONS:
        national = load_scenario(SCENARIO_DIR / "national.toml").regions
        return [r for r in national if r.enabled]
    return list(with_enabled(first_regions(count), True))


async def _with_cluster(
    amqp_url: str,
    regions: int,
    plan: Plan,
    work: Callable[[ClusterState], Awaitable[None]],
    data_root: Path,
) -> None:
    data_dir = data_root / f"cluster-{regions}"
    config = ClusterConfig(
        amqp_url=amqp_url,
        data_dir=data_dir,
        regions=_regions(regions),
        namespace=f"bench-{regions}-{uuid.uuid4().hex[:6]}",
        base_port=free_port_block(regions + 1),
        persons_per_region=plan.persons_per_region,
        sqlite_synchronous=plan.sqlite_synchronous,
        ready_timeout_s=180,
    )
    started = time.perf_counter()
    state = await cluster_up(config)
    say(f"{regions} regions up in {time.perf_counter() - started:.1f} s")
    try:
        await work(state)
    finally:
        await asyncio.to_thread(cluster_down, data_dir)
        await delete_queues(amqp_url, state)


def _target(state: ClusterState) -> Target:
    target = Target(state.namespace, state.population(), Path(state.data_dir))
    target.mailboxes = state.mailboxes
    return target


def _absorb(figures: Figures, report: LoadReport) -> None:
    if report.conserved is False:
        figures.conserved = False
    for name, count in report.errors().items():
        figures.errors[name] = figures.errors.get(name, 0) + count


async def _saturate(
    amqp_url: str, state: ClusterState, plan: Plan, figures: Figures, in_flight: int
) -> tuple[float, float]:
    """The steady completion rate with ``in_flight`` requests outstanding, and the
    operations per message the services received meanwhile."""
    config = LoadConfig(
        rate=50_000,
        duration_s=plan.saturation_s,
        cross_province=1.0,
        max_in_flight=in_flight,
        drain_s=60,
    )
    meter = CpuMeter(state)
    ops0, msgs0 = await asyncio.to_thread(_message_totals, state)
    cpu0, each0 = meter.read(), meter.read_processes()
    report = await run_load(state.url_for(LOAD_CLIENT), _target(state), config, audit_wait_s=30)
    cpu1, each1 = meter.read(), meter.read_processes()
    ops1, msgs1 = await asyncio.to_thread(_message_totals, state)
    _absorb(figures, report)
    rate = report.result.steady_per_second(skip_s=plan.saturation_s / 2)
    regions = len(state.regions)
    best = figures.sweeps.get(regions, {})
    if rate > max(best.values(), default=0.0):
        done = report.result.completed
        figures.cpu_ms_at_saturation[regions] = meter.per_copayment_ms(cpu0, cpu1, done)
        figures.cpu_ms_by_process[f"saturation-{regions}"] = meter.per_copayment_ms(
            each0, each1, done, total=False
        )
        figures.messages_per_copayment[f"saturation-{regions}"] = round(
            (msgs1 - msgs0) / max(1, done), 2
        )
    say(
        f"{len(state.regions)} regions, {in_flight:,} in flight: {rate:,.0f}/s "
        f"({report.result.completed} co-payments, conserved: {report.conserved})"
    )
    return rate, (ops1 - ops0) / max(1.0, msgs1 - msgs0)


async def _sweep(amqp_url: str, state: ClusterState, plan: Plan, figures: Figures) -> float:
    """The maximum steady rate: double the window until the rate stops growing."""
    regions = len(state.regions)
    sweep = figures.sweeps.setdefault(regions, {})
    in_flight = min(plan.in_flight_per_region * regions, plan.max_in_flight)
    best = 0.0
    while True:
        rate, ops_per_message = await _saturate(amqp_url, state, plan, figures, in_flight)
        sweep[in_flight] = rate
        grew = rate >= best * plan.plateau_gain
        if rate > best and regions == 4:
            figures.ops_per_message = ops_per_message  # the baseline's message size
        best = max(best, rate)
        if not grew or in_flight >= plan.max_in_flight:
            return best
        in_flight = min(in_flight * 2, plan.max_in_flight)


async def _open_loop(
    amqp_url: str, state: ClusterState, plan: Plan, figures: Figures, rate: float, what: str
) -> dict[str, Any]:
    """Latency (ms) of an open-loop load at ``rate`` for ``plan.latency_s``."""
    config = LoadConfig(rate=rate, duration_s=plan.latency_s, cross_province=1.0, drain_s=60)
    meter = CpuMeter(state)
    _, msgs0 = await asyncio.to_thread(_message_totals, state)
    cpu0, each0 = meter.read(), meter.read_processes()
    report = await run_load(state.url_for(LOAD_CLIENT), _target(state), config, audit_wait_s=30)
    cpu1, each1 = meter.read(), meter.read_processes()
    _, msgs1 = await asyncio.to_thread(_message_totals, state)
    _absorb(figures, report)
    done = report.result.completed
    if what == "fixed":
        figures.cpu_ms_by_rate[int(rate)] = meter.per_copayment_ms(cpu0, cpu1, done)
        figures.cpu_ms_by_process[f"{int(rate)}/s"] = meter.per_copayment_ms(
            each0, each1, done, total=False
        )
        figures.messages_per_copayment[f"{int(rate)}/s"] = round((msgs1 - msgs0) / max(1, done), 2)
    summary: dict[str, Any] = report.result.latency["copay"].summary_ms()
    say(
        f"open loop at {rate:,.0f}/s ({what}): p50 {summary['p50']:.0f} ms, "
        f"p99 {summary['p99']:.0f} ms, achieved {report.result.achieved_per_second:,.0f}/s"
    )
    return summary


async def run_bench(amqp_url: str, plan: Plan) -> Figures:
    started = time.perf_counter()
    figures = Figures(plan.sqlite_synchronous)
    with tempfile.TemporaryDirectory(prefix="gongji-bench-") as tmp:
        root = Path(tmp)
        for regions in plan.region_counts:

            async def work(state: ClusterState, regions: int = regions) -> None:
                if regions == 4:
                    # Light loads first: after a saturating burst the broker and the
                    # services spend a while compacting and checkpointing. A first,
                    # unmeasured run warms them (a fresh cluster's first seconds are
                    # slow: caches, the broker's new queues).
                    await _open_loop(amqp_url, state, plan, figures, plan.curve_rates[0], "warm-up")
                    for light in plan.curve_rates:
                        figures.latency_by_rate[light] = await _open_loop(
                            amqp_url, state, plan, figures, light, "fixed"
                        )
                figures.by_regions[regions] = await _sweep(amqp_url, state, plan, figures)
                if regions != 4:
                    return
                rate = max(1.0, 0.5 * figures.by_regions[4])
                summary = await _open_loop(amqp_url, state, plan, figures, rate, "half max")
                figures.p99_ms, figures.p99_rate = summary["p99"], rate
                figures.latency_run = summary

            await _with_cluster(amqp_url, regions, plan, work, root)
    ops = max(1, round(figures.ops_per_message or 10))
    say(f"baseline: echo round trips at {ops} ops per message")
    figures.baseline = await measure_baseline(
        amqp_url, ops_per_message=ops, seconds=plan.baseline_s
    )
    figures.seconds = time.perf_counter() - started
    return figures


def _or_dash(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_figures(f: Figures) -> str:
    data = f.as_json()
    met = data["targets"]

    def mark(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines = [
        f"gongji end-to-end benchmark (SQLite synchronous={f.sqlite_synchronous}, "
        f"{data['machine']['cpus']} cores, broker included)",
        f"  baseline (broker round trips, {data['baseline_ops_per_message']} ops/message): "
        f"{data['baseline_round_trips_per_second']:,.0f} round trips/s, "
        f"{data['baseline_messages_per_second']:,.0f} messages/s",
        f"  e2e durable cross-province co-payments, 4 regions: {f.e2e_per_second:,.0f}/s "
        f"(target {TARGET_PER_SECOND:,}: {mark(met['met_per_second'])})",
        f"  ratio e2e / baseline: {f.ratio:.3f}",
        f"  p99 at half of max ({f.p99_rate:,.0f}/s): {f.p99_ms:,.0f} ms "
        f"(target {TARGET_P99_MS:.0f}: {mark(met['met_p99'])})",
        f"  at {TARGET_LIGHT_RATE}/s: CPU {_or_dash(f.light()[0], '.2f')} ms per co-payment "
        f"(target {TARGET_LIGHT_CPU_MS}: {mark(met['met_light_cpu'])}), "
        f"p99 {_or_dash(f.light()[1], ',.0f')} ms "
        f"(target {TARGET_LIGHT_P99_MS:.0f}: {mark(met['met_light_p99'])})",
        "  p99 at fixed rates: "
        + ", ".join(
            f"{rate:,}/s: {summary['p99']:,.0f} ms"
            for rate, summary in sorted(f.latency_by_rate.items())
        ),
        "  by regions (best of the in-flight sweep): "
        + ", ".join(f"{n}: {v:,.0f}/s" for n, v in sorted(f.by_regions.items())),
        *(
            f"    {n} regions, in flight -> per second: "
            + ", ".join(f"{w:,}: {v:,.0f}" for w, v in sorted(sweep.items()))
            for n, sweep in sorted(f.sweeps.items())
        ),
        "  scaling over 4 regions: "
        + ", ".join(
            f"{n} regions {f.scaling_of(n):.0%} ({mark(met['met_scaling_by_regions'][str(n)])})"
            for n in sorted(f.by_regions)
            if n > 4
        )
        + f" (target {TARGET_SCALING:.0%})",
        f"  services averaged {f.ops_per_message:.1f} operations per message",
        "  CPU ms per co-payment (clearinghouse / regions / broker / load = total): "
        + "; ".join(
            f"{label}: {c['clearinghouse']:.2f} / {c['regions']:.2f} / {c['broker']:.2f} / "
            f"{c['load']:.2f} = {c['total']:.2f}"
            for label, c in [
                *((f"{r}/s", c) for r, c in sorted(f.cpu_ms_by_rate.items())),
                *((f"max {n} regions", c) for n, c in sorted(f.cpu_ms_at_saturation.items())),
            ]
        ),
        f"  service messages per co-payment: {f.messages_per_copayment}",
        *(
            f"  CPU ms per co-payment by process, {run}: "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in by.items())
            for run, by in f.cpu_ms_by_process.items()
        ),
        f"  money conserved in every run: {'yes' if f.conserved else 'NO'}; errors: {f.errors}",
        f"  took {f.seconds:.0f} s; load average at the end "
        f"{data['machine']['load_average_1m_at_end']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--quick", action="store_true", help="half the durations (about 3 min)")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=["FULL", "NORMAL"],
        default="FULL",
        help="FULL (default): commits survive power loss; NORMAL: process crashes only",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    plan = (
        Plan.quick(args.sqlite_synchronous)
        if args.quick
        else Plan(sqlite_synchronous=args.sqlite_synchronous)
    )
    figures = asyncio.run(run_bench(args.amqp_url, plan))
    if args.json:
        print(json.dumps(figures.as_json()))
    else:
        print(format_figures(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
