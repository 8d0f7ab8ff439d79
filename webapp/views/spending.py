"""Spending: a date range (presets or custom, kept in the URL) with spend per day by
feature, a donut by provider, tables by feature/model/provider, trends and forecast, the
cost recommendations and a CSV export of the range's usage logs. Changing the range swaps
the results partial (htmx) and pushes the new URL."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort
from werkzeug.wrappers import Response

from webapp.charts import spend_donut_chart, stacked_spend_chart
from webapp.csv_export import csv_download
from webapp.responses import render_page
from webapp.services.core.errors import ValidationFailed
from webapp.services.spending.analytics import (
    SpendingBreakdown,
    spending_breakdown,
    spending_trends,
)
from webapp.services.spending.recommendations import cost_recommendations
from webapp.services.usage.windows import days_of
from webapp.views import ranges
from webapp.views.query import PageQuery

bp = Blueprint("spending", __name__)


def _breakdown(query: PageQuery, environment: str) -> tuple[ranges.TimeRange, SpendingBreakdown]:
    """The range asked for (``preset`` is the name older links used) and its spending in
    ``environment`` ("" for all); wrong dates are problems of the query and the default
    range is shown instead."""
    today = datetime.now(UTC).date()
    chosen = ranges.read_range(query, ranges.SPENDING, old_name="preset")
    try:
        if chosen.name == "custom":
            return chosen, spending_breakdown(
                chosen.start_date, chosen.end_date, environment=environment
            )
        return chosen, spending_breakdown(*days_of(chosen.name, today), environment=environment)
    except ValidationFailed as error:
        query.refuse_all(error.errors, ranges.SPENDING.instead)
    fallback = ranges.TimeRange(ranges.SPENDING.default)
    return fallback, spending_breakdown(*days_of(fallback.name, today), environment=environment)


@bp.get("/spending")
def index() -> tuple[str, int]:
    query = PageQuery()
    environment = ranges.read_environment(query)
    chosen, result = _breakdown(query, environment)
    chart = None
    donut = None
    if result.total_requests:
        chart = stacked_spend_chart(
            [d.date.isoformat() for d in result.by_day], result.by_day_and_feature
        )
        donut = spend_donut_chart(
            [p.provider_name for p in result.by_provider], [p.amount for p in result.by_provider]
        )
    html = render_page(
        "spending/index.html",
        "results",
        result=result,
        chart=chart,
        donut=donut,
        control=ranges.RangeControl(
            "spending.index",
            ranges.SPENDING,
            chosen,
            "#spending-results",
            query,
            environment=environment,
        ),
        trends=spending_trends(30, environment=environment),
        recommendations=cost_recommendations(environment=environment, known=result),
    )
    return html, query.status


SHOWING = re.compile(r" \(showing [^)]* instead\)$")

# The breakdown tables as CSV: (columns, the table's rows, one row's cells). Amounts as
# the database sums them (to the micro-dollar; the page rounds them for display), shares as
# the page shows them (two decimals that add up to 100.00).
BREAKDOWN_TABLES: dict[str, tuple[Sequence[str], Callable[[SpendingBreakdown], list], Any]] = {
    "features": (
        ("feature_id", "feature", "requests", "spend_usd", "share_percent"),
        lambda result: result.by_feature,
        lambda r: (r.feature_id, r.feature_name, r.request_count, r.amount, r.percentage),
    ),
    "providers": (
        ("provider_id", "provider", "requests", "spend_usd", "share_percent"),
        lambda result: result.by_provider,
        lambda r: (r.provider_id, r.provider_name, r.request_count, r.amount, r.percentage),
    ),
    "models": (
        ("model_id", "model", "provider", "requests", "spend_usd", "share_percent"),
        lambda result: result.by_model,
        lambda r: (
            r.model_id,
            r.model_name,
            r.provider_name,
            r.request_count,
            r.amount,
            r.percentage,
        ),
    ),
}


@bp.get("/spending/<table>.csv")
def export(table: str) -> Response | tuple[str, int, dict[str, str]]:
    """One breakdown table of the range and environment the page shows, as CSV. A wrong
    parameter is refused (400, named) rather than exporting other figures than asked."""
    if table not in BREAKDOWN_TABLES:
        abort(404)
    query = PageQuery()
    environment = ranges.read_environment(query)
    _chosen, result = _breakdown(query, environment)
    if query.problems:
        # The page would show a default in a wrong parameter's place; a file does not.
        lines = [
            f"{name}={query.given.get(name, '')}: {name} {SHOWING.sub('', problem)}"
            for name, problem in query.problems.items()
        ]
        text = "Not exported; the link has a wrong parameter:\n" + "\n".join(lines) + "\n"
        return text, 400, {"Content-Type": "text/plain; charset=utf-8"}
    columns, rows_of, cells = BREAKDOWN_TABLES[table]
    scope = f"-{environment}" if environment else ""
    name = f"spending-by-{table[:-1]}-{result.period_start}-to-{result.period_end}{scope}.csv"
    return csv_download(name, columns, lambda: (cells(row) for row in rows_of(result)))
