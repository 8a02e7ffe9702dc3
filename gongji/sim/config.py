"""What one simulation run is: its seed, its size, its faults and the network's pace."""

from __future__ import annotations

from dataclasses import dataclass

from broker.shell import ShellTuning
from broker.topology import Topology
from clearinghouse.coordinator import CoordinatorSettings
from gongji.sim.faults import DEFAULT_RATES, FaultRates

DELIVERY_LIMIT = Topology().delivery_limit
"""The service queues' delivery limit, as the real topology declares it."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulation run. The same config (and code) gives the same run."""

    seed: int = 1
    transfers: int = 1_000
    regions: int = 10
    faults: FaultRates = DEFAULT_RATES
    plant: str = ""
    """A planted bug from ``gongji.sim.planted.PLANTS`` (tests and demonstrations)."""
    persons_per_region: int = 0
    """0: enough that most bills find money (about one employee per bill)."""
    wallet_share: float = 0.08
    """Of the requests, co-payers' wallet transfers to bound relatives."""
    premium_share: float = 0.04
    """Of the requests, co-payers paying a bound resident relative's premium."""
    away_share: float = 0.04
    """Of the requests, bills at the co-payer's region for a relative insured elsewhere
    (care away from home), each registered at set-up."""
    requests_per_second: int = 1_000
    """Arrival rate of requests, in simulated time."""
    max_batch: int = 64
    """Messages a node applies in one transaction (the shell's ``max_batch_messages``)."""
    pipeline_depth: int = 2
    """Steps whose answers may await their confirms at once (the shell's default)."""
    mailboxes: bool = False
    """Regions hosted by province with mailboxes (``regions.host``): the clearinghouse sends
    a province's operations to its host's mailbox, whose engine applies them to the
    regions it names and runs their timers; a host's regions and mailbox live and die
    (and lose the broker) together, as one process."""
    prefetch: int = ShellTuning().prefetch
    """Messages the broker has pushed to a consumer ahead of its batches: when the
    consumer dies, these come back too, and each such return counts towards the
    delivery limit (as a quorum queue counts it)."""
    delivery_limit: int = DELIVERY_LIMIT
    confirm_ms: tuple[int, int] = (1, 8)
    """How long the broker takes to confirm a step's published answers."""
    latency_ms: tuple[int, int] = (1, 4)
    ops_per_ms: int = 5
    """How fast a node applies operations: a batch of n keeps it busy 1 + n // this ms,
    so a busy node (the clearinghouse) takes bigger batches, as a real one does."""
    region_tick_ms: int = 200
    clearinghouse_tick_ms: int = 100
    client_retry_ms: int = 0
    """The submitter sends an unanswered request again after this long; 0 never does,
    like ``gongji.client.BillClient``, so the cores alone must bring every request to
    its outcome."""
    window_ms: int = 5_000
    """The operator closes the clearing window this often (and once more at the end)."""
    advance_fen: int = 0
    """Each region's advance (预付金) at the clearinghouse, topped up to this at every close."""
    scenario: str = ""
    """The scenario file the regions and the population come from (``month``); empty:
    ``sim_regions`` and a generated population."""
    days: int = 0
    """A simulated month (or any number of days): the requests spread over ``days`` days
    of ``day_ms`` each, windows closed at day ends (daily) or at the month's end
    (monthly); 0: no calendar, windows every ``window_ms``."""
    day_ms: int = 10_000
    """Virtual time of one simulated day. Compressed: a day's business arrives within it,
    while the cores' own timers (hold and reserve timeouts, re-sends) run at their real
    lengths in virtual milliseconds, so a day is a span of activity, not 24 hours."""
    check_interval_ms: int = 1_000
    """Incremental invariant checks (and, after healing, the quiet test) this often."""
    full_checks: int = 3
    """Whole-books checks of every region during the run (and of a region after each of
    its restarts); each reads every journal entry, so they are few."""
    settle_ms: int = 5_000
    """Faults go on this long after the last request arrives; then they heal."""
    liveness_limit_ms: int = 300_000
    """After healing, every request must reach its final outcome within this long (the
    longest timer of the cores is the 60 s hold timeout; retries back off to 30 s)."""
    settings: CoordinatorSettings | None = None
    """Coordinator deadlines; None: the defaults, with a short hold timeout when the
    ``expiry`` fault is on."""

    def replay_command(self) -> str:
        """The ``gongji sim`` command that runs this config again."""
        parts = [
            "gongji sim",
            f"--seed {self.seed}",
            f"--transfers {self.transfers}",
            f"--faults {self.faults.spec()}",
        ]
        defaults = SimConfig()
        # With a scenario, its regions, the pace and the windows follow from the file and
        # the days; without, they are options of their own.
        paced: tuple[tuple[str, object, object], ...] = (
            ("--rate", self.requests_per_second, defaults.requests_per_second),
            ("--window-ms", self.window_ms, defaults.window_ms),
        )
        if self.scenario:
            parts.append(f"--scenario {self.scenario} --days {self.days} --day-ms {self.day_ms}")
            paced = ()
        else:
            parts.insert(3, f"--regions {self.regions}")
        for option, value, default in (
            ("--plant", self.plant, defaults.plant),
            ("--client-retry-ms", self.client_retry_ms, defaults.client_retry_ms),
            ("--wallet-share", self.wallet_share, defaults.wallet_share),
            ("--premium-share", self.premium_share, defaults.premium_share),
            ("--away-share", self.away_share, defaults.away_share),
            *paced,
        ):
            if value != default:
                parts.append(
                    f"{option} {value:g}" if isinstance(value, float) else f"{option} {value}"
                )
        if self.mailboxes:
            parts.append("--mailboxes")
        if self.settings is not None or self.persons_per_region:
            parts.append("# (and settings the command line does not take)")
        return " ".join(parts)
