"""Prompt templates. Each (feature, name) has numbered versions; at most one is active."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, created_at_column, updated_at_column, uuid_pk
from webapp.models.types import JSONType

WITH_FEATURE = sa.text("feature_id IS NOT NULL")
WITHOUT_FEATURE = sa.text("feature_id IS NULL")
ACTIVE_WITH_FEATURE = sa.text("is_active AND feature_id IS NOT NULL")
ACTIVE_WITHOUT_FEATURE = sa.text("is_active AND feature_id IS NULL")


def _partial_unique(name: str, where: sa.TextClause, *columns: str) -> sa.Index:
    return sa.Index(name, *columns, unique=True, postgresql_where=where, sqlite_where=where)


class Prompt(Model):
    """The seed's UNIQUE(feature_id, name, version) let duplicate versions through when
    feature_id is NULL (NULLs are distinct). Partial unique indexes make versions unique
    with and without a feature, and allow one active version per (feature, name)."""

    __tablename__ = "ai_prompts"
    __table_args__ = (
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
        _partial_unique(
            "uq_ai_prompts_feature_name_version",
            WITH_FEATURE,
            "feature_id",
            "name",
            "version",
        ),
        _partial_unique("uq_ai_prompts_global_name_version", WITHOUT_FEATURE, "name", "version"),
        _partial_unique(
            "uq_ai_prompts_feature_name_active",
            ACTIVE_WITH_FEATURE,
            "feature_id",
            "name",
        ),
        _partial_unique("uq_ai_prompts_global_name_active", ACTIVE_WITHOUT_FEATURE, "name"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(sa.Text)
    content: Mapped[str] = mapped_column(sa.Text, nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1, server_default="1")
    feature_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="SET NULL"), index=True
    )
    tags: Mapped[list[str]] = mapped_column(
        JSONType, nullable=False, default=list, server_default=sa.text("'[]'")
    )
    # {"name": {"type": "string|number|boolean", "default": ..., "description": ...}}
    variables: Mapped[dict[str, Any]] = mapped_column(
        JSONType, nullable=False, default=dict, server_default=sa.text("'{}'")
    )
    is_active: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false(), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    def __repr__(self) -> str:
        return f"<Prompt {self.name} v{self.version}>"
