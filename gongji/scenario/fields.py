"""Typed readers of one TOML table that collect problems instead of raising.

A field with a problem reads as its default (or a harmless placeholder), so the loader
checks the rest of the file and reports every problem at once.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from contracts.identifiers import is_region_code
from gongji.scenario.records import FenRange

MIX_TOLERANCE = 1e-9
"""How far from 1 the shares of a mix may sum (float rounding, not a second chance)."""

_E = TypeVar("_E", bound=StrEnum)
_REQUIRED: Any = object()


class Problems:
    """Every problem found in one file, each naming the file, the entry and the field."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, entry: str, field_name: str | None, message: str) -> None:
        where = f"{self.file}: {entry}"
        if field_name is not None:
            where += f": field '{field_name}'"
        self.items.append(f"{where}: {message}")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value}"


class Entry:
    """One table of the file; reads typed fields, records problems, rejects unknown keys.

    A field with a problem reads as its default (or a harmless placeholder), so that the
    rest of the file is still checked and every problem is reported at once.
    """

    def __init__(
        self, problems: Problems, name: str, table: dict[str, Any], prefix: str = ""
    ) -> None:
        self.problems = problems
        self.name = name
        self.data = table
        self.prefix = prefix
        """Names a field of a sub-table by its path, e.g. ``balance_fen.min``."""
        self.known: list[str] = []

    def problem(self, key: str, message: str) -> None:
        self.problems.add(self.name, f"{self.prefix}{key}", message)

    def finish(self) -> None:
        for key in self.data:
            if key not in self.known:
                close = difflib.get_close_matches(key, self.known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.problem(key, f"unknown field{hint}; known: {', '.join(self.known)}")

    def _get(self, key: str, default: Any, placeholder: Any) -> tuple[Any, bool]:
        """(value, present); a missing required field is a problem and reads as placeholder."""
        self.known.append(key)
        if key in self.data:
            return self.data[key], True
        if default is _REQUIRED:
            self.problem(key, "missing (required)")
            return placeholder, False
        return default, False

    def _typed(
        self, key: str, default: Any, placeholder: Any, ok: Callable[[Any], bool], kind: str
    ) -> Any:
        value, present = self._get(key, default, placeholder)
        if present and not ok(value):
            self.problem(key, f"expected {kind}, got {_describe(value)}")
            return placeholder if default is _REQUIRED else default
        return value

    def string(self, key: str, default: Any = _REQUIRED, *, allow_empty: bool = False) -> str:
        value: str = self._typed(key, default, "", lambda v: isinstance(v, str), "a string")
        if not allow_empty and key in self.data and value == "" == self.data[key]:
            self.problem(key, "must not be empty")
        return value

    def boolean(self, key: str, default: Any = _REQUIRED) -> bool:
        value: bool = self._typed(
            key, default, False, lambda v: isinstance(v, bool), "a boolean (true or false)"
        )
        return value

    def integer(
        self, key: str, default: Any = _REQUIRED, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value: int = self._typed(key, default, minimum, lambda v: _is_int(v), "an integer")
        if key in self.data and _is_int(self.data[key]):
            if value < minimum:
                self.problem(key, f"{value} is less than {minimum}")
                return minimum
            if maximum is not None and value > maximum:
                self.problem(key, f"{value} is greater than {maximum}")
                return maximum
        return value

    def share(self, key: str, default: Any = _REQUIRED) -> float:
        value = self._typed(key, default, 0.0, _is_number, "a number from 0 to 1")
        if key in self.data and _is_number(self.data[key]) and not 0 <= value <= 1:
            self.problem(key, f"{value} is not a share from 0 to 1")
            return 0.0 if default is _REQUIRED else float(default)
        return float(value)

    def choice(self, key: str, enum: type[_E], default: _E) -> _E:
        values = [m.value for m in enum]
        raw = self.data.get(key)
        quote = f' (in quotes: "{raw}")' if not isinstance(raw, str) and str(raw) in values else ""
        value = self._typed(
            key,
            default,
            default,
            lambda v: isinstance(v, str),
            f"a string, one of {', '.join(values)}{quote}",
        )
        if isinstance(value, enum):
            return value
        if value not in values:
            self.problem(key, f"{value!r} is not one of {', '.join(values)}")
            return default
        return enum(value)

    def region_code(self, key: str, default: Any = _REQUIRED) -> str:
        value: str = self._typed(
            key, default, "", lambda v: isinstance(v, str), "a 6-digit region code as a string"
        )
        if isinstance(self.data.get(key), str) and not is_region_code(value):
            self.problem(key, f"{value!r} is not a 6-digit region code")
            return ""
        return value

    def region_codes(self, key: str, scenario_codes: set[str]) -> tuple[str, ...]:
        value = self._typed(
            key,
            [],
            [],
            lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
            "an array of region codes (strings)",
        )
        codes: list[str] = []
        for code in value:
            if not is_region_code(code):
                self.problem(key, f"{code!r} is not a 6-digit region code")
            elif code not in scenario_codes:
                self.problem(key, f"{code} is not a region of this scenario")
            elif code in codes:
                self.problem(key, f"{code} is listed twice")
            else:
                codes.append(code)
        return tuple(codes)

    def table(self, key: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self._typed(
            key, None, None, lambda v: isinstance(v, dict), "a table"
        )
        return value

    def tables(self, key: str, *, required: bool = False) -> list[dict[str, Any]] | None:
        value: list[dict[str, Any]] | None = self._typed(
            key,
            _REQUIRED if required else None,
            None,
            lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
            f"an array of tables ([[{key}]])",
        )
        return value

    def fen_range(self, key: str, default: FenRange, *, minimum: int = 0) -> FenRange:
        """A ``{ min = .., max = .. }`` table; both required, ``min <= max``."""
        table = self.table(key)
        if table is None:
            return default
        before = len(self.problems.items)
        sub = Entry(self.problems, self.name, table, prefix=f"{self.prefix}{key}.")
        low, high = sub.integer("min", minimum=minimum), sub.integer("max", minimum=minimum)
        sub.finish()
        if len(self.problems.items) > before:
            return default
        if low > high:
            self.problem(key, f"min {low} is greater than max {high}")
            return default
        return FenRange(low, high)

    def mix(
        self, key: str, keys: list[str], *, key_hint: str | None = None
    ) -> dict[str, float] | None:
        """A table of shares over ``keys`` (missing keys: 0) that sums to 1; None when
        absent or wrong (wrong: a problem is recorded)."""
        table = self.table(key)
        if table is None:
            return None
        shares: dict[str, float] = {}
        bad = False
        for k, v in table.items():
            path = f"{self.prefix}{key}.{k}"
            if k not in keys:
                # Near-miss hints help with names, not with numbers ('0' is no typo of '10').
                close = [] if key_hint else difflib.get_close_matches(k, keys, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                known = key_hint or f"one of {', '.join(keys)}"
                self.problems.add(self.name, path, f"unknown key{hint}; expected {known}")
                bad = True
            elif not _is_number(v):
                self.problems.add(
                    self.name, path, f"expected a number from 0 to 1, got {_describe(v)}"
                )
                bad = True
            elif not 0 <= v <= 1:
                self.problems.add(self.name, path, f"{v} is not a share from 0 to 1")
                bad = True
            else:
                shares[k] = float(v)
        if bad:
            return None
        total = math.fsum(shares.values())
        if abs(total - 1.0) > MIX_TOLERANCE:
            self.problem(key, f"shares sum to {total:.12g}, not 1")
            return None
        return shares


def _is_int(value: object) -> bool:
    # bool is an int subclass in Python, not in TOML: true is no count.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    # TOML has inf and nan; neither is a share.
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)
