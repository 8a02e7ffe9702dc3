"""Registrations of care away from home (异地就医备案) in the national directory, with a
row per state change."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.reasons import ReasonCode
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS away_registrations (
    registration_id TEXT PRIMARY KEY,
    beneficiary TEXT NOT NULL,
    insured_region TEXT NOT NULL,
    care_region TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS away_registrations_of
    ON away_registrations (beneficiary, insured_region, care_region);
CREATE TABLE IF NOT EXISTS away_registration_history (
    registration_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (registration_id, seq)
);
"""


class RegistrationStatus(StrEnum):
    ACTIVE = "active"
    """Recorded: bills at the region of care within its period are settled directly."""
    REVOKED = "revoked"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class AwayRegistration:
    registration_id: str
    beneficiary: str
    insured_region: str
    care_region: str
    from_ms: int
    until_ms: int
    """The first instant after the stay; 0: no end."""
    status: RegistrationStatus
    reason: ReasonCode | None = None
    detail: str = ""

    def covers(self, at_ms: int) -> bool:
        return self.from_ms <= at_ms and (self.until_ms == 0 or at_ms < self.until_ms)


REGISTRATIONS = Table("away_registrations", AwayRegistration)
_SELECT = REGISTRATIONS.select("registration_id = ?")
_OF = REGISTRATIONS.select(
    "beneficiary = ? AND insured_region = ? AND care_region = ?", order_by="registration_id"
)
_INSERT = REGISTRATIONS.insert(verb="INSERT OR IGNORE")


class AwayRegistrations:
    """The ``away_registrations`` table and its history (read from SQLite: one a bill)."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection

    def get(self, registration_id: str) -> AwayRegistration | None:
        row = self._sql.execute(_SELECT, (registration_id,)).fetchone()
        return None if row is None else REGISTRATIONS.read(row)

    def of(self, beneficiary: str, insured_region: str, care_region: str) -> list[AwayRegistration]:
        """Every registration of the person for that region of care, whatever its status."""
        rows = self._sql.execute(_OF, (beneficiary, insured_region, care_region)).fetchall()
        return [REGISTRATIONS.read(row) for row in rows]

    def add(self, registration: AwayRegistration, at_ms: int) -> None:
        """Record a decided registration (idempotent by id) and its first history row."""
        if self._sql.execute(_INSERT, REGISTRATIONS.values(registration)).rowcount:
            self._history(registration.registration_id, at_ms, None, registration.status)

    def set_status(
        self, registration_id: str, status: RegistrationStatus, at_ms: int, detail: str
    ) -> None:
        before = self.get(registration_id)
        if before is None or before.status is status:
            return
        self._sql.execute(
            "UPDATE away_registrations SET status = ?, detail = ? WHERE registration_id = ?",
            (status, detail, registration_id),
        )
        self._history(registration_id, at_ms, before.status, status, detail)

    def _history(
        self,
        registration_id: str,
        at_ms: int,
        from_status: RegistrationStatus | None,
        to_status: RegistrationStatus,
        detail: str = "",
    ) -> None:
        self._sql.execute(
            "INSERT INTO away_registration_history (registration_id, seq, at_ms, from_status,"
            " to_status, detail) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM"
            " away_registration_history WHERE registration_id = ?), ?, ?, ?, ?)",
            (registration_id, registration_id, at_ms, from_status, to_status, detail),
        )
