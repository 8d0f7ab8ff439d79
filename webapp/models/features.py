"""AI features (photo tagging, chatbot, …) and which model serves each one where."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import (
    Model,
    check_in,
    created_at_column,
    updated_at_column,
    uuid_pk,
)
from webapp.models.providers import MODEL_TYPES
from webapp.models.types import JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.providers import AIModel

FEATURE_STATUSES = ("active", "inactive", "maintenance")
ENVIRONMENTS = ("development", "staging", "production")


class Feature(Model):
    __tablename__ = "ai_features"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", FEATURE_STATUSES), name="status"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
        sa.CheckConstraint(check_in("model_type", MODEL_TYPES), name="model_type"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(100), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    # The type of model the feature needs (MODEL_TYPES): only such models serve it.
    model_type: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    status: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="active", server_default="active"
    )
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    def __repr__(self) -> str:
        return f"<Feature {self.name}>"


class FeatureModelAssignment(Model):
    """One deployment of a model for a feature in an environment.

    Deactivated rows are kept as history; the partial unique index allows at most one
    *active* row per (feature, environment) — the seed's plain UNIQUE forbade history.
    """

    __tablename__ = "feature_model_assignments"
    __table_args__ = (
        sa.CheckConstraint(check_in("environment", ENVIRONMENTS), name="environment"),
        sa.CheckConstraint(
            "NOT is_active OR deactivated_at IS NULL", name="active_not_deactivated"
        ),
        sa.Index(
            "uq_feature_model_assignments_one_active",
            "feature_id",
            "environment",
            unique=True,
            postgresql_where=sa.text("is_active"),
            sqlite_where=sa.text("is_active"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    feature_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="CASCADE"), nullable=False, index=True
    )
    model_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_models.id", ondelete="CASCADE"), nullable=False, index=True
    )
    environment: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="production", server_default="production"
    )
    is_active: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false(), index=True
    )
    config_overrides: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    assigned_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, server_default=sa.func.now()
    )
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    feature: Mapped[Feature] = relationship(lazy="raise")
    model: Mapped[AIModel] = relationship(lazy="raise")
