"""The simulated world: real cores over real stores, a simulated broker, virtual time.

Every region and the clearinghouse is the real core (``RegionCore``,
``TransferCoordinator``) over its real store on an in-memory SQLite database, stepped
by the services' own step engine (``services``) over a simulated broker (``broker``);
a submitting client and an operator (``client``) send the workload, and fault episodes
(``fault_episodes``) disturb the run until it heals. ``Simulation`` builds these parts,
pops the events of the scheduler (``scheduler``) and hands each to its part, and runs
the checks: incremental ones every ``check_interval_ms``, whole books now and then, the
quiet test after healing, and everything at the end.

Time is virtual, in integer milliseconds, and one seeded ``random.Random`` makes every
choice, so a seed replays the same run. Nothing here opens a socket; the wall clock is read only
to report where the time went (``Stats``), never to decide anything.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any

from clearinghouse.coordinator import CoordinatorSettings
from contracts.effects import Outgoing
from contracts.identifiers import region_address
from contracts.operations import BillOutcome, Operation
from gongji.flows import WindowFlows, read_flows
from gongji.population import Population, RegionSpec, generate_population
from gongji.sim import cores, views
from gongji.sim.broker import SimBroker
from gongji.sim.checker import Checker
from gongji.sim.client import Submitter
from gongji.sim.config import SimConfig
from gongji.sim.fault_episodes import FaultEpisodes
from gongji.sim.faults import FaultState
from gongji.sim.node import CLIENT, Network, Node, connection, database
from gongji.sim.run import Run
from gongji.sim.scheduler import (
    CHECK,
    CONFIRM,
    CRASH_LOOP,
    CUT,
    DEADLINE,
    DISABLE,
    ENABLE,
    FORGE,
    HEAL,
    HEAL_NODE,
    KILL,
    PARTITION,
    RELEASE,
    RESTART,
    STEP,
    SUBMIT,
    TICK,
    WINDOW,
    Scheduler,
)
from gongji.sim.services import Services
from gongji.sim.stats import Stats
from gongji.sim.trace import Trace
from gongji.sim.workload import Request, away_registrations, build_workload
from regions.books import Books


@dataclass(slots=True)
class RunResult:
    """What a run produced; ``gongji.sim.report`` turns it into the printed report."""

    config: SimConfig
    regions: tuple[RegionSpec, ...]
    requests: list[Request]
    outcomes: dict[str, BillOutcome]
    windows_closed: int
    faults_injected: dict[str, int]
    checker: Checker
    trace_hash: str
    simulated_ms: int
    healed_at_ms: int
    quiet_at_ms: int | None
    stats: Stats
    settings: CoordinatorSettings
    trace_lines: dict[str, list[str]] = field(default_factory=dict)
    clearing_flows: list[WindowFlows] = field(default_factory=list)
    """Money moved between provinces per window, read from the clearinghouse's records."""


class Simulation:
    """One seeded run of the whole network; ``run()`` once."""

    def __init__(
        self,
        config: SimConfig,
        regions: tuple[RegionSpec, ...],
        *,
        population: Population | None = None,
        requests: list[Request] | None = None,
        watch: Sequence[str] = (),
        progress: Callable[[int, int, int, str], None] | None = None,
    ) -> None:
        self._born = perf_counter()
        self.config = config
        self.rng = random.Random(config.seed)
        self.trace = Trace(watch)
        self.progress = progress
        self.settings = config.settings or self._settings()
        self.regions = regions
        persons = config.persons_per_region or max(
            50, math.ceil(1.2 * config.transfers / len(regions))
        )
        self.population = population or generate_population(regions, persons, config.seed)
        self.requests = requests or build_workload(
            self.population,
            config.transfers,
            config.seed,
            CLIENT,
            wallet_share=config.wallet_share,
            premium_share=config.premium_share,
            away_share=config.away_share,
        )
        self.clock = Scheduler()
        self.stats = Stats()
        self.faults = FaultState(config.faults, self.clock, self.trace)
        self.phase = "faults"
        self.healed_at = 0
        self.quiet_at: int | None = None
        self.done = False
        self.dirty: set[str] = set()
        self._checks_done = 0
        self._full_every = 1
        self._final_window = False
        self._deadline = 0

        self.network = Network(config, regions)
        self.builder = cores.CoreBuilder(config, self.settings)
        for node in self.network.services():
            self.builder.build(node)
        region_nodes = self.network.region_nodes
        self.checker = Checker(
            {code: connection(n) for code, n in region_nodes.items()},
            {code: Books(database(n)) for code, n in region_nodes.items()},
            connection(self.network.clearinghouse),
            {r.transfer_id: r for r in self.requests},
            self.population.opening_total_fen,
        )
        # The parts: each gets the run's shared pieces and what else it uses.
        run = Run(
            config,
            self.clock,
            self.rng,
            self.trace,
            self.stats,
            self.faults,
            self.checker,
            self.network,
        )
        self.broker = SimBroker(run, self.settings.hold_timeout_ms)
        self.submitter = Submitter(run, self.broker, self.requests)
        self.services = Services(run, self.broker, self.builder, self.submitter.receive, self.dirty)
        self.episodes = FaultEpisodes(
            run, self.broker, self.services, self.submitter, self.population, regions
        )

    # --- what callers read ---

    @property
    def now(self) -> int:
        """Virtual time, in ms."""
        return self.clock.now

    @property
    def region_nodes(self) -> dict[str, Node]:
        return self.network.region_nodes

    @property
    def latest(self) -> dict[str, BillOutcome]:
        """The last outcome received for each request (the demo replays some)."""
        return self.submitter.latest

    @property
    def replies(self) -> list[Operation]:
        """Every answer to the outside besides outcomes, in order of arrival."""
        return self.submitter.replies

    # --- set-up ---

    def _settings(self) -> CoordinatorSettings:
        if self.config.faults.expiry > 0:
            # Holds that expire soon after they are taken, so late commits race them.
            return CoordinatorSettings(hold_timeout_ms=self.rng.randint(150, 800))
        return CoordinatorSettings()

    def _setup(self) -> None:
        """Registry, persons and bindings, delivered in rounds at time 0 without faults.

        Set-up is not under test, so it takes the short way: each round applies every
        node's pending operations in one transaction, until nothing more is sent.
        """
        # Registrations of care away from home go the real way, through the insured region.
        pending = self.population.setup_operations() + away_registrations(
            self.population, self.requests, CLIENT
        )
        while pending:
            by_node: dict[str, list[Operation]] = {}
            for item in pending:
                by_node.setdefault(item.address, []).append(item.op)
            pending = []
            for address, ops in by_node.items():
                node = self.network.nodes[address]
                if node.db is None:
                    self.submitter.replies += ops
                    continue
                pending += cores.handle_directly(node, ops, self.checker, 0)

    # --- running ---

    def run(self) -> RunResult:
        """Set up, run with faults, heal, run until quiet, check everything."""
        cfg = self.config
        clock = self.clock
        self._setup()
        self.stats.setup_seconds = perf_counter() - self._born  # population and set-up
        submitter = self.submitter
        submitter.plan_arrivals()
        for node in self.network.services():
            if node.tick_ms:  # (a hosted region's timers run in its host's mailbox)
                clock.at(self.rng.randrange(node.tick_ms), TICK, node, node.epoch)
        if submitter.arrivals:
            clock.at(submitter.arrivals[0], SUBMIT)
        last = submitter.arrivals[-1] if submitter.arrivals else 0
        end_of_faults = last + cfg.settle_ms
        checks = end_of_faults // cfg.check_interval_ms
        self._full_every = -(-checks // cfg.full_checks) if cfg.full_checks else 0
        clock.at(cfg.check_interval_ms, CHECK)
        if cfg.window_ms:
            clock.at(cfg.window_ms, WINDOW)
        if self.faults.active:
            self.episodes.start()
        clock.at(end_of_faults, HEAL)
        self._loop()
        self._final()
        return self._result()

    def run_more(self, requests: Sequence[tuple[str, Operation]]) -> None:
        """After ``run``: send more requests (faults are healed) and run until quiet again.

        Their outcomes land in ``latest``; nothing more is checked.
        """
        self.done = False
        self.broker.publish(None, [Outgoing(region_address(code), op) for code, op in requests])
        self._run_until_quiet_again(self.config.check_interval_ms)

    def send_more(self, outgoing: Sequence[Outgoing]) -> None:
        """After ``run``: deliver any operations (to regions, the clearinghouse) and run
        until quiet again. Outcomes land in ``latest``, other answers in ``replies``."""
        self.done = False
        self.broker.publish(None, list(outgoing))
        self._run_until_quiet_again(self.config.check_interval_ms)

    def advance(self, ms: int) -> None:
        """After ``run``: let ``ms`` of virtual time pass (timers fire), then run until quiet."""
        self.done = False
        self._run_until_quiet_again(ms, ms)

    def _run_until_quiet_again(self, check_in_ms: int, wait_ms: int = 0) -> None:
        """Check again in ``check_in_ms``; give up ``wait_ms`` plus the liveness limit
        from now (a fresh deadline: earlier ones no longer end the run)."""
        now = self.clock.now
        self._deadline += 1
        limit = now + wait_ms + self.config.liveness_limit_ms
        self.clock.at(limit, DEADLINE, None, self._deadline)
        self.clock.at(now + check_in_ms, CHECK)
        self._loop()

    def _loop(self) -> None:
        clock = self.clock
        events = clock.events
        pop = heapq.heappop
        step = self.services.step
        tick = self.services.tick
        release = self.broker.release
        while events and not self.done:
            when, _, kind, target, arg = pop(events)
            clock.now = when
            if kind == STEP:
                if arg == target.epoch:
                    step(target)
            elif kind == TICK:
                if arg == target.epoch and target.up:
                    tick(target)
            elif kind == RELEASE:
                release(target, arg)
            else:
                self._other(kind, target, arg)

    def _other(self, kind: int, target: Any, arg: Any) -> None:
        episodes = self.episodes
        if kind == SUBMIT:
            self.submitter.submit()
        elif kind == CHECK:
            self._check()
        elif kind == RESTART:
            if arg == target.epoch and not target.up:
                self.services.restart(target)
        elif kind == CUT:
            episodes.cut(target)
        elif kind == HEAL_NODE:
            episodes.heal_node(target)
        elif kind == PARTITION:
            episodes.partition()
        elif kind == DISABLE:
            episodes.disable()
        elif kind == ENABLE:
            episodes.enable(target)
        elif kind == HEAL:
            self._heal()
        elif kind == WINDOW:
            if self.phase == "faults":  # after healing, only the last window closes
                self.submitter.close_window()
                self.clock.at(self.clock.now + self.config.window_ms, WINDOW)
        elif kind == DEADLINE:
            self.done = arg == self._deadline
        elif kind == CONFIRM:
            epoch, step, ok, crash_before_ack = arg
            self.services.confirm(target, epoch, step, ok, crash_before_ack)
        elif kind == CRASH_LOOP:
            episodes.crash_loop()
        elif kind == KILL and arg == target.epoch:
            episodes.loop_kill(target)
        elif kind == FORGE:
            episodes.forge()

    def _heal(self) -> None:
        """Faults stop; crashed nodes restart, cut regions come back, disabled are enabled."""
        now = self.clock.now
        self.faults.active = False
        self.phase = "liveness"
        self.healed_at = now
        self.trace.fault(now, "heal", "")
        self.episodes.heal()
        self.clock.at(now + self.config.liveness_limit_ms, DEADLINE, None, self._deadline)

    def _result(self) -> RunResult:
        cfg = self.config
        injected = self.faults.injected
        return RunResult(
            config=cfg,
            regions=self.regions,
            requests=self.requests,
            outcomes=self.submitter.outcomes,
            windows_closed=self.submitter.windows,
            # Every kind switched on, even if its dice never came up in this run.
            faults_injected={k: injected.get(k, 0) for k in cfg.faults.enabled()}
            | dict(sorted(injected.items())),
            checker=self.checker,
            trace_hash=self.trace.hexdigest(),
            simulated_ms=self.clock.now,
            healed_at_ms=self.healed_at,
            quiet_at_ms=self.quiet_at,
            stats=self.stats,
            settings=self.settings,
            trace_lines=self.trace.lines,
            clearing_flows=read_flows(connection(self.network.clearinghouse)),
        )

    # --- checks ---

    def _check(self) -> None:
        started = perf_counter()
        self._check_now()
        self.stats.check_seconds += perf_counter() - started

    def _check_now(self) -> None:
        now = self.clock.now
        checker = self.checker
        if self.dirty:  # a quiet second (waiting on timers) changes no money: skip it
            for tid in sorted(self.dirty):
                checker.transfer(tid, now)
            self.dirty.clear()
            checker.aggregates(now)
        self._checks_done += 1
        every = self._full_every
        if self.phase == "faults" and every and self._checks_done % every == 0:
            for code in self.network.region_nodes:
                checker.books(code, now)
        submitter = self.submitter
        if self.progress is not None:
            self.progress(
                submitter.next_request, len(submitter.outcomes), len(self.requests), self.phase
            )
        if self.phase == "liveness" and self._quiet():
            if self._final_window or not self.config.window_ms:
                self.quiet_at = now
                self.done = True
                return
            # Quiet: close one last window so every commit is cleared, then wait for the
            # regions to reconcile it.
            self._final_window = True
            submitter.close_window()
        self.clock.at(now + self.config.check_interval_ms, CHECK)

    def _quiet(self) -> bool:
        """Every request answered, nothing in flight, unfinished, held, unreconciled or
        unsettled."""
        submitter = self.submitter
        requests = len(self.requests)
        if len(submitter.outcomes) < requests or submitter.next_request < requests:
            return False
        network = self.network
        if any(n.queue for n in network.nodes.values()):
            return False
        if self.clock.pending(RELEASE):
            return False
        ch = connection(network.clearinghouse)
        if views.unfinished_transfers(ch):
            return False
        if views.unreconciled_count(ch, len(network.region_nodes)):
            return False
        if views.unbooked_settlements(ch):
            return False
        return not any(views.pending_holds(connection(n)) for n in network.region_nodes.values())

    def _final(self) -> None:
        started = perf_counter()
        now = self.clock.now
        for tid in sorted(self.dirty):
            self.checker.transfer(tid, now)
        self.dirty.clear()
        self.checker.aggregates(now)
        self.checker.final(now, self.submitter.outcomes, self.submitter.conflicts)
        stats = self.stats
        if stats.forgeries_refused != stats.forgeries:
            self.checker.fail(
                "forgeries refused",
                f"{stats.forgeries} forged messages, {stats.forgeries_refused} refused",
                "",
                now,
            )
        stats.check_seconds += perf_counter() - started
