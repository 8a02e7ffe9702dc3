"""Open a SQLite database the way gongji needs it: WAL, durable commits, explicit transactions."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

from storage.cache import RowCache

Synchronous = Literal["OFF", "NORMAL", "FULL"]

SYNCHRONOUS_ENV = "GONGJI_SQLITE_SYNCHRONOUS"
"""Set to ``NORMAL`` (or ``FULL``) to choose every service's commit durability in a
deployment: an explicit operator choice that overrides what the code passes."""


def effective_synchronous(requested: Synchronous) -> Synchronous:
    """``requested``, unless ``GONGJI_SQLITE_SYNCHRONOUS`` names another level."""
    value = os.environ.get(SYNCHRONOUS_ENV, "").strip().upper()
    if not value:
        return requested
    if value not in ("NORMAL", "FULL"):  # never OFF: a commit must survive a process crash
        raise ValueError(f"{SYNCHRONOUS_ENV}={value!r}: use FULL or NORMAL")
    return value  # type: ignore[return-value]  # checked just above


class Database:
    """One SQLite connection with explicit ``BEGIN IMMEDIATE`` transactions.

    ``synchronous=FULL`` (the default) makes a commit durable against power loss before
    the caller acknowledges the message that caused it; ``NORMAL`` survives a process
    crash only (in WAL mode a commit is in the OS's page cache, not yet on disk), and is
    offered for benchmarks and deployments that say so (``GONGJI_SQLITE_SYNCHRONOUS``).
    """

    def __init__(
        self, path: str | Path, *, synchronous: Synchronous = "FULL", cached: bool = True
    ) -> None:
        self.path = str(path)
        self.cached = cached
        """Whether stores on this connection may remember rows between reads: true for the
        service that owns the file, false for a reader while another process writes it."""
        self._caches: dict[str, RowCache[Any, Any]] = {}
        self.synchronous = effective_synchronous(synchronous)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one batch is one transaction.
        self.connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(f"PRAGMA synchronous={self.synchronous}")
        self.connection.execute("PRAGMA busy_timeout=5000")
        self._depth = 0

    def row_cache(self, name: str) -> RowCache[Any, Any]:
        """The cache ``name`` of this connection, emptied: a store built over the database
        (at start, after a crash) starts from what is durable. Cleared on every rollback."""
        cache = self._caches.get(name)
        if cache is None:
            cache = self._caches[name] = RowCache(name, enabled=self.cached)
        cache.clear()
        return cache

    def forget_cached(self) -> None:
        for cache in self._caches.values():
            cache.clear()

    def executescript(self, script: str) -> None:
        """Run DDL (schema creation) outside any transaction."""
        self.connection.executescript(script)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Everything inside commits together or not at all. Nested use joins the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.connection
            finally:
                self._depth -= 1
            return
        self.connection.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.connection
        except BaseException:
            self._depth = 0
            self._rollback()
            raise
        self._depth = 0
        try:
            self.connection.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # The caches may hold rows this transaction wrote: forget them with it.
        self.forget_cached()
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def close(self) -> None:
        self.connection.close()


def open_database(
    path: str | Path, *, synchronous: Synchronous = "FULL", cached: bool = True
) -> Database:
    """Open (creating if needed) the SQLite file at ``path``; ``":memory:"`` for simulation.

    ``cached=False`` for a reader of a file that a running service writes."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Database(path, synchronous=synchronous, cached=cached)


class Databases:
    """Several databases in one transaction: a province host's mailbox applies a batch
    that touches several regions' files.

    A database joins the transaction when first used in it (``join``), so a batch pays
    only for the files it touches. SQLite cannot commit two files atomically (without
    ATTACH, which a region's store does not use), so they commit one after another: a
    crash between two commits leaves the batch committed in some regions only. That is
    safe because the batch is acknowledged only after every commit and its answers: it
    comes again, and each region's handlers are idempotent (a committed operation is
    answered again, not applied twice)."""

    def __init__(self, databases: Mapping[str, Database]) -> None:
        self.databases = dict(databases)
        self._stack: ExitStack | None = None
        self._joined: set[str] = set()

    @contextmanager
    def transaction(self) -> Iterator[Databases]:
        """Everything joined inside commits on leaving, or rolls back on an error."""
        if self._stack is not None:
            yield self  # nested use joins the outer transaction
            return
        with ExitStack() as stack:
            self._stack, self._joined = stack, set()
            try:
                yield self
            finally:
                self._stack = None

    def join(self, key: str) -> Database:
        """``key``'s database, in the current transaction from now on."""
        if self._stack is None:
            raise RuntimeError("join() outside Databases.transaction()")
        database = self.databases[key]
        if key not in self._joined:
            self._stack.enter_context(database.transaction())
            self._joined.add(key)
        return database
