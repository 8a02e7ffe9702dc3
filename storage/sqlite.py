"""Open a SQLite database the way gongji needs it: WAL, durable commits, explicit transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

Synchronous = Literal["OFF", "NORMAL", "FULL"]


class Database:
    """One SQLite connection with explicit ``BEGIN IMMEDIATE`` transactions.

    ``synchronous=FULL`` (the default) makes a commit durable against power loss before
    the caller acknowledges the message that caused it; ``NORMAL`` survives a process
    crash only, and is offered for benchmarks that say so.
    """

    def __init__(self, path: str | Path, *, synchronous: Synchronous = "FULL") -> None:
        self.path = str(path)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so one batch is one transaction.
        self.connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(f"PRAGMA synchronous={synchronous}")
        self.connection.execute("PRAGMA busy_timeout=5000")
        self._depth = 0

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
            self.connection.execute("ROLLBACK")
            raise
        self._depth = 0
        self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


def open_database(path: str | Path, *, synchronous: Synchronous = "FULL") -> Database:
    """Open (creating if needed) the SQLite file at ``path``; ``":memory:"`` for simulation."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return Database(path, synchronous=synchronous)
