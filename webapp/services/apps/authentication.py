"""Which API key a request's secret names, and what that key may do."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update

from webapp.extensions import db
from webapp.models import ApiKey
from webapp.services.apps.secrets import looks_like_secret, secret_hash

# ``last_used_at`` is written at most this often per key (not on every request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
# When this process last wrote each key's ``last_used_at``: most requests skip the UPDATE.
_written_at: dict[uuid.UUID, datetime] = {}


@dataclass(frozen=True)
class KeyRefused(Exception):
    """The secret names no usable key: unknown, revoked or expired (all answered 401)."""

    reason: str  # "missing", "malformed", "unknown", "revoked", "expired"


@dataclass(frozen=True)
class AuthenticatedKey:
    """What a request may do, read once from the key's row."""

    id: uuid.UUID
    prefix: str
    environment: str
    scopes: frozenset[str]
    feature_ids: frozenset[uuid.UUID]  # empty: every feature

    def may_use_feature(self, feature_id: uuid.UUID) -> bool:
        return not self.feature_ids or feature_id in self.feature_ids


def authenticate_secret(secret: str | None, now: datetime | None = None) -> AuthenticatedKey:
    """The key whose secret this is, or ``KeyRefused``. Looked up by hash (the index makes
    the comparison; a timing difference could only reveal a hash, never a secret)."""
    if not secret:
        raise KeyRefused("missing")
    if not looks_like_secret(secret):
        raise KeyRefused("malformed")
    key = db.session.scalar(select(ApiKey).where(ApiKey.secret_hash == secret_hash(secret)))
    if key is None:
        raise KeyRefused("unknown")
    now = now or datetime.now(UTC)
    if key.revoked_at is not None:
        raise KeyRefused("revoked")
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyRefused("expired")
    return AuthenticatedKey(
        id=key.id,
        prefix=key.prefix,
        environment=key.environment,
        scopes=frozenset(key.scopes),
        feature_ids=frozenset(uuid.UUID(value) for value in key.feature_ids),
    )


def mark_used(key_id: uuid.UUID, now: datetime | None = None) -> None:
    """Record that the key was used, unless that was recorded less than a minute ago:
    one conditional UPDATE that changes nothing (and locks nothing for long) most times.
    Commits its own short transaction, before the request's work."""
    now = now or datetime.now(UTC)
    written = _written_at.get(key_id)
    if written is not None and now - written < LAST_USED_RESOLUTION:
        return
    _written_at[key_id] = now
    db.session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )
    db.session.commit()
