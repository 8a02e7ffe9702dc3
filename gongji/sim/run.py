"""What the parts of one simulation run share, handed to each once."""

from __future__ import annotations

import random
from dataclasses import dataclass

from gongji.sim.checker import Checker
from gongji.sim.config import SimConfig
from gongji.sim.faults import FaultState
from gongji.sim.node import Network
from gongji.sim.scheduler import Scheduler
from gongji.sim.stats import Stats
from gongji.sim.trace import Trace


@dataclass(frozen=True, slots=True)
class Run:
    """One run's settings, virtual clock, seeded random source (every choice of the run
    draws from it, in order), trace, counters, fault switches, checker and nodes."""

    config: SimConfig
    clock: Scheduler
    rng: random.Random
    trace: Trace
    stats: Stats
    faults: FaultState
    checker: Checker
    network: Network


class Part:
    """A part of the simulation (the broker, the services, the submitter, the fault
    episodes): it keeps the run's shared pieces at hand, as plain attributes, since
    the hot paths read them for every message."""

    def __init__(self, run: Run) -> None:
        self.config = run.config
        self.clock = run.clock
        self.rng = run.rng
        self.trace = run.trace
        self.watching = bool(run.trace.watch)
        self.stats = run.stats
        self.faults = run.faults
        self.checker = run.checker
        self.network = run.network
