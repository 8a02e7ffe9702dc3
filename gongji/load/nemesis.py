"""A nemesis for a load run on the local cluster: a seeded schedule of real faults.

``gongji load --nemesis SPEC`` runs it beside the load. SPEC is ``all`` or a list of
``kind=count`` (how many of that fault during the run) and ``seed=N``, e.g.
``region-kill=2,pause=1,seed=7``. The kinds:

- ``region-kill``: kill -9 of a region (weighted towards the regions that pay most),
  restarted 1-3 s later;
- ``clearinghouse-kill``: kill -9 of the clearinghouse, restarted 1-3 s later;
- ``crash-loop``: a service (the clearinghouse or a region) killed 4 times, each 0.5 s
  after it answers again;
- ``pause``: SIGSTOP of a region for longer than the reserve timeout, then SIGCONT;
- ``broker-restart``: ``rabbitmqctl stop_app`` / ``start_app`` (only where the user may run
  ``rabbitmqctl``: refused before the run otherwise).

Each fault is reported when it happens and when it ends; after the run the report says,
per fault, how long until the rate of outcomes was back to what it was before.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from broker.users import rabbitmqctl
from gongji.cluster.local import (
    ClusterState,
    find_service,
    metrics_answer,
    read_state,
    restart_service,
    signal_service,
)

KINDS = ("region-kill", "clearinghouse-kill", "crash-loop", "pause", "broker-restart")
ALL_COUNTS = {
    "region-kill": 2,
    "clearinghouse-kill": 1,
    "crash-loop": 1,
    "pause": 1,
    "broker-restart": 1,
}
"""What ``all`` turns on."""
PAUSE_S = 7.0
"""Longer than the clearinghouse's default reserve timeout (5 s)."""
LOOP_KILLS = 4
BIN_S = 0.1
"""The load generator's timeline bins."""


class NemesisError(ValueError):
    """A SPEC that cannot be run; ``str(error)`` says why in one line."""


@dataclass(frozen=True, slots=True)
class NemesisSpec:
    counts: dict[str, int]
    seed: int = 1

    @property
    def kinds(self) -> list[str]:
        return [k for k in KINDS if self.counts.get(k, 0) > 0]


def parse_nemesis(text: str) -> NemesisSpec:
    """``all``, or ``kind=count,...[,seed=N]`` (a kind without ``=count`` means 1)."""
    counts: dict[str, int] = {}
    seed = 1
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if name == "all":
            counts.update({k: max(counts.get(k, 0), n) for k, n in ALL_COUNTS.items()})
            continue
        if name == "seed":
            try:
                seed = int(value)
            except ValueError:
                raise NemesisError(f"--nemesis: seed={value!r} is not a whole number") from None
            continue
        if name not in KINDS:
            raise NemesisError(f"--nemesis: unknown fault {name!r} (kinds: {', '.join(KINDS)})")
        try:
            count = int(value) if value else 1
        except ValueError:
            raise NemesisError(f"--nemesis: {name}={value!r} is not a whole number") from None
        if not 0 <= count <= 20:
            raise NemesisError(f"--nemesis: {name}={count}: between 0 and 20 per run")
        counts[name] = count
    if not any(counts.values()):
        raise NemesisError("--nemesis: no fault named (e.g. all, or region-kill=2,seed=7)")
    return NemesisSpec(counts, seed)


def broker_restart_refusal() -> str | None:
    """Why this user may not restart the broker here, or None."""
    if os.environ.get("GONGJI_RABBITMQCTL"):
        return None  # told how to reach the broker (e.g. another node, a container)
    if shutil.which("rabbitmqctl") is None:
        return "broker-restart needs rabbitmqctl on this host (the broker's own machine)"
    if os.geteuid() != 0:
        return "broker-restart runs rabbitmqctl stop_app/start_app: only root may, here"
    return None


@dataclass(slots=True)
class Fault:
    """One injected fault."""

    kind: str
    target: str
    at_s: float
    """Seconds after the load started."""
    ended_s: float = 0.0
    recovery_s: float | None = None
    """From ``at_s`` until the outcome rate was back to 80 % of what it was before
    (None: it did not come back within the run)."""

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "target": self.target,
            "at_s": round(self.at_s, 2),
            "ended_s": round(self.ended_s, 2),
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 2),
        }


@dataclass(slots=True)
class Nemesis:
    """Plans and injects the faults of one load run."""

    spec: NemesisSpec
    data_dir: Path
    duration_s: float
    say: Callable[[str], None] = lambda _: None
    faults: list[Fault] = field(default_factory=list)

    def check(self) -> None:
        """Refuse, before any load, what cannot be done here."""
        if self.spec.counts.get("broker-restart"):
            why = broker_restart_refusal()
            if why is not None:
                raise NemesisError(f"--nemesis: {why}")
        if read_state(self.data_dir) is None:
            raise NemesisError(f"--nemesis needs a local cluster (none is up in {self.data_dir})")

    def plan(self) -> list[tuple[float, str]]:
        """Seeded start times, spread over 10-75 % of the run, at least 3 s apart."""
        rng = random.Random(self.spec.seed)
        kinds = [k for k in KINDS for _ in range(self.spec.counts.get(k, 0))]
        rng.shuffle(kinds)
        if not kinds:
            return []
        lo, hi = 0.1 * self.duration_s, 0.75 * self.duration_s
        step = max(3.0, (hi - lo) / len(kinds))
        return [(lo + i * step + rng.uniform(0, step / 3), kind) for i, kind in enumerate(kinds)]

    async def run(self, started: float) -> list[Fault]:
        """Inject the planned faults (``started``: the load's monotonic start)."""
        rng = random.Random(self.spec.seed + 1)
        for at_s, kind in self.plan():
            await asyncio.sleep(max(0.0, started + at_s - time.monotonic()))
            fault = Fault(kind, "", time.monotonic() - started)
            self.faults.append(fault)
            fault.target = await asyncio.to_thread(self._inject, kind, rng, fault, started)
            fault.ended_s = time.monotonic() - started
            self.say(f"nemesis: {kind} of {fault.target} over ({fault.ended_s:.1f} s)")
        return self.faults

    # --- the faults (in a thread: they sleep and wait on processes) ---

    def _inject(self, kind: str, rng: random.Random, fault: Fault, started: float) -> str:
        state = read_state(self.data_dir)
        assert state is not None
        target = self._target(kind, state, rng)
        self.say(f"nemesis: {kind} of {target} at {fault.at_s:.1f} s")
        if kind in ("region-kill", "clearinghouse-kill"):
            signal_service(self.data_dir, target, signal.SIGKILL)
            time.sleep(rng.uniform(1.0, 3.0))
            restart_service(self.data_dir, target)
            self._wait_up(target)
        elif kind == "crash-loop":
            for _ in range(LOOP_KILLS):
                self._wait_up(target)
                time.sleep(0.5)
                signal_service(self.data_dir, target, signal.SIGKILL)
                restart_service(self.data_dir, target)
            self._wait_up(target)
        elif kind == "pause":
            signal_service(self.data_dir, target, signal.SIGSTOP)
            time.sleep(PAUSE_S)
            signal_service(self.data_dir, target, signal.SIGCONT)
        elif kind == "broker-restart":
            for action in ("stop_app", "start_app"):
                subprocess.run(
                    [*rabbitmqctl(), "-q", action], check=True, capture_output=True, timeout=120
                )
                if action == "stop_app":
                    time.sleep(2.0)
        return target

    def _target(self, kind: str, state: ClusterState, rng: random.Random) -> str:
        if kind == "clearinghouse-kill":
            return "clearinghouse"
        if kind == "broker-restart":
            return "rabbitmq"
        if kind == "crash-loop" and rng.random() < 0.5:
            return "clearinghouse"
        return f"region-{self._payer(state, rng)}"

    @staticmethod
    def _payer(state: ClusterState, rng: random.Random) -> str:
        """A region, weighted by how many co-payers it holds (the paying regions)."""
        copayers = Counter(b.copayer_region for b in state.population().population.bindings)
        codes = [c for c in state.codes if copayers.get(c)] or state.codes
        return rng.choices(codes, [copayers.get(c, 1) for c in codes])[0]

    def _wait_up(self, name: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = read_state(self.data_dir)
            if state is not None and metrics_answer(find_service(state, name)):
                return
            time.sleep(0.05)
        raise NemesisError(f"{name} did not come back within {timeout_s:.0f} s")


def recovery_seconds(faults: Sequence[Fault], timeline: Sequence[int]) -> None:
    """Fill each fault's ``recovery_s`` from the outcomes per 0.1 s bin."""
    per_s = [sum(timeline[max(0, i - 9) : i + 1]) for i in range(len(timeline))]
    for fault in faults:
        start = int(fault.at_s / BIN_S)
        before = per_s[max(0, start - 30) : start]
        if not before:
            continue
        normal = statistics.median(before)
        if normal <= 0:
            fault.recovery_s = 0.0
            continue
        end = int(fault.ended_s / BIN_S)
        for i in range(max(start, end), len(per_s)):
            if per_s[i] >= 0.8 * normal:
                fault.recovery_s = max(0.0, i * BIN_S - fault.at_s)
                break
