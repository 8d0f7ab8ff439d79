"""Sortable table headers: the sort order in the URL (``sort=name``, ``sort=-cost``), read
under the query-parameter policy, and what the ``sort_header`` macro draws (a link per
column, ``href`` and ``hx-get`` alike, that swaps the table and pushes the URL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import url_for

from webapp.services.core.sorting import Sort
from webapp.views.query import PageQuery

PARAM = "sort"


def order_args(order: Sort, default: Sort) -> dict[str, str]:
    """The order as the query arguments other links of the page carry on: none for the
    page's default order (its URLs stay as they were)."""
    return {} if order == default else {PARAM: order.param}


def read_sort(query: PageQuery, keys: Iterable[str], default: Sort) -> Sort:
    """The order the URL asks for: one of ``keys``, ``-`` first for descending; absent:
    ``default``; wrong: ``default`` and a problem of the query."""
    keys = tuple(keys)
    value = query.text(PARAM)
    if not value:
        return default
    key = value.removeprefix("-")
    if key not in keys:
        choices = ", ".join(keys)
        query.refuse(
            PARAM,
            f"must be one of {choices} (- first for descending)",
            " (showing the default order instead)",
        )
        return default
    return Sort(key, value.startswith("-"))


@dataclass
class Sorting:
    """The headers of one table: ``endpoint`` with ``values`` (path arguments) and the
    page's other query arguments ``kept``; ``target`` the element htmx swaps (None:
    plain links). A header's link sorts by its column, ascending first (numbers
    ``descending_first``), and the current column's link turns the order round."""

    endpoint: str
    current: Sort
    target: str | None = None
    kept: Mapping[str, Any] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    descending_first: frozenset[str] = frozenset()
    default: Sort | None = None  # the page's own order: its URLs carry no ``sort``

    def url(self, key: str) -> str:
        if key == self.current.key:
            order = Sort(key, not self.current.descending)
        else:
            order = Sort(key, key in self.descending_first)
        args = {
            k: v for k, v in self.kept.items() if v not in (None, "") and k not in (PARAM, "page")
        }
        return url_for(self.endpoint, **self.values, **args, sort=order.param)

    def aria(self, key: str) -> str:
        if key != self.current.key:
            return "none"
        return "descending" if self.current.descending else "ascending"

    def arrow(self, key: str) -> str:
        if key != self.current.key:
            return ""
        return "▼" if self.current.descending else "▲"

    @property
    def order_args(self) -> dict[str, str]:
        """This order as query arguments: none when it is the page's default."""
        if self.default is None:
            return {PARAM: self.current.param}
        return order_args(self.current, self.default)

    @property
    def args(self) -> dict[str, Any]:
        """The query arguments a pager keeps: the other filters and this order."""
        kept = {k: v for k, v in self.kept.items() if v not in (None, "") and k != "page"}
        return kept | self.order_args
