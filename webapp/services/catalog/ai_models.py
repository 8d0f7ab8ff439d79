"""AI models offered by providers, with structured pricing (the seed's
ModelManagementService; ``ai_models`` so it is not confused with ``webapp.models``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import (
    MODEL_STATUSES,
    AIModel,
    Feature,
    FeatureModelAssignment,
    Provider,
    User,
)
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes
from webapp.services.catalog.assignments import UNASSIGNABLE_STATUSES, article
from webapp.services.catalog.schemas import PRICE_FIELDS, ModelChanges, NewModel
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.validation import check
from webapp.services.usage import windows
from webapp.services.usage.attach import attach_unknown_usage


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
    model_ids: list[uuid.UUID],
    time_range: str = "24h",
    now: datetime | None = None,
    environment: str | None = None,
) -> dict[uuid.UUID, windows.UsageMetrics]:
    """Each model's metrics over a named range, in one ``environment`` or all (None)."""
    found = windows.metrics_for(
        "model_id", time_range, now, only=model_ids, environment=environment
    )
    return {model_id: found.get(model_id) or windows.UsageMetrics.empty() for model_id in model_ids}


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


def _checked(schema: type[ModelChanges], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The model's fields as validated, its provider included (every problem at once)."""
    checked = check(schema, fields)
    provider_id = checked.values.get("provider_id")
    if provider_id is not None and db.session.get(Provider, provider_id) is None:
        checked.errors["provider_id"] = "is not a known provider"
    if checked.errors:
        raise ValidationFailed(checked.errors)
    return checked.values


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


@dataclass(frozen=True)
class CreatedModel:
    model: AIModel
    # Earlier usage rows that named this model (unknown to the catalog until now), attached
    # to it and priced in the same transaction.
    attached_usage_rows: int


def add_model(actor: Actor, fields: Mapping[str, Any]) -> CreatedModel:
    """Create a model and, in the same transaction, attach the earlier usage rows that
    named it (webapp.services.usage.attach); the audit row says how many."""
    fields = _checked(NewModel, fields)
    duplicate = Conflict("this provider already has a model with that name and version", "name")
    if _duplicate(fields):
        raise duplicate
    model = AIModel(**fields)
    db.session.add(model)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise duplicate from None
    attached = attach_unknown_usage(model)
    bump_config_revision()
    snapshot = model_as_dict(model) | {"attached_usage_rows": attached}
    add_audit_row(actor, "model.create", "model", model.id, new_values=snapshot)
    db.session.commit()
    return CreatedModel(model, attached)


def create_model(actor: Actor, fields: Mapping[str, Any]) -> AIModel:
    return add_model(actor, fields).model


@dataclass(frozen=True)
class ModelUse:
    """An active assignment that makes a model serve a feature in an environment."""

    feature_id: uuid.UUID
    feature_name: str
    environment: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "feature_id": self.feature_id,
            "feature_name": self.feature_name,
            "environment": self.environment,
        }


def active_uses(model_id: uuid.UUID) -> list[ModelUse]:
    """Where the model serves now (its active assignments), by feature and environment."""
    rows = db.session.execute(
        select(Feature.id, Feature.display_name, FeatureModelAssignment.environment)
        .join(Feature, Feature.id == FeatureModelAssignment.feature_id)
        .where(FeatureModelAssignment.model_id == model_id, FeatureModelAssignment.is_active)
        .order_by(Feature.display_name, FeatureModelAssignment.environment)
    ).all()
    return [ModelUse(feature_id, name, environment) for feature_id, name, environment in rows]


def _refuse_retiring_in_use(model: AIModel, status: str) -> None:
    """A model that serves a feature cannot go offline or deprecated: applications would
    keep calling it (the runtime config names it) while the catalog says it is gone.
    Refused, naming every feature and environment, until another model serves there.
    The model row is locked first, and assigning takes a shared lock on it, so that no
    assignment slips in between this check and the commit."""
    db.session.scalar(select(AIModel.id).where(AIModel.id == model.id).with_for_update())
    uses = active_uses(model.id)
    if not uses:
        return
    where = ", ".join(f"{use.feature_name} in {use.environment}" for use in uses)
    raise Conflict(
        f"{model.display_name} serves {where}; assign another model there first, then set "
        f"it {status}",
        field="status",
        data={"in_use": [use.as_dict() for use in uses]},
    )


def _refuse_retyping_in_use(model: AIModel, model_type: str) -> None:
    """A model serving features of its type cannot change type: it would serve features
    that need another (the rule assigning refuses)."""
    db.session.scalar(select(AIModel.id).where(AIModel.id == model.id).with_for_update())
    uses = active_uses(model.id)
    if uses:
        where = ", ".join(f"{use.feature_name} in {use.environment}" for use in uses)
        raise Conflict(
            f"{model.display_name} serves {where}, which need {article(model.model_type)} "
            f"model; assign another model there first, then change its type to {model_type}",
            field="model_type",
            data={"in_use": [use.as_dict() for use in uses]},
        )


def update_model(actor: Actor, model_id: uuid.UUID, changes: Mapping[str, Any]) -> AIModel:
    changes = _checked(ModelChanges, changes)
    model = get_model(model_id)
    status = changes.get("status")
    if status in UNASSIGNABLE_STATUSES and status != model.status:
        _refuse_retiring_in_use(model, status)
    model_type = changes.get("model_type")
    if model_type is not None and model_type != model.model_type:
        _refuse_retyping_in_use(model, model_type)
    merged = {
        "provider_id": changes.get("provider_id", model.provider_id),
        "name": changes.get("name", model.name),
        "version": changes.get("version", model.version) if "version" in changes else model.version,
    }
    if {"provider_id", "name", "version"} & set(changes) and _duplicate(merged, model.id):
        raise Conflict("this provider already has a model with that name and version", field="name")
    if apply_changes(actor, model, changes, "model.update", "model"):
        bump_config_revision()
        db.session.commit()
    return model


def delete_refusal(model: AIModel) -> str | None:
    """Why ``model`` cannot be deleted (it served a feature), or None: what ``delete_model``
    refuses with, and what the model page shows beside a disabled Delete."""
    serving = db.session.scalar(
        select(func.count())
        .select_from(FeatureModelAssignment)
        .where(FeatureModelAssignment.model_id == model.id)
    )
    if serving:
        return (
            f"{model.display_name} has {serving} deployment(s) in its history, which deleting "
            "it would erase; set its status to deprecated instead"
        )
    return None


def delete_model(actor: Actor, model_id: uuid.UUID) -> None:
    """Only a model that never served a feature can be deleted: deleting one with
    deployments would erase that history (ON DELETE CASCADE). Retire it instead by setting
    its status to deprecated. Usage logs keep their rows either way."""
    model = db.session.scalar(select(AIModel).where(AIModel.id == model_id).with_for_update())
    if model is None:
        raise NotFound(f"model {model_id} does not exist")
    refusal = delete_refusal(model)
    if refusal:
        raise Conflict(refusal)
    snapshot = model_as_dict(model)
    db.session.delete(model)
    bump_config_revision()
    add_audit_row(actor, "model.delete", "model", model_id, old_values=snapshot)
    db.session.commit()
