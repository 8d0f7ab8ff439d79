"""The audit log: filters by user, action, resource type and dates (state in the URL),
newest first, paginated; htmx swaps only the results."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, request
from flask_login import current_user
from werkzeug.wrappers import Response

from webapp.csv_export import csv_download
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


@bp.get("/audit.csv")
def export() -> Response | tuple[str, int, dict[str, str]]:
    """Every event the filters match (not only one page), newest first, as CSV, with what
    this reader may see of each. Wrong filters are refused (400, named)."""
    args = {key: request.args[key] for key in audit_log.FILTER_KEYS if request.args.get(key)}
    filters, _page, errors = audit_log.parse_filters(args)
    if errors:
        lines = [
            f"{name}={args.get(name, '')}: {name} {problem}" for name, problem in errors.items()
        ]
        text = "Not exported; the link has a wrong parameter:\n" + "\n".join(lines) + "\n"
        return text, 400, {"Content-Type": "text/plain; charset=utf-8"}
    is_admin = current_user.is_admin
    return csv_download(
        "audit-log.csv",
        audit_log.EXPORT_COLUMNS,
        lambda: audit_log.iter_export_rows(filters, is_admin=is_admin),
    )
