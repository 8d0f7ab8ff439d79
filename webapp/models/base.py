"""Declarative base: a naming convention so every constraint and index has a stable name
(SQLite batch migrations and hand-reviewed Alembic revisions depend on it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

import flask_sqlalchemy.model
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from webapp.models.types import SQLITE_SCALE, UTCDateTime, utcnow
from webapp.read_replica import RoutingSession

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# Defined beside the base (not in extensions.py) so model modules can import it without
# an import cycle; extensions.py re-exports it with the other extensions.
# RoutingSession: the dashboards' reads may go to a replica (webapp/read_replica.py).
db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})

# Models subclass ``Model``. At run time it is ``db.Model``, which Flask-SQLAlchemy builds
# by copying ``Base``'s body into a new declarative class with its own ``Model`` mixin
# (``query``, bind keys, table names). A type checker cannot subclass an attribute made at
# run time, so it is shown that same combination as a class: columns, ``__table__``,
# constructors and ``select(Model)`` are then checked.
if TYPE_CHECKING:

    class Model(Base, flask_sqlalchemy.model.Model):
        __abstract__ = True
        # Each model maps one Table (DeclarativeBase types it as any FromClause).
        __table__: ClassVar[sa.Table]

else:
    Model = db.Model


def uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, nullable=False, default=utcnow, server_default=sa.func.now())


def updated_at_column() -> Mapped[datetime]:
    """Set on insert and refreshed by every ORM or Core UPDATE through the table."""
    return mapped_column(
        UTCDateTime,
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=sa.func.now(),
    )


def check_in(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that ``column`` holds one of ``values`` (all are code constants)."""
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def decimal_range_check(
    name: str,
    column: str,
    low: str,
    high: str,
    *,
    low_inclusive: bool = True,
    nullable: bool = False,
) -> tuple[sa.CheckConstraint, sa.CheckConstraint]:
    """CHECK low <=/< column <= high on an ExactNumeric column, on both databases.

    ExactNumeric keeps micro-units on SQLite, so the bounds there are multiplied by
    10**SQLITE_SCALE; each constraint is created only on its own dialect (same name)."""

    def condition(lo: str, hi: str) -> str:
        text = f"{column} {'>=' if low_inclusive else '>'} {lo} AND {column} <= {hi}"
        return f"{column} IS NULL OR ({text})" if nullable else text

    def scaled(value: str) -> str:
        return str(int(Decimal(value).scaleb(SQLITE_SCALE)))

    return (
        sa.CheckConstraint(condition(low, high), name=name).ddl_if(dialect="postgresql"),
        sa.CheckConstraint(condition(scaled(low), scaled(high)), name=name).ddl_if(
            dialect="sqlite"
        ),
    )
