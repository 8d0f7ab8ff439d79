"""Prompt templates (read view; the Prompts issue adds the editor)."""

from flask import Blueprint, render_template

from webapp.services import catalog

bp = Blueprint("prompts", __name__)


@bp.get("/prompts")
def index() -> str:
    return render_template("prompts/index.html", rows=catalog.list_prompts())
