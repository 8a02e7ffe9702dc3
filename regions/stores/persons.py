"""The persons a region insures: enrolment, insurance, and the simulated identity check.

Their ledger accounts (``accounts.person_account``, ``wallet_account``) are opened in the
books by whoever enrols them, in the same transaction."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.vocabulary import Insurance
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS persons (
    psn_no TEXT PRIMARY KEY,
    insurance TEXT NOT NULL,
    secret TEXT NOT NULL DEFAULT '',
    enrolled_at_ms INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Person:
    psn_no: str
    insurance: Insurance
    secret: str
    """What the simulated identity check compares (a face or password in real life)."""
    enrolled_at_ms: int


PERSONS = Table("persons", Person)
_SELECT = PERSONS.select("psn_no = ?")
_INSERT = PERSONS.insert()


class Persons:
    """The ``persons`` table, remembered write-through by person number."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._persons: RowCache[str, Person] = db.row_cache("persons")

    def get(self, psn_no: str) -> Person | None:
        return self._persons.fetch(psn_no, self._read)

    def _read(self, psn_no: str) -> Person | None:
        row = self._sql.execute(_SELECT, (psn_no,)).fetchone()
        return None if row is None else PERSONS.read(row)

    def insurance_of(self, psn_no: str) -> Insurance | None:
        person = self.get(psn_no)
        return None if person is None else person.insurance

    def add(self, psn_no: str, insurance: Insurance, at_ms: int, secret: str = "") -> None:
        person = Person(psn_no, insurance, secret, at_ms)
        self._sql.execute(_INSERT, PERSONS.values(person))
        self._persons.put(psn_no, person)

    def set_insurance(self, psn_no: str, insurance: Insurance) -> None:
        self._sql.execute(
            "UPDATE persons SET insurance = ? WHERE psn_no = ?", (insurance.value, psn_no)
        )
        self._persons.forget(psn_no)

    def secret_matches(self, psn_no: str, secret: str) -> bool:
        """The simulated identity check (face or password in real life)."""
        person = self.get(psn_no)
        return person is not None and person.secret == secret

    def count(self) -> int:
        return int(self._sql.execute("SELECT COUNT(*) FROM persons").fetchone()[0])
