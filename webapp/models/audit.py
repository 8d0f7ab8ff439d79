"""The audit trail: one row per admin action, written in the action's own transaction."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, uuid_pk
from webapp.models.types import IPAddress, JSONType, UTCDateTime, utcnow


class AuditLog(Model):
    __tablename__ = "platform_audit_logs"

    id: Mapped[uuid.UUID] = uuid_pk()
    # Users are deactivated, never deleted, so the reference is kept (no ON DELETE action).
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(sa.String(100), nullable=False)
    resource_type: Mapped[str] = mapped_column(sa.String(50), nullable=False, index=True)
    resource_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    # The resource's name when the row was written ("AI Chatbot", "greeting v3"), so the
    # log still reads well once the resource is renamed or deleted.
    resource_name: Mapped[str | None] = mapped_column(sa.String(300))
    old_values: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    new_values: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    ip_address: Mapped[str | None] = mapped_column(IPAddress)
    user_agent: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        nullable=False,
        default=utcnow,
        server_default=sa.func.now(),
        index=True,
    )


class AuditEventWindow(Model):
    """How often one repeated event (a throttled sign-in from one address, a refused
    request of one user) happened in one time window. The audit log is append-only, so a
    flood is recorded as one audit row (written by the window's first event) plus this
    counter, which later events of the window increment."""

    __tablename__ = "audit_event_windows"
    __table_args__ = (sa.CheckConstraint("event_count >= 1", name="event_count_positive"),)

    action: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    # "address:<ip>" or "user:<uuid>": who repeats the event.
    subject: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    event_count: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=1, server_default="1"
    )
    last_seen_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, server_default=sa.func.now()
    )
