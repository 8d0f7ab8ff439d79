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
from webapp.services.catalog import credentials as stored_credentials
from webapp.services.catalog.schemas import (
    ProviderCreate,
    ProviderUpdate,
)
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.outbound import url_problem
from webapp.services.core.sorting import Page, Sort, order_by, page_of_query
from webapp.services.core.validation import check


def provider_as_dict(
    provider: Provider, model_count: int | None = None, *, with_hint: bool = True
) -> dict[str, Any]:
    """The provider as the admin API answers it. ``with_hint=False`` (viewers) leaves out
    the key's last 4 characters: viewers learn only whether a key is set."""
    data = {
        "id": provider.id,
        "name": provider.name,
        "display_name": provider.display_name,
        "provider_type": provider.provider_type,
        "status": provider.status,
        "config": provider.config,
        "api_endpoint": provider.api_endpoint,
        "health_check": provider.health_check,
        # Never the value: whether one is set and its last 4 characters.
        "credentials_set": provider.credentials_ciphertext is not None,
        "credentials_hint": provider.credentials_hint if with_hint else None,
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    }
    if model_count is not None:
        data["model_count"] = model_count
    return data


def _model_count() -> Any:
    return (
        select(func.count(AIModel.id))
        .where(AIModel.provider_id == Provider.id)
        .scalar_subquery()
        .label("model_count")
    )


def list_providers() -> list[tuple[Provider, int]]:
    """Each provider with how many models it offers (one query)."""
    rows = db.session.execute(select(Provider, _model_count()).order_by(Provider.name))
    return [(provider, int(count)) for provider, count in rows]


PROVIDER_SORTS = ("name", "type", "status", "models")


def providers_page(sort: Sort, page: int) -> Page[tuple[Provider, int]]:
    """One page of providers with their model counts, ordered in SQL by one of
    ``PROVIDER_SORTS``."""
    count = _model_count()
    columns = {
        "name": Provider.display_name,
        "type": Provider.provider_type,
        "status": Provider.status,
        "models": count,
    }
    query = select(Provider, count).order_by(*order_by(sort, columns, Provider.id))
    found = page_of_query(query, page)
    rows = [(provider, int(models)) for provider, models in found.items]
    return Page(rows, found.page, found.pages, found.total)


def get_provider(provider_id: uuid.UUID) -> Provider:
    provider = db.session.get(Provider, provider_id)
    if provider is None:
        raise NotFound(f"provider {provider_id} does not exist")
    return provider


def key_destination(api_endpoint: str | None, config: Mapping[str, Any] | None) -> str | None:
    """Where the provider's calls, and with them its stored API key, are sent: the API
    endpoint, else ``config.base_url`` (None: the protocol's public default)."""
    base_url = (config or {}).get("base_url")
    return api_endpoint or (str(base_url) if base_url else None)


def _checked(schema: type[ProviderUpdate], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The provider's fields as validated, with the SSRF guard at save time (the health
    check applies it again at every request)."""
    checked = check(schema, fields)
    errors = checked.errors
    endpoint = checked.values.get("api_endpoint")
    if endpoint:
        _check_outbound(endpoint, "api_endpoint", errors)
    base_url = (checked.values.get("config") or {}).get("base_url")
    if base_url:
        _check_outbound(str(base_url), "config.base_url", errors)
    health_check = checked.values.get("health_check")
    if health_check is not None and health_check.url:
        _check_outbound(health_check.url, "health_check.url", errors)
    if errors:
        raise ValidationFailed(errors)
    values = dict(checked.values)
    if health_check is not None:
        values["health_check"] = health_check.stored()
    if "credentials" in values:
        given = values["credentials"]
        values["credentials"] = (
            stored_credentials.ProviderCredentials(given.api_key, dict(given.headers))
            if given is not None
            else None
        )
    return values


def _change_credentials(
    actor: Actor, provider: Provider, credentials: stored_credentials.ProviderCredentials | None
) -> bool:
    """Set, replace or clear the stored credentials, audited without the value (in the
    caller's transaction). Returns whether anything changed."""
    before = {
        "credentials_set": provider.credentials_ciphertext is not None,
        "credentials_hint": provider.credentials_hint,
    }
    action = stored_credentials.apply_credentials(provider, credentials)
    if action is None:
        return False
    add_audit_row(
        actor,
        action,
        "provider",
        provider.id,
        old_values=before,
        new_values=stored_credentials.credentials_audit_values(provider, credentials),
    )
    return True


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
    credentials = fields.pop("credentials", None)
    duplicate = Conflict(f"a provider named {fields['name']} already exists", field="name")
    if _name_taken(fields["name"]):
        raise duplicate
    bump_config_revision()
    provider = Provider(**fields)
    if credentials is not None:
        # Sealed before the insert: the audit row of the insert says credentials_set.
        stored_credentials.apply_credentials(provider, credentials)
    return insert_row(actor, provider, "provider.create", "provider", provider_as_dict, duplicate)


def update_provider(actor: Actor, provider_id: uuid.UUID, changes: Mapping[str, Any]) -> Provider:
    changes = _checked(ProviderUpdate, changes)
    given_credentials = "credentials" in changes
    credentials = changes.pop("credentials", None)
    provider = get_provider(provider_id)
    if "name" in changes and _name_taken(changes["name"], provider.id):
        raise Conflict(f"a provider named {changes['name']} already exists", field="name")
    moved = key_destination(
        changes.get("api_endpoint", provider.api_endpoint), changes.get("config", provider.config)
    ) != key_destination(provider.api_endpoint, provider.config)
    if moved and provider.credentials_ciphertext is not None and not given_credentials:
        # The hidden key would go to a host it was never given for.
        raise ValidationFailed(
            {
                "credentials": "must be given again (or null to clear it) when the API "
                "endpoint changes: the stored key is never sent to a new address"
            }
        )
    changed = apply_changes(actor, provider, changes, "provider.update", "provider")
    if changed:
        bump_config_revision()  # credentials are not part of the runtime configuration
    if given_credentials and _change_credentials(actor, provider, credentials):
        changed = True
    if changed:
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
