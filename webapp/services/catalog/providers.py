"""AI providers (OpenAI, Google, Anthropic, …)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import AIModel, Feature, FeatureModelAssignment, Provider
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes, insert_row
from webapp.services.catalog.schemas import (
    ProviderCreate,
    ProviderUpdate,
)
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.outbound import url_problem
from webapp.services.core.validation import check


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


def _checked(schema: type[ProviderUpdate], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's fields as validated, with the SSRF guard at save time (the health
    check applies it again at every request)."""
    checked = check(schema, fields)
    errors = checked.errors
    endpoint = checked.values.get("api_endpoint")
    if endpoint:
        _check_outbound(endpoint, "api_endpoint", errors)
    health_check = checked.values.get("health_check")
    if health_check is not None and health_check.url:
        _check_outbound(health_check.url, "health_check.url", errors)
    if errors:
        raise ValidationFailed(errors)
    values = dict(checked.values)
    if health_check is not None:
        values["health_check"] = health_check.stored()
    return values


def _check_outbound(url: str, key: str, errors: dict[str, str]) -> None:
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


def create_provider(actor: Actor, fields: Mapping[str, Any]) -> Provider:
    fields = _checked(ProviderCreate, fields)
    duplicate = Conflict(f"a provider named {fields['name']} already exists", field="name")
    if _name_taken(fields["name"]):
        raise duplicate
    bump_config_revision()
    return insert_row(
        actor, Provider(**fields), "provider.create", "provider", provider_as_dict, duplicate
    )


def update_provider(actor: Actor, provider_id: uuid.UUID, changes: Mapping[str, Any]) -> Provider:
    changes = _checked(ProviderUpdate, changes)
    provider = get_provider(provider_id)
    if "name" in changes and _name_taken(changes["name"], provider.id):
        raise Conflict(f"a provider named {changes['name']} already exists", field="name")
    if apply_changes(actor, provider, changes, "provider.update", "provider"):
        bump_config_revision()
        db.session.commit()
    return provider


def delete_refusal(provider: Provider) -> str | None:
    """Why ``provider`` cannot be deleted (one of its models has deployments), or None:
    what ``delete_provider`` refuses with, and what its page shows beside a disabled
    Delete."""
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
        return (
            f"{provider.display_name} cannot be deleted: {detail}. Assign other models, and "
            "mark the provider inactive instead of deleting its history."
        )
    return None


def delete_provider(actor: Actor, provider_id: uuid.UUID) -> None:
    """Refused while any of its models has deployments (active ones, or history that the
    cascade would erase); a provider whose models never served a feature can go, with
    its models."""
    provider = get_provider(provider_id)
    refusal = delete_refusal(provider)
    if refusal:
        raise Conflict(refusal)
    snapshot = provider_as_dict(provider)
    db.session.delete(provider)
    bump_config_revision()
    add_audit_row(actor, "provider.delete", "provider", provider_id, old_values=snapshot)
    db.session.commit()
