"""Experiments (read view; the Experiments issue adds the lifecycle and statistics)."""

from flask import Blueprint, render_template

from webapp.services import catalog

bp = Blueprint("experiments", __name__)


@bp.get("/experiments")
def index() -> str:
    return render_template("experiments/index.html", rows=catalog.list_experiments())
