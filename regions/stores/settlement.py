"""Settlement: the lines this region reported for each clearing window, the report it
sent, and the clearinghouse's reconciliation of it."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.vocabulary import Flow
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS settlement_lines (
    window INTEGER NOT NULL,
    transfer_id TEXT NOT NULL,
    flow TEXT NOT NULL,
    payer_region TEXT NOT NULL,
    payee_region TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    PRIMARY KEY (window, transfer_id)
);
CREATE TABLE IF NOT EXISTS settlement_reports (
    window INTEGER PRIMARY KEY,
    paid_fen INTEGER NOT NULL,
    received_fen INTEGER NOT NULL,
    net_fen INTEGER NOT NULL,
    lines INTEGER NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    closed_at_ms INTEGER NOT NULL,
    disagreements INTEGER,
    reconciled_at_ms INTEGER
);
"""


@dataclass(frozen=True, slots=True)
class SettlementReportRecord:
    window: int
    paid_fen: int
    received_fen: int
    net_fen: int
    lines: int
    opened_at_ms: int
    closed_at_ms: int
    disagreements: int | None


@dataclass(frozen=True, slots=True)
class SettlementLineRecord:
    window: int
    transfer_id: str
    flow: Flow
    payer_region: str
    payee_region: str
    amount_fen: int


LINES = Table("settlement_lines", SettlementLineRecord)
REPORTS = Table("settlement_reports", SettlementReportRecord)
_ADD_LINE = LINES.insert(verb="INSERT OR IGNORE")
_LINES_OF = LINES.select("window = ?", order_by="transfer_id")
_REPORT = REPORTS.select("window = ?")
# A report's disagreements are the reconciliation's to say (``mark_reconciled``).
_ADD_REPORT = REPORTS.insert(verb="INSERT OR IGNORE", omit=("disagreements",))


class Settlement:
    """The ``settlement_lines`` and ``settlement_reports`` tables; reports are remembered
    write-through by window."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._reports: RowCache[int, SettlementReportRecord] = db.row_cache("reports")

    def add_line(self, line: SettlementLineRecord) -> None:
        self._sql.execute(_ADD_LINE, LINES.values(line))

    def lines(self, window: int) -> list[SettlementLineRecord]:
        return [LINES.read(row) for row in self._sql.execute(_LINES_OF, (window,)).fetchall()]

    def reported_transfer_ids(self) -> set[str]:
        return {tid for (tid,) in self._sql.execute("SELECT transfer_id FROM settlement_lines")}

    def add_report(self, report: SettlementReportRecord) -> None:
        """Record a window's report (once); its reconciliation comes later."""
        self._sql.execute(_ADD_REPORT, REPORTS.values(report))
        self._reports.forget(report.window)

    def report(self, window: int) -> SettlementReportRecord | None:
        return self._reports.fetch(window, self._read_report)

    def _read_report(self, window: int) -> SettlementReportRecord | None:
        row = self._sql.execute(_REPORT, (window,)).fetchone()
        return None if row is None else REPORTS.read(row)

    def mark_reconciled(self, window: int, disagreements: int, at_ms: int) -> None:
        self._sql.execute(
            "UPDATE settlement_reports SET disagreements = ?, reconciled_at_ms = ?"
            " WHERE window = ?",
            (disagreements, at_ms, window),
        )
        self._reports.forget(window)
