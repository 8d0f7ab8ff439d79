"""Features: the AI capabilities the company runs (the seed's FeatureManagementService)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import FEATURE_STATUSES, AIModel, Feature, FeatureModelAssignment, UsageLog
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes, insert_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.json_values import check_json_field
from webapp.services.core.validation import check_choice, clean_text
from webapp.services.usage import windows

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
EDITABLE_FIELDS = ("display_name", "description", "status", "config")


@dataclass
class FeatureRow:
    feature: Feature
    models_by_environment: dict[str, AIModel] = field(default_factory=dict)
    metrics: windows.UsageMetrics | None = None


def feature_as_dict(feature: Feature) -> dict[str, Any]:
    return {
        "id": feature.id,
        "name": feature.name,
        "display_name": feature.display_name,
        "description": feature.description,
        "status": feature.status,
        "config": feature.config,
        "created_at": feature.created_at,
        "updated_at": feature.updated_at,
    }


def get_feature(feature_id: uuid.UUID) -> Feature:
    feature = db.session.get(Feature, feature_id)
    if feature is None:
        raise NotFound(f"feature {feature_id} does not exist")
    return feature


def active_models(feature_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, AIModel]]:
    """{feature id: {environment: active model}} in one query."""
    rows = db.session.execute(
        select(FeatureModelAssignment.feature_id, FeatureModelAssignment.environment, AIModel)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .where(FeatureModelAssignment.is_active, FeatureModelAssignment.feature_id.in_(feature_ids))
    ).all()
    result: dict[uuid.UUID, dict[str, AIModel]] = {}
    for feature_id, environment, model in rows:
        result.setdefault(feature_id, {})[environment] = model
    return result


def list_features(
    statuses: list[str] | None = None,
    include_metrics: bool = False,
    time_range: str = "24h",
    now: datetime | None = None,
) -> list[FeatureRow]:
    """Features by name, with their active models, and metrics when asked (three
    queries whatever the number of features)."""
    errors = {}
    for status in statuses or []:
        if status not in FEATURE_STATUSES:
            errors["status"] = f"must be one of {', '.join(FEATURE_STATUSES)}"
    if include_metrics:
        try:
            windows.checked_range(time_range)
        except ValidationFailed as error:
            errors.update(error.errors)
    if errors:
        raise ValidationFailed(errors)
    query = select(Feature).order_by(Feature.name)
    if statuses:
        query = query.where(Feature.status.in_(statuses))
    features = db.session.scalars(query).all()
    ids = [f.id for f in features]
    models = active_models(ids)
    by_feature = (
        windows.metrics_for("feature_id", time_range, now, only=ids) if include_metrics else {}
    )
    return [
        FeatureRow(
            f,
            models.get(f.id, {}),
            (by_feature.get(f.id) or windows.UsageMetrics.empty()) if include_metrics else None,
        )
        for f in features
    ]


def feature_health(
    feature_id: uuid.UUID, time_range: str = "24h", now: datetime | None = None
) -> windows.UsageMetrics:
    get_feature(feature_id)
    found = windows.metrics_for("feature_id", time_range, now, only=[feature_id])
    return found.get(feature_id) or windows.UsageMetrics.empty()


def usage_by_day(
    feature_id: uuid.UUID, days: int = 30, today: date | None = None
) -> list[windows.DailyUsage]:
    """Requests, failures and cost per UTC day for the last ``days`` days, zero-filled."""
    get_feature(feature_id)
    return windows.daily_usage(UsageLog.feature_id, feature_id, days, today)


def _validate_fields(changes: dict[str, Any], creating: bool) -> dict[str, str]:
    errors: dict[str, str] = {}
    allowed = ("name", *EDITABLE_FIELDS) if creating else EDITABLE_FIELDS
    for key in changes:
        if key not in allowed:
            errors[key] = (
                "is not a field that can be changed"
                if not creating
                else "is not a field of a feature"
            )
    if creating or "name" in changes:
        clean_text(
            changes,
            "name",
            errors,
            max_length=100,
            pattern=NAME_PATTERN,
            problem="must be 1-100 lower-case letters, digits and dashes (e.g. photo-tagging)",
        )
    if creating or "display_name" in changes:
        clean_text(changes, "display_name", errors, max_length=200)
    check_choice(changes, "status", FEATURE_STATUSES, errors)
    if "config" in changes and not isinstance(changes["config"], dict):
        errors["config"] = "must be a JSON object"
    check_json_field(changes, "config", errors)
    description = changes.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 10_000):
        errors["description"] = "must be text of at most 10,000 characters"
    return errors


def create_feature(actor: Actor, fields: dict[str, Any]) -> Feature:
    fields = dict(fields)
    errors = _validate_fields(fields, creating=True)
    if errors:
        raise ValidationFailed(errors)
    duplicate = Conflict(f"a feature named {fields['name']} already exists", field="name")
    if db.session.scalar(select(Feature.id).where(Feature.name == fields["name"])):
        raise duplicate
    return insert_row(
        actor, Feature(**fields), "feature.create", "feature", feature_as_dict, duplicate
    )


def _apply_update(actor: Actor, feature_id: uuid.UUID, changes: dict[str, Any]) -> Feature:
    feature = get_feature(feature_id)
    apply_changes(actor, feature, changes, "feature.update", "feature")
    return feature


def update_feature(actor: Actor, feature_id: uuid.UUID, changes: dict[str, Any]) -> Feature:
    """Apply ``changes`` (a subset of EDITABLE_FIELDS); audit only the fields that changed."""
    changes = dict(changes)
    errors = _validate_fields(changes, creating=False)
    if errors:
        raise ValidationFailed(errors)
    feature = _apply_update(actor, feature_id, changes)
    db.session.commit()
    return feature


def bulk_update_features(actor: Actor, updates: list[dict[str, Any]]) -> list[Feature]:
    """All or nothing: every item is validated first; one bad item changes nothing.
    Each item is ``{"id": ..., <fields>}``; errors are keyed ``items.<index>.<field>``."""
    if not updates:
        raise ValidationFailed({"items": "must contain at least one update"})
    errors: dict[str, str] = {}
    parsed: list[tuple[uuid.UUID, dict[str, Any]]] = []
    for index, item in enumerate(updates):
        item = dict(item)
        raw_id = item.pop("id", None)
        try:
            feature_id = uuid.UUID(str(raw_id))
        except ValueError:
            errors[f"items.{index}.id"] = "must be a feature id"
            continue
        for key, problem in _validate_fields(item, creating=False).items():
            errors[f"items.{index}.{key}"] = problem
        parsed.append((feature_id, item))
    ids = [feature_id for feature_id, _ in parsed]
    if len(set(ids)) != len(ids):
        errors["items"] = "name each feature at most once"
    known = set(db.session.scalars(select(Feature.id).where(Feature.id.in_(ids))))
    for index, (feature_id, _) in enumerate(parsed):
        if feature_id not in known:
            errors[f"items.{index}.id"] = f"feature {feature_id} does not exist"
    if errors:
        raise ValidationFailed(errors)
    features = [_apply_update(actor, feature_id, changes) for feature_id, changes in parsed]
    db.session.commit()
    return features


def delete_feature(actor: Actor, feature_id: uuid.UUID) -> None:
    """Deletes the feature with its assignments, budgets and experiments (ON DELETE
    CASCADE); its usage logs and prompts stay, detached (SET NULL)."""
    feature = get_feature(feature_id)
    snapshot = feature_as_dict(feature)
    db.session.delete(feature)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(
            "the feature's prompts would clash with global prompts of the same name and "
            "version; rename or delete those prompts first"
        ) from None
    add_audit_row(actor, "feature.delete", "feature", feature_id, old_values=snapshot)
    db.session.commit()
