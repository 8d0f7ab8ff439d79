"""Features: the AI capabilities the company runs (the seed's FeatureManagementService)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import (
    FEATURE_STATUSES,
    AIModel,
    Experiment,
    Feature,
    FeatureModelAssignment,
    UsageLog,
)
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes, insert_row
from webapp.services.catalog.schemas import (
    MAX_BULK_ITEMS,
    FeatureBulkItem,
    FeatureCreate,
    FeatureUpdate,
)
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.validation import check, given, validated
from webapp.services.usage import windows
from webapp.services.usage.rollup import ROLLUP

EDITABLE_FIELDS = tuple(FeatureUpdate.model_fields)


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
        "model_type": feature.model_type,
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
    environment: str | None = None,
    *,
    with_uptime: bool = True,
) -> list[FeatureRow]:
    """Features by name, with their active models, and metrics when asked (three
    queries whatever the number of features), in one ``environment`` or all (None).
    ``with_uptime=False``: the metrics leave uptime out (a page that does not show it)."""
    errors: dict[str, str] = {}
    for status in statuses or []:
        if status not in FEATURE_STATUSES:
            errors["status"] = f"must be one of {', '.join(FEATURE_STATUSES)}"
    if include_metrics:
        try:
            windows.checked_range(time_range)
        except ValidationFailed as error:
            errors.update(error.errors)
    try:
        windows.checked_environment(environment)
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
        windows.metrics_for(
            "feature_id",
            time_range,
            now,
            only=ids,
            environment=environment,
            with_uptime=with_uptime,
        )
        if include_metrics
        else {}
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
    feature_id: uuid.UUID,
    time_range: str = "24h",
    now: datetime | None = None,
    environment: str | None = None,
) -> windows.UsageMetrics:
    get_feature(feature_id)
    found = windows.metrics_for(
        "feature_id", time_range, now, only=[feature_id], environment=environment
    )
    return found.get(feature_id) or windows.UsageMetrics.empty()


def usage_by_day(
    feature_id: uuid.UUID,
    days: int = 30,
    today: date | None = None,
    environment: str | None = None,
) -> list[windows.DailyUsage]:
    """Requests, failures and cost per UTC day for the last ``days`` days, zero-filled, in
    one ``environment`` or all (None)."""
    get_feature(feature_id)
    return windows.daily_usage(UsageLog.feature_id, feature_id, days, today, environment)


def unknown_features(feature_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``feature_ids`` that name no feature (one query): the one "feature id
    exists" check of every input that refers to a feature."""
    if not feature_ids:
        return set()
    known = set(db.session.scalars(select(Feature.id).where(Feature.id.in_(feature_ids))))
    return feature_ids - known


def feature_exists(feature_id: uuid.UUID) -> bool:
    return not unknown_features({feature_id})


def create_feature(actor: Actor, fields: Mapping[str, Any] | FeatureCreate) -> Feature:
    new = validated(FeatureCreate, fields)
    duplicate = Conflict(f"a feature named {new.name} already exists", field="name")
    if db.session.scalar(select(Feature.id).where(Feature.name == new.name)):
        raise duplicate
    bump_config_revision()
    return insert_row(
        actor,
        Feature(**(given(new) | {"model_type": new.model_type})),
        "feature.create",
        "feature",
        feature_as_dict,
        duplicate,
    )


def type_change_refusal(feature: Feature) -> str | None:
    """Why the feature's model type cannot change now, or None. It can change only while
    no model serves it: its serving models are of its type, and another type's model
    cannot be assigned before the type changes. (There is no unassign: a feature that
    needs another type of model is a new one.) The edit form shows it fixed, saying why."""
    serving = db.session.execute(
        select(FeatureModelAssignment.environment, AIModel.display_name)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .where(FeatureModelAssignment.feature_id == feature.id, FeatureModelAssignment.is_active)
        .order_by(FeatureModelAssignment.environment)
    ).all()
    if not serving:
        return None
    where = ", ".join(f"{name} in {environment}" for environment, name in serving)
    return (
        f"{feature.display_name} is served by {where}: its model type can change only "
        "while no model serves it"
    )


def _apply_update(actor: Actor, feature_id: uuid.UUID, changes: dict[str, Any]) -> Feature:
    feature = get_feature(feature_id)
    model_type = changes.get("model_type")
    if model_type is not None and model_type != feature.model_type:
        refusal = type_change_refusal(feature)
        if refusal:
            raise Conflict(refusal, field="model_type")
    if apply_changes(actor, feature, changes, "feature.update", "feature"):
        bump_config_revision()
    return feature


def update_feature(
    actor: Actor, feature_id: uuid.UUID, changes: Mapping[str, Any] | FeatureUpdate
) -> Feature:
    """Apply ``changes`` (fields of ``FeatureUpdate``); audit only the fields that changed."""
    feature = _apply_update(actor, feature_id, given(validated(FeatureUpdate, changes)))
    db.session.commit()
    return feature


def bulk_update_features(actor: Actor, updates: list[Mapping[str, Any]]) -> list[Feature]:
    """All or nothing: every item is validated first; one bad item changes nothing.
    Each item is ``{"id": ..., <fields>}`` (``FeatureBulkItem``); errors are keyed
    ``items.<index>.<field>``, and name every item's problems at once."""
    if not updates:
        raise ValidationFailed({"items": "must contain at least one update"})
    if len(updates) > MAX_BULK_ITEMS:
        raise ValidationFailed({"items": f"must contain at most {MAX_BULK_ITEMS} items"})
    errors: dict[str, str] = {}
    parsed: list[tuple[uuid.UUID, dict[str, Any]]] = []
    ids: dict[int, uuid.UUID] = {}
    for index, item in enumerate(updates):
        checked = check(FeatureBulkItem, item, prefix=f"items.{index}.")
        errors.update(checked.errors)
        if "id" in checked.values:
            ids[index] = checked.values["id"]
        if checked.model is not None:
            changes = given(checked.model)
            del changes["id"]
            parsed.append((checked.model.id, changes))
    if len(set(ids.values())) != len(ids):
        errors["items"] = "name each feature at most once"
    unknown = unknown_features(set(ids.values()))
    for index, feature_id in ids.items():
        if feature_id in unknown:
            errors[f"items.{index}.id"] = f"feature {feature_id} does not exist"
    if errors:
        raise ValidationFailed(errors)
    features = [_apply_update(actor, feature_id, changes) for feature_id, changes in parsed]
    db.session.commit()
    return features


def deletion_refusal(feature_id: uuid.UUID) -> str | None:
    """Why the feature cannot be deleted, or None: not while it has history — a model
    that served it (active or past), usage it recorded, an experiment — which deleting
    would erase (assignments and experiments go with it, ON DELETE CASCADE) or orphan.
    Set its status to inactive instead. Pages ask this to show Delete disabled with the
    reason rather than offer a refused action."""
    feature = get_feature(feature_id)
    counts = db.session.execute(
        select(
            select(func.count())
            .select_from(FeatureModelAssignment)
            .where(FeatureModelAssignment.feature_id == feature_id)
            .scalar_subquery(),
            # The daily rollup counts every usage row (a purge of raw rows keeps it): a
            # few rows per day to add up rather than every request the feature served.
            select(func.coalesce(func.sum(ROLLUP.c.request_count), 0))
            .where(ROLLUP.c.feature_id == feature_id)
            .scalar_subquery(),
            select(func.count())
            .select_from(Experiment)
            .where(Experiment.feature_id == feature_id)
            .scalar_subquery(),
        )
    ).one()
    kinds = (
        ("model assignment", "model assignments"),
        ("usage record", "usage records"),
        ("experiment", "experiments"),
    )
    parts = [
        f"{count:,} {one if count == 1 else many}"
        for count, (one, many) in zip(counts, kinds, strict=True)
        if count
    ]
    if not parts:
        return None
    return (
        f"{feature.display_name} has {', '.join(parts)} in its history, which deleting it "
        "would erase; set its status to inactive instead"
    )


def delete_feature(actor: Actor, feature_id: uuid.UUID) -> None:
    """Deletes a feature without history (``deletion_refusal``) with its budgets (ON
    DELETE CASCADE); its prompts stay, detached (SET NULL). The feature row is locked
    first: an assignment, which locks it too, cannot slip in before the delete."""
    feature = db.session.scalar(select(Feature).where(Feature.id == feature_id).with_for_update())
    if feature is None:
        raise NotFound(f"feature {feature_id} does not exist")
    refusal = deletion_refusal(feature_id)
    if refusal:
        raise Conflict(refusal)
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
    bump_config_revision()
    add_audit_row(actor, "feature.delete", "feature", feature_id, old_values=snapshot)
    db.session.commit()
