"""The Global Overview: the page admins open first. The range (24h / 7d / 30d / custom)
lives in the URL; switching it swaps the dashboard partial. The KPI tiles and the alerts
panel have partials of their own that refresh every minute."""

from __future__ import annotations

from flask import Blueprint
from jinja2_fragments.flask import render_block

from webapp.charts import requests_and_error_rate_chart, spend_donut_chart, stacked_spend_chart
from webapp.responses import render_page
from webapp.services.core.errors import ValidationFailed
from webapp.services.overview import dashboard as overview
from webapp.views import ranges
from webapp.views.query import PageQuery

bp = Blueprint("overview", __name__)


def _overview_range(query: PageQuery) -> tuple[ranges.TimeRange, overview.Overview]:
    """The range asked for and its figures; wrong dates are problems of the query and
    the default range is shown instead."""
    chosen = ranges.read_range(query, ranges.OVERVIEW)
    try:
        return chosen, overview.build_overview(chosen.name, chosen.start_date, chosen.end_date)
    except ValidationFailed as error:
        query.refuse_all(error.errors, ranges.OVERVIEW.instead)
    fallback = ranges.TimeRange(ranges.OVERVIEW.default)
    return fallback, overview.build_overview(fallback.name)


@bp.get("/")
def index() -> tuple[str, int]:
    query = PageQuery()
    chosen, data = _overview_range(query)
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
        kpis=data.kpis,
        alerts=data.alerts,
        charts=charts,
        args=chosen.args,
        control=ranges.RangeControl("overview.index", ranges.OVERVIEW, chosen, "#dashboard", query),
    )
    return html, query.status


@bp.get("/overview/tiles")
def tiles() -> tuple[str, int]:
    """The tiles alone; a wrong range refreshes the default's tiles (400, as the page)."""
    query = PageQuery()
    chosen = ranges.read_range(query, ranges.OVERVIEW)
    try:
        kpis = overview.build_tiles(chosen.name, chosen.start_date, chosen.end_date)
    except ValidationFailed as error:
        query.refuse_all(error.errors, ranges.OVERVIEW.instead)
        chosen = ranges.TimeRange(ranges.OVERVIEW.default)
        kpis = overview.build_tiles(chosen.name)
    return render_block("overview/index.html", "tiles", kpis=kpis, args=chosen.args), query.status


@bp.get("/overview/alerts")
def alerts() -> str:
    return render_block("overview/index.html", "alerts", alerts=overview.build_alerts())
