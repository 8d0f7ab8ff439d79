"""Requests: individual usage rows, newest first, in keyset pages (the usage API's cursor),
filtered by feature, model, provider, environment, status, days and error text (state in
the URL); each row opens its details in place (an htmx partial of the detail page).
Request and response bodies are for platform admins: viewers see every other field."""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from webapp.models import ENVIRONMENTS
from webapp.responses import render_page
from webapp.services.catalog.names import every_name
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.usage import logs
from webapp.views.query import PageQuery

bp = Blueprint("requests", __name__, url_prefix="/requests")

PAGE_SIZE = 50
FILTER_KEYS = (
    "feature_id",
    "model_id",
    "provider_id",
    "environment",
    "status",
    "start_date",
    "end_date",
    "error_text",
)
DATES = ("start_date", "end_date")
LEFT_OUT = "; that filter is left out."


def _filters(query: PageQuery, args: dict[str, str]) -> logs.UsageFilter:
    """The filters the URL asks for; a wrong one is a problem of the query and left out
    (a wrong day drops the range), the others still apply."""
    try:
        return logs.usage_filter(args)
    except ValidationFailed as error:
        query.refuse_all(error.errors, LEFT_OUT)
        wrong = set(error.errors)
        if wrong & {*DATES, "range"} or not wrong <= set(FILTER_KEYS):
            wrong |= {*DATES}
        for key in wrong:
            args.pop(key, None)
        return logs.usage_filter(args)


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    args = {key: query.text(key) for key in FILTER_KEYS if query.text(key)}
    filters = _filters(query, args)
    cursor = query.text("cursor") or None
    try:
        rows, following = logs.list_usage(filters, PAGE_SIZE, cursor)
    except ValidationFailed as error:
        query.refuse_all(error.errors, " (showing the newest requests instead)")
        cursor = None
        rows, following = logs.list_usage(filters, PAGE_SIZE)
    html = render_page(
        "requests/index.html",
        "results",
        rows=rows,
        following=following,
        paged=cursor is not None,
        args=args,
        query=query,
        choices=every_name(),
        environments=ENVIRONMENTS,
        statuses=logs.STATUS_CHOICES,
    )
    return html, query.status


@bp.get("/<usage_id>")
def detail(usage_id: str) -> str:
    row = logs.usage_detail(parse_id(usage_id, "Request"), with_bodies=current_user.is_admin)
    return render_page("requests/detail.html", "detail", row=row)
