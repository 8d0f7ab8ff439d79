"""The Global Overview: the page admins open first. The range (24h / 7d / 30d / custom)
lives in the URL; switching it swaps the dashboard partial. The KPI tiles and the alerts
panel have partials of their own that refresh every minute."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from jinja2_fragments.flask import render_block

from webapp.charts import requests_and_error_rate_chart, spend_donut_chart, stacked_spend_chart
from webapp.responses import render_page
from webapp.services.core.errors import ValidationFailed
from webapp.services.overview import dashboard as overview

bp = Blueprint("overview", __name__)

RANGE_LABELS = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "custom": "Custom"}


def _range_args() -> dict[str, Any]:
    """The range parameters as given (the service checks them)."""
    args = {"range": request.args.get("range") or "7d"}
    if args["range"] == "custom":
        args["start_date"] = request.args.get("start_date", "")
        args["end_date"] = request.args.get("end_date", "")
    return args


@bp.get("/")
def index() -> str:
    args = _range_args()
    errors: dict[str, str] = {}
    try:
        data = overview.build_overview(args["range"], args.get("start_date"), args.get("end_date"))
    except ValidationFailed as error:
        errors = error.errors
        args = {"range": "7d"}
        data = overview.build_overview("7d")
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
    return render_page(
        "overview/index.html",
        "dashboard",
        data=data,
        kpis=data.kpis,
        alerts=data.alerts,
        charts=charts,
        args=args,
        errors=errors,
        ranges=RANGE_LABELS,
    )


@bp.get("/overview/tiles")
def tiles() -> str:
    args = _range_args()
    kpis = overview.build_tiles(args["range"], args.get("start_date"), args.get("end_date"))
    return render_block("overview/index.html", "tiles", kpis=kpis, args=args)


@bp.get("/overview/alerts")
def alerts() -> str:
    return render_block("overview/index.html", "alerts", alerts=overview.build_alerts())
