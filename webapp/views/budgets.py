"""Spending budgets (read view; the Spending issue adds analysis and editing)."""

from flask import Blueprint, render_template

from webapp.services import catalog

bp = Blueprint("budgets", __name__)


@bp.get("/budgets")
def index() -> str:
    return render_template("budgets/index.html", rows=catalog.list_budgets())
