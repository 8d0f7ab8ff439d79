"""The Global Overview: the page admins open first. The range (24h / 7d / 30d / custom)
lives in the URL; switching it swaps the dashboard partial. The KPI tiles and the alerts
panel have partials of their own that refresh every minute."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint
from jinja2_fragments.flask import render_block

from webapp.charts import requests_and_error_rate_chart, spend_donut_chart, stacked_spend_chart
from webapp.responses import render_page
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.sorting import Sort, sorted_rows
from webapp.services.overview import dashboard as overview
from webapp.services.overview.panels import ModelCost
from webapp.views import ranges
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, order_args, read_sort

bp = Blueprint("overview", __name__)


def _overview_range(
    query: PageQuery, environment: str
) -> tuple[ranges.TimeRange, overview.Overview]:
    """The range asked for and its figures in ``environment`` ("" for all); wrong dates
    are problems of the query and the default range is shown instead."""
    chosen = ranges.read_range(query, ranges.OVERVIEW)
    try:
        return chosen, overview.build_overview(
            chosen.name, chosen.start_date, chosen.end_date, environment=environment
        )
    except ValidationFailed as error:
        query.refuse_all(error.errors, ranges.OVERVIEW.instead)
    fallback = ranges.TimeRange(ranges.OVERVIEW.default)
    return fallback, overview.build_overview(fallback.name, environment=environment)


def _args(chosen: ranges.TimeRange, environment: str) -> dict[str, str]:
    """The view as URL arguments (the tiles' refresh keeps range and environment)."""
    return chosen.args | ({"environment": environment} if environment else {})


# The top-models table's columns by sort key (its five rows are computed from the grouped
# usage the page reads once, and ordered here).
TOP_MODEL_SORTS: dict[str, Callable[[ModelCost], Any]] = {
    "name": lambda m: m.name,
    "provider": lambda m: m.provider,
    "cost": lambda m: m.cost,
    "requests": lambda m: m.requests,
    "per_request": lambda m: m.cost_per_request,
    "p95": lambda m: m.p95_ms,
}
TOP_MODEL_FIGURES = frozenset({"cost", "requests", "per_request", "p95"})
COSTLIEST = Sort("cost", descending=True)


@bp.get("/")
def index() -> tuple[str, int]:
    query = PageQuery()
    environment = ranges.read_environment(query)
    chosen, data = _overview_range(query, environment)
    order = read_sort(query, TOP_MODEL_SORTS, COSTLIEST)
    top_models = sorted_rows(data.top_models, order, TOP_MODEL_SORTS)
    kept = {"environment": environment, **chosen.args}
    charts = {}
    if data.kpis.current.requests:
        s = data.series
        charts = {
            "spend": stacked_spend_chart(s.buckets, s.spend_by_feature),
            "requests": requests_and_error_rate_chart(s.buckets, s.requests, s.error_rate),
            "providers": spend_donut_chart(
                [name for name, _ in s.spend_by_provider], [a for _, a in s.spend_by_provider]
            ),
        }
    html = render_page(
        "overview/index.html",
        "dashboard",
        data=data,
        top_models=top_models,
        query=query,
        sorting=Sorting(
            "overview.index",
            order,
            "#dashboard",
            kept,
            descending_first=TOP_MODEL_FIGURES,
            default=COSTLIEST,
        ),
        kpis=data.kpis,
        alerts=data.alerts,
        unknown_models=data.unknown_models,
        chosen_environment=environment,  # the unknown-models list covers all: it says so
        charts=charts,
        args=_args(chosen, environment),
        control=ranges.RangeControl(
            "overview.index",
            ranges.OVERVIEW,
            chosen,
            "#dashboard",
            query,
            order_args(order, COSTLIEST),
            environment=environment,
        ),
    )
    return html, query.status


@bp.get("/overview/tiles")
def tiles() -> tuple[str, int]:
    """The tiles alone; a wrong range refreshes the default's tiles (400, as the page)."""
    query = PageQuery()
    environment = ranges.read_environment(query)
    chosen = ranges.read_range(query, ranges.OVERVIEW)
    try:
        kpis = overview.build_tiles(
            chosen.name, chosen.start_date, chosen.end_date, environment=environment
        )
    except ValidationFailed as error:
        query.refuse_all(error.errors, ranges.OVERVIEW.instead)
        chosen = ranges.TimeRange(ranges.OVERVIEW.default)
        kpis = overview.build_tiles(chosen.name, environment=environment)
    args = _args(chosen, environment)
    return render_block("overview/index.html", "tiles", kpis=kpis, args=args), query.status


@bp.get("/overview/alerts")
def alerts() -> tuple[str, int]:
    """The alerts alone; ``environment`` only tells the unknown-models list what the page
    is filtered by (the alerts cover every environment)."""
    query = PageQuery()
    environment = ranges.read_environment(query)
    html = render_block(
        "overview/index.html",
        "alerts",
        alerts=overview.build_alerts(),
        unknown_models=overview.build_unknown_models(),
        chosen_environment=environment,
    )
    return html, query.status
