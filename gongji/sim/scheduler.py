"""Virtual time: a heap of events, each due at an integer millisecond.

Events are plain tuples ``(when, seq, kind, target, arg)``; ``seq`` is unique, so the
heap orders by time and then by scheduling order, and never compares the rest.
``gongji.sim.simulation`` pops them and hands each kind to the part that handles it.
"""

from __future__ import annotations

import heapq
from typing import Any

# Event kinds (small ints: the loop tests the commonest first).
STEP, TICK, RELEASE, RESTART, SUBMIT, CHECK, CUT, HEAL_NODE = range(8)
PARTITION, DISABLE, ENABLE, HEAL, DEADLINE, WINDOW = range(8, 14)
CONFIRM, CRASH_LOOP, KILL, FORGE = range(14, 18)

Event = tuple[int, int, int, Any, Any]


class Scheduler:
    """The run's clock and its pending events."""

    __slots__ = ("_seq", "events", "now")

    def __init__(self) -> None:
        self.now = 0
        """Virtual time in ms: the time of the event being handled."""
        self.events: list[Event] = []
        self._seq = 0

    def at(self, when: int, kind: int, target: Any = None, arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self.events, (when, self._seq, kind, target, arg))

    def pending(self, kind: int) -> bool:
        """Whether an event of ``kind`` is still due."""
        return any(k == kind for _, _, k, _, _ in self.events)
