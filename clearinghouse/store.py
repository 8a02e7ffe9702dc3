"""The clearinghouse's SQLite: one repository per aggregate, held by one store.

Each repository (``clearinghouse.stores``) owns its table(s) and their SQL:
``transfers`` (records, history, quotes), ``registry`` (regions), ``directory``
(bindings), ``clearing`` (windows and their reconciliation), ``settlement`` (regions' advances
and each window's settlement). ``ClearinghouseStore``
opens the file, creates and migrates the schema, and holds them. Callers may reach a
repository (``store.transfers.get``) or the store's own names for the same methods
(``store.transfer``), which stay for the many callers written before the split.
"""

from __future__ import annotations

from pathlib import Path

from clearinghouse.stores import clearing, directory, registry, settlement, transfers
from clearinghouse.stores.clearing import Clearing, ClearingEntry, DisagreementRecord, Window
from clearinghouse.stores.directory import Binding, BindingStatus, Directory
from clearinghouse.stores.registry import Region, Registry
from clearinghouse.stores.settlement import RegionSettlement, Settlements
from clearinghouse.stores.transfers import (
    Candidate,
    Quote,
    StateChange,
    Transfer,
    Transfers,
    history_of,
)

# TransferState is re-exported: the store is where most readers meet it.
from clearinghouse.transfer_states import TransferState
from storage.sqlite import Database, Synchronous, open_database

__all__ = [
    "SCHEMA",
    "Binding",
    "BindingStatus",
    "Candidate",
    "ClearingEntry",
    "ClearinghouseStore",
    "DisagreementRecord",
    "Quote",
    "Region",
    "RegionSettlement",
    "StateChange",
    "Transfer",
    "TransferState",
    "Window",
    "history_of",
]

SCHEMA = "".join(module.SCHEMA for module in (registry, directory, clearing, transfers, settlement))
"""Every table of the clearinghouse, in the order first written."""


class ClearinghouseStore:
    """The national platform's records, in one SQLite file."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.executescript(SCHEMA)
        self._migrate()
        self.transfers = Transfers(db)
        self.registry = Registry(db)
        self.directory = Directory(db)
        self.clearing = Clearing(db)
        self.settlements = Settlements(db)

        # The names callers use, each one repository's method.
        self.region = self.registry.get
        self.regions = self.registry.all
        self.upsert_region = self.registry.upsert
        self.set_enabled = self.registry.set_enabled
        self.add_binding = self.directory.add
        self.binding = self.directory.get
        self.set_binding_status = self.directory.set_status
        self.active_bindings_of = self.directory.active_of
        self.active_bindings_by = self.directory.active_by
        self.due_bindings = self.directory.due
        self.transfer = self.transfers.get
        self.save = self.transfers.save
        self.due = self.transfers.due
        self.unfinished = self.transfers.unfinished
        self.add_history = self.transfers.add_history
        self.history = self.transfers.history
        self.add_quote = self.transfers.add_quote
        self.quotes = self.transfers.quotes
        self.open_window = self.clearing.open_window
        self.window = self.clearing.window
        self.window_closed_by = self.clearing.closed_by
        self.latest_closed_window = self.clearing.latest_closed
        self.close_window = self.clearing.close_window
        self.add_clearing_entry = self.clearing.add_entry
        self.clearing_entry = self.clearing.entry
        self.clearing_entries = self.clearing.entries
        self.put_reconciliation = self.clearing.put_reconciliation
        self.reconciliations = self.clearing.reconciliations
        self.put_disagreement = self.clearing.put_disagreement
        self.disagreements = self.clearing.disagreements
        self.mark_repaired = self.clearing.mark_repaired

    @classmethod
    def open(
        cls, path: str | Path, *, synchronous: Synchronous = "FULL", cached: bool = True
    ) -> ClearinghouseStore:
        """``cached=False`` for a reader while the clearinghouse service writes the file."""
        return cls(open_database(path, synchronous=synchronous, cached=cached))

    _FLAG_COLUMNS = ("payer_posted", "payee_credited", "abort_pending")
    """Columns of files written before the state machine: two steps were flags then."""

    def _migrate(self) -> None:
        """Turn an older file's flags into the states they stood for, then drop them."""
        sql = self.db.connection
        columns = {row[1] for row in sql.execute("PRAGMA table_info(transfers)")}
        old = [c for c in self._FLAG_COLUMNS if c in columns]
        if not old:
            return
        with self.db.transaction():
            if "payer_posted" in old:
                sql.execute(
                    "UPDATE transfers SET state = 'crediting'"
                    " WHERE state = 'committing' AND payer_posted = 1"
                )
            if "abort_pending" in old:
                sql.execute(
                    "UPDATE transfers SET state = 'aborting'"
                    " WHERE state = 'aborted' AND abort_pending = 1"
                )
            for column in old:
                sql.execute(f"ALTER TABLE transfers DROP COLUMN {column}")

    def close(self) -> None:
        self.db.close()
