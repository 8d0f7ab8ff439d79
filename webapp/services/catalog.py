"""Read-side queries for the catalog pages: features, providers, models, and the tables
every area starts with. Each returns plain rows for a view to render (no N+1: one query
per table, joined where a row needs a related name)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    AIModel,
    Budget,
    Experiment,
    Feature,
    FeatureModelAssignment,
    Prompt,
    Provider,
)
from webapp.services.errors import NotFound


@dataclass(frozen=True)
class FeatureRow:
    feature: Feature
    models_by_environment: dict[str, str]  # environment -> model display name


def list_features() -> list[FeatureRow]:
    features = db.session.scalars(select(Feature).order_by(Feature.name)).all()
    active = db.session.execute(
        select(
            FeatureModelAssignment.feature_id,
            FeatureModelAssignment.environment,
            AIModel.display_name,
        )
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .where(FeatureModelAssignment.is_active)
    ).all()
    by_feature: dict[uuid.UUID, dict[str, str]] = {}
    for feature_id, environment, model_name in active:
        by_feature.setdefault(feature_id, {})[environment] = model_name
    return [FeatureRow(f, by_feature.get(f.id, {})) for f in features]


def get_feature(feature_id: uuid.UUID) -> Feature:
    feature = db.session.get(Feature, feature_id)
    if feature is None:
        raise NotFound(f"feature {feature_id} does not exist")
    return feature


def list_providers() -> list[tuple[Provider, int]]:
    """Each provider with how many models it offers."""
    model_count = (
        select(func.count(AIModel.id)).where(AIModel.provider_id == Provider.id).scalar_subquery()
    )
    return [
        tuple(row)
        for row in db.session.execute(select(Provider, model_count).order_by(Provider.name))
    ]


def list_models() -> list[tuple[AIModel, str]]:
    """Each model with its provider's display name."""
    rows = db.session.execute(
        select(AIModel, Provider.display_name)
        .join(Provider, Provider.id == AIModel.provider_id)
        .order_by(Provider.display_name, AIModel.name)
    )
    return [tuple(row) for row in rows]


def list_prompts() -> list[tuple[Prompt, str | None]]:
    rows = db.session.execute(
        select(Prompt, Feature.display_name)
        .outerjoin(Feature, Feature.id == Prompt.feature_id)
        .order_by(Prompt.name, Prompt.version.desc())
    )
    return [tuple(row) for row in rows]


def list_budgets() -> list[tuple[Budget, str | None]]:
    rows = db.session.execute(
        select(Budget, Feature.display_name)
        .outerjoin(Feature, Feature.id == Budget.feature_id)
        .order_by(Budget.start_date.desc(), Budget.name)
    )
    return [tuple(row) for row in rows]


def list_experiments() -> list[tuple[Experiment, str]]:
    rows = db.session.execute(
        select(Experiment, Feature.display_name)
        .join(Feature, Feature.id == Experiment.feature_id)
        .order_by(Experiment.created_at.desc())
    )
    return [tuple(row) for row in rows]
