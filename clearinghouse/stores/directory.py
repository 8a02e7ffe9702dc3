"""The binding directory: who co-pays for whom, and each binding's status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from contracts.reasons import ReasonCode
from contracts.vocabulary import Relationship
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings (
    binding_id TEXT PRIMARY KEY,
    copayer TEXT NOT NULL,
    copayer_region TEXT NOT NULL,
    beneficiary TEXT NOT NULL,
    beneficiary_region TEXT NOT NULL,
    relationship TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    reason TEXT,
    detail TEXT NOT NULL DEFAULT '',
    next_action_ms INTEGER,
    created_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS bindings_by_beneficiary ON bindings (beneficiary, beneficiary_region);
CREATE INDEX IF NOT EXISTS bindings_by_copayer ON bindings (copayer, copayer_region);
CREATE INDEX IF NOT EXISTS bindings_due
    ON bindings (next_action_ms) WHERE next_action_ms IS NOT NULL;
"""


class BindingStatus(StrEnum):
    VERIFYING = "verifying"
    """Proposed; waiting for the beneficiary's region to confirm the insurance."""
    ACTIVE = "active"
    ENDED = "ended"
    """Revoked by the co-payer, or ended by a change of insurance."""
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Binding:
    binding_id: str
    copayer: str
    copayer_region: str
    beneficiary: str
    beneficiary_region: str
    relationship: Relationship
    status: BindingStatus = BindingStatus.ACTIVE
    reason: ReasonCode | None = None
    detail: str = ""


BINDINGS = Table("bindings", Binding)
_ADD = BINDINGS.insert("next_action_ms", "created_at_ms", verb="INSERT OR IGNORE")
_SELECT = BINDINGS.select("binding_id = ?")
_ACTIVE_OF = BINDINGS.select(
    "beneficiary = ? AND beneficiary_region = ? AND status = 'active'", order_by="binding_id"
)
_ACTIVE_BY = BINDINGS.select(
    "copayer = ? AND copayer_region = ? AND status = 'active'", order_by="binding_id"
)
_DUE = BINDINGS.select("next_action_ms IS NOT NULL AND next_action_ms <= ?")


class Directory:
    """The ``bindings`` table; a beneficiary's active bindings are remembered write-through."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._bindings_of: RowCache[tuple[str, str], tuple[Binding, ...]] = db.row_cache(
            "bindings_of"
        )

    def add(self, binding: Binding, at_ms: int, next_action_ms: int | None = None) -> None:
        """Insert a binding (idempotent by id: an existing one is left as it is)."""
        self._sql.execute(
            _ADD, BINDINGS.values(binding, next_action_ms=next_action_ms, created_at_ms=at_ms)
        )
        self._bindings_of.forget((binding.beneficiary, binding.beneficiary_region))

    def get(self, binding_id: str) -> Binding | None:
        row = self._sql.execute(_SELECT, (binding_id,)).fetchone()
        return None if row is None else BINDINGS.read(row)

    def set_status(
        self,
        binding_id: str,
        status: BindingStatus,
        at_ms: int,
        reason: ReasonCode | None = None,
        detail: str = "",
    ) -> None:
        ended = at_ms if status in (BindingStatus.ENDED, BindingStatus.REFUSED) else None
        self._sql.execute(
            "UPDATE bindings SET status = ?, reason = ?, detail = ?, next_action_ms = NULL,"
            " ended_at_ms = ? WHERE binding_id = ?",
            (status, reason, detail, ended, binding_id),
        )
        self._bindings_of.clear()  # rare: a binding ends, is refused or becomes active

    def active_of(self, beneficiary: str, beneficiary_region: str) -> list[Binding]:
        """The beneficiary's active bindings, by id."""
        found = self._bindings_of.fetch((beneficiary, beneficiary_region), self._read_active_of)
        return list(found or ())

    def _read_active_of(self, key: tuple[str, str]) -> tuple[Binding, ...]:
        return tuple(BINDINGS.read(row) for row in self._sql.execute(_ACTIVE_OF, key).fetchall())

    def active_by(self, copayer: str, copayer_region: str) -> list[Binding]:
        """The co-payer's active bindings, by id."""
        rows = self._sql.execute(_ACTIVE_BY, (copayer, copayer_region)).fetchall()
        return [BINDINGS.read(row) for row in rows]

    def due(self, now_ms: int) -> list[Binding]:
        """Bindings whose next step (a verification asked again) is due."""
        return [BINDINGS.read(row) for row in self._sql.execute(_DUE, (now_ms,)).fetchall()]
