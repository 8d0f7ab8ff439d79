"""Features: the table with health for a range, and each feature's page with its
health tiles, daily chart, environment × model matrix, assignment history and status."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request, admin_only, is_htmx_request
from webapp.charts import requests_and_errors_chart
from webapp.models import ENVIRONMENTS, FEATURE_STATUSES, MODEL_TYPES
from webapp.responses import go_to, render_page
from webapp.services.catalog import assignments, features
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.sorting import Sort, page_of, sorted_rows
from webapp.views import ranges
from webapp.views.messages import said, status_phrase
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, order_args, read_sort

bp = Blueprint("features", __name__, url_prefix="/features")

# The choices of a model type, as the feature and model forms offer them.
MODEL_TYPE_LABELS = {"llm": "LLM (text)", "vision": "Vision (images)", "embedding": "Embedding"}
MODEL_TYPE_CHOICES = [(value, MODEL_TYPE_LABELS[value]) for value in MODEL_TYPES]


# The table's columns by sort key: the figures come from the usage windows after the
# query, so the list is ordered here (every feature's metrics are read anyway).
FEATURE_SORTS: dict[str, Callable[[features.FeatureRow], Any]] = {
    "name": lambda row: row.feature.display_name,
    "status": lambda row: row.feature.status,
    "requests": lambda row: row.metrics.total_requests if row.metrics else None,
    "error_rate": lambda row: row.metrics.error_rate if row.metrics else None,
    "p95": lambda row: row.metrics.p95_response_ms if row.metrics else None,
    "cost": lambda row: row.metrics.total_cost if row.metrics else None,
}
FIGURES = frozenset({"requests", "error_rate", "p95", "cost"})
BY_NAME = Sort("name")


def _index_context(query: PageQuery) -> dict:
    chosen = ranges.read_range(query, ranges.METRICS)
    environment = ranges.read_environment(query)
    order = read_sort(query, FEATURE_SORTS, BY_NAME)
    # The index shows no uptime: its per-hour count is the costliest statement here.
    rows = features.list_features(
        include_metrics=True,
        time_range=chosen.name,
        environment=environment,
        with_uptime=False,
    )
    page = page_of(
        sorted_rows(rows, order, FEATURE_SORTS),
        query.whole_number("page", 1, 100_000, 1, " (showing page 1 instead)"),
    )
    kept = {"range": chosen.name, "environment": environment, **chosen.args}
    return {
        "rows": page.items,
        "page": page,
        "query": query,
        "sorting": Sorting(
            "features.index",
            order,
            "#features-table",
            kept,
            descending_first=FIGURES,
            default=BY_NAME,
        ),
        "time_range": chosen.name,
        "control": ranges.RangeControl(
            "features.index",
            ranges.METRICS,
            chosen,
            "#features-table",
            query,
            order_args(order, BY_NAME),
            environment=environment,
        ),
        "environments": ENVIRONMENTS,
        "model_types": MODEL_TYPE_CHOICES,
        "form": {},
        "errors": {},
    }


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    return render_page("features/index.html", "table", **_index_context(query)), query.status


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = {
        key: request.form.get(key, "")
        for key in ("name", "display_name", "description", "model_type")
    }
    try:
        fields = {**form, "description": form["description"].strip() or None}
        if not fields["model_type"]:
            del fields["model_type"]  # no type chosen: "is required"
        feature = features.create_feature(actor_from_request(), fields)
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
        "assignable": assignments.assignable_models(feature.model_type),
        "history": assignments.history(feature_id),
        "statuses": FEATURE_STATUSES,
        "delete_refusal": features.deletion_refusal(feature_id),
        "message": None,
        "problem": None,
        "row_errors": {},
        "swapped": False,
    }


@bp.get("/<feature_id>")
def detail(feature_id: str) -> tuple[str, int]:
    query = PageQuery()
    context = _detail_context(parse_id(feature_id, "feature"), query)
    return render_page("features/detail.html", "health", **context), query.status


# The labels of the feature page's write forms, for refusals that name a field.
WRITE_LABELS = {"model_id": "Model", "environment": "Environment", "status": "Status"}

# Every write on the feature page ends the same way (issue 16 item 17): with htmx, the
# section it changed is swapped in place with a message saying what happened or why
# not (status 200, or 400/409 for a refusal); without JavaScript, post/redirect/get to
# the feature page with the same message as a flash, so a reload repeats nothing.


def _written(
    target: uuid.UUID,
    block: str,
    message: str,
    status: int = 200,
    row_errors: dict[str, str] | None = None,
) -> Response | tuple[str, int]:
    if not is_htmx_request():
        flash(message, "message" if status == 200 else "error")
        return redirect(url_for("features.detail", feature_id=target))
    context = _detail_context(target)
    context.update(
        message=message if status == 200 else None,
        problem=None if status == 200 or row_errors else message,
        row_errors=row_errors or {},
        swapped=True,
    )
    return render_page("features/detail.html", block, **context), status


@bp.post("/<feature_id>/assign")
def assign(feature_id: str) -> Response | tuple[str, int]:
    """Assign a model in one environment; a refusal is told in that environment's row."""
    target = parse_id(feature_id, "feature")
    environment = request.form.get("environment", "")
    try:
        model_id = uuid.UUID(request.form.get("model_id", ""))
    except ValueError:
        return _written(
            target, "deployments", "Choose a model.", 400, {environment: "Choose a model."}
        )
    try:
        result = assignments.assign_model(actor_from_request(), target, model_id, environment)
    except (ValidationFailed, Conflict) as error:
        why = said(error, WRITE_LABELS)
        return _written(target, "deployments", why, error.status_code, {environment: why})
    return _written(target, "deployments", result.message or "Nothing changed.")


@bp.post("/<feature_id>/rollback")
def rollback(feature_id: str) -> Response | tuple[str, int]:
    target = parse_id(feature_id, "feature")
    environment = request.form.get("environment", "")
    try:
        result = assignments.rollback(actor_from_request(), target, environment)
    except (ValidationFailed, Conflict) as error:
        why = f"Nothing rolled back: {said(error, WRITE_LABELS)}."
        return _written(target, "deployments", why, error.status_code)
    return _written(target, "deployments", f"Rolled back: {result.message}.")


@bp.post("/<feature_id>/status")
def change_status(feature_id: str) -> Response | tuple[str, int]:
    target = parse_id(feature_id, "feature")
    status = request.form.get("status", "")
    try:
        feature = features.update_feature(actor_from_request(), target, {"status": status})
    except ValidationFailed as error:
        return _written(target, "status", f"Status not changed: {said(error, WRITE_LABELS)}.", 400)
    return _written(
        target, "status", f"{feature.display_name} is now {status_phrase(feature.status)}."
    )


EDIT_FIELDS = ("display_name", "description", "model_type")


def _edit_page(feature, form: dict[str, str], errors: dict[str, str], status: int = 200):
    html = render_page(
        "features/form.html",
        "form",
        feature=feature,
        form=form,
        errors=errors,
        model_types=MODEL_TYPE_CHOICES,
        type_refusal=features.type_change_refusal(feature),
    )
    return html, status


@bp.get("/<feature_id>/edit")
@admin_only
def edit(feature_id: str) -> tuple[str, int]:
    feature = features.get_feature(parse_id(feature_id, "feature"))
    form = {key: getattr(feature, key) or "" for key in EDIT_FIELDS}
    return _edit_page(feature, form, {})


@bp.post("/<feature_id>")
def update(feature_id: str) -> Response | tuple[str, int]:
    """The edit form: display name, description and, while no model serves the feature,
    its model type (the name is what applications call it by: fixed, as in the API)."""
    feature = features.get_feature(parse_id(feature_id, "feature"))
    form = {key: request.form[key] for key in EDIT_FIELDS if key in request.form}
    changes: dict[str, str | None] = dict(form)
    if "description" in changes:
        changes["description"] = form["description"].strip() or None
    try:
        features.update_feature(actor_from_request(), feature.id, changes)
    except ValidationFailed as error:
        return _edit_page(feature, form, error.errors, 400)
    except Conflict as error:
        return _edit_page(feature, form, {error.field or "display_name": error.message}, 409)
    flash(f"Feature {feature.display_name} saved.")
    return go_to(url_for("features.detail", feature_id=feature.id))


@bp.post("/<feature_id>/delete")
def delete(feature_id: str) -> Response:
    """Refused while the feature has history; either way the browser lands on a page it
    can reload safely (post/redirect/get)."""
    target = parse_id(feature_id, "feature")
    name = features.get_feature(target).display_name
    try:
        features.delete_feature(actor_from_request(), target)
    except Conflict as error:
        flash(f"Not deleted: {error.message}.", "error")
        return go_to(url_for("features.detail", feature_id=target))
    flash(f"Feature {name} deleted.")
    return go_to(url_for("features.index"))
