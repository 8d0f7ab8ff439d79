"""The audit log (newest first; the Security issue adds filters and paging)."""

from flask import Blueprint, render_template

from webapp.services import catalog

bp = Blueprint("audit", __name__)


@bp.get("/audit")
def index() -> str:
    return render_template("audit/index.html", rows=catalog.recent_audit_events(limit=100))
