"""Spending: a date range (presets or custom, kept in the URL) with spend per day by
feature, a donut by provider, tables by feature/model/provider, trends and forecast, the
cost recommendations and a CSV export of the range's usage logs. Changing the range swaps
the results partial (htmx) and pushes the new URL."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint

from webapp.charts import spend_donut_chart, stacked_spend_chart
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
        recommendations=cost_recommendations(environment=environment),
    )
    return html, query.status
