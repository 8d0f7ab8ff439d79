"""Every AI request an application made: tokens, latency, cost and outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, check_in, uuid_pk
from webapp.models.types import ExactNumeric, JSONType, UTCDateTime, utcnow

USAGE_STATUSES = ("pending", "success", "error", "timeout")

COST = ExactNumeric(10, 6)  # USD, micro-dollar precision like the seed's DECIMAL(10,6)


class UsageLog(Model):
    """The seed's row plus input/output token counts, which cost computation needs
    (providers price input and output tokens differently); ``tokens_used`` is their sum."""

    __tablename__ = "ai_usage_logs"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", USAGE_STATUSES), name="status"),
        sa.CheckConstraint(
            "input_tokens >= 0 AND output_tokens >= 0 AND tokens_used >= 0",
            name="tokens_non_negative",
        ),
        sa.CheckConstraint(
            "tokens_used = input_tokens + output_tokens "
            "OR (input_tokens = 0 AND output_tokens = 0)",
            name="tokens_total",
        ),
        sa.CheckConstraint("response_time_ms >= 0", name="response_time_non_negative"),
        sa.CheckConstraint("cost_usd >= 0", name="cost_non_negative"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    feature_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="SET NULL"), index=True
    )
    model_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_models.id", ondelete="SET NULL"), index=True
    )
    prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_prompts.id", ondelete="SET NULL")
    )
    # End users and organisations of the calling application, not console users.
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    organization_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid, index=True)
    request_data: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    response_data: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    input_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    output_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    tokens_used: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    response_time_ms: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    cost_usd: Mapped[Decimal] = mapped_column(
        COST, nullable=False, default=Decimal(0), server_default="0"
    )
    status: Mapped[str] = mapped_column(
        sa.String(20),
        nullable=False,
        default="pending",
        server_default="pending",
        index=True,
    )
    error_message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        nullable=False,
        default=utcnow,
        server_default=sa.func.now(),
        index=True,
    )
