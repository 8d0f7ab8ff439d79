"""Managing API keys: issuing one (its secret is returned once and never stored), revoking
one, and listing them with what each key's ingestion did in the last 24 hours.

The secret exists only in ``create_api_key``'s return value: the row holds its SHA-256,
audit rows and every listing hold the visible ``prefix`` only."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import ApiKey, ApiKeyIngestion, Feature, User
from webapp.models.apps import REJECTION_CODES, rejection_column
from webapp.services.apps.schemas import ApiKeyCreate
from webapp.services.apps.secrets import new_secret, secret_hash, secret_prefix
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.validation import check

RESOURCE = "api_key"
# The figures cover the current hour and the 23 before it: the counters are hourly.
INGESTION_HOURS = 24


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"an API key named {name!r} is in use; revoke it or choose another name", "name"
    )


def name_in_use(name: str) -> bool:
    """Whether an unrevoked key has ``name`` (a friendly early answer; the partial unique
    index is what holds under concurrency)."""
    taken = db.session.scalar(
        select(ApiKey.id).where(ApiKey.name == name, ApiKey.revoked_at.is_(None)).limit(1)
    )
    return taken is not None


def create_api_key(
    actor: Actor, values: Mapping[str, Any], now: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key and its secret, which the caller shows once: only its hash is kept.
    ``ValidationFailed`` names every wrong field; ``Conflict`` (field ``name``) when an
    unrevoked key has the name, also when it was taken a moment ago by a parallel request
    (the partial unique index decides)."""
    now = now or datetime.now(UTC)
    checked = check(ApiKeyCreate, values)
    errors = dict(checked.errors)
    expires_at = checked.values.get("expires_at")
    if expires_at is not None and expires_at <= now:
        errors["expires_at"] = "must be in the future"
    feature_ids: list[uuid.UUID] = checked.values.get("feature_ids") or []
    if feature_ids and "feature_ids" not in errors:
        known = set(db.session.scalars(select(Feature.id).where(Feature.id.in_(feature_ids))))
        missing = [str(feature_id) for feature_id in feature_ids if feature_id not in known]
        if missing:
            errors["feature_ids"] = f"names no feature: {', '.join(missing)}"
    if errors:
        raise ValidationFailed(errors)
    new = checked.valid()
    if name_in_use(new.name):
        raise _name_taken(new.name)

    secret = new_secret(new.environment)
    key = ApiKey(
        name=new.name,
        prefix=secret_prefix(secret),
        secret_hash=secret_hash(secret),
        environment=new.environment,
        scopes=list(new.scopes),
        feature_ids=[str(feature_id) for feature_id in new.feature_ids],
        expires_at=new.expires_at,
        created_by=actor.user_id,
    )
    db.session.add(key)
    try:
        db.session.flush()
    except IntegrityError:  # the same name, made by someone else since the check above
        db.session.rollback()
        raise _name_taken(new.name) from None
    add_audit_row(actor, "api_key.create", RESOURCE, key.id, new_values=_audited(key))
    db.session.commit()
    return key, secret


def _audited(key: ApiKey) -> dict[str, Any]:
    """What the audit trail says of a key: never the secret nor its hash."""
    return {
        "name": key.name,
        "prefix": key.prefix,
        "environment": key.environment,
        "scopes": list(key.scopes),
        "features": list(key.feature_ids),
        "expires": key.expires_at,
    }


def get_api_key(key_id: uuid.UUID) -> ApiKey:
    key = db.session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} does not exist")
    return key


def revoke_api_key(actor: Actor, key_id: uuid.UUID, now: datetime | None = None) -> ApiKey:
    """Revoke the key: the next request with its secret is refused (authentication reads
    the row every time). Revoking a revoked key changes nothing and audits nothing; of two
    admins revoking at once, one conditional UPDATE wins and only it is audited."""
    now = now or datetime.now(UTC)
    key = get_api_key(key_id)
    revoked = db.session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor.user_id)
        .execution_options(synchronize_session=False)
    )
    if getattr(revoked, "rowcount", 0) == 1:
        add_audit_row(
            actor,
            "api_key.revoke",
            RESOURCE,
            key_id,
            old_values={"revoked_at": None},
            new_values={**_audited(key), "revoked_at": now},
        )
    db.session.commit()
    db.session.refresh(key)
    return key


# --- Listing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyIngestion:
    """One key's ingestion over the last 24 hours (all shards and hours summed);
    ``last_event_at`` is the last event ever received, so a silent key shows since when."""

    accepted: int = 0
    completed: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECTION_CODES, 0))
    last_event_at: datetime | None = None

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "completed": self.completed,
            "duplicates": self.duplicates,
            "rejected": dict(self.rejected),
            "rejected_total": self.rejected_total,
            "last_event_at": self.last_event_at,
        }


@dataclass(frozen=True)
class KeyListing:
    key: ApiKey
    created_by_email: str | None
    ingestion: KeyIngestion
    status: str  # "active", "expired" or "revoked"


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def ingestion_window_start(now: datetime) -> datetime:
    """The first hour the figures count: the current hour and the 23 before it."""
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour - timedelta(hours=INGESTION_HOURS - 1)


def ingestion_by_key(now: datetime | None = None) -> dict[uuid.UUID, KeyIngestion]:
    """Every key's figures, summed by the database (two GROUP BY queries)."""
    now = now or datetime.now(UTC)
    counters = ["accepted", "completed", "duplicates"] + [
        rejection_column(code) for code in REJECTION_CODES
    ]
    sums = db.session.execute(
        select(
            ApiKeyIngestion.api_key_id,
            *(func.coalesce(func.sum(getattr(ApiKeyIngestion, name)), 0) for name in counters),
        )
        .where(ApiKeyIngestion.hour >= ingestion_window_start(now))
        .group_by(ApiKeyIngestion.api_key_id)
    ).all()
    last_events: dict[uuid.UUID, datetime | None] = {
        key_id: last
        for key_id, last in db.session.execute(
            select(ApiKeyIngestion.api_key_id, func.max(ApiKeyIngestion.last_event_at)).group_by(
                ApiKeyIngestion.api_key_id
            )
        )
    }
    figures: dict[uuid.UUID, KeyIngestion] = {}
    for key_id, *values in sums:
        numbers = dict(zip(counters, (int(value) for value in values), strict=True))
        figures[key_id] = KeyIngestion(
            accepted=numbers["accepted"],
            completed=numbers["completed"],
            duplicates=numbers["duplicates"],
            rejected={code: numbers[rejection_column(code)] for code in REJECTION_CODES},
            last_event_at=last_events.get(key_id),
        )
    for key_id, last in last_events.items():
        figures.setdefault(key_id, KeyIngestion(last_event_at=last))
    return figures


def list_api_keys(now: datetime | None = None) -> list[KeyListing]:
    """Every key, unrevoked first, then newest first, with its creator and its 24-hour
    ingestion figures: the /api-keys page and the admin API both read this."""
    now = now or datetime.now(UTC)
    rows = db.session.execute(
        select(ApiKey, User.email)
        .outerjoin(User, User.id == ApiKey.created_by)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.created_at.desc(), ApiKey.name)
    ).all()
    figures = ingestion_by_key(now)
    return [
        KeyListing(key, email, figures.get(key.id, KeyIngestion()), key_status(key, now))
        for key, email in rows
    ]


def key_as_dict(key: ApiKey, ingestion: KeyIngestion | None = None) -> dict[str, Any]:
    """A key as the admin API answers it (no secret, no hash)."""
    now = datetime.now(UTC)
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "environment": key.environment,
        "scopes": list(key.scopes),
        "feature_ids": list(key.feature_ids),
        "expires_at": key.expires_at,
        "created_at": key.created_at,
        "created_by": key.created_by,
        "last_used_at": key.last_used_at,
        "revoked_at": key.revoked_at,
        "revoked_by": key.revoked_by,
        "status": key_status(key, now),
        "ingestion": (ingestion or KeyIngestion()).as_dict(),
    }


def listing_as_dict(listing: KeyListing) -> dict[str, Any]:
    return {**key_as_dict(listing.key, listing.ingestion), "status": listing.status}
