"""The audit log: filters by user, action, resource type and dates (state in the URL),
newest first, paginated; htmx swaps only the results."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, request
from flask_login import current_user

from webapp.responses import render_page
from webapp.services.audit import log as audit_log
from webapp.views.query import PageQuery

bp = Blueprint("audit", __name__)


@bp.get("/audit")
def index() -> tuple[str, int]:
    # Only the known filters travel on into links (never _method, _external, …).
    args = {key: request.args[key] for key in audit_log.FILTER_KEYS if request.args.get(key)}
    if request.args.get("page"):
        args["page"] = request.args["page"]
    filters, page, errors = audit_log.parse_filters(args)
    query = PageQuery()
    for name, problem in errors.items():
        instead = " (showing page 1 instead)" if name == "page" else "; that filter is left out."
        query.refuse(name, problem, instead)
    # Emails only for admins, as on the admin-only users page.
    with_emails = current_user.is_admin
    window = timedelta(minutes=current_app.config["AUDIT_REPEAT_WINDOW_MINUTES"])
    result = audit_log.search_events(filters, page, with_emails=with_emails, repeat_window=window)
    html = render_page(
        "audit/index.html",
        "results",
        result=result,
        args=args,
        query=query,
        choices=audit_log.filter_choices(with_emails=with_emails),
    )
    return html, query.status
