"""Column types that behave the same on SQLite and PostgreSQL.

- ``UTCDateTime``: always timezone-aware UTC in Python; SQLite keeps naive UTC text.
- ``ExactNumeric``: Decimal in Python; ``NUMERIC(p, s)`` on PostgreSQL, a scaled integer
  on SQLite (SQLite stores NUMERIC as floating point, so sums there would not be exact).
- ``JSONType``: JSONB on PostgreSQL, JSON text on SQLite. Used for config objects and for
  tag/capability lists; ``json_array_overlaps`` filters those lists on both databases.
- ``IPAddress``: INET on PostgreSQL, text on SQLite.
"""

from __future__ import annotations

import operator
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


# Every ExactNumeric column is kept in micro-units on SQLite, whatever its declared scale,
# so columns compare and add correctly with one another in SQL.
SQLITE_SCALE = 6
_SCALING_OPERATORS = (operator.mul, operator.truediv, operator.floordiv)


class ExactNumeric(TypeDecorator):
    """A fixed-point decimal that stays exact on both databases, in columns and in SUM().

    PostgreSQL: NUMERIC(precision, scale). SQLite (which would store NUMERIC as binary
    floating point): an integer number of micro-units (value × 10**6). In SQL, compare,
    add, subtract and SUM these columns freely, and multiply or divide them by plain
    numbers; take averages with ``func.avg(column, type_=column.type)``. Never multiply or
    divide two ExactNumeric columns in SQL: compute such ratios in Python from Decimals.
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self._quantum = Decimal(1).scaleb(-scale)
        self._limit = Decimal(10) ** (precision - scale)

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
        amount = amount.quantize(self._quantum, rounding=ROUND_HALF_EVEN)
        if abs(amount) >= self._limit:
            # PostgreSQL refuses this as "numeric field overflow"; refuse it on SQLite too.
            raise ValueError(f"{amount} does not fit NUMERIC({self.precision}, {self.scale})")
        if dialect.name == "sqlite":
            return int(amount.scaleb(SQLITE_SCALE))
        return amount

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            # SUM() of micro-units is an integer; AVG() or a division may be a float.
            value = Decimal(str(value)).scaleb(-SQLITE_SCALE)
        return Decimal(value).quantize(self._quantum, rounding=ROUND_HALF_EVEN)

    def coerce_compared_value(self, op: Any, value: Any) -> sa.types.TypeEngine[Any]:
        """Literals compared with, added to or subtracted from the column are money and
        are bound through this type; factors and divisors are plain numbers."""
        if op in _SCALING_OPERATORS:
            return sa.Integer() if isinstance(value, int) else sa.Float()
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


class utc_hour(sa.sql.functions.FunctionElement):  # noqa: N801 (reads like a SQL function)
    """The UTC hour a timestamp falls in (a bucket key), computed by the database."""

    type = sa.String()
    inherit_cache = True


@compiles(utc_hour, "postgresql")
def _utc_hour_postgresql(element: utc_hour, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(timezone('UTC', {column}), 'YYYY-MM-DD HH24')"


@compiles(utc_hour)
def _utc_hour_default(element: utc_hour, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H', {compiler.process(element.clauses, **kw)})"


class utc_hour_start(sa.sql.functions.FunctionElement):  # noqa: N801 (reads like a SQL function)
    """The start of the UTC hour a timestamp falls in, as a timestamp (the hourly rollup's
    ``hour``), computed by the database."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utc_hour_start, "postgresql")
def _utc_hour_start_postgresql(element: utc_hour_start, compiler: Any, **kw: Any) -> str:
    return f"date_trunc('hour', {compiler.process(element.clauses, **kw)}, 'UTC')"


@compiles(utc_hour_start)
def _utc_hour_start_default(element: utc_hour_start, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy's SQLite text form of a timestamp, so it equals a bound hour exactly.
    column = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:00:00.000000', {column})"
