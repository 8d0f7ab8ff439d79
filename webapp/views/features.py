"""Features: the table with health for a range, and each feature's page with its
health tiles, daily chart, environment × model matrix, assignment history and status."""

from __future__ import annotations

import uuid

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request, is_htmx_request
from webapp.charts import requests_and_errors_chart
from webapp.models import ENVIRONMENTS, FEATURE_STATUSES
from webapp.responses import go_to, render_page
from webapp.services.catalog import assignments, features
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.views import ranges
from webapp.views.query import PageQuery

bp = Blueprint("features", __name__, url_prefix="/features")


def _index_context(query: PageQuery) -> dict:
    chosen = ranges.read_range(query, ranges.METRICS)
    environment = ranges.read_environment(query)
    return {
        "rows": features.list_features(
            include_metrics=True, time_range=chosen.name, environment=environment
        ),
        "time_range": chosen.name,
        "control": ranges.RangeControl(
            "features.index",
            ranges.METRICS,
            chosen,
            "#features-table",
            query,
            environment=environment,
        ),
        "environments": ENVIRONMENTS,
        "form": {},
        "errors": {},
    }


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    return render_page("features/index.html", "table", **_index_context(query)), query.status


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = {key: request.form.get(key, "") for key in ("name", "display_name", "description")}
    try:
        feature = features.create_feature(
            actor_from_request(),
            {**form, "description": form["description"].strip() or None},
        )
    except (ValidationFailed, Conflict) as error:
        errors = (
            error.errors
            if isinstance(error, ValidationFailed)
            else {"name": "is already taken by another feature"}
        )
        status = 400 if isinstance(error, ValidationFailed) else 409
        context = _index_context(PageQuery({}))
        context.update(form=form, errors=errors)
        html = render_page("features/index.html", "create_form", **context)
        return html, status
    flash(f"Feature {feature.display_name} created.")
    return go_to(url_for("features.detail", feature_id=feature.id))


def _detail_context(feature_id: uuid.UUID, query: PageQuery | None = None) -> dict:
    query = query or PageQuery()
    chosen = ranges.read_range(query, ranges.METRICS)
    environment = ranges.read_environment(query)
    feature = features.get_feature(feature_id)
    daily = features.usage_by_day(feature_id, 30, environment=environment)
    return {
        "feature": feature,
        "time_range": chosen.name,
        "control": ranges.RangeControl(
            "features.detail",
            ranges.METRICS,
            chosen,
            "#health",
            query,
            {"feature_id": feature_id},
            environment=environment,
        ),
        "health": features.feature_health(feature_id, chosen.name, environment=environment),
        "chart": requests_and_errors_chart(daily),
        "matrix": features.active_models([feature_id]).get(feature_id, {}),
        "environments": ENVIRONMENTS,
        "assignable": assignments.assignable_models(),
        "history": assignments.history(feature_id),
        "statuses": FEATURE_STATUSES,
        "message": None,
        "row_errors": {},
    }


@bp.get("/<feature_id>")
def detail(feature_id: str) -> tuple[str, int]:
    query = PageQuery()
    context = _detail_context(parse_id(feature_id, "feature"), query)
    return render_page("features/detail.html", "health", **context), query.status


@bp.post("/<feature_id>/assign")
def assign(feature_id: str) -> Response | tuple[str, int]:
    """Assign a model in one environment; htmx gets the matrix (with the new row) back."""
    target = parse_id(feature_id, "feature")
    environment = request.form.get("environment", "")
    status, message, row_errors = 200, None, {}
    try:
        model_id = uuid.UUID(request.form.get("model_id", ""))
    except ValueError:
        row_errors[environment] = "Choose a model."
        status = 400
    else:
        try:
            result = assignments.assign_model(actor_from_request(), target, model_id, environment)
            message = result.message
        except (ValidationFailed, Conflict) as error:
            status = 400 if isinstance(error, ValidationFailed) else 409
            row_errors[environment] = str(error)
    if not is_htmx_request():
        if status != 200:
            return _refused(target, row_errors.get(environment, "Nothing changed."), status)
        flash(message or "Nothing changed.")
        return redirect(url_for("features.detail", feature_id=target))
    context = _detail_context(target)
    context.update(message=message, row_errors=row_errors)
    return render_page("features/detail.html", "deployments", **context), status


def _refused(target: uuid.UUID, message: str, status: int) -> Response:
    """Nothing changed: post/redirect/get to the feature page, which says why (a reload
    repeats nothing)."""
    flash(message, "error")
    return redirect(url_for("features.detail", feature_id=target))


@bp.post("/<feature_id>/rollback")
def rollback(feature_id: str) -> Response | tuple[str, int]:
    target = parse_id(feature_id, "feature")
    environment = request.form.get("environment", "")
    try:
        result = assignments.rollback(actor_from_request(), target, environment)
    except (ValidationFailed, Conflict) as error:
        return _refused(target, f"Nothing rolled back: {error}.", error.status_code)
    flash(f"Rolled back: {result.message}.")
    return redirect(url_for("features.detail", feature_id=target))


@bp.post("/<feature_id>/status")
def change_status(feature_id: str) -> Response | tuple[str, int]:
    target = parse_id(feature_id, "feature")
    status = request.form.get("status", "")
    try:
        feature = features.update_feature(actor_from_request(), target, {"status": status})
    except ValidationFailed as error:
        return _refused(target, f"Status not changed: {error}.", 400)
    flash(f"{feature.display_name} is now {feature.status}.")
    return redirect(url_for("features.detail", feature_id=target))
