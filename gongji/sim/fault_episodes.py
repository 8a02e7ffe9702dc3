"""The fault episodes: partitions, disabled regions, crash loops, a hostile participant.

Each kind comes as a Poisson stream of episodes at its rate (``gongji.sim.faults``);
each episode is played out with timed events, and healing ends them all. The faults of
single messages and steps happen where those are handled (``broker``, ``services``).
"""

from __future__ import annotations

from contracts.identifiers import CLEARINGHOUSE, region_address
from contracts.operations import (
    Abort,
    Commit,
    CommitResult,
    Credit,
    Flow,
    Operation,
    RequestAid,
    Reserve,
    ReserveResult,
    SetRegionEnabled,
)
from contracts.participants import Participant, region
from gongji.population import Population, RegionSpec
from gongji.sim.broker import SimBroker
from gongji.sim.client import Submitter
from gongji.sim.node import FORGER, Node
from gongji.sim.run import Part, Run
from gongji.sim.scheduler import (
    CRASH_LOOP,
    CUT,
    DISABLE,
    ENABLE,
    FORGE,
    HEAL_NODE,
    PARTITION,
)
from gongji.sim.services import Services


class FaultEpisodes(Part):
    """Starts, plays out and heals the run's fault episodes."""

    def __init__(
        self,
        run: Run,
        broker: SimBroker,
        services: Services,
        submitter: Submitter,
        population: Population,
        regions: tuple[RegionSpec, ...],
    ) -> None:
        super().__init__(run)
        self.rates = run.faults.rates
        self.region_nodes = run.network.region_nodes
        self.broker = broker
        self.services = services
        self.submitter = submitter
        self.population = population
        self._enabled = {spec.code for spec in regions if spec.enabled}
        self._disabled_by_fault: set[str] = set()
        self._partition_running = False
        self._forged = 0

    def start(self) -> None:
        """Schedule the first episode of every kind switched on."""
        rates = self.rates
        if rates.partition > 0:
            self.clock.at(self._after(rates.partition), PARTITION)
        if rates.disable > 0:
            self.clock.at(self._after(rates.disable), DISABLE)
        if rates.crash_loop > 0:
            self.clock.at(self._after(rates.crash_loop), CRASH_LOOP)
        if rates.hostile > 0:
            self.clock.at(self._after(rates.hostile), FORGE)

    def _after(self, per_second: float) -> int:
        """Time to the next episode of a fault that comes ``per_second`` times a second."""
        return self.clock.now + max(1, int(self.rng.expovariate(per_second) * 1000))

    # --- a hostile participant ---

    def forge(self) -> None:
        """One forged message, sent with a participant's real credentials."""
        if not self.faults.active:
            return
        rng = self.rng
        codes = list(self.region_nodes)
        liar, victim = rng.sample(codes, 2) if len(codes) > 1 else (codes[0], codes[0])
        persons = [p for p in self.population.persons if p.region == victim]
        person = rng.choice(persons).psn_no if persons else "nobody"
        submitter = self.submitter
        sent = submitter.requests[: max(1, submitter.next_request)]
        real = rng.choice(sent).transfer_id
        self._forged += 1
        fresh = f"forged-{self._forged}"
        big = 10**9
        hub_ops = (Reserve(fresh, person, big, liar, 60_000, Flow.COPAY), Commit(fresh))
        forgeries: list[tuple[Participant | None, str, tuple[Operation, ...]]] = [
            # A region addressing another region as if it were the hub (the broker refuses).
            (region(liar), region_address(victim), hub_ops),
            # A client sending what only the hub may send (the region refuses).
            (FORGER, region_address(victim), hub_ops),
            (FORGER, region_address(victim), (Credit(real, big, liar, Flow.COPAY, person, 0, ""),)),
            # A replayed Commit and an Abort of a genuine transfer.
            (FORGER, region_address(victim), (Commit(real), Abort(real))),
            # A region answering for another region (the clearinghouse refuses).
            (
                region(liar),
                CLEARINGHOUSE,
                (ReserveResult(real, victim, big), CommitResult(real, victim, big)),
            ),
            (region(liar), CLEARINGHOUSE, (RequestAid(fresh, person, victim, big),)),
            # Nobody's message (the broker's guest).
            (None, region_address(victim), (Commit(real),)),
        ]
        sender, address, ops = rng.choice(forgeries)
        self.faults.record("hostile", f"{sender or 'guest'} -> {address}")
        self.stats.forgeries += 1
        self.broker.send(address, ops, sender, hostile=True)
        self.clock.at(self._after(self.rates.hostile), FORGE)

    # --- crash loops ---

    def crash_loop(self) -> None:
        """Kill a service several times, each soon after it comes back (a crash loop)."""
        if not self.faults.active:
            return
        nodes = self.network.services()
        # The clearinghouse as often as all regions together: its loop hurts most.
        hub = self.network.clearinghouse
        node = hub if self.rng.random() < 0.5 else self.rng.choice(nodes[1:])
        if node.up and not node.kills_left:
            node.kills_left = self.rng.randint(4, 8) - 1
            self.faults.record("crash_loop", node.address)
            self.services.kill(node, self._loop_restart_ms())
        self.clock.at(self._after(self.rates.crash_loop), CRASH_LOOP)

    def loop_kill(self, node: Node) -> None:
        """A crash loop's next kill, soon after the service came back."""
        if node.up:
            self.faults.record("crash", f"{node.address} crash loop")
            self.services.kill(node, self._loop_restart_ms())

    def _loop_restart_ms(self) -> int:
        """A supervisor's restart of a real process (imports, connecting) takes a while,
        so work piles up in the queue for the next start to take in its prefetch."""
        return self.rng.randint(300, 1_500)

    # --- partitions ---

    def partition(self) -> None:
        """Swizzle: cut a few regions from the broker one by one, heal in random order."""
        if not self.faults.active:
            return
        if not self._partition_running:
            codes = list(self.region_nodes)
            victims = self.rng.sample(codes, self.rng.randint(1, min(3, len(codes) - 1)))
            self._partition_running = True
            t = self.clock.now
            for code in victims:
                self.clock.at(t, CUT, self.region_nodes[code])
                t += self.rng.randint(50, 1_000)
            t += self.rng.randint(500, 8_000)
            for code in self.rng.sample(victims, len(victims)):
                self.clock.at(t, HEAL_NODE, self.region_nodes[code])
                t += self.rng.randint(50, 1_000)
            self.clock.at(t, HEAL_NODE, None)  # the episode is over
        self.clock.at(self._after(self.rates.partition), PARTITION)

    def cut(self, node: Node) -> None:
        if not self.faults.active or node.partitioned:
            return
        self.faults.record("partition", node.address)
        for member in node.group():  # a host's one connection: all its queues
            member.partitioned = True

    def heal_node(self, node: Node | None) -> None:
        """A cut region reaches the broker again (None: the partition episode is over)."""
        if node is None:
            self._partition_running = False
            return
        if node.partitioned:
            self.trace.fault(self.clock.now, "healed", node.address)
            for member in node.group():
                member.partitioned = False
                if member.queue:
                    self.broker.wake(member, member.queue[0].ready_ms)

    # --- disabled regions ---

    def disable(self) -> None:
        """The operator disables a region at the clearinghouse for a while."""
        if not self.faults.active:
            return
        candidates = sorted(self._enabled - self._disabled_by_fault)
        if candidates:
            code = self.rng.choice(candidates)
            self.faults.record("disable", code)
            self._disabled_by_fault.add(code)
            self.submitter.operate(SetRegionEnabled(code, False))
            self.clock.at(self.clock.now + self.rng.randint(500, 5_000), ENABLE, code)
        self.clock.at(self._after(self.rates.disable), DISABLE)

    def enable(self, code: str) -> None:
        """The disabled region's episode ends: the operator enables it again."""
        self.submitter.operate(SetRegionEnabled(code, True))
        self._disabled_by_fault.discard(code)

    # --- healing ---

    def heal(self) -> None:
        """Every episode ends: crashed services restart, cut regions come back, disabled
        ones are enabled."""
        for node in self.network.services():
            node.kills_left = 0
            if not node.up:
                self.services.restart(node)
        cut = [n for n in self.region_nodes.values() if n.partitioned]
        for node in self.rng.sample(cut, len(cut)):
            self.heal_node(node)
        for code in sorted(self._disabled_by_fault):
            self.submitter.operate(SetRegionEnabled(code, True))
        self._disabled_by_fault.clear()
