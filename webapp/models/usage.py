"""Every AI request an application made: tokens, latency, cost and outcome."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, check_in, uuid_pk
from webapp.models.features import ENVIRONMENTS
from webapp.models.types import ExactNumeric, JSONType, UTCDateTime, utcnow

USAGE_STATUSES = ("pending", "success", "error", "timeout")
# Where a row's cost came from: the application's own figure, the catalog's prices, or
# nowhere (a model the catalog does not know, and no figure reported).
COST_SOURCES = ("reported", "catalog", "unpriced")

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
        sa.CheckConstraint(check_in("environment", ENVIRONMENTS), name="environment"),
        sa.CheckConstraint(check_in("cost_source", COST_SOURCES), name="cost_source"),
        sa.CheckConstraint(
            "cache_read_input_tokens >= 0 AND cache_write_input_tokens >= 0 "
            "AND reasoning_tokens >= 0 AND images >= 0",
            name="detail_counts_non_negative",
        ),
        # input_tokens includes cached tokens, output_tokens includes reasoning tokens.
        sa.CheckConstraint(
            "cache_read_input_tokens + cache_write_input_tokens <= input_tokens",
            name="cached_within_input",
        ),
        sa.CheckConstraint("reasoning_tokens <= output_tokens", name="reasoning_within_output"),
        # The alert on models the catalog does not know, and attaching their rows when an
        # admin adds the model, look rows up by the reported name.
        sa.Index(
            "ix_ai_usage_logs_unknown_model_name",
            "model_name",
            postgresql_where=sa.text("model_id IS NULL AND model_name IS NOT NULL"),
            sqlite_where=sa.text("model_id IS NULL AND model_name IS NOT NULL"),
        ),
        # Usage lists page newest first with ``(created_at, id) < (:t, :id)``: one range.
        sa.Index("ix_ai_usage_logs_created_at_id", "created_at", "id"),
        # PostgreSQL: one partition per UTC month (webapp/services/usage/partitions.py,
        # migration 0012_scale); SQLite ignores this and keeps a plain table.
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # The primary key is (id, created_at): a partitioned table's unique constraints must
    # hold the partition key. Ingestion's uniqueness lives in usage_event_ids.
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
        primary_key=True,
    )
    # Reported by applications (migration 0008). Rows written before keep the defaults.
    environment: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="production", server_default="production"
    )
    # The application's idempotency id (unique per environment through ``usage_event_ids``).
    event_id: Mapped[str | None] = mapped_column(sa.String(128))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="SET NULL")
    )
    # The model and provider as the application named them (kept when the catalog does
    # not know them, so the rows can be attached once an admin adds the model).
    model_name: Mapped[str | None] = mapped_column(sa.String(200))
    provider_name: Mapped[str | None] = mapped_column(sa.String(200))
    model_version: Mapped[str | None] = mapped_column(sa.String(100))
    cache_read_input_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    cache_write_input_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    reasoning_tokens: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=0, server_default="0"
    )
    images: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0, server_default="0")
    cost_source: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="catalog", server_default="catalog"
    )
    session_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    event_metadata: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
