"""Spending over the last 30 days (the Spending issue adds ranges, breakdowns, export)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, render_template

from webapp.charts import spend_per_day_chart
from webapp.services import usage_stats

bp = Blueprint("spending", __name__)


@bp.get("/spending")
def index() -> str:
    today = datetime.now(UTC).date()
    start = today - timedelta(days=29)
    series = usage_stats.spend_by_day_and_feature(start, today)
    totals_by_feature = {name: sum(days.values()) for name, days in series.items()}
    return render_template(
        "spending/index.html",
        totals=usage_stats.usage_totals(start, today),
        totals_by_feature=totals_by_feature,
        chart=spend_per_day_chart(series) if series else None,
        start=start,
        end=today,
    )
