"""The Global Overview: the page admins open first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint

from webapp.charts import spend_per_day_chart
from webapp.responses import render_page
from webapp.services import features, usage_stats

bp = Blueprint("overview", __name__)


@bp.get("/")
def index() -> str:
    today = datetime.now(UTC).date()
    start = today - timedelta(days=29)
    totals = usage_stats.usage_totals(start, today)
    rows = features.list_features()
    series = usage_stats.spend_by_day_and_feature(start, today)
    return render_page(
        "overview/index.html",
        "content",
        totals=totals,
        features=rows,
        active_features=sum(1 for row in rows if row.feature.status == "active"),
        chart=spend_per_day_chart(series) if totals.requests else None,
        start=start,
        end=today,
    )
