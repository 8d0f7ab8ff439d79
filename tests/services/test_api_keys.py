"""Issuing, revoking and listing API keys: the rules, the audit trail, the 24-hour
ingestion figures, and that a secret can never be read back."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests import factories
from webapp.models import ApiKey, ApiKeyIngestion, AuditLog
from webapp.services.apps import keys
from webapp.services.apps.authentication import KeyRefused, authenticate_secret
from webapp.services.apps.secrets import SECRET_PATTERN, secret_hash
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.validation import JsonInput

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)
ACTOR = Actor(None, "203.0.113.9", "pytest")


def values(**fields):
    base = {"name": "photo-tagger", "environment": "production", "scopes": ["usage:write"]}
    return JsonInput({**base, **fields})


def key_count(db) -> int:
    return db.session.scalar(select(func.count()).select_from(ApiKey)) or 0


def audit_rows(db) -> list[AuditLog]:
    return list(
        db.session.scalars(
            select(AuditLog).where(AuditLog.resource_type == "api_key").order_by(AuditLog.id)
        )
    )


def test_a_new_key_has_a_secret_of_the_issue_format_and_only_its_hash_is_stored(db):
    key, secret = keys.create_api_key(ACTOR, values(environment="staging"))
    assert SECRET_PATTERN.fullmatch(secret)
    assert secret.startswith("aipm_stg_") and len(secret.split("_")[2]) >= 32
    assert key.prefix == secret[: len(key.prefix)] and len(key.prefix) < len(secret)
    db.session.expire_all()
    row = db.session.get(ApiKey, key.id)
    assert row.secret_hash == secret_hash(secret)
    stored = [getattr(row, column.key) for column in ApiKey.__table__.columns]
    assert all(secret not in str(value) for value in stored)
    assert authenticate_secret(secret).id == key.id


def test_two_keys_never_share_a_secret_or_prefix(db):
    first = keys.create_api_key(ACTOR, values(name="a"))
    second = keys.create_api_key(ACTOR, values(name="b"))
    assert first[1] != second[1] and first[0].prefix != second[0].prefix


def test_fields_are_stored_as_given(db):
    chatbot, search = factories.feature("chatbot"), factories.feature("search")
    db.session.commit()
    expires = NOW + timedelta(days=30)
    key, _ = keys.create_api_key(
        ACTOR,
        values(
            name="  chat app  ",
            environment="development",
            scopes=["config:read", "usage:write", "config:read"],
            feature_ids=[str(search.id), str(chatbot.id), str(search.id)],
            expires_at=expires.isoformat(),
        ),
        now=NOW,
    )
    assert key.name == "chat app"
    assert key.environment == "development"
    assert key.scopes == ["usage:write", "config:read"]
    assert key.feature_ids == [str(search.id), str(chatbot.id)]
    assert key.expires_at == expires
    assert key.revoked_at is None and key.last_used_at is None


def test_no_features_means_every_feature(db):
    key, secret = keys.create_api_key(ACTOR, values(feature_ids=[]))
    assert key.feature_ids == []
    assert authenticate_secret(secret).may_use_feature(uuid.uuid4())


def test_a_form_may_send_an_expiry_without_a_zone_which_is_utc(db):
    form = {**values(), "expires_at": "2026-12-01T08:15"}  # a plain dict: a form's values
    key, _ = keys.create_api_key(ACTOR, form, now=NOW)
    assert key.expires_at == datetime(2026, 12, 1, 8, 15, tzinfo=UTC)


def test_creating_is_audited_without_the_secret_or_its_hash(db):
    feature = factories.feature("chatbot")
    db.session.commit()
    key, secret = keys.create_api_key(
        ACTOR,
        values(feature_ids=[str(feature.id)], expires_at=(NOW + timedelta(days=1)).isoformat()),
        now=NOW,
    )
    (row,) = audit_rows(db)
    assert row.action == "api_key.create" and row.resource_id == key.id
    assert str(row.ip_address) == "203.0.113.9"
    assert row.new_values == {
        "name": "photo-tagger",
        "prefix": key.prefix,
        "environment": "production",
        "scopes": ["usage:write"],
        "features": [str(feature.id)],
        "expires": (NOW + timedelta(days=1)).isoformat(),
    }
    dumped = json.dumps([row.old_values, row.new_values, row.user_agent])
    assert secret not in dumped and secret_hash(secret) not in dumped
    assert secret[len(key.prefix) :] not in dumped


BAD_INPUT = [
    ({"name": ""}, "name", "is required"),
    ({"name": "   "}, "name", "is required"),
    ({"name": None}, "name", "is required"),
    ({"name": "x" * 201}, "name", "must be at most 200 characters"),
    ({"name": 5}, "name", "must be text"),
    ({"environment": "prod"}, "environment", "must be one of development, staging, production"),
    ({"environment": None}, "environment", "must be one of"),
    ({"scopes": []}, "scopes", "must name at least one of usage:write, config:read"),
    ({"scopes": "usage:write"}, "scopes", "must be a list of scopes"),
    ({"scopes": ["usage:write", "admin"]}, "scopes", "may only hold usage:write, config:read"),
    ({"scopes": [1]}, "scopes", "must be a list of scopes"),
    ({"feature_ids": "all"}, "feature_ids", "must be a list of feature ids"),
    ({"feature_ids": ["not-a-uuid"]}, "feature_ids", "item 1 is not a feature id"),
    ({"feature_ids": [7]}, "feature_ids", "item 1 is not a feature id"),
    ({"feature_ids": [str(uuid.UUID(int=1))]}, "feature_ids", "names no feature"),
    ({"expires_at": "tomorrow"}, "expires_at", "must be a date and time with a time zone"),
    ({"expires_at": "2027-01-01T00:00:00"}, "expires_at", "with a time zone"),
    ({"expires_at": 1893456000}, "expires_at", "must be a date and time"),
    ({"expires_at": "9999-12-31T23:30:00-05:00"}, "expires_at", "outside the range of dates"),
    ({"expires_at": "2026-11-20T12:29:59Z"}, "expires_at", "must be in the future"),
    ({"expires_at": "2026-11-20T12:30:00Z"}, "expires_at", "must be in the future"),
    ({"secret": "aipm_prd_" + "a" * 40}, "secret", "is not a field of an API key"),
    ({"prefix": "mine"}, "prefix", "is not a field of an API key"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_INPUT)
def test_bad_input_names_the_field_and_changes_nothing(db, change, field, message):
    with pytest.raises(ValidationFailed) as refused:
        keys.create_api_key(ACTOR, values(**change), now=NOW)
    assert field in refused.value.errors, refused.value.errors
    assert message in refused.value.errors[field]
    assert key_count(db) == 0 and audit_rows(db) == []


def test_a_missing_field_is_required():
    with pytest.raises(ValidationFailed) as refused:
        keys.create_api_key(ACTOR, JsonInput({}), now=NOW)
    assert refused.value.errors == {
        "name": "is required",
        "environment": "is required",
        "scopes": "is required",
    }


def test_every_wrong_field_is_named_at_once(db):
    with pytest.raises(ValidationFailed) as refused:
        keys.create_api_key(
            ACTOR,
            values(
                name="",
                environment="x",
                scopes=[],
                feature_ids=[str(uuid.uuid4())],
                expires_at="2020-01-01T00:00:00Z",
            ),
            now=NOW,
        )
    assert set(refused.value.errors) == {
        "name",
        "environment",
        "scopes",
        "feature_ids",
        "expires_at",
    }


def test_the_name_is_unique_among_unrevoked_keys(db):
    first, _ = keys.create_api_key(ACTOR, values())
    with pytest.raises(Conflict) as refused:
        keys.create_api_key(ACTOR, values(environment="staging"))
    assert refused.value.field == "name"
    assert key_count(db) == 1 and len(audit_rows(db)) == 1
    keys.revoke_api_key(ACTOR, first.id)
    second, _ = keys.create_api_key(ACTOR, values())  # a revoked key's name is free again
    assert second.id != first.id


def test_a_name_taken_by_a_parallel_request_is_a_conflict_from_the_index(db, monkeypatch):
    keys.create_api_key(ACTOR, values())
    monkeypatch.setattr(keys, "name_in_use", lambda name: False)  # the check saw no key yet
    with pytest.raises(Conflict) as refused:
        keys.create_api_key(ACTOR, values())
    assert refused.value.field == "name"
    db.session.rollback()
    assert key_count(db) == 1 and len(audit_rows(db)) == 1


def test_revoking_takes_effect_on_the_next_authentication(db):
    key, secret = keys.create_api_key(ACTOR, values())
    assert authenticate_secret(secret).id == key.id
    revoked = keys.revoke_api_key(ACTOR, key.id, now=NOW)
    assert revoked.revoked_at == NOW
    with pytest.raises(KeyRefused) as refused:
        authenticate_secret(secret)
    assert refused.value.reason == "revoked"


def test_revoking_is_audited_once_and_is_idempotent(db):
    key, secret = keys.create_api_key(ACTOR, values())
    keys.revoke_api_key(ACTOR, key.id, now=NOW)
    again = keys.revoke_api_key(ACTOR, key.id, now=NOW + timedelta(hours=1))
    assert again.revoked_at == NOW  # unchanged
    rows = audit_rows(db)
    assert sorted(row.action for row in rows) == ["api_key.create", "api_key.revoke"]
    (revoke,) = [row for row in rows if row.action == "api_key.revoke"]
    assert revoke.action == "api_key.revoke" and revoke.resource_id == key.id
    assert revoke.old_values == {"revoked_at": None}
    assert revoke.new_values["revoked_at"] == NOW.isoformat()
    assert revoke.new_values["prefix"] == key.prefix
    dumped = json.dumps([revoke.old_values, revoke.new_values])
    assert secret not in dumped and secret_hash(secret) not in dumped


def test_revoking_an_unknown_key_is_not_found(db):
    with pytest.raises(NotFound):
        keys.revoke_api_key(ACTOR, uuid.uuid4())
    assert audit_rows(db) == []


def _counters(key, hour, shard=0, **counts):
    row = ApiKeyIngestion(api_key_id=key.id, hour=hour, shard=shard, **counts)
    factories.db.session.add(row)
    return row


def test_the_list_sums_shards_and_hours_of_the_last_24_hours(db):
    key, _ = factories.api_key(name="tagger")
    quiet, _ = factories.api_key(name="quiet")
    db.session.flush()
    this_hour = NOW.replace(minute=0)
    _counters(key, this_hour, 0, accepted=5, duplicates=1, rejected_invalid=2)
    _counters(key, this_hour, 3, accepted=7, completed=2, rejected_too_old=1)
    _counters(
        key,
        this_hour - timedelta(hours=23),
        1,
        accepted=10,
        rejected_invalid=1,
        last_event_at=this_hour - timedelta(hours=23),
    )
    _counters(key, this_hour, 5, accepted=1, last_event_at=NOW - timedelta(minutes=2))
    # The 25th hour back is outside the window.
    _counters(key, this_hour - timedelta(hours=24), 0, accepted=1000, rejected_in_future=9)
    # A key silent for two days still shows its last event.
    _counters(
        quiet, this_hour - timedelta(days=2), 2, accepted=4, last_event_at=NOW - timedelta(days=2)
    )
    db.session.commit()
    listed = {listing.key.name: listing for listing in keys.list_api_keys(now=NOW)}
    figures = listed["tagger"].ingestion
    assert (figures.accepted, figures.completed, figures.duplicates) == (23, 2, 1)
    assert figures.rejected == {
        "invalid": 3,
        "unknown_feature": 0,
        "feature_not_allowed": 0,
        "too_old": 1,
        "in_future": 0,
        "too_large": 0,
    }
    assert figures.rejected_total == 4
    assert figures.last_event_at == NOW - timedelta(minutes=2)
    silent = listed["quiet"].ingestion
    assert silent.accepted == 0 and silent.rejected_total == 0
    assert silent.last_event_at == NOW - timedelta(days=2)


def test_a_key_without_ingestion_lists_zeros(db):
    keys.create_api_key(ACTOR, values())
    (listing,) = keys.list_api_keys()
    assert listing.ingestion.as_dict() == {
        "accepted": 0,
        "completed": 0,
        "duplicates": 0,
        "rejected": dict.fromkeys(
            (
                "invalid",
                "unknown_feature",
                "feature_not_allowed",
                "too_old",
                "in_future",
                "too_large",
            ),
            0,
        ),
        "rejected_total": 0,
        "last_event_at": None,
    }


def test_the_list_orders_keys_in_use_first_and_says_their_status(db):
    factories.api_key(name="old", created_at=NOW - timedelta(days=3))
    factories.api_key(name="new", created_at=NOW - timedelta(days=1))
    factories.api_key(
        name="expired", created_at=NOW - timedelta(days=2), expires_at=NOW - timedelta(hours=1)
    )
    factories.api_key(name="gone", created_at=NOW, revoked_at=NOW)
    db.session.commit()
    listings = keys.list_api_keys(now=NOW)
    assert [(item.key.name, item.status) for item in listings] == [
        ("new", "active"),
        ("expired", "expired"),
        ("old", "active"),
        ("gone", "revoked"),
    ]


def test_the_list_and_its_answer_never_hold_a_secret(db):
    key, secret = keys.create_api_key(ACTOR, values())
    (listing,) = keys.list_api_keys()
    answer = json.dumps(keys.listing_as_dict(listing), default=str)
    assert secret not in answer and secret_hash(secret) not in answer
    assert "secret" not in keys.listing_as_dict(listing)
    assert keys.listing_as_dict(listing)["prefix"] == key.prefix
