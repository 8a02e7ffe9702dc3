"""The event loop gongji's commands run on: uvloop where it is installed, else asyncio's.

A service spends most of its CPU in the event loop and the AMQP client, not in its core
(profiled at 200 co-payments/s: the core and SQLite are about a tenth of a region's CPU).
uvloop's loop and transports cut every stage of a hop; on this machine's 4-region cluster
the p50 latency at 200/s fell from 212 to 134 ms (README, Performance).

``GONGJI_EVENT_LOOP=asyncio`` picks the standard loop, to compare or to debug.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

ENV = "GONGJI_EVENT_LOOP"
LOOPS = ("uvloop", "asyncio")

T = TypeVar("T")


def loop_name() -> str:
    """The loop ``run`` uses: ``GONGJI_EVENT_LOOP`` if set, else uvloop when installed."""
    raw = os.environ.get(ENV, "").strip().lower()
    if not raw:
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if raw not in LOOPS:
        raise ValueError(f"{ENV}={raw!r} is not one of: {', '.join(LOOPS)}")
    if raw == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ValueError(f"{ENV}=uvloop but uvloop is not installed (pip install uvloop)")
    return raw


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None  # asyncio.Runner's default


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the loop ``loop_name()`` names."""
    try:
        factory = _loop_factory(loop_name())
    except BaseException:
        main.close()  # never awaited: say so quietly rather than warn
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
