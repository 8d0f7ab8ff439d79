"""Runs of a prompt version on a model from the prompt page's playground (issue 18): the
history the page shows, each with the usage row that counts it in spending."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, check_in, created_at_column, uuid_pk
from webapp.models.features import ENVIRONMENTS
from webapp.models.types import ExactNumeric, JSONType

RUN_STATUSES = ("success", "error")


class PromptRun(Model):
    __tablename__ = "prompt_runs"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", RUN_STATUSES), name="status"),
        sa.CheckConstraint(check_in("environment", ENVIRONMENTS), name="environment"),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND latency_ms >= 0",
            name="counts_non_negative",
        ),
        sa.CheckConstraint("cost_usd >= 0", name="cost_non_negative"),
        # The history of a prompt family is read newest first.
        sa.Index("ix_prompt_runs_family_created", "feature_id", "prompt_name", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # The version run; its family (feature, name) is copied so the history outlives the
    # deletion of an old version, like prompt_activations.
    prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_prompts.id", ondelete="SET NULL"), index=True
    )
    feature_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="SET NULL")
    )
    prompt_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    prompt_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_models.id", ondelete="SET NULL"), index=True
    )
    model_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    environment: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Two runs started together by "Compare" share a group.
    compare_group: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    variables: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    params: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    output: Mapped[str] = mapped_column(sa.Text, nullable=False, default="", server_default="")
    # A failed run: the provider's HTTP status (None when none came back) and its message.
    error_status: Mapped[int | None] = mapped_column(sa.Integer)
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    input_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    output_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    latency_ms: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    time_to_first_token_ms: Mapped[int | None] = mapped_column(sa.Integer)
    cost_usd: Mapped[Decimal] = mapped_column(
        ExactNumeric(10, 6), nullable=False, default=Decimal(0), server_default="0"
    )
    # The usage row (no foreign key: ai_usage_logs may be partitioned by time, and its
    # rows are pruned on their own schedule).
    usage_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_at: Mapped[datetime] = created_at_column()
