"""AI models offered by providers, with structured pricing (the seed's
ModelManagementService; ``ai_models`` so it is not confused with ``webapp.models``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    MODEL_STATUSES,
    AIModel,
    Feature,
    FeatureModelAssignment,
    Provider,
    UsageLog,
    User,
)
from webapp.services import metrics
from webapp.services.audit import Actor, add_audit_row
from webapp.services.audited import apply_changes, insert_row
from webapp.services.errors import Conflict, NotFound, ValidationFailed

PRICE_FIELDS = (
    "input_price_per_million",
    "output_price_per_million",
    "price_per_request",
    "price_per_image",
)
OPTIONAL_PRICES = ("price_per_request", "price_per_image")
FIELDS = (
    "name",
    "display_name",
    "provider_id",
    "model_type",
    "version",
    "config",
    "performance_metrics",
    "capabilities",
    "status",
    *PRICE_FIELDS,
)
PRICE_LIMIT = Decimal("1000000")  # NUMERIC(12, 6)


def model_as_dict(model: AIModel, provider: Provider | None = None) -> dict[str, Any]:
    data = {
        "id": model.id,
        "name": model.name,
        "display_name": model.display_name,
        "provider_id": model.provider_id,
        "model_type": model.model_type,
        "version": model.version,
        "status": model.status,
        "config": model.config,
        "performance_metrics": model.performance_metrics,
        "capabilities": model.capabilities,
        "pricing": {field: getattr(model, field) for field in PRICE_FIELDS},
        "created_at": model.created_at,
        "updated_at": model.updated_at,
    }
    if provider is not None:
        data["provider"] = {
            "id": provider.id,
            "name": provider.name,
            "display_name": provider.display_name,
        }
    return data


def list_models(
    provider: str | None = None,
    model_type: str | None = None,
    status: str | None = None,
) -> list[tuple[AIModel, Provider]]:
    """Models with their provider, filtered by provider *name*, type and status. (The
    seed filtered on the embedded provider after the fact, which filtered nothing.)"""
    if status is not None and status not in MODEL_STATUSES:
        raise ValidationFailed({"status": f"must be one of {', '.join(MODEL_STATUSES)}"})
    query = (
        select(AIModel, Provider)
        .join(Provider, Provider.id == AIModel.provider_id)
        .order_by(Provider.name, AIModel.name, AIModel.version)
    )
    if provider:
        query = query.where(Provider.name == provider)
    if model_type:
        query = query.where(AIModel.model_type == model_type)
    if status:
        query = query.where(AIModel.status == status)
    return [(model, owner) for model, owner in db.session.execute(query)]


def model_types() -> list[str]:
    return list(
        db.session.scalars(select(AIModel.model_type).distinct().order_by(AIModel.model_type))
    )


def get_model(model_id: uuid.UUID) -> AIModel:
    model = db.session.get(AIModel, model_id)
    if model is None:
        raise NotFound(f"model {model_id} does not exist")
    return model


def models_of_provider(provider_id: uuid.UUID) -> list[AIModel]:
    if db.session.get(Provider, provider_id) is None:
        raise NotFound(f"provider {provider_id} does not exist")
    return list(
        db.session.scalars(
            select(AIModel).where(AIModel.provider_id == provider_id).order_by(AIModel.name)
        )
    )


def model_performance(
    model_ids: list[uuid.UUID], time_range: str = "24h", now: datetime | None = None
) -> dict[uuid.UUID, metrics.UsageMetrics]:
    since, until = metrics.window_for(time_range, now)
    found = metrics.usage_metrics_by(UsageLog.model_id, since, until, only=model_ids)
    return {model_id: found.get(model_id) or metrics.UsageMetrics.empty() for model_id in model_ids}


def deployment_history(model_id: uuid.UUID) -> list[tuple[FeatureModelAssignment, str, str | None]]:
    """Every assignment of the model, newest first: (assignment, feature name, by whom)."""
    get_model(model_id)
    rows = db.session.execute(
        select(FeatureModelAssignment, Feature.display_name, User.email)
        .join(Feature, Feature.id == FeatureModelAssignment.feature_id)
        .outerjoin(User, User.id == FeatureModelAssignment.assigned_by)
        .where(FeatureModelAssignment.model_id == model_id)
        .order_by(FeatureModelAssignment.assigned_at.desc(), FeatureModelAssignment.id)
    ).all()
    return [(assignment, feature, email) for assignment, feature, email in rows]


def _price(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None or value == "":
        raise InvalidOperation
    amount = Decimal(str(value).strip())
    if not amount.is_finite():
        raise InvalidOperation
    return amount


def _validate(fields: dict[str, Any], creating: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    for key in fields:
        if key not in FIELDS:
            errors[key] = "is not a field of a model"
    for key, limit in (("name", 200), ("display_name", 200), ("model_type", 100)):
        if creating or key in fields:
            fields[key] = (fields.get(key) or "").strip()
            if not fields[key] or len(fields[key]) > limit:
                errors[key] = f"must be 1 to {limit} characters"
    if "version" in fields:
        fields["version"] = (fields["version"] or "").strip() or None
        if fields["version"] and len(fields["version"]) > 50:
            errors["version"] = "must be at most 50 characters"
    if creating or "provider_id" in fields:
        try:
            fields["provider_id"] = uuid.UUID(str(fields.get("provider_id")))
            if db.session.get(Provider, fields["provider_id"]) is None:
                errors["provider_id"] = "is not a known provider"
        except ValueError:
            errors["provider_id"] = "must be a provider id"
    if "status" in fields and fields["status"] not in MODEL_STATUSES:
        errors["status"] = f"must be one of {', '.join(MODEL_STATUSES)}"
    for key in ("config", "performance_metrics"):
        if key in fields and not isinstance(fields[key], dict):
            errors[key] = "must be a JSON object"
    if "capabilities" in fields:
        caps = fields["capabilities"]
        if isinstance(caps, str):
            caps = [c.strip() for c in caps.split(",") if c.strip()]
        if not isinstance(caps, list) or not all(
            isinstance(c, str) and 0 < len(c) <= 50 for c in caps
        ):
            errors["capabilities"] = "must be a list of short names"
        else:
            fields["capabilities"] = sorted(set(caps))
    for key in PRICE_FIELDS:
        if key not in fields and not (creating and key not in OPTIONAL_PRICES):
            continue
        value = fields.get(key)
        if key in OPTIONAL_PRICES and (value is None or value == ""):
            fields[key] = None
            continue
        if value is None and creating:
            fields[key] = Decimal(0)
            continue
        try:
            amount = _price(value)
        except (InvalidOperation, ValueError):
            errors[key] = "must be a number in USD, like 2.50"
            continue
        if amount < 0:
            errors[key] = "must not be negative"
        elif amount >= PRICE_LIMIT or amount != amount.quantize(Decimal("0.000001")):
            errors[key] = "must be below 1,000,000 with at most 6 decimals"
        else:
            fields[key] = amount
    return errors


def _duplicate(fields: dict[str, Any], except_id: uuid.UUID | None = None) -> bool:
    query = select(AIModel.id).where(
        AIModel.provider_id == fields["provider_id"],
        AIModel.name == fields["name"],
        AIModel.version.is_(None)
        if fields.get("version") is None
        else AIModel.version == fields["version"],
    )
    if except_id:
        query = query.where(AIModel.id != except_id)
    return db.session.scalar(query) is not None


def create_model(actor: Actor, fields: dict[str, Any]) -> AIModel:
    fields = dict(fields)
    errors = _validate(fields, creating=True)
    if errors:
        raise ValidationFailed(errors)
    if _duplicate(fields):
        raise Conflict("this provider already has a model with that name and version", field="name")
    duplicate = Conflict("this provider already has a model with that name and version", "name")
    return insert_row(actor, AIModel(**fields), "model.create", "model", model_as_dict, duplicate)


def update_model(actor: Actor, model_id: uuid.UUID, changes: dict[str, Any]) -> AIModel:
    changes = dict(changes)
    errors = _validate(changes, creating=False)
    if errors:
        raise ValidationFailed(errors)
    model = get_model(model_id)
    merged = {
        "provider_id": changes.get("provider_id", model.provider_id),
        "name": changes.get("name", model.name),
        "version": changes.get("version", model.version) if "version" in changes else model.version,
    }
    if {"provider_id", "name", "version"} & set(changes) and _duplicate(merged, model.id):
        raise Conflict("this provider already has a model with that name and version", field="name")
    if apply_changes(actor, model, changes, "model.update", "model"):
        db.session.commit()
    return model


def delete_model(actor: Actor, model_id: uuid.UUID) -> None:
    """Refused while the model serves any feature; usage logs keep their rows."""
    model = get_model(model_id)
    serving = db.session.scalar(
        select(func.count())
        .select_from(FeatureModelAssignment)
        .where(FeatureModelAssignment.model_id == model.id, FeatureModelAssignment.is_active)
    )
    if serving:
        raise Conflict(
            f"{model.display_name} serves {serving} feature environment(s); "
            "assign other models first"
        )
    snapshot = model_as_dict(model)
    db.session.delete(model)
    add_audit_row(actor, "model.delete", "model", model_id, old_values=snapshot)
    db.session.commit()
