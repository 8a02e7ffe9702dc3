"""Which faults a simulation injects, and how often; and which it injected.

``--faults`` takes ``all``, ``none`` or a comma-separated list of kinds, each optionally
with a rate (``crash=0.01``); a kind named without a rate gets its default rate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gongji.sim.scheduler import Scheduler
    from gongji.sim.trace import Trace


@dataclass(frozen=True, slots=True)
class FaultRates:
    """The rate of every fault kind; 0 switches a kind off."""

    delay: float = 0.0
    """Per published message: held back 10..3000 ms, so later messages overtake it."""
    reorder: float = 0.0
    """Per published message: put at a random place in its queue instead of the tail."""
    duplicate: float = 0.0
    """Per delivered message: processed, but its ack is lost, so it comes again later."""
    loss: float = 0.0
    """Per delivered message: lost before it was processed and acked; redelivered later."""
    crash: float = 0.0
    """Per step (a batch or a timer) of a region or the clearinghouse: it crashes at a
    random point (mid-transaction, after commit, after publish) and restarts later."""
    nack: float = 0.0
    """Per step with answers to publish: the broker nacks them (as a quorum queue
    without a leader does), so the step's deliveries must be requeued, not acked."""
    crash_loop: float = 0.0
    """Episodes per simulated second: the clearinghouse (half the time) or a region is
    killed 4 to 8 times, each soon after it comes back; every kill hands its unacked and
    prefetched messages back to the broker, which counts them towards the delivery limit."""
    hostile: float = 0.0
    """Episodes per simulated second: a participant forges a message with its own (real)
    credentials: a region addressing another region or answering for one, a client
    sending the clearinghouse's Reserve, Commit or Credit, a replayed Commit, a message
    from no participant at all. Each must be refused and none may have any effect."""
    partition: float = 0.0
    """Swizzle episodes per simulated second: several regions cut from the broker one by
    one, then healed in random order."""
    disable: float = 0.0
    """Episodes per simulated second: a region disabled at the clearinghouse, then
    enabled again."""
    expiry: float = 0.0
    """Per message to a region: late by about the hold timeout, which is short in runs
    with this fault, so commits race the expiry of their holds."""

    def enabled(self) -> list[str]:
        """The kinds switched on, in declaration order."""
        return [f.name for f in fields(self) if getattr(self, f.name) > 0]

    def spec(self) -> str:
        """The ``--faults`` value that gives these rates."""
        if self == DEFAULT_RATES:
            return "all"
        on = [f"{name}={getattr(self, name):g}" for name in self.enabled()]
        return ",".join(on) if on else "none"


KINDS: tuple[str, ...] = tuple(f.name for f in fields(FaultRates))

DEFAULT_RATES = FaultRates(
    delay=0.02,
    reorder=0.02,
    duplicate=0.02,
    loss=0.01,
    crash=0.002,
    nack=0.005,
    crash_loop=0.1,
    hostile=1.0,
    partition=0.2,
    disable=0.2,
    expiry=0.01,
)
"""The rates of ``--faults all`` (and of a kind named without a rate)."""

NO_FAULTS = FaultRates()


class FaultState:
    """The faults of one run as it goes: their rates, whether they are still on (until
    the run heals), and how many of each kind were injected."""

    def __init__(self, rates: FaultRates, clock: Scheduler, trace: Trace) -> None:
        self.rates = rates
        self.active = rates != FaultRates()
        self.injected: dict[str, int] = {}
        self._clock = clock
        self._trace = trace

    def record(self, kind: str, detail: str) -> None:
        """Count a fault injected now, and hash it into the trace."""
        self.injected[kind] = self.injected.get(kind, 0) + 1
        self._trace.fault(self._clock.now, kind, detail)


def parse_faults(text: str) -> FaultRates:
    """``all``, ``none``, or e.g. ``delay,crash=0.01``; raise ``ValueError`` with the reason."""
    text = text.strip()
    if text in ("", "none"):
        return NO_FAULTS
    rates = NO_FAULTS
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        name = name.strip()
        if name == "all":
            if value:
                raise ValueError("'all' takes no rate")
            rates = _merge(rates, DEFAULT_RATES)
            continue
        if name not in KINDS:
            raise ValueError(f"unknown fault {name!r} (known: all, none, {', '.join(KINDS)})")
        rate = getattr(DEFAULT_RATES, name) if not value else _rate(name, value)
        rates = replace(rates, **{name: rate})
    return rates


def _rate(name: str, value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ValueError(f"the rate of {name} is not a number: {value!r}") from None
    if not rate >= 0 or rate == float("inf"):
        raise ValueError(f"the rate of {name} must be a finite number >= 0, not {value}")
    per_message = name not in ("partition", "disable", "crash_loop", "hostile")
    if per_message and rate > 0.5:
        raise ValueError(f"the rate of {name} is a probability per message, at most 0.5")
    return rate


def _merge(rates: FaultRates, extra: FaultRates) -> FaultRates:
    return replace(rates, **{k: max(getattr(rates, k), getattr(extra, k)) for k in KINDS})
