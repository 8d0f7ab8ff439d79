"""Column types that behave the same on SQLite and PostgreSQL.

- ``UTCDateTime``: always timezone-aware UTC in Python; SQLite keeps naive UTC text.
- ``ExactNumeric``: Decimal in Python; ``NUMERIC(p, s)`` on PostgreSQL, a scaled integer
  on SQLite (SQLite stores NUMERIC as floating point, so sums there would not be exact).
- ``JSONType``: JSONB on PostgreSQL, JSON text on SQLite. Used for config objects and for
  tag/capability lists; ``json_array_overlaps`` filters those lists on both databases.
- ``IPAddress``: INET on PostgreSQL, text on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import TypeDecorator

JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
IPAddress = sa.String(45).with_variant(postgresql.INET(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp that is timezone-aware UTC on the way in and on the way out."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactNumeric(TypeDecorator):
    """A fixed-point decimal that stays exact on both databases, in columns and in SUM()."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
        amount = amount.quantize(self._quantum, rounding=ROUND_HALF_EVEN)
        if dialect.name == "sqlite":
            return int(amount.scaleb(self.scale))
        return amount

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            # SUM() of scaled integers is an integer; AVG() may be a float: round it.
            return (Decimal(str(value)).scaleb(-self.scale)).quantize(
                self._quantum, rounding=ROUND_HALF_EVEN
            )
        return Decimal(value).quantize(self._quantum, rounding=ROUND_HALF_EVEN)

    def coerce_compared_value(self, op: Any, value: Any) -> sa.types.TypeEngine[Any]:
        # Literals compared with or added to this column are bound through this type.
        return self


class _JsonArrayOverlaps(ColumnElement[bool]):
    inherit_cache = False
    type = sa.Boolean()

    def __init__(self, column: ColumnElement[Any], values: list[str]) -> None:
        self.column = column
        self.values = values


@compiles(_JsonArrayOverlaps, "postgresql")
def _overlaps_postgresql(element: _JsonArrayOverlaps, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    values = compiler.process(
        sa.bindparam(None, element.values, type_=postgresql.ARRAY(sa.Text())), **kw
    )
    return f"({column} ?| {values})"


@compiles(_JsonArrayOverlaps)
def _overlaps_default(element: _JsonArrayOverlaps, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    values = compiler.process(
        sa.bindparam(None, element.values, type_=sa.String(), expanding=True), **kw
    )
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value IN {values})"


def json_array_overlaps(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """True where the JSON array in ``column`` contains any of ``values`` (both databases)."""
    values = [str(v) for v in values]
    if not values:
        return sa.false()
    return _JsonArrayOverlaps(column, values)


class utc_day(sa.sql.functions.FunctionElement):  # noqa: N801 (reads like a SQL function)
    """The UTC calendar day of a timestamp column, computed by the database."""

    type = sa.Date()
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: Any, **kw: Any) -> str:
    # SQLite keeps timestamps as naive UTC text (see UTCDateTime).
    return f"date({compiler.process(element.clauses, **kw)})"
