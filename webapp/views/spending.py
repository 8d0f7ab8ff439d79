"""Spending: a date range (presets or custom, kept in the URL) with spend per day by
feature, a donut by provider, tables by feature/model/provider, trends and forecast, the
cost recommendations and a CSV export of the range's usage logs. Changing the range swaps
the results partial (htmx) and pushes the new URL."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, request

from webapp.charts import spend_donut_chart, stacked_spend_chart
from webapp.responses import render_page
from webapp.services.core.errors import ValidationFailed
from webapp.services.spending.analytics import (
    PRESETS,
    preset_range,
    spending_breakdown,
    spending_trends,
)
from webapp.services.spending.recommendations import cost_recommendations

bp = Blueprint("spending", __name__)


@bp.get("/spending")
def index() -> str:
    today = datetime.now(UTC).date()
    preset = request.args.get("preset") or None
    start_text, end_text = request.args.get("start_date"), request.args.get("end_date")
    errors: dict[str, str] = {}
    result = None
    if preset is None and (start_text or end_text):
        try:
            result = spending_breakdown(start_text or end_text, end_text or start_text)
        except ValidationFailed as error:
            errors = error.errors
    elif preset is not None and preset not in PRESETS:
        errors = {"preset": f"must be one of {', '.join(PRESETS)}"}
    if result is None:
        preset = preset if preset in PRESETS else "30d"
        result = spending_breakdown(*preset_range(preset, today))
    chart = None
    donut = None
    if result.total_requests:
        chart = stacked_spend_chart(
            [d.date.isoformat() for d in result.by_day], result.by_day_and_feature
        )
        donut = spend_donut_chart(
            [p.provider_name for p in result.by_provider], [p.amount for p in result.by_provider]
        )
    return render_page(
        "spending/index.html",
        "results",
        result=result,
        chart=chart,
        donut=donut,
        preset=preset,
        presets=PRESETS,
        errors=errors,
        trends=spending_trends(30),
        recommendations=cost_recommendations(),
    )
