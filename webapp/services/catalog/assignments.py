"""Which model serves which feature in which environment, with full history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import ENVIRONMENTS, AIModel, Feature, FeatureModelAssignment, Provider, User
from webapp.models.types import utcnow
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.json_values import check_json_field

UNASSIGNABLE_STATUSES = ("offline", "deprecated")


@dataclass(frozen=True)
class AssignmentResult:
    assignment: FeatureModelAssignment
    changed: bool  # False: that model was already active there (nothing done)
    message: str


def history(feature_id: uuid.UUID) -> list[tuple[FeatureModelAssignment, AIModel, str | None]]:
    """Every assignment of the feature, newest first: (assignment, model, by whom)."""
    if db.session.get(Feature, feature_id) is None:
        raise NotFound(f"feature {feature_id} does not exist")
    rows = db.session.execute(
        select(FeatureModelAssignment, AIModel, User.email)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .outerjoin(User, User.id == FeatureModelAssignment.assigned_by)
        .where(FeatureModelAssignment.feature_id == feature_id)
        .order_by(FeatureModelAssignment.assigned_at.desc(), FeatureModelAssignment.id.desc())
    ).all()
    return [(a, m, email) for a, m, email in rows]


def _lock_feature(feature_id: uuid.UUID) -> Feature:
    """Lock the feature row (PostgreSQL: SELECT … FOR UPDATE) so that two admins
    assigning at the same moment take turns: the second sees the first's result."""
    feature = db.session.scalar(select(Feature).where(Feature.id == feature_id).with_for_update())
    if feature is None:
        raise NotFound(f"feature {feature_id} does not exist")
    return feature


def assignable_models(model_type: str | None = None) -> list[tuple[AIModel, Provider]]:
    """Models that may be assigned (not offline or deprecated), with their provider; of
    ``model_type`` alone when given (a feature's type: what may serve it)."""
    query = (
        select(AIModel, Provider)
        .join(Provider, Provider.id == AIModel.provider_id)
        .where(AIModel.status.not_in(UNASSIGNABLE_STATUSES))
        .order_by(Provider.name, AIModel.name)
    )
    if model_type is not None:
        query = query.where(AIModel.model_type == model_type)
    return [(model, provider) for model, provider in db.session.execute(query)]


def type_mismatch(model: AIModel, feature: Feature) -> str | None:
    """Why ``model`` cannot serve ``feature`` (a model of another type), or None."""
    if model.model_type == feature.model_type:
        return None
    return (
        f"{model.display_name} is {article(model.model_type)} model; {feature.display_name} needs "
        f"{article(feature.model_type)} model"
    )


def article(model_type: str) -> str:
    """ "an llm", "a vision", "an embedding" (llm is read letter by letter)."""
    return f"{'a' if model_type == 'vision' else 'an'} {model_type}"


def _check(environment: str, config_overrides: Any) -> None:
    errors = {}
    if environment not in ENVIRONMENTS:
        errors["environment"] = f"must be one of {', '.join(ENVIRONMENTS)}"
    if config_overrides is not None and not isinstance(config_overrides, dict):
        errors["config_overrides"] = "must be a JSON object"
    check_json_field({"config_overrides": config_overrides}, "config_overrides", errors)
    if errors:
        raise ValidationFailed(errors)


def assign_model(
    actor: Actor,
    feature_id: uuid.UUID,
    model_id: uuid.UUID,
    environment: str,
    config_overrides: dict[str, Any] | None = None,
) -> AssignmentResult:
    """Make ``model_id`` the active model of the feature in ``environment``: deactivate the
    current assignment (kept as history) and insert the new one, in one transaction."""
    _check(environment, config_overrides)
    feature = _lock_feature(feature_id)
    return _assign_locked(
        actor, feature, model_id, environment, config_overrides, "assignment.assign"
    )


def _assign_locked(
    actor: Actor,
    feature: Feature,
    model_id: uuid.UUID,
    environment: str,
    config_overrides: dict[str, Any] | None,
    action: str,
) -> AssignmentResult:
    switch = _switch_model(actor, feature, model_id, environment, config_overrides)
    if not switch.changed:
        db.session.rollback()
        return AssignmentResult(switch.assignment, False, switch.message)
    add_audit_row(actor, action, "feature", feature.id, switch.old_values, switch.new_values)
    db.session.commit()
    return AssignmentResult(switch.assignment, True, switch.message)


@dataclass(frozen=True)
class ModelSwitch:
    assignment: FeatureModelAssignment  # the active one afterwards
    changed: bool
    message: str
    old_values: dict[str, Any]
    new_values: dict[str, Any]


def assign_in_transaction(
    actor: Actor, feature_id: uuid.UUID, model_id: uuid.UUID, environment: str
) -> ModelSwitch:
    """Assign as part of a larger use case (promoting an experiment's winner): locks the
    feature and flushes, but neither audits nor commits; the caller does both."""
    _check(environment, None)
    return _switch_model(actor, _lock_feature(feature_id), model_id, environment, None)


def _switch_model(
    actor: Actor,
    feature: Feature,
    model_id: uuid.UUID,
    environment: str,
    config_overrides: dict[str, Any] | None,
) -> ModelSwitch:
    # A shared lock: a model cannot be set offline or deprecated while it is being
    # assigned (ai_models.update_model locks it for update before checking its uses).
    model = db.session.scalar(
        select(AIModel).where(AIModel.id == model_id).with_for_update(read=True)
    )
    if model is None:
        raise ValidationFailed({"model_id": "is not a known model"})
    if model.status in UNASSIGNABLE_STATUSES:
        raise Conflict(
            f"{model.display_name} is {model.status} and cannot be assigned", field="model_id"
        )
    mismatch = type_mismatch(model, feature)
    if mismatch:
        raise Conflict(mismatch, field="model_id")
    current = db.session.scalar(
        select(FeatureModelAssignment).where(
            FeatureModelAssignment.feature_id == feature.id,
            FeatureModelAssignment.environment == environment,
            FeatureModelAssignment.is_active,
        )
    )
    if current is not None and current.model_id == model.id:
        return ModelSwitch(
            current,
            False,
            f"{model.display_name} already serves {feature.display_name} in {environment}",
            {},
            {},
        )
    old_values: dict[str, Any] = {}
    try:
        if current is not None:
            current.is_active = False
            current.deactivated_at = utcnow()
            old_values = {"model_id": current.model_id, "assignment_id": current.id}
            db.session.flush()  # the partial unique index must see the old row inactive first
        new = FeatureModelAssignment(
            feature_id=feature.id,
            model_id=model.id,
            environment=environment,
            is_active=True,
            config_overrides=config_overrides or {},
            assigned_by=actor.user_id,
        )
        db.session.add(new)
        db.session.flush()
        bump_config_revision()
    except IntegrityError:
        # Only where row locks are not available (SQLite): someone assigned meanwhile.
        db.session.rollback()
        raise Conflict(
            f"someone else changed {environment} of {feature.display_name} just now; reload "
            "and try again",
            field="model_id",
        ) from None
    return ModelSwitch(
        new,
        True,
        f"{model.display_name} now serves {feature.display_name} in {environment}",
        old_values,
        {
            "environment": environment,
            "model_id": model.id,
            "assignment_id": new.id,
            "config_overrides": new.config_overrides,
        },
    )


def rollback(actor: Actor, feature_id: uuid.UUID, environment: str) -> AssignmentResult:
    """Bring back the model that served before the current one: one action, under one
    lock from choosing that model to committing."""
    _check(environment, None)
    feature = _lock_feature(feature_id)
    rows = db.session.scalars(
        select(FeatureModelAssignment)
        .where(
            FeatureModelAssignment.feature_id == feature_id,
            FeatureModelAssignment.environment == environment,
        )
        .order_by(FeatureModelAssignment.assigned_at.desc(), FeatureModelAssignment.id.desc())
    ).all()
    current = next((row for row in rows if row.is_active), None)
    previous = next(
        (
            row
            for row in rows
            if not row.is_active and (current is None or row.model_id != current.model_id)
        ),
        None,
    )
    if previous is None:
        raise Conflict(f"there is no earlier model to roll back to in {environment}")
    return _assign_locked(
        actor,
        feature,
        previous.model_id,
        environment,
        previous.config_overrides,
        "assignment.rollback",
    )
