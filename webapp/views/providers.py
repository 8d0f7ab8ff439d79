"""Providers: the table with each provider's models and current health, each provider's
page (health, timeline, features affected) and a create/edit form."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request
from webapp.charts import health_timeline_chart
from webapp.models import PROVIDER_STATUSES
from webapp.reauth import health_check_url_changes, reauthentication_needed
from webapp.responses import go_to, render_page
from webapp.services.catalog import ai_models, providers
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.sorting import Sort
from webapp.services.health import provider_health
from webapp.views import ranges
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, read_sort

bp = Blueprint("providers", __name__, url_prefix="/providers")

FORM_FIELDS = ("name", "display_name", "provider_type", "status", "api_endpoint")
CHECK_FIELDS = ("health_check_url", "health_check_timeout")
HOUR_CHOICES = (6, 24, 168, 720)


def _form_values(provider) -> dict[str, Any]:
    form = {key: getattr(provider, key) or "" for key in FORM_FIELDS}
    check = provider.health_check or {}
    form["health_check_url"] = check.get("url", "")
    form["health_check_timeout"] = str(check.get("timeout_seconds", ""))
    return form


def _form_errors(errors: dict[str, str]) -> dict[str, str]:
    """The service names health-check fields as in the API; the form has its own names."""
    names = {
        "health_check": "health_check_url",
        "health_check.url": "health_check_url",
        "health_check.timeout_seconds": "health_check_timeout",
        "credentials": "api_key",
        "credentials.api_key": "api_key",
        "credentials.headers": "credential_headers",
    }
    return {names.get(key, key): problem for key, problem in errors.items()}


BY_NAME = Sort("name")


def _index(
    form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200
):
    query = PageQuery()
    order = read_sort(query, providers.PROVIDER_SORTS, BY_NAME)
    page = providers.providers_page(
        order, query.whole_number("page", 1, 100_000, 1, " (showing page 1 instead)")
    )
    models_by_provider: dict[uuid.UUID, list] = {}
    for model, owner in ai_models.list_models():
        models_by_provider.setdefault(owner.id, []).append(model)
    html = render_template(
        "providers/index.html",
        rows=page.items,
        page=page,
        sorting=Sorting(
            "providers.index", order, descending_first=frozenset({"models"}), default=BY_NAME
        ),
        query=query,
        models_by_provider=models_by_provider,
        health=provider_health.current_health_by_provider(),
        form=form or {"status": "active"},
        errors=errors or {},
        statuses=PROVIDER_STATUSES,
    )
    return html, status if status != 200 else query.status


@bp.get("")
def index() -> tuple[str, int]:
    return _index()


def _submitted() -> dict[str, Any]:
    form: dict[str, str | None] = {
        key: request.form.get(key, "").strip() for key in FORM_FIELDS + CHECK_FIELDS
    }
    form["api_endpoint"] = form["api_endpoint"] or None
    form["credential_headers"] = request.form.get("credential_headers", "")
    return form


def _credentials_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The write-only credential inputs as the ``credentials`` of the provider's input
    model: a typed key sets or replaces them, the box clears them, nothing keeps them.
    The typed key is read from the request alone and never put back into ``form``."""
    if request.form.get("clear_credentials"):
        return {"credentials": None}
    api_key = request.form.get("api_key", "").strip()
    headers: dict[str, str] | str = {}
    for line in form["credential_headers"].splitlines():
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon:
            headers = f"line {line.strip()[:40]!r} is not Name: value"
            break
        assert isinstance(headers, dict)
        headers[name.strip()] = value.strip()
    if not api_key:
        if headers:
            return {"credentials": {"api_key": "", "headers": headers}}  # "is required"
        return {}
    return {"credentials": {"api_key": api_key, "headers": headers}}


def _service_fields(form: dict[str, Any]) -> dict[str, Any]:
    """The form's two health-check inputs as the ``health_check`` object of the
    provider's input model (which reads the timeout's text)."""
    fields = {key: form[key] for key in FORM_FIELDS}
    check: dict[str, Any] = {}
    if form["health_check_url"]:
        check["url"] = form["health_check_url"]
    if form["health_check_timeout"]:
        check["timeout_seconds"] = form["health_check_timeout"]
    fields["health_check"] = check
    fields.update(_credentials_fields(form))
    return fields


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = _submitted()
    fields = _service_fields(form)
    sensitive = health_check_url_changes(None, fields) or "credentials" in fields
    if sensitive and (answer := reauthentication_needed()):
        return answer
    try:
        provider = providers.create_provider(actor_from_request(), fields)
    except ValidationFailed as error:
        return _index(form, _form_errors(error.errors), 400)
    except Conflict as error:
        return _index(form, {error.field or "name": error.message}, 409)
    flash(f"Provider {provider.display_name} added.")
    return redirect(url_for("providers.detail", provider_id=provider.id))


DEFAULT_HOURS = 24


def _health_context(provider, query: PageQuery) -> dict[str, Any]:
    """Current health, the usage of the chosen range, the timeline and the features
    affected (one service call, as the API's)."""
    hours = query.whole_number(
        "hours",
        1,
        provider_health.MAX_HISTORY_HOURS,
        DEFAULT_HOURS,
        f" (showing the last {DEFAULT_HOURS} hours instead)",
    )
    chosen = ranges.read_range(query, ranges.METRICS)
    page = provider_health.provider_page(provider.id, hours, chosen.name)
    keep = {"provider_id": provider.id, "hours": hours if hours != DEFAULT_HOURS else None}
    return {
        "health": page.health,
        "usage": page.usage,
        "time_range": chosen.name,
        "control": ranges.RangeControl(
            "providers.detail", ranges.METRICS, chosen, "#health", query, keep
        ),
        "query": query,
        "hours": hours,
        "hour_choices": HOUR_CHOICES,
        "history": page.history,
        "chart": health_timeline_chart(page.history.points),
        "affected": page.affected,
    }


def _detail(provider, form, errors, status=200):
    query = PageQuery()
    html = render_page(
        "providers/detail.html",
        "health",
        provider=provider,
        models=ai_models.models_of_provider(provider.id),
        delete_refusal=providers.delete_refusal(provider),
        form=form,
        errors=errors,
        statuses=PROVIDER_STATUSES,
        **_health_context(provider, query),
    )
    return html, max(status, query.status)


@bp.get("/<provider_id>")
def detail(provider_id: str) -> tuple[str, int]:
    provider = providers.get_provider(parse_id(provider_id, "provider"))
    return _detail(provider, _form_values(provider), {})


@bp.post("/<provider_id>")
def update(provider_id: str) -> Response | tuple[str, int]:
    provider = providers.get_provider(parse_id(provider_id, "provider"))
    form = _submitted()
    fields = _service_fields(form)
    sensitive = health_check_url_changes(provider.health_check, fields) or "credentials" in fields
    if sensitive and (answer := reauthentication_needed()):
        return answer
    try:
        providers.update_provider(actor_from_request(), provider.id, fields)
    except ValidationFailed as error:
        return _detail(provider, form, _form_errors(error.errors), 400)
    except Conflict as error:
        return _detail(provider, form, {error.field or "name": error.message}, 409)
    flash(f"Provider {provider.display_name} saved.")
    return redirect(url_for("providers.detail", provider_id=provider.id))


@bp.post("/<provider_id>/delete")
def delete(provider_id: str) -> Response | tuple[str, int]:
    provider = providers.get_provider(parse_id(provider_id, "provider"))
    try:
        providers.delete_provider(actor_from_request(), provider.id)
    except Conflict as error:
        # Post/redirect/get for the refusal too: a reload repeats nothing.
        flash(f"Not deleted: {error.message}", "error")
        return go_to(url_for("providers.detail", provider_id=provider.id))
    flash(f"Provider {provider.display_name} deleted.")
    return go_to(url_for("providers.index"))
