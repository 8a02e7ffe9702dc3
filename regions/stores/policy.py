"""The policy the clearinghouse registered for this region, kept as settings (key, value)."""

from __future__ import annotations

import dataclasses
import typing
from enum import Enum
from typing import Any

from contracts.policy import Policy
from storage.cache import RowCache
from storage.sqlite import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

_POLICY_TYPES = typing.get_type_hints(Policy)
_POLICY_FIELDS = tuple(field.name for field in dataclasses.fields(Policy))
"""Each field of ``Policy`` is one setting, its key the field's name."""


def _setting(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _field(name: str, setting: str) -> Any:
    kind = _POLICY_TYPES[name]
    return setting == "1" if kind is bool else kind(setting)


class Policies:
    """The ``settings`` table: the region's ``Policy`` and whether it is ``enabled``."""

    def __init__(self, db: Database) -> None:
        self._sql = db.connection
        self._policy: RowCache[str, Policy] = db.row_cache("policy")

    def get(self) -> Policy:
        """The registered policy (the defaults until the clearinghouse configures us)."""
        return self._policy.fetch("policy", self._read) or Policy()

    def _read(self, _key: str) -> Policy:
        settings = dict(self._sql.execute("SELECT key, value FROM settings").fetchall())
        if "scope" not in settings:
            return Policy()
        # A file configured before a field existed has no setting for it: its default.
        return Policy(
            **{name: _field(name, settings[name]) for name in _POLICY_FIELDS if name in settings}
        )

    def set(self, policy: Policy, enabled: bool) -> None:
        settings = {name: _setting(getattr(policy, name)) for name in _POLICY_FIELDS}
        settings["enabled"] = _setting(enabled)
        self._sql.executemany(
            "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", settings.items()
        )
        self._policy.clear()
