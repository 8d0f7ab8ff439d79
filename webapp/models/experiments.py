"""A/B experiments and the metric observations recorded for their variants."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import (
    Model,
    check_in,
    created_at_column,
    decimal_range_check,
    updated_at_column,
    uuid_pk,
)
from webapp.models.types import ExactNumeric, JSONType, UTCDateTime, utcnow

EXPERIMENT_TYPES = (
    "model_comparison",
    "prompt_testing",
    "parameter_tuning",
    "a_b_test",
)
EXPERIMENT_STATUSES = ("draft", "running", "paused", "completed", "cancelled")


class Experiment(Model):
    __tablename__ = "ai_experiments"
    __table_args__ = (
        sa.CheckConstraint(check_in("experiment_type", EXPERIMENT_TYPES), name="type"),
        sa.CheckConstraint(check_in("status", EXPERIMENT_STATUSES), name="status"),
        *decimal_range_check("p_value_range", "statistical_significance", "0", "1", nullable=True),
        sa.CheckConstraint(
            "start_date IS NULL OR end_date IS NULL OR end_date >= start_date",
            name="dates_ordered",
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    feature_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="CASCADE"), nullable=False, index=True
    )
    experiment_type: Mapped[str] = mapped_column(sa.String(50), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    variants: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONType, nullable=False, default=list, server_default=sa.text("'[]'")
    )
    traffic_allocation: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    status: Mapped[str] = mapped_column(
        sa.String(20),
        nullable=False,
        default="draft",
        server_default="draft",
        index=True,
    )
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    results: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    statistical_significance: Mapped[Decimal | None] = mapped_column(ExactNumeric(5, 4))
    winner_variant: Mapped[str | None] = mapped_column(sa.String(100))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()


class ExperimentResult(Model):
    __tablename__ = "experiment_results"

    id: Mapped[uuid.UUID] = uuid_pk()
    experiment_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_experiments.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    variant_id: Mapped[str] = mapped_column(sa.String(100), nullable=False, index=True)
    # Subjects of the calling application (end users, sessions), not console users.
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    session_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    metric_name: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    metric_value: Mapped[Decimal] = mapped_column(ExactNumeric(12, 4), nullable=False)
    # ``metadata`` is reserved by SQLAlchemy's declarative base; the column keeps its name.
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata",
        JSONType,
        nullable=False,
        default=dict,
        server_default=sa.text("'{}'"),
    )
    recorded_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        nullable=False,
        default=utcnow,
        server_default=sa.func.now(),
        index=True,
    )
