"""Small builders for test rows: each returns a flushed model with sensible defaults."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from webapp.extensions import db
from webapp.models import (
    AIModel,
    ApiKey,
    Budget,
    Feature,
    FeatureModelAssignment,
    Prompt,
    PromptActivation,
    Provider,
)
from webapp.services.apps.secrets import new_secret, secret_hash, secret_prefix


def _save(row: Any) -> Any:
    db.session.add(row)
    db.session.flush()
    return row


# The seed's features need these types; any other feature an llm unless told.
SEED_FEATURE_TYPES = {"photo-tagging": "vision", "ai-search": "embedding"}


def feature(name: str = "chatbot", **fields: Any) -> Feature:
    fields.setdefault("model_type", SEED_FEATURE_TYPES.get(name, "llm"))
    return _save(
        Feature(name=name, display_name=fields.pop("display_name", name.title()), **fields)
    )


def provider(name: str = "openai", **fields: Any) -> Provider:
    return _save(
        Provider(
            name=name,
            display_name=fields.pop("display_name", name.title()),
            provider_type=fields.pop("provider_type", name),
            **fields,
        )
    )


def model(owner: Provider, name: str = "gpt-4", **fields: Any) -> AIModel:
    fields.setdefault("display_name", name.upper())
    fields.setdefault("model_type", "llm")
    fields.setdefault("input_price_per_million", Decimal("30"))
    fields.setdefault("output_price_per_million", Decimal("60"))
    return _save(AIModel(name=name, provider_id=owner.id, **fields))


def assignment(
    of: Feature, to: AIModel, environment: str = "production", **fields: Any
) -> FeatureModelAssignment:
    fields.setdefault("is_active", True)
    return _save(
        FeatureModelAssignment(feature_id=of.id, model_id=to.id, environment=environment, **fields)
    )


def prompt(
    name: str = "greeting", version: int = 1, live_in: tuple[str, ...] = (), **fields: Any
) -> Prompt:
    """A prompt version; ``is_active=True`` makes it live in production (its meaning),
    ``live_in`` live in those environments too (rows as the services write them)."""
    fields.setdefault("content", "Hello {{name}}")
    row = _save(Prompt(name=name, version=version, **fields))
    environments = set(live_in) | ({"production"} if row.is_active else set())
    if "production" in environments and not row.is_active:
        row.is_active = True
    for environment in sorted(environments):
        activation(row, environment)
    return row


def activation(of: Prompt, environment: str = "production", **fields: Any) -> PromptActivation:
    """A live row for ``of`` in ``environment`` (closed if ``deactivated_at`` is given)."""
    return _save(
        PromptActivation(
            feature_id=of.feature_id,
            name=of.name,
            environment=environment,
            prompt_id=of.id,
            version=of.version,
            **fields,
        )
    )


def budget(**fields: Any) -> Budget:
    fields.setdefault("name", "Monthly")
    fields.setdefault("period_type", "monthly")
    fields.setdefault("budget_amount", Decimal("100.00"))
    fields.setdefault("start_date", date(2026, 11, 1))
    fields.setdefault("end_date", date(2026, 11, 30))
    return _save(Budget(**fields))


def api_key(
    environment: str = "production",
    scopes: tuple[str, ...] = ("usage:write", "config:read"),
    features: tuple[Feature, ...] = (),
    name: str | None = None,
    **fields: Any,
) -> tuple[ApiKey, str]:
    """An API key row and its secret (what the create form shows once)."""
    secret = new_secret(environment)
    key = ApiKey(
        name=name or secret_prefix(secret),
        prefix=secret_prefix(secret),
        secret_hash=secret_hash(secret),
        environment=environment,
        scopes=list(scopes),
        feature_ids=[str(f.id) for f in features],
        **fields,
    )
    return _save(key), secret
