"""Console users (the seed's ``user_profiles``): who may sign in, and with which role."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import (
    Model,
    check_in,
    created_at_column,
    updated_at_column,
    uuid_pk,
)
from webapp.models.types import UTCDateTime

ROLE_ADMIN = "platform_admin"
ROLE_VIEWER = "viewer"
ROLES = (ROLE_ADMIN, ROLE_VIEWER)


class User(UserMixin, Model):
    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(check_in("role", ROLES), name="role"),
        # Emails are stored lower-case so uniqueness is case-insensitive on both databases.
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.CheckConstraint("length(email) >= 3", name="email_not_empty"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(sa.String(320), unique=True, nullable=False)
    display_name: Mapped[str | None] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    role: Mapped[str] = mapped_column(
        sa.String(20), nullable=False, default=ROLE_VIEWER, server_default=ROLE_VIEWER
    )
    is_active_user: Mapped[bool] = mapped_column(
        "is_active", sa.Boolean, nullable=False, default=True, server_default=sa.true()
    )
    # Part of every session's identity: bumping it (sign-out, password change,
    # deactivation) invalidates every session cookie issued before, copies included.
    session_version: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=1, server_default="1"
    )
    # Set when the console generated the password (users page, create-admin
    # --generate-password): the user must choose their own at first sign-in.
    must_change_password: Mapped[bool] = mapped_column(
        sa.Boolean, nullable=False, default=False, server_default=sa.false()
    )
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # TOTP second factor: the secret encrypted at rest (Fernet, see services/mfa.py), when
    # it was enrolled, and the last time step a code was accepted for (no replays).
    mfa_secret: Mapped[str | None] = mapped_column(sa.Text)
    mfa_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    mfa_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = updated_at_column()

    # Flask-Login reads ``is_active``; the column is mapped as ``is_active_user`` so the
    # mixin's property and the column cannot shadow each other.
    @property
    def is_active(self) -> bool:
        return self.is_active_user

    def get_id(self) -> str:
        """Flask-Login's session token: the id and the session version (see load_user)."""
        return f"{self.id}.{self.session_version}"

    @property
    def has_mfa(self) -> bool:
        return self.mfa_enabled_at is not None

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"
