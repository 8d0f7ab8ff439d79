"""The audit log: filters by user, action, resource type and dates (state in the URL),
newest first, paginated; htmx swaps only the results."""

from __future__ import annotations

from flask import Blueprint, request

from webapp.responses import render_page
from webapp.services import audit_log

bp = Blueprint("audit", __name__)


@bp.get("/audit")
def index() -> tuple[str, int]:
    # Only the known filters travel on into links (never _method, _external, …).
    args = {key: request.args[key] for key in audit_log.FILTER_KEYS if request.args.get(key)}
    if request.args.get("page"):
        args["page"] = request.args["page"]
    filters, page, errors = audit_log.parse_filters(args)
    status = 400 if errors else 200
    result = audit_log.search_events(filters, page)
    html = render_page(
        "audit/index.html",
        "results",
        result=result,
        args=args,
        errors=errors,
        choices=audit_log.filter_choices(),
    )
    return html, status
