"""Prompt templates. Each (feature, name) has numbered versions; in each environment at
most one version is live (``PromptActivation``), and ``Prompt.is_active`` mirrors the one
live in production."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model, check_in, created_at_column, updated_at_column, uuid_pk
from webapp.models.features import ENVIRONMENTS
from webapp.models.types import JSONType, UTCDateTime, utcnow

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
    # True exactly when this version is live in production (an open PromptActivation row
    # for production): kept in the same transaction by services/prompts/environments.py,
    # so the seed's API, its filters and the index below keep their meaning.
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


ACTIVATION_ACTIONS = ("activate", "promote", "rollback")
LIVE_WITH_FEATURE = sa.text("deactivated_at IS NULL AND feature_id IS NOT NULL")
LIVE_WITHOUT_FEATURE = sa.text("deactivated_at IS NULL AND feature_id IS NULL")


class PromptActivation(Model):
    """One period during which a version was live for its family in one environment.

    A row is live while ``deactivated_at`` is NULL (no separate flag that could disagree);
    closed rows are the history (who, when, what it replaced). The family's key (feature,
    name) is copied from the version so that the database itself allows one live row per
    (feature, name, environment), with and without a feature, like ``Prompt``'s indexes.
    ``version`` is copied too: history stays readable after an old version is deleted
    (``prompt_id`` becomes NULL; a live row's version cannot be deleted)."""

    __tablename__ = "prompt_activations"
    __table_args__ = (
        sa.CheckConstraint(check_in("environment", ENVIRONMENTS), name="environment"),
        sa.CheckConstraint(check_in("action", ACTIVATION_ACTIONS), name="action"),
        sa.CheckConstraint(
            "deactivated_at IS NOT NULL OR prompt_id IS NOT NULL", name="live_has_prompt"
        ),
        _partial_unique(
            "uq_prompt_activations_feature_live",
            LIVE_WITH_FEATURE,
            "feature_id",
            "name",
            "environment",
        ),
        _partial_unique(
            "uq_prompt_activations_global_live", LIVE_WITHOUT_FEATURE, "name", "environment"
        ),
        sa.Index("ix_prompt_activations_family", "name", "feature_id", "environment"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    feature_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_features.id", ondelete="SET NULL")  # follows its prompts
    )
    name: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    environment: Mapped[str] = mapped_column(sa.String(20), nullable=False)
    prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_prompts.id", ondelete="SET NULL"), index=True
    )
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    previous_prompt_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("ai_prompts.id", ondelete="SET NULL"), index=True
    )
    previous_version: Mapped[int | None] = mapped_column(sa.Integer)
    action: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default="activate", server_default="activate"
    )
    activated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, nullable=False, default=utcnow, server_default=sa.func.now()
    )
    activated_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deactivated_by: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    def __repr__(self) -> str:
        return f"<PromptActivation {self.name} v{self.version} {self.environment}>"
