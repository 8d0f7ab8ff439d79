"""Providers: the table with the models each offers, and a create/edit form."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request
from webapp.ids import parse_id
from webapp.models import PROVIDER_STATUSES
from webapp.services import ai_models, providers
from webapp.services.errors import Conflict, ValidationFailed

bp = Blueprint("providers", __name__, url_prefix="/providers")

FORM_FIELDS = ("name", "display_name", "provider_type", "status", "api_endpoint")


def _index(
    form: dict[str, Any] | None = None, errors: dict[str, str] | None = None, status: int = 200
):
    rows = providers.list_providers()
    models_by_provider: dict[uuid.UUID, list] = {}
    for model, owner in ai_models.list_models():
        models_by_provider.setdefault(owner.id, []).append(model)
    html = render_template(
        "providers/index.html",
        rows=rows,
        models_by_provider=models_by_provider,
        form=form or {"status": "active"},
        errors=errors or {},
        statuses=PROVIDER_STATUSES,
    )
    return html, status


@bp.get("")
def index() -> tuple[str, int]:
    return _index()


def _submitted() -> dict[str, Any]:
    form = {key: request.form.get(key, "").strip() for key in FORM_FIELDS}
    form["api_endpoint"] = form["api_endpoint"] or None
    return form


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = _submitted()
    try:
        provider = providers.create_provider(actor_from_request(), form)
    except ValidationFailed as error:
        return _index(form, error.errors, 400)
    except Conflict as error:
        return _index(form, {error.field or "name": error.message}, 409)
    flash(f"Provider {provider.display_name} added.")
    return redirect(url_for("providers.detail", provider_id=provider.id))


def _detail(provider, form, errors, status=200):
    html = render_template(
        "providers/detail.html",
        provider=provider,
        models=ai_models.models_of_provider(provider.id),
        form=form,
        errors=errors,
        statuses=PROVIDER_STATUSES,
    )
    return html, status


@bp.get("/<provider_id>")
def detail(provider_id: str) -> tuple[str, int]:
    provider = providers.get_provider(parse_id(provider_id, "provider"))
    form = {key: getattr(provider, key) or "" for key in FORM_FIELDS}
    return _detail(provider, form, {})


@bp.post("/<provider_id>")
def update(provider_id: str) -> Response | tuple[str, int]:
    provider = providers.get_provider(parse_id(provider_id, "provider"))
    form = _submitted()
    try:
        providers.update_provider(actor_from_request(), provider.id, form)
    except ValidationFailed as error:
        return _detail(provider, form, error.errors, 400)
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
        flash(f"Not deleted: {error.message}")
        form = {key: getattr(provider, key) or "" for key in FORM_FIELDS}
        return _detail(provider, form, {}, 409)
    flash("Provider deleted.")
    return redirect(url_for("providers.index"))
