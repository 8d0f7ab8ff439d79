"""AI providers (OpenAI, Google, Anthropic, …)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import PROVIDER_STATUSES, AIModel, Feature, FeatureModelAssignment, Provider
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes, insert_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.json_values import check_json_field
from webapp.services.core.outbound import url_problem
from webapp.services.core.validation import check_choice, clean_text

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,199}$")
FIELDS = (
    "name",
    "display_name",
    "provider_type",
    "status",
    "config",
    "api_endpoint",
    "health_check",
)
HTTP_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
# The health-check GET runs every minute: a slow endpoint must not hold the run up.
MAX_CHECK_TIMEOUT_SECONDS = 30


def provider_as_dict(provider: Provider, model_count: int | None = None) -> dict[str, Any]:
    data = {
        "id": provider.id,
        "name": provider.name,
        "display_name": provider.display_name,
        "provider_type": provider.provider_type,
        "status": provider.status,
        "config": provider.config,
        "api_endpoint": provider.api_endpoint,
        "health_check": provider.health_check,
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    }
    if model_count is not None:
        data["model_count"] = model_count
    return data


def list_providers() -> list[tuple[Provider, int]]:
    """Each provider with how many models it offers (one query)."""
    model_count = (
        select(func.count(AIModel.id)).where(AIModel.provider_id == Provider.id).scalar_subquery()
    )
    rows = db.session.execute(select(Provider, model_count).order_by(Provider.name))
    return [(provider, int(count)) for provider, count in rows]


def get_provider(provider_id: uuid.UUID) -> Provider:
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} does not exist")
    return provider


def _validate(fields: dict[str, Any], creating: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key in fields:
        if key not in FIELDS:
            errors[key] = "is not a field of a provider"
    if creating or "name" in fields:
        clean_text(
            fields,
            "name",
            errors,
            max_length=200,
            pattern=NAME_PATTERN,
            problem="must be lower-case letters, digits and dashes (e.g. openai)",
        )
    for key, limit in (("display_name", 200), ("provider_type", 100)):
        if creating or key in fields:
            clean_text(fields, key, errors, max_length=limit)
    check_choice(fields, "status", PROVIDER_STATUSES, errors)
    if "config" in fields and not isinstance(fields["config"], dict):
        errors["config"] = "must be a JSON object"
    check_json_field(fields, "config", errors)
    if "api_endpoint" in fields:
        clean_text(
            fields,
            "api_endpoint",
            errors,
            max_length=2000,
            required=False,
            pattern=HTTP_URL,
            problem="must be an http(s) URL",
        )
        _check_outbound(fields.get("api_endpoint"), "api_endpoint", errors)
    if "health_check" in fields:
        if isinstance(fields["health_check"], dict):
            fields["health_check"] = dict(fields["health_check"])  # cleaned in place below
        _validate_health_check(fields["health_check"], errors)
    return errors


def _validate_health_check(value: Any, errors: dict[str, str]) -> None:
    """``{}`` (no HTTP check) or ``{"url": "http(s)://…", "timeout_seconds": 0 < n <= 30}``."""
    if not isinstance(value, dict):
        errors["health_check"] = 'must be a JSON object such as {"url": "https://…"}'
        return
    for key in value:
        if key not in ("url", "timeout_seconds"):
            errors[f"health_check.{key}"] = "is not a health-check setting (url, timeout_seconds)"
    if not value:
        return
    url = value.get("url")
    if not isinstance(url, str) or not HTTP_URL.match(url.strip()) or len(url) > 2000:
        errors["health_check.url"] = "must be an http(s) URL of at most 2000 characters"
    else:
        value["url"] = url.strip()
        _check_outbound(value["url"], "health_check.url", errors)
    timeout = value.get("timeout_seconds")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_CHECK_TIMEOUT_SECONDS
    ):
        errors["health_check.timeout_seconds"] = (
            f"must be a number of seconds above 0 and at most {MAX_CHECK_TIMEOUT_SECONDS}"
        )


def _check_outbound(url: Any, key: str, errors: dict[str, str]) -> None:
    """The SSRF guard at save time (the health check applies it again at every request)."""
    if key in errors or not isinstance(url, str) or not url:
        return
    allow_private = bool(current_app.config.get("ALLOW_PRIVATE_PROVIDER_URLS"))
    extra_ports = frozenset(current_app.config.get("PROVIDER_URL_PORTS") or ())
    problem = url_problem(url, allow_private, extra_ports)
    if problem:
        errors[key] = problem


def _name_taken(name: str, except_id: uuid.UUID | None = None) -> bool:
    query = select(Provider.id).where(Provider.name == name)
    if except_id:
        query = query.where(Provider.id != except_id)
    return db.session.scalar(query) is not None


def create_provider(actor: Actor, fields: dict[str, Any]) -> Provider:
    fields = dict(fields)
    errors = _validate(fields, creating=True)
    if errors:
        raise ValidationFailed(errors)
    duplicate = Conflict(f"a provider named {fields['name']} already exists", field="name")
    if _name_taken(fields["name"]):
        raise duplicate
    return insert_row(
        actor, Provider(**fields), "provider.create", "provider", provider_as_dict, duplicate
    )


def update_provider(actor: Actor, provider_id: uuid.UUID, changes: dict[str, Any]) -> Provider:
    changes = dict(changes)
    errors = _validate(changes, creating=False)
    if errors:
        raise ValidationFailed(errors)
    provider = get_provider(provider_id)
    if "name" in changes and _name_taken(changes["name"], provider.id):
        raise Conflict(f"a provider named {changes['name']} already exists", field="name")
    if apply_changes(actor, provider, changes, "provider.update", "provider"):
        db.session.commit()
    return provider


def delete_provider(actor: Actor, provider_id: uuid.UUID) -> None:
    """Refused while any of its models has deployments (active ones, or history that the
    cascade would erase); a provider whose models never served a feature can go, with
    its models."""
    provider = get_provider(provider_id)
    deployed = db.session.execute(
        select(
            Feature.display_name,
            AIModel.display_name,
            FeatureModelAssignment.environment,
            FeatureModelAssignment.is_active,
        )
        .join(FeatureModelAssignment, FeatureModelAssignment.feature_id == Feature.id)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .where(AIModel.provider_id == provider.id)
        .order_by(FeatureModelAssignment.is_active.desc(), Feature.display_name)
    ).all()
    if deployed:
        active = [f"{model} serves {feature} ({env})" for feature, model, env, on in deployed if on]
        detail = "; ".join(active) if active else f"{len(deployed)} past deployment(s) on record"
        raise Conflict(
            f"{provider.display_name} cannot be deleted: {detail}. Assign other models, and "
            "mark the provider inactive instead of deleting its history."
        )
    snapshot = provider_as_dict(provider)
    db.session.delete(provider)
    add_audit_row(actor, "provider.delete", "provider", provider_id, old_values=snapshot)
    db.session.commit()
