"""The applications that call the console: their API keys, the idempotency ledger of the
usage events they report, and per-key ingestion counters."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, check_in, created_at_column, uuid_pk
from webapp.models.features import ENVIRONMENTS
from webapp.models.types import JSONType, UTCDateTime, utcnow

API_KEY_SCOPES = ("usage:write", "config:read")
# The code of every reason an event is refused, in the order the key's figures list them.
REJECTION_CODES = (
    "invalid",
    "unknown_feature",
    "feature_not_allowed",
    "too_old",
    "in_future",
    "too_large",
)


class ApiKey(Model):
    """A key an admin issued to one application. Only a SHA-256 hash of the secret is
    kept: the secret has 190 bits of randomness, so a slow password hash would add nothing
    but latency to every request. ``prefix`` is the visible start of the secret."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.CheckConstraint(check_in("environment", ENVIRONMENTS), name="environment"),
        # Unique among keys in use; a revoked key's name may be given to a new key.
        sa.Index(
            "uq_api_keys_name_unrevoked",
            "name",
            unique=True,
            postgresql_where=sa.text("revoked_at IS NULL"),
            sqlite_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    prefix: Mapped[str] = mapped_column(sa.String(32), nullable=False, unique=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    environment: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    # Feature ids as text; empty means every feature.
    feature_ids: Mapped[list[str]] = mapped_column(JSONType, nullable=False, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = created_at_column()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    def __repr__(self) -> str:
        return f"<ApiKey {self.prefix}>"


class UsageEventId(Model):
    """Every usage event id an application reported, per environment: the idempotency
    ledger. It is its own table (not a unique index on ``ai_usage_logs``) so uniqueness
    still holds once the usage table is partitioned by time, where a unique index must
    include the partition key. Rows older than the acceptance window
    (``USAGE_MAX_AGE_DAYS``) can be pruned: such events are refused as too old anyway."""

    __tablename__ = "usage_event_ids"

    environment: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    usage_log_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, nullable=False)
    # The usage row's timestamp: finds the row (and its partition) for pending → final.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    is_final: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


def _counter() -> Mapped[int]:
    return mapped_column(sa.BigInteger, nullable=False, default=0, server_default="0")


class ApiKeyIngestion(Model):
    """What one key's ingestion did per hour: accepted, completed, duplicate and refused
    events by reason. Writers add to one of ``ROLLUP_SHARDS`` rows per hour, chosen per
    transaction, so concurrent batches of one key do not queue on one row; readers sum."""

    __tablename__ = "api_key_ingestion"

    api_key_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    shard: Mapped[int] = mapped_column(sa.SmallInteger, primary_key=True)
    accepted: Mapped[int] = _counter()
    completed: Mapped[int] = _counter()
    duplicates: Mapped[int] = _counter()
    rejected_invalid: Mapped[int] = _counter()
    rejected_unknown_feature: Mapped[int] = _counter()
    rejected_feature_not_allowed: Mapped[int] = _counter()
    rejected_too_old: Mapped[int] = _counter()
    rejected_in_future: Mapped[int] = _counter()
    rejected_too_large: Mapped[int] = _counter()
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def rejection_column(code: str) -> str:
    """The counter column of a rejection code."""
    return f"rejected_{code}"
