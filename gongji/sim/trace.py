"""The run's trace: a hash of everything that happened, and readable lines per transfer.

The hash covers every delivery (virtual time, destination, operations) and every fault,
in order, so two runs with one seed and one code base give one hash. Readable lines are
kept only for the transfers being watched (a replay after a violation), so a normal run
pays for the hash alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import operator
from collections.abc import Callable, Iterable, Sequence

from contracts.operations import Operation

_ENCODERS: dict[type[Operation], Callable[[Operation], str]] = {}


def _encoder(kind: type[Operation]) -> Callable[[Operation], str]:
    names = [f.name for f in dataclasses.fields(kind)]
    get = operator.attrgetter(*names)
    tag = kind.TAG
    if len(names) == 1:
        return lambda op: f"{tag}|{get(op)}"
    return lambda op: tag + "|" + "|".join(map(str, get(op)))


def encode(ops: Sequence[Operation]) -> str:
    """A compact, deterministic text of operations for the trace hash.

    Field values joined by ``|`` after the wire tag: several times cheaper than ``repr``
    (an enum's repr is slow) and just as deterministic.
    """
    parts = []
    for op in ops:
        encoder = _ENCODERS.get(type(op))
        if encoder is None:
            encoder = _ENCODERS[type(op)] = _encoder(type(op))
        parts.append(encoder(op))
    return ";".join(parts)


class Trace:
    """Hashes the run and records the story of watched transfers."""

    def __init__(self, watch: Iterable[str] = ()) -> None:
        self._hash = hashlib.sha256()
        self.watch = frozenset(watch)
        self.lines: dict[str, list[str]] = {tid: [] for tid in sorted(self.watch)}

    def delivered(self, now_ms: int, address: str, text: str) -> None:
        self._hash.update(f"{now_ms}>{address}:{text}\n".encode())

    def fault(self, now_ms: int, kind: str, detail: str) -> None:
        self._hash.update(f"{now_ms}!{kind}:{detail}\n".encode())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def note(self, now_ms: int, ops: Iterable[Operation], what: str) -> None:
        """Record ``what`` for every watched transfer among ``ops``."""
        for op in ops:
            tid = getattr(op, "transfer_id", None)
            if tid in self.watch:
                self.lines[tid].append(f"{now_ms:>9} ms  {what}: {op!r}")

    def note_transfer(self, now_ms: int, transfer_id: str, what: str) -> None:
        if transfer_id in self.watch:
            self.lines[transfer_id].append(f"{now_ms:>9} ms  {what}")
