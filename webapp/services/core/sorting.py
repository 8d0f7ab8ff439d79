"""Sort orders and pages of lists, one way for every table.

A ``Sort`` names one of a list's sort keys and a direction. Lists read from SQL order in
SQL (``order_by``: the chosen column, NULLs last in both directions, then a unique
tiebreak so that pages never overlap); lists whose figures are computed after the query
(metrics from the usage windows, budget analyses) order in Python with the same rules
(``sorted_rows``). ``Page`` cuts either kind into pages of ``PER_PAGE``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import QueryableAttribute

from webapp.extensions import db

T = TypeVar("T")
PER_PAGE = 50


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool = False

    @property
    def param(self) -> str:
        """The URL form: ``name`` ascending, ``-name`` descending."""
        return f"-{self.key}" if self.descending else self.key


Column = ColumnElement[Any] | QueryableAttribute[Any]


def order_by(sort: Sort, columns: Mapping[str, Column], *tiebreak: Column) -> list[Column]:
    """ORDER BY terms for ``sort`` over ``columns`` (its key must be one of them)."""
    column = columns[sort.key]
    direction = column.desc() if sort.descending else column.asc()
    # NULLS LAST on both databases (SQLite puts NULL first ascending): an explicit flag.
    return [column.is_(None), direction, *tiebreak]


def sorted_rows(rows: Iterable[T], sort: Sort, keys: Mapping[str, Callable[[T], Any]]) -> list[T]:
    """``rows`` ordered by ``keys[sort.key]``; rows whose key is None come last either
    way, and equal keys keep the rows' order (Python's sort is stable)."""
    key = keys[sort.key]
    rows = list(rows)
    present = [row for row in rows if key(row) is not None]
    missing = [row for row in rows if key(row) is None]
    return sorted(present, key=lambda row: _comparable(key(row)), reverse=sort.descending) + missing


def _comparable(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    page: int
    pages: int
    total: int


def page_of(rows: Sequence[T], page: int, per_page: int = PER_PAGE) -> Page[T]:
    """One page of a list in hand; a page past the end shows the last one."""
    pages = max(1, -(-len(rows) // per_page))
    page = min(max(page, 1), pages)
    start = (page - 1) * per_page
    return Page(list(rows[start : start + per_page]), page, pages, len(rows))


def page_of_query(query: Select[Any], page: int, per_page: int = PER_PAGE) -> Page[Any]:
    """One page of a SELECT's rows (LIMIT/OFFSET and one COUNT); past the end: the last."""
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    pages = max(1, -(-(total or 0) // per_page))
    page = min(max(page, 1), pages)
    rows = list(db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all())
    return Page(rows, page, pages, total or 0)
