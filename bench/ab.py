"""Interleaved A/B of two checkouts of gongji under the same light load.

Each round starts a local cluster from checkout A, runs an open-loop co-payment load at a
fixed rate, reads every process's CPU from ``/proc`` and the load's latency, stops the
cluster, then does the same from checkout B; rounds alternate which goes first, so a
machine that drifts during the run drifts for both. Every process (services, load
generator) runs the checkout's own code (``PYTHONPATH``); the broker is shared.

Usage: ``python -m bench.ab --a /path/to/old --b /path/to/new [--rounds 3] [--rate 200]``
(make a checkout of a revision with ``git worktree add /tmp/old REV``), or one checkout
with two settings: ``--a-env GONGJI_SHELL_LINGER_MS=5 --b-env GONGJI_SHELL_LINGER_MS=10``.
Prints per round
and the means: CPU ms per co-payment (clearinghouse / regions / broker / load / total),
p50 and p99 latency, and the ratio B / A; ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.cpu import _cpu_seconds, broker_pids

GROUPS = ("clearinghouse", "regions", "broker", "load")


@dataclass(slots=True)
class Round:
    arm: str
    completed: int
    cpu_ms: dict[str, float]
    """CPU ms per co-payment by group and ``total``."""
    p50_ms: float
    p99_ms: float
    conserved: bool


def _children_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _gongji(
    checkout: Path, *args: str, capture: bool = False, extra: dict[str, str] | None = None
) -> str:
    env = {**os.environ, **(extra or {}), "PYTHONPATH": str(checkout)}
    done = subprocess.run(
        [sys.executable, "-m", "gongji.cli", *args],
        cwd=checkout,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
    )
    return done.stdout if capture else ""


_DOWN = """
import asyncio, sys
from pathlib import Path
from gongji.cluster.local import cluster_down, delete_queues, read_state
state = read_state(Path(sys.argv[1]))
cluster_down(Path(sys.argv[1]))
if state is not None:
    asyncio.run(delete_queues(sys.argv[2], state))
"""


def _down(checkout: Path, data: Path, amqp_url: str) -> None:
    """Stop the cluster and remove its queues and broker users."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    subprocess.run(
        [sys.executable, "-c", _DOWN, str(data), amqp_url], cwd=checkout, env=env, check=True
    )


def _cpu(services: dict[str, int]) -> dict[str, float]:
    totals = dict.fromkeys(GROUPS, 0.0)
    for name, pid in services.items():
        group = "clearinghouse" if name == "clearinghouse" else "regions"
        totals[group] += _cpu_seconds(pid) or 0.0
    totals["broker"] = sum(_cpu_seconds(pid) or 0.0 for pid in broker_pids())
    totals["load"] = _children_seconds()
    return totals


def run_round(
    arm: str, checkout: Path, env: dict[str, str], args: argparse.Namespace, root: Path
) -> Round:
    data = root / f"{arm}-{uuid.uuid4().hex[:6]}"
    namespace = f"ab{arm.lower()}{uuid.uuid4().hex[:6]}"
    _gongji(
        checkout,
        "cluster",
        "up",
        "--regions",
        str(args.regions),
        "--enable-all",
        "--namespace",
        namespace,
        "--data-dir",
        str(data),
        "--base-port",
        str(args.base_port),
        "--persons",
        "200",
        "--log-level",
        "WARNING",
        "--amqp-url",
        args.amqp_url,
        extra=env,
    )
    try:
        state = json.loads((data / "cluster.json").read_text())
        services = {s["name"]: int(s["pid"]) for s in state["services"]}
        time.sleep(args.settle)  # let start-up work (seeding, checkpoints) finish
        before = _cpu(services)
        out = _gongji(
            checkout,
            "load",
            "--data-dir",
            str(data),
            "--rate",
            str(args.rate),
            "--duration",
            str(args.duration),
            "--drain",
            "60",
            "--no-progress",
            "--json",
            capture=True,
        )
        after = _cpu(services)
    finally:
        _down(checkout, data, args.amqp_url)
    report = json.loads(out)
    completed = int(report["completed"])
    per = {g: round(1000 * (after[g] - before[g]) / max(1, completed), 3) for g in GROUPS}
    per["total"] = round(sum(per.values()), 3)
    latency = report["latency_ms"]["copay"]
    return Round(
        arm, completed, per, float(latency["p50"]), float(latency["p99"]), bool(report["conserved"])
    )


def _env(pairs: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as a mapping (e.g. ``GONGJI_SHELL_LINGER_MS=10``)."""
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"bench.ab: expected NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def summarize(rounds: list[Round]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for arm in ("A", "B"):
        mine = [r for r in rounds if r.arm == arm]
        out[arm] = {
            "cpu_ms": {
                k: round(statistics.mean(r.cpu_ms[k] for r in mine), 3) for k in (*GROUPS, "total")
            },
            "p50_ms": round(statistics.mean(r.p50_ms for r in mine), 1),
            "p99_ms": round(statistics.mean(r.p99_ms for r in mine), 1),
            "conserved": all(r.conserved for r in mine),
        }
    a, b = out["A"], out["B"]
    out["ratio_b_over_a"] = {
        "cpu_total": round(b["cpu_ms"]["total"] / a["cpu_ms"]["total"], 3),
        "p99": round(b["p99_ms"] / a["p99_ms"], 3) if a["p99_ms"] else None,
    }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", type=Path, default=Path("."), help="checkout A (the baseline)")
    parser.add_argument("--b", type=Path, default=Path("."), help="checkout B (the change)")
    parser.add_argument(
        "--a-env", action="append", default=[], metavar="NAME=VALUE", help="A's services' env"
    )
    parser.add_argument(
        "--b-env", action="append", default=[], metavar="NAME=VALUE", help="B's services' env"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--regions", type=int, default=4)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after start-up")
    parser.add_argument("--base-port", type=int, default=9800)
    parser.add_argument(
        "--amqp-url", default=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="gongji-ab-") as tmp:
        for n in range(args.rounds):
            order = [("A", args.a, _env(args.a_env)), ("B", args.b, _env(args.b_env))]
            if n % 2:
                order.reverse()
            for arm, checkout, env in order:
                result = run_round(arm, checkout.resolve(), env, args, Path(tmp))
                rounds.append(result)
                c = result.cpu_ms
                print(
                    f"ab: round {n + 1} {arm}: CPU ms/co-payment "
                    + " / ".join(f"{c[g]:.2f}" for g in GROUPS)
                    + f" = {c['total']:.2f}; p50 {result.p50_ms:.0f} ms, "
                    f"p99 {result.p99_ms:.0f} ms; {result.completed} done",
                    file=sys.stderr,
                    flush=True,
                )
    summary = summarize(rounds)
    if args.json:
        print(json.dumps({"rounds": [asdict(r) for r in rounds], "summary": summary}, indent=2))
    else:
        for arm in ("A", "B"):
            s = summary[arm]
            print(
                f"{arm}: CPU ms per co-payment {s['cpu_ms']} ; "
                f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms; conserved {s['conserved']}"
            )
        print(f"B / A: {summary['ratio_b_over_a']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
