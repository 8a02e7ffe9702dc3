"""How fast the deterministic simulation runs: co-payments per wall second, faults on and off.

Runs ``gongji sim`` on the co-payment flow (bills only), once with every fault on and
once with none, and prints transfers per wall second and per CPU second, committed
cross-province co-payments per wall second, the ratio of the two runs, and where the
time went (the cores' transactions, the checks, the simulated network, set-up).
``--profile`` adds the functions that dominate, from cProfile.

    python -m bench.sim --transfers 10000 --regions 20
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import time
from dataclasses import dataclass

from gongji.sim import SimConfig, SimReport, parse_faults, run_simulation


@dataclass(frozen=True, slots=True)
class Figure:
    faults: str
    report: SimReport
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_wall_second(self) -> float:
        return self.report.transfers_submitted / self.wall_seconds

    @property
    def per_cpu_second(self) -> float:
        return self.report.transfers_submitted / self.cpu_seconds

    @property
    def cross_province_per_wall_second(self) -> float:
        return self.report.committed_cross_province / self.wall_seconds


def measure(args: argparse.Namespace, faults: str, profile: cProfile.Profile | None) -> Figure:
    config = SimConfig(
        seed=args.seed,
        transfers=args.transfers,
        regions=args.regions,
        faults=parse_faults(faults),
        wallet_share=0.0,
        premium_share=0.0,
    )
    best: Figure | None = None
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        if profile is not None:
            profile.enable()
        report = run_simulation(config, explain=False)
        if profile is not None:
            profile.disable()
        figure = Figure(faults, report, time.perf_counter() - wall, time.process_time() - cpu)
        if best is None or figure.wall_seconds < best.wall_seconds:
            best = figure
    assert best is not None
    return best


def show(figure: Figure) -> None:
    r = figure.report
    split = ", ".join(f"{k} {v:.2f} s" for k, v in r.phase_wall_seconds.items())
    print(
        f"faults {figure.faults:<4}: {r.transfers_submitted} bills in {figure.wall_seconds:.2f} s "
        f"wall ({figure.cpu_seconds:.2f} s CPU): {figure.per_wall_second:,.0f} transfers per "
        f"wall second, {figure.per_cpu_second:,.0f} per CPU second; "
        f"{r.committed_cross_province} committed cross-province co-payments = "
        f"{figure.cross_province_per_wall_second:,.0f} per wall second"
    )
    print(f"    simulated {r.simulated_seconds:.1f} s; time split: {split}")
    print(f"    trace {r.trace_hash[:16]}…, {r.violation_count} violations")
    for v in r.violations[:5]:
        print(f"    violation: {v}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfers", type=int, default=10_000)
    parser.add_argument("--regions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=1, help="runs per setting; best kept")
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()
    profile = cProfile.Profile(time.process_time) if args.profile else None
    on = measure(args, "all", profile)
    off = measure(args, "none", None)
    show(on)
    show(off)
    print(
        f"faults on / off: {on.per_wall_second / off.per_wall_second:.2f} "
        f"(wall), {on.per_cpu_second / off.per_cpu_second:.2f} (CPU)"
    )
    if profile is not None:
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out)
        stats.sort_stats("tottime").print_stats(20)
        print(out.getvalue())


if __name__ == "__main__":
    main()
