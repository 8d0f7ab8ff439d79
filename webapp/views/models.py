"""AI models: a filterable table, a page per model (pricing, capabilities, performance,
deployment history) and a create/edit form with inline validation errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request, admin_only
from webapp.models import MODEL_STATUSES, AIModel, Provider
from webapp.responses import go_to, render_page
from webapp.services.catalog import ai_models, providers
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.sorting import Sort, page_of, sorted_rows
from webapp.services.usage import windows
from webapp.views import ranges
from webapp.views.features import MODEL_TYPE_CHOICES
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, order_args, read_sort

bp = Blueprint("models", __name__, url_prefix="/models")


FORM_FIELDS = (
    "name",
    "display_name",
    "provider_id",
    "model_type",
    "version",
    "status",
    "capabilities",
    *ai_models.PRICE_FIELDS,
)


# The table's columns by sort key. Performance comes from the usage windows after the
# query, so the list is ordered here (every listed model's metrics are read anyway).
MODEL_SORTS: dict[str, Callable[[AIModel, Provider, windows.UsageMetrics], Any]] = {
    "name": lambda model, provider, perf: model.display_name,
    "provider": lambda model, provider, perf: provider.display_name,
    "type": lambda model, provider, perf: model.model_type,
    "status": lambda model, provider, perf: model.status,
    "input_price": lambda model, provider, perf: model.input_price_per_million,
    "output_price": lambda model, provider, perf: model.output_price_per_million,
    "requests": lambda model, provider, perf: perf.total_requests,
    "success": lambda model, provider, perf: perf.success_rate,
    "p95": lambda model, provider, perf: perf.p95_response_ms,
    "cost": lambda model, provider, perf: perf.total_cost,
}
FIGURES = frozenset({"requests", "success", "p95", "cost"})
BY_PROVIDER = Sort("provider")


def _by(
    key: str, performance: dict[uuid.UUID, windows.UsageMetrics]
) -> Callable[[tuple[AIModel, Provider]], Any]:
    column = MODEL_SORTS[key]
    return lambda row: column(row[0], row[1], performance[row[0].id])


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    filters = {key: query.text(key) or None for key in ("provider", "model_type")}
    filters["status"] = query.choice("status", MODEL_STATUSES, "", "; that filter is left out.")
    filters["status"] = filters["status"] or None
    chosen = ranges.read_range(query, ranges.METRICS)
    environment = ranges.read_environment(query)
    order = read_sort(query, MODEL_SORTS, BY_PROVIDER)
    rows = ai_models.list_models(**filters)
    performance = ai_models.model_performance(
        [m.id for m, _ in rows], chosen.name, environment=environment
    )
    keys = {key: _by(key, performance) for key in MODEL_SORTS}
    page = page_of(
        sorted_rows(rows, order, keys),
        query.whole_number("page", 1, 100_000, 1, " (showing page 1 instead)"),
    )
    kept = {**filters, "environment": environment, **chosen.args}
    html = render_page(
        "models/index.html",
        "table",
        rows=page.items,
        page=page,
        sorting=Sorting(
            "models.index",
            order,
            "#models-table",
            kept,
            descending_first=FIGURES,
            default=BY_PROVIDER,
        ),
        performance=performance,
        filters=filters,
        query=query,
        time_range=chosen.name,
        control=ranges.RangeControl(
            "models.index",
            ranges.METRICS,
            chosen,
            "#models-table",
            query,
            {**filters, **order_args(order, BY_PROVIDER)},
            environment=environment,
        ),
        providers=[p for p, _ in providers.list_providers()],
        model_types=ai_models.model_types(),
        statuses=MODEL_STATUSES,
    )
    return html, query.status


def _form_page(
    form: dict[str, Any],
    errors: dict[str, str],
    model=None,
    status: int = 200,
    reported_provider: str = "",
    in_use: list[dict[str, Any]] | None = None,
):
    """``reported_provider``: the provider name an application reported for the model
    (the unknown-models alert links here with it), shown beside the provider choice.
    ``in_use``: the assignments that keep the model from going offline or deprecated,
    linked to their features."""
    html = render_page(
        "models/form.html",
        "form",
        form=form,
        errors=errors,
        model=model,
        reported_provider=reported_provider,
        in_use=in_use or [],
        model_types=MODEL_TYPE_CHOICES,
        providers=[p for p, _ in providers.list_providers()],
        statuses=MODEL_STATUSES,
    )
    return html, status


def _submitted() -> dict[str, Any]:
    form: dict[str, Any] = {key: request.form.get(key, "").strip() for key in FORM_FIELDS}
    return form


def _service_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The form's comma-separated capabilities as the list the service expects."""
    fields = dict(form)
    fields["capabilities"] = [
        c.strip() for c in form.get("capabilities", "").split(",") if c.strip()
    ]
    return fields


def _saved(model) -> Response:
    return go_to(url_for("models.detail", model_id=model.id))


@bp.get("/new")
@admin_only
def new() -> tuple[str, int]:
    """The empty form, or pre-filled from ``name``, ``provider`` (a provider's name or
    display name, as applications report it) and ``version``: the overview's alert on
    usage from models not in the catalog links here."""
    query = PageQuery()
    # No price and no provider is proposed: a model created by accepting the defaults
    # would re-price its earlier usage at $0, or attach it to the wrong provider.
    form: dict[str, Any] = {"status": "available"}
    name = query.text("name")[:200]
    if name:
        form.update(name=name, display_name=name)
    if query.text("version"):
        form["version"] = query.text("version")[:50]
    reported = query.text("provider")[:200]
    if reported:
        for provider, _ in providers.list_providers():
            if reported.lower() in (provider.name.lower(), provider.display_name.lower()):
                form["provider_id"] = str(provider.id)
    return _form_page(form, {}, reported_provider=reported)


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = _submitted()
    reported = request.form.get("reported_provider", "").strip()[:200]
    try:
        created = ai_models.add_model(actor_from_request(), _service_fields(form))
    except ValidationFailed as error:
        return _form_page(form, error.errors, status=400, reported_provider=reported)
    except Conflict as error:
        errors = {error.field or "name": error.message}
        return _form_page(form, errors, status=409, reported_provider=reported)
    message = f"Model {created.model.display_name} created."
    if created.attached_usage_rows:
        rows = created.attached_usage_rows
        message += f" {rows:,} earlier usage row{'s' if rows != 1 else ''} attached to it."
    flash(message)
    return _saved(created.model)


@bp.get("/<model_id>")
def detail(model_id: str) -> tuple[str, int]:
    query = PageQuery()
    model = ai_models.get_model(parse_id(model_id, "model"))
    return _detail(model, query, "performance"), query.status


def _detail(model, query: PageQuery | None = None, block: str = "content") -> str:
    """The model's page; htmx gets ``block`` (the range control swaps the performance)."""
    query = query or PageQuery()
    chosen = ranges.read_range(query, ranges.METRICS)
    environment = ranges.read_environment(query)
    return render_page(
        "models/detail.html",
        block,
        model=model,
        provider=providers.get_provider(model.provider_id),
        performance=ai_models.model_performance([model.id], chosen.name, environment=environment)[
            model.id
        ],
        time_range=chosen.name,
        control=ranges.RangeControl(
            "models.detail",
            ranges.METRICS,
            chosen,
            "#model-performance",
            query,
            {"model_id": model.id},
            environment=environment,
        ),
        history=ai_models.deployment_history(model.id),
        delete_refusal=ai_models.delete_refusal(model),
    )


@bp.get("/<model_id>/edit")
@admin_only
def edit(model_id: str) -> tuple[str, int]:
    model = ai_models.get_model(parse_id(model_id, "model"))
    form = {key: getattr(model, key) for key in FORM_FIELDS if key != "capabilities"}
    form["capabilities"] = ", ".join(model.capabilities)
    form = {key: "" if value is None else str(value) for key, value in form.items()}
    return _form_page(form, {}, model)


@bp.post("/<model_id>")
def update(model_id: str) -> Response | tuple[str, int]:
    model = ai_models.get_model(parse_id(model_id, "model"))
    form = _submitted()
    try:
        ai_models.update_model(actor_from_request(), model.id, _service_fields(form))
    except ValidationFailed as error:
        return _form_page(form, error.errors, model, 400)
    except Conflict as error:
        in_use = (error.data or {}).get("in_use")
        errors = {error.field or "name": error.message}
        return _form_page(form, errors, model, 409, in_use=in_use)
    flash(f"Model {model.display_name} saved.")
    return _saved(model)


@bp.post("/<model_id>/delete")
def delete(model_id: str) -> Response | tuple[str, int]:
    model = ai_models.get_model(parse_id(model_id, "model"))
    try:
        ai_models.delete_model(actor_from_request(), model.id)
    except Conflict as error:
        # Post/redirect/get for the refusal too: a reload repeats nothing.
        flash(f"Not deleted: {error.message}.", "error")
        return go_to(url_for("models.detail", model_id=model.id))
    flash(f"Model {model.display_name} deleted.")
    return go_to(url_for("models.index"))
