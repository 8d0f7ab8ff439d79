"""Features, models and providers (read views; the Features issue adds editing)."""

from __future__ import annotations

from flask import Blueprint, render_template

from webapp.services import catalog

bp = Blueprint("catalog", __name__)


@bp.get("/features")
def features() -> str:
    return render_template("catalog/features.html", rows=catalog.list_features())


@bp.get("/models")
def models() -> str:
    return render_template("catalog/models.html", rows=catalog.list_models())


@bp.get("/providers")
def providers() -> str:
    return render_template("catalog/providers.html", rows=catalog.list_providers())
