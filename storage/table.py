"""A table whose columns are a record's fields: its SQL, and its rows read back by name.

A repository describes each of its tables once, as ``Table(name, Record)``: statements
name the record's fields as columns, values are bound by name, and a row comes back as
a mapping from column to value before it becomes the record. Adding a field to the
record (and its column to the DDL) is then the whole change; no column list is kept in
step by hand. The DDL stays written out in each repository: it is the file's contract
with its SQL readers (``gongji audit``, ``gongji report transfer``).

How a value crosses: every enum here is a ``StrEnum`` and SQLite stores a ``str`` (or
``int``, ``bool``) subclass as its plain value, so writing needs no conversion; reading
converts each column by its field's type (an enum, ``bool``, or ``X | None`` of those).
A field of any other type names its own codec.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Codec:
    """How one field that SQLite cannot hold as it is goes in and comes out."""

    to_sql: Convert
    from_sql: Convert


def _from_sql(hint: Any) -> Convert | None:
    """The conversion a column needs to become a field of type ``hint`` (None: none)."""
    if isinstance(hint, type):
        if issubclass(hint, Enum) or hint is bool:
            return hint
        if hint in (int, str):
            return None
    if isinstance(hint, types.UnionType):
        others = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(others) == 1:
            inner = _from_sql(others[0])
            if inner is None:
                return None
            return lambda value: None if value is None else inner(value)
    raise TypeError(f"a field of type {hint!r} needs a Codec")


class Table(Generic[R]):
    """The SQL of table ``name`` for records of the dataclass ``record``.

    ``flatten`` names fields that are records themselves, stored as their own fields'
    columns (a region's policy). ``codecs`` carries the fields of other types.
    """

    def __init__(
        self,
        name: str,
        record: type[R],
        *,
        codecs: Mapping[str, Codec] | None = None,
        flatten: Mapping[str, type[DataclassInstance]] | None = None,
    ) -> None:
        self.name = name
        self._record: Callable[..., R] = record
        codecs = codecs or {}
        self._flatten = {
            field: (part, tuple(f.name for f in dataclasses.fields(part)))
            for field, part in (flatten or {}).items()
        }
        own = tuple(f.name for f in dataclasses.fields(record))
        self.fields = own
        """The record's fields, in their order."""
        self.columns: tuple[str, ...] = tuple(
            column
            for field in own
            for column in (self._flatten[field][1] if field in self._flatten else (field,))
        )
        """The table columns the record is, in the order ``select`` names them."""
        hints = typing.get_type_hints(record)
        for part, _ in self._flatten.values():
            hints.update(typing.get_type_hints(part))
        self._to_sql = tuple((field, codec.to_sql) for field, codec in codecs.items())
        self._from_sql: tuple[tuple[str, Convert], ...] = ()
        for column in self.columns:
            codec = codecs.get(column)
            convert = _from_sql(hints[column]) if codec is None else codec.from_sql
            if convert is not None:
                self._from_sql += ((column, convert),)
        self.column_list = ", ".join(self.columns)

    def select(self, where: str = "", *, order_by: str = "", limit: str = "") -> str:
        """``SELECT`` the record's columns; read each row with ``read``."""
        sql = f"SELECT {self.column_list} FROM {self.name}"
        if where:
            sql += f" WHERE {where}"
        if order_by:
            sql += f" ORDER BY {order_by}"
        if limit:
            sql += f" LIMIT {limit}"
        return sql

    def insert(self, *extra: str, verb: str = "INSERT", omit: Sequence[str] = ()) -> str:
        """``INSERT`` the record's columns but ``omit`` and the ``extra`` ones, bound by
        name (``values``)."""
        names = (*(column for column in self.columns if column not in omit), *extra)
        return (
            f"{verb} INTO {self.name} ({', '.join(names)})"
            f" VALUES ({', '.join(':' + name for name in names)})"
        )

    def update(self, columns: Sequence[str], where: str) -> str:
        """``UPDATE`` ``columns`` to the record's values (``values``) on the rows ``where``."""
        return f"UPDATE {self.name} SET {', '.join(f'{c} = :{c}' for c in columns)} WHERE {where}"

    def values(
        self, record: R, *, skip: Collection[str] = (), **extra: object
    ) -> dict[str, object]:
        """The record's columns by name (but those in ``skip``, a statement that does not
        name them) and the ``extra`` ones, to bind to a statement."""
        values: dict[str, object] = {}
        for field in self.fields:
            if field in skip:
                continue
            value = getattr(record, field)
            if field in self._flatten:
                for column in self._flatten[field][1]:
                    values[column] = getattr(value, column)
            else:
                values[field] = value
        for field, to_sql in self._to_sql:
            if field in values:
                values[field] = to_sql(values[field])
        values.update(extra)
        return values

    def read(self, row: Sequence[Any]) -> R:
        """The record a row of ``select`` is: each value taken by its column's name."""
        by_column = dict(zip(self.columns, row, strict=True))
        for column, from_sql in self._from_sql:
            by_column[column] = from_sql(by_column[column])
        for field, (part, columns) in self._flatten.items():
            by_column[field] = part(**{column: by_column.pop(column) for column in columns})
        return self._record(**by_column)
