"""AI providers, the models they offer (with structured pricing) and their health checks."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import (
    Model,
    check_in,
    created_at_column,
    decimal_range_check,
    updated_at_column,
    uuid_pk,
)
from webapp.models.types import ExactNumeric, JSONType, UTCDateTime, utcnow

PROVIDER_STATUSES = ("active", "inactive", "error")
MODEL_STATUSES = ("available", "deprecated", "beta", "offline")
# What a model does, and what a feature needs (webapp.models.features): a model serves
# only features of its own type.
MODEL_TYPES = ("llm", "vision", "embedding")
HEALTH_STATUSES = ("healthy", "degraded", "down")

# Prices are USD; token prices are per one million tokens, as providers publish them.
PRICE = ExactNumeric(12, 6)


class Provider(Model):
    __tablename__ = "ai_providers"
    __table_args__ = (sa.CheckConstraint(check_in("status", PROVIDER_STATUSES), name="status"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(200), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    provider_type: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    status: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="active", server_default="active"
    )
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    api_endpoint: Mapped[str | None] = mapped_column(sa.Text)
    health_check: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    # The API key and extra headers, as one Fernet token (webapp/services/catalog/
    # credentials.py): never stored in clear, never shown again. The hint is the key's
    # last 4 characters, what the page and the API show ("set, ending …abcd").
    credentials_ciphertext: Mapped[str | None] = mapped_column(sa.Text)
    credentials_hint: Mapped[str | None] = mapped_column(sa.String(4))
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    def __repr__(self) -> str:
        return f"<Provider {self.name}>"


class AIModel(Model):
    """A model offered by a provider.

    The seed kept pricing as free JSON; here it is structured and validated so that every
    cost computation reads the same exact Decimal prices.
    """

    __tablename__ = "ai_models"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", MODEL_STATUSES), name="status"),
        sa.CheckConstraint(check_in("model_type", MODEL_TYPES), name="model_type"),
        sa.CheckConstraint("input_price_per_million >= 0", name="input_price_non_negative"),
        sa.CheckConstraint("output_price_per_million >= 0", name="output_price_non_negative"),
        sa.CheckConstraint(
            "price_per_request IS NULL OR price_per_request >= 0",
            name="request_price_non_negative",
        ),
        sa.CheckConstraint(
            "price_per_image IS NULL OR price_per_image >= 0",
            name="image_price_non_negative",
        ),
        sa.CheckConstraint(
            "cache_read_price_per_million IS NULL OR cache_read_price_per_million >= 0",
            name="cache_read_price_non_negative",
        ),
        sa.CheckConstraint(
            "cache_write_price_per_million IS NULL OR cache_write_price_per_million >= 0",
            name="cache_write_price_non_negative",
        ),
        # UNIQUE(provider_id, name, version) lets duplicates through when version is NULL
        # (NULLs are distinct); two partial indexes close that gap on both databases.
        sa.Index(
            "uq_ai_models_provider_name_version",
            "provider_id",
            "name",
            "version",
            unique=True,
            postgresql_where=sa.text("version IS NOT NULL"),
            sqlite_where=sa.text("version IS NOT NULL"),
        ),
        sa.Index(
            "uq_ai_models_provider_name_unversioned",
            "provider_id",
            "name",
            unique=True,
            postgresql_where=sa.text("version IS NULL"),
            sqlite_where=sa.text("version IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    display_name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    provider_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_providers.id", ondelete="CASCADE"), nullable=False, index=True
    )
    model_type: Mapped[str] = mapped_column(sa.String(100), nullable=False)  # MODEL_TYPES
    version: Mapped[str | None] = mapped_column(sa.String(50))
    config: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    performance_metrics: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    input_price_per_million: Mapped[Decimal] = mapped_column(
        PRICE, nullable=False, default=Decimal(0), server_default="0"
    )
    output_price_per_million: Mapped[Decimal] = mapped_column(
        PRICE, nullable=False, default=Decimal(0), server_default="0"
    )
    # Cached input tokens (reads from and writes to a provider's prompt cache); the input
    # price applies when unset.
    cache_read_price_per_million: Mapped[Decimal | None] = mapped_column(PRICE)
    cache_write_price_per_million: Mapped[Decimal | None] = mapped_column(PRICE)
    price_per_request: Mapped[Decimal | None] = mapped_column(PRICE)
    price_per_image: Mapped[Decimal | None] = mapped_column(PRICE)
    capabilities: Mapped[list[str]] = mapped_column(
        JSONType, nullable=False, default=list, server_default=sa.text("'[]'")
    )
    status: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="available", server_default="available"
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    provider: Mapped[Provider] = relationship(lazy="raise")

    def __repr__(self) -> str:
        return f"<AIModel {self.name}>"


class ProviderHealthLog(Model):
    __tablename__ = "provider_health_logs"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", HEALTH_STATUSES), name="status"),
        sa.CheckConstraint("health_score BETWEEN 0 AND 100", name="health_score_range"),
        *decimal_range_check("error_rate_percent", "error_rate", "0", "100", nullable=True),
        sa.CheckConstraint("response_time_ms >= 0", name="response_time_non_negative"),
        sa.CheckConstraint("throughput >= 0", name="throughput_non_negative"),
        # "Latest check of each provider" is the common read.
        sa.Index("ix_provider_health_logs_provider_checked", "provider_id", "checked_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    # Indexed by ix_provider_health_logs_provider_checked (provider_id comes first).
    provider_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("ai_providers.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    response_time_ms: Mapped[int | None] = mapped_column(sa.Integer)
    error_rate: Mapped[Decimal | None] = mapped_column(ExactNumeric(5, 2))
    throughput: Mapped[int | None] = mapped_column(sa.Integer)
    health_score: Mapped[int | None] = mapped_column(sa.Integer)
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    checked_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        nullable=False,
        default=utcnow,
        server_default=sa.func.now(),
        index=True,
    )
