"""The configuration revision: one counter that grows with every change that can alter
what an application is told (GET /api/v1/config)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Model


class ConfigRevision(Model):
    """A single row (``id = 1``). Every use case that changes configuration bumps it in its
    own transaction, so a reader that sees revision n sees every change up to n. One hot
    row is fine: configuration changes are rare admin actions, and the bump is the last
    statement before the commit, so the row lock is held only for the commit itself."""

    __tablename__ = "config_revision"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="single_row"),
        sa.CheckConstraint("revision >= 0", name="revision_non_negative"),
    )

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    revision: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, server_default="0")
