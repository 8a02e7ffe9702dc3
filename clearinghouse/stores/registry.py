"""The registry of regions: who takes part, whether enabled, and each one's policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from contracts.policy import (
    DEFAULT_RESIDENT_PREMIUM_FEN,
    FULL_CATALOGUE_PERMILLE,
    NATIONAL_WALLET_MAX_PER_TRANSFER_FEN,
    NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY,
    Policy,
)
from storage.cache import RowCache
from storage.sqlite import Database
from storage.table import Table

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS regions (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    province TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    scope TEXT NOT NULL DEFAULT '2024',
    payment_order TEXT NOT NULL DEFAULT 'own_first',
    wallet_enabled INTEGER NOT NULL DEFAULT 1,
    wallet_max_per_transfer_fen INTEGER NOT NULL DEFAULT {NATIONAL_WALLET_MAX_PER_TRANSFER_FEN},
    wallet_max_transfers_per_day INTEGER NOT NULL DEFAULT {NATIONAL_WALLET_MAX_TRANSFERS_PER_DAY},
    resident_premium_fen INTEGER NOT NULL DEFAULT {DEFAULT_RESIDENT_PREMIUM_FEN},
    direct_settlement INTEGER NOT NULL DEFAULT 1,
    catalogue_share_permille INTEGER NOT NULL DEFAULT {FULL_CATALOGUE_PERMILLE}
);
"""

ADDED_COLUMNS = (
    "direct_settlement INTEGER NOT NULL DEFAULT 1",
    f"catalogue_share_permille INTEGER NOT NULL DEFAULT {FULL_CATALOGUE_PERMILLE}",
)
"""Columns a file written before care away from home lacks (added on opening)."""


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    province: str
    enabled: bool
    policy: Policy = field(default_factory=Policy)

    def label(self) -> str:
        return f"{self.code} ({self.name})"


REGIONS = Table("regions", Region, flatten={"policy": Policy})
"""A region's policy is stored as its fields' columns."""
_SELECT = REGIONS.select("code = ?")
_ALL = REGIONS.select(order_by="code")
_UPSERT = REGIONS.insert(verb="INSERT OR REPLACE")


class Registry:
    """The ``regions`` table, remembered write-through by code."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._regions: RowCache[str, Region] = db.row_cache("regions")

    def get(self, code: str) -> Region | None:
        return self._regions.fetch(code, self._read)

    def _read(self, code: str) -> Region | None:
        row = self._sql.execute(_SELECT, (code,)).fetchone()
        return None if row is None else REGIONS.read(row)

    def all(self) -> list[Region]:
        return [REGIONS.read(row) for row in self._sql.execute(_ALL).fetchall()]

    def upsert(self, region: Region) -> None:
        self._sql.execute(_UPSERT, REGIONS.values(region))
        self._regions.put(region.code, region)

    def set_enabled(self, code: str, enabled: bool) -> bool:
        """Whether the region is registered (and so now enabled or not)."""
        cursor = self._sql.execute("UPDATE regions SET enabled = ? WHERE code = ?", (enabled, code))
        self._regions.forget(code)
        return cursor.rowcount > 0
