"""Experiments: a list with status filters, a create form, and each experiment's page
with variants, allocation, per-variant metrics with confidence intervals, p-values, the
SRM check, lifecycle buttons and the promote button."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request, admin_only, is_htmx_request
from webapp.charts import experiment_metric_chart
from webapp.json_input import loads_strict
from webapp.models import EXPERIMENT_STATUSES, EXPERIMENT_TYPES
from webapp.responses import go_to, render_page
from webapp.services.catalog import assignments, features
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.sorting import Sort
from webapp.services.experiments import lifecycle as experiments
from webapp.services.experiments.schemas import MAX_VARIANTS, VARIANT_TARGETS
from webapp.services.prompts import versions as prompts
from webapp.views.messages import said
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, read_sort

bp = Blueprint("experiments", __name__, url_prefix="/experiments")

VARIANT_ROWS = MAX_VARIANTS  # rows on the create form (empty rows are skipped)
OPEN_ROWS = 4  # shown at first; the others wait under "More variants"
ACTION_LABELS = {
    "start": "Start",
    "pause": "Pause",
    "resume": "Resume",
    "complete": "Complete",
    "cancel": "Cancel experiment",
}


NEWEST = Sort("created", descending=True)


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    status = query.choice("status", EXPERIMENT_STATUSES, "", "; that filter is left out.")
    order = read_sort(query, experiments.EXPERIMENT_SORTS, NEWEST)
    page = experiments.experiments_page(
        [status] if status else None,
        order,
        query.whole_number("page", 1, 100_000, 1, " (showing page 1 instead)"),
    )
    sorting = Sorting(
        "experiments.index",
        order,
        "#experiment-results",
        {"status": status},
        descending_first=frozenset({"created", "started"}),
        default=NEWEST,
    )
    html = render_page(
        "experiments/index.html",
        "results",
        rows=page.items,
        page=page,
        sorting=sorting,
        status=status,
        statuses=EXPERIMENT_STATUSES,
        query=query,
    )
    return html, query.status


def _chosen_feature(form: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(form.get("feature_id") or ""))
    except ValueError:
        return None


def _form_context(form: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    feature_id = _chosen_feature(form)
    # Only the chosen feature's prompt versions (and global ones) can be its variants.
    versions = (
        [
            prompt
            for prompt in prompts.list_prompts(limit=prompts.MAX_LIMIT).prompts
            if prompt.feature_id in (feature_id, None)
        ]
        if feature_id is not None
        else []
    )
    filled = [
        row
        for row in range(VARIANT_ROWS)
        if form.get(f"variant_{row}_id", "").strip() or form.get(f"variant_{row}_name", "").strip()
    ]
    return {
        "form": form,
        "errors": errors,
        "types": EXPERIMENT_TYPES,
        "rows": range(OPEN_ROWS),
        "more_rows": range(OPEN_ROWS, VARIANT_ROWS),
        "more_open": any(row >= OPEN_ROWS for row in filled),
        "max_variants": MAX_VARIANTS,
        "feature_chosen": feature_id is not None,
        "feature_rows": features.list_features(),
        "models": assignments.assignable_models(),
        "prompt_versions": versions,
    }


@bp.get("/new")
@admin_only
def new() -> str:
    """The empty form; with ``?feature_id=`` (and the other fields, which htmx sends when
    the feature changes) the form as typed, offering that feature's prompt versions."""
    form = {key: value for key, value in request.args.items() if key != "csrf_token"}
    return render_page("experiments/new.html", "form", **_form_context(form, {}))


def _fields_from_form(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], list[int]]:
    """The service's fields from the form, form-only problems, and which form row each
    variant came from (the service names variants by position)."""
    problems: dict[str, str] = {}
    experiment_type = form.get("experiment_type", "")
    target = VARIANT_TARGETS.get(experiment_type, (None, ()))[0]
    variants, allocation, rows = [], {}, []
    for row in range(VARIANT_ROWS):
        variant_id = form.get(f"variant_{row}_id", "").strip()
        name = form.get(f"variant_{row}_name", "").strip()
        if not variant_id and not name:
            continue
        variant: dict[str, Any] = {"id": variant_id, "name": name}
        if target in ("model_id", "prompt_id"):
            variant[target] = form.get(f"variant_{row}_{target}", "")
        raw_params = form.get(f"variant_{row}_params", "").strip()
        if raw_params:
            try:
                variant["params"] = loads_strict(raw_params)
            except ValueError:
                problems[f"variant_{row}_params"] = "must be valid JSON (an object)"
        share = form.get(f"variant_{row}_share", "").strip()
        if share:
            allocation[variant_id] = share
        variants.append(variant)
        rows.append(row)
    config: dict[str, Any] = {"primary_metric": form.get("primary_metric", "")}
    alpha = form.get("alpha", "").strip()
    if alpha:
        try:
            config["alpha"] = float(alpha)
        except ValueError:
            problems["alpha"] = "must be a number such as 0.05"
    config["higher_is_better"] = form.get("higher_is_better", "yes") != "no"
    fields = {
        "name": form.get("name", ""),
        "description": form.get("description", "").strip() or None,
        "feature_id": form.get("feature_id", ""),
        "experiment_type": experiment_type,
        "variants": variants,
        "config": config,
    }
    if allocation:
        fields["traffic_allocation"] = allocation
    return fields, problems, rows


def _form_errors(errors: dict[str, str], rows: list[int]) -> dict[str, str]:
    """Service field names → form field names (variants.1.name → variant_<row>_name)."""
    named: dict[str, str] = {}
    for field, problem in errors.items():
        parts = field.split(".")
        if parts[0] == "variants" and len(parts) >= 2 and parts[1].isdigit():
            row: int | None = rows[int(parts[1])]
            named[f"variant_{row}_{parts[2] if len(parts) > 2 else 'id'}"] = problem
        elif parts[0] == "traffic_allocation" and len(parts) == 2:
            ids = [request.form.get(f"variant_{r}_id", "").strip() for r in rows]
            row = rows[ids.index(parts[1])] if parts[1] in ids else None
            named[f"variant_{row}_share" if row is not None else "traffic_allocation"] = problem
        elif parts[0] == "config" and len(parts) == 2:
            named[parts[1]] = problem
        else:
            named[field] = problem
    return named


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = request.form.to_dict()
    form.pop("csrf_token", None)
    fields, problems, rows = _fields_from_form(form)
    # Every problem at once: the service's (its database checks included) beside the
    # form's own (JSON it could not read), which word those fields better.
    errors = {**_form_errors(experiments.definition_problems(fields), rows), **problems}
    if not errors:
        try:
            experiment = experiments.create_experiment(actor_from_request(), fields)
        except ValidationFailed as error:  # changed meanwhile (a model retired)
            errors = _form_errors(error.errors, rows)
        else:
            flash(f"Experiment {experiment.name} created as a draft.")
            return go_to(url_for("experiments.detail", experiment_id=experiment.id))
    html = render_page("experiments/new.html", "form", **_form_context(form, errors))
    return html, 400


def _detail_context(experiment_id: uuid.UUID, problem: str | None = None) -> dict[str, Any]:
    experiment = experiments.get_experiment(experiment_id)
    analysis = experiments.analyze(experiment_id)
    return {
        "experiment": experiment,
        "feature": features.get_feature(experiment.feature_id),
        "analysis": analysis,
        "charts": {m.metric_name: experiment_metric_chart(m) for m in analysis.metrics},
        "targets": experiments.describe_targets(experiment.variants),
        "actions": [
            (action, ACTION_LABELS[action]) for action in experiments.available_actions(experiment)
        ],
        "promotable": experiments.is_promotable_type(experiment),
        "can_promote": experiments.can_promote(experiment, analysis),
        "can_delete": experiments.can_delete(experiment),
        "promotion": experiments.promotion_of(experiment),
        "winner_label": experiments.variant_label(experiment, analysis.winner),
        "problem": problem,
    }


@bp.get("/<experiment_id>")
def detail(experiment_id: str) -> str:
    return render_page(
        "experiments/detail.html", "page", **_detail_context(parse_id(experiment_id, "experiment"))
    )


def _refused(target: uuid.UUID, problem: str, status: int) -> Response | tuple[str, int]:
    """The experiment page again with the reason nothing changed: htmx swaps it in (the
    address stays the page's); a plain form is redirected to it (post/redirect/get)."""
    if not is_htmx_request():
        flash(problem, "error")
        return redirect(url_for("experiments.detail", experiment_id=target))
    html = render_page("experiments/detail.html", "page", **_detail_context(target, problem))
    return html, status


@bp.post("/<experiment_id>/transition")
def transition(experiment_id: str) -> Response | tuple[str, int]:
    target = parse_id(experiment_id, "experiment")
    action = request.form.get("action", "")
    try:
        experiment = experiments.transition(actor_from_request(), target, action)
    except (ValidationFailed, Conflict) as error:
        return _refused(target, f"Nothing changed: {said(error)}.", error.status_code)
    flash(f"{experiment.name} is now {experiment.status}.")
    return go_to(url_for("experiments.detail", experiment_id=target))


@bp.post("/<experiment_id>/promote")
def promote(experiment_id: str) -> Response | tuple[str, int]:
    target = parse_id(experiment_id, "experiment")
    try:
        promotion = experiments.promote(actor_from_request(), target)
    except (ValidationFailed, Conflict) as error:
        return _refused(target, f"Not promoted: {said(error)}.", error.status_code)
    flash(f"Promoted {promotion.variant['name']} ({promotion.variant['id']}): {promotion.message}.")
    return go_to(url_for("experiments.detail", experiment_id=target))


@bp.post("/<experiment_id>/delete")
def delete(experiment_id: str) -> Response | tuple[str, int]:
    target = parse_id(experiment_id, "experiment")
    name = experiments.get_experiment(target).name
    try:
        experiments.delete_experiment(actor_from_request(), target)
    except Conflict as error:
        return _refused(target, f"Not deleted: {error.message}.", 409)
    flash(f"Experiment {name} deleted.")
    return go_to(url_for("experiments.index"))
