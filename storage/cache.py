"""A write-through memory of rows a store has already read or written, by key.

Reading a row back from SQLite costs a statement (about 10 µs here) plus building the
record; a handler reads the same transfer, bill or account several times over its life.
The store writes SQL first and then tells the cache, so SQLite stays the truth and the
cache only saves reads. Its one danger is holding a value that a rolled-back transaction
wrote: ``Database`` clears every cache of its connection on rollback, and a store built
over a database (at start, after a crash) starts from an empty cache.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from enum import Enum
from typing import Final, Generic, Literal, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class _Miss(Enum):
    MISS = 0


MISS: Final = _Miss.MISS
"""What ``RowCache.get`` returns for a key it does not know (``None`` is a known absence)."""

Miss = Literal[_Miss.MISS]

DEFAULT_LIMIT = 50_000
"""Keys one cache keeps; the oldest go first. Enough for every transfer in flight."""


class RowCache(Generic[K, V]):
    """Key -> record (or ``None`` for a row known not to exist), oldest evicted first.

    A disabled cache (a reader's connection: another process writes the file) never
    remembers anything, so every read goes to SQLite.
    """

    __slots__ = ("_rows", "enabled", "limit", "name")

    def __init__(self, name: str, *, enabled: bool = True, limit: int = DEFAULT_LIMIT) -> None:
        self.name = name
        self.enabled = enabled
        self.limit = limit
        # An OrderedDict, not a dict: evicting a dict's first key again and again leaves
        # a run of deleted slots that ``next(iter(d))`` scans past, so once a cache was
        # full every new key cost a scan of thousands of slots (19 % of a saturated
        # clearinghouse's samples, and throughput fell run after run). ``popitem(last=False)``
        # is O(1).
        self._rows: OrderedDict[K, V | None] = OrderedDict()

    def get(self, key: K) -> V | Miss | None:
        return self._rows.get(key, MISS)

    def put(self, key: K, value: V | None) -> None:
        if not self.enabled:
            return
        rows = self._rows
        if key not in rows and len(rows) >= self.limit:
            rows.popitem(last=False)
        rows[key] = value

    def fetch(self, key: K, load: Callable[[K], V | None]) -> V | None:
        """The remembered value, else ``load(key)`` (a read of SQLite), remembered."""
        value = self._rows.get(key, MISS)
        if value is MISS:
            value = load(key)
            self.put(key, value)
        return value

    def revise(self, key: K, change: Callable[[V], V]) -> None:
        """After an UPDATE: apply the same change to the remembered record, if any."""
        value = self._rows.get(key)
        if value is not None:
            self._rows[key] = change(value)

    def forget(self, key: K) -> None:
        self._rows.pop(key, None)

    def clear(self) -> None:
        self._rows.clear()

    def __len__(self) -> int:
        return len(self._rows)
