"""POST /api/v1/usage: every answer (200, 207, 422, 400, 401, 403, 413, 415), gzip, and
retries. On PostgreSQL these requests run as the database role ``application``, so the
row-level security policies of migration 0008 are exercised by every stored event."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from tests import factories
from tests.apps_api.test_key_authentication import bearer
from webapp.models import AIModel, ApiKeyIngestion, UsageEventId, UsageLog
from webapp.rls import current_database_role

URL = "/api/v1/usage"


@pytest.fixture
def secret(db):
    chatbot = factories.feature("chatbot")
    openai = factories.provider("openai")
    factories.model(openai, "gpt-4o", input_price_per_million=Decimal(10))
    factories.feature("search")
    _, secret = factories.api_key(environment="staging", features=(chatbot,))
    db.session.commit()
    return secret


def ev(event_id: str = "e1", **fields):
    stamp = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return {"id": event_id, "timestamp": stamp, "feature": "chatbot", "model": "gpt-4o"} | fields


def post(client, secret, body, **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    return client.post(URL, data=data, headers=bearer(secret) | headers)


def count(db, table) -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(table))


def test_all_stored_is_200(db, client, secret):
    answer = post(client, secret, {"events": [ev("a", input_tokens=1000), ev("b")]})
    assert answer.status_code == 200
    assert answer.json == {
        "success": True,
        "data": {"accepted": 2, "completed": 0, "duplicates": 0, "rejected": []},
    }
    row = db.session.scalars(select(UsageLog).where(UsageLog.event_id == "a")).one()
    assert (row.environment, row.cost_usd, row.cost_source) == (
        "staging",
        Decimal("0.01"),
        "catalog",
    )


def test_some_refused_is_207_and_the_good_ones_are_stored(db, client, secret):
    answer = post(
        client,
        secret,
        {"events": [ev("a"), ev("b", feature="search"), ev("c", feature="nope"), "x"]},
    )
    assert answer.status_code == 207
    assert answer.json["success"] is False
    assert answer.json["data"] == {
        "accepted": 1,
        "completed": 0,
        "duplicates": 0,
        "rejected": [
            {
                "index": 1,
                "id": "b",
                "code": "feature_not_allowed",
                "errors": {"feature": "is not a feature this API key may report for"},
            },
            {
                "index": 2,
                "id": "c",
                "code": "unknown_feature",
                "errors": {"feature": "is not a feature of this console"},
            },
            {"index": 3, "id": None, "code": "invalid", "errors": {"event": "must be an object"}},
        ],
    }
    assert count(db, UsageLog) == 1


def test_all_refused_is_422_and_changes_nothing_but_the_counters(db, client, secret):
    answer = post(
        client,
        secret,
        {
            "events": [
                ev("a", timestamp="2020-01-01T00:00:00Z"),
                ev("b", metadata={"x": "y" * 5000}),
            ]
        },
    )
    assert answer.status_code == 422
    assert answer.json["success"] is False
    assert [r["code"] for r in answer.json["data"]["rejected"]] == ["too_old", "too_large"]
    assert count(db, UsageLog) == count(db, UsageEventId) == 0
    figures = db.session.execute(
        select(
            func.sum(ApiKeyIngestion.rejected_too_old), func.sum(ApiKeyIngestion.rejected_too_large)
        )
    ).one()
    assert tuple(figures) == (1, 1)


def test_a_retry_of_the_same_batch_stores_nothing_twice(db, client, secret):
    batch = {"events": [ev("a"), ev("b", status="pending")]}
    assert post(client, secret, batch).json["data"]["accepted"] == 2
    again = post(client, secret, batch)
    assert again.status_code == 200
    assert again.json["data"] == {"accepted": 0, "completed": 0, "duplicates": 2, "rejected": []}
    final = post(client, secret, {"events": [ev("b", output_tokens=5)]})
    assert final.json["data"]["completed"] == 1
    assert count(db, UsageLog) == 2
    assert db.session.scalar(select(UsageLog.status).where(UsageLog.event_id == "b")) == "success"


def test_gzip_bodies_are_accepted(db, client, secret):
    body = gzip.compress(json.dumps({"events": [ev("a")]}).encode())
    answer = post(client, secret, body, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 200, answer.json
    assert answer.json["data"]["accepted"] == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"{not json", None),
        (b"\xff\xfe\x00", None),
        (b'{"events": [NaN]}', None),
        (b"[" * 100_000 + b"]" * 100_000, None),
        (b"[]", {"events": "is required: a list of 1 to 1,000 events"}),
        (b'{"event": []}', {"events": "is required: a list of 1 to 1,000 events"}),
        (b'{"events": {}}', {"events": "is required: a list of 1 to 1,000 events"}),
        (b'{"events": []}', {"events": "must contain at least 1 event"}),
        (
            json.dumps({"events": [{}] * 1001}).encode(),
            {"events": "must contain at most 1,000 events"},
        ),
    ],
)
def test_a_malformed_envelope_is_400_and_changes_nothing(db, client, secret, body, fields):
    answer = post(client, secret, body)
    assert answer.status_code == 400
    assert answer.json["success"] is False
    assert answer.json.get("fields") == fields
    assert count(db, UsageLog) == 0
    assert count(db, ApiKeyIngestion) == 0


def test_a_broken_gzip_body_is_400(db, client, secret):
    whole = gzip.compress(json.dumps({"events": [ev()]}).encode())
    for body in (b"not gzip at all", whole[:-12]):
        answer = post(client, secret, body, **{"Content-Encoding": "gzip"})
        assert answer.status_code == 400, body


def test_other_content_types_and_encodings_are_415(db, client, secret):
    body = json.dumps({"events": [ev()]}).encode()
    assert post(client, secret, body, **{"Content-Type": "text/plain"}).status_code == 415
    assert (
        post(client, secret, body, **{"Content-Type": "application/x-protobuf"}).status_code == 415
    )
    answer = post(client, secret, body, **{"Content-Encoding": "br"})
    assert answer.status_code == 415
    assert answer.json["success"] is False
    assert count(db, UsageLog) == 0


def test_a_body_over_5_mib_is_413(db, client, secret):
    big = json.dumps({"events": [ev(metadata={"x": "y" * (6 * 1024 * 1024)})]}).encode()
    answer = post(client, secret, big)
    assert answer.status_code == 413
    assert answer.json["success"] is False


def test_a_gzip_bomb_is_413_without_inflating_it(db, client, secret, monkeypatch):
    # 64 MiB of zeros compress to ~64 KiB: only 5 MiB + 1 byte may ever be inflated.
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\x00" * (1024 * 1024)
    bomb = b"".join(compressor.compress(chunk) for _ in range(64)) + compressor.flush()
    assert len(bomb) < 5 * 1024 * 1024
    inflated: list[int] = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args, **kwargs):
            self.inner = real(*args, **kwargs)

        def decompress(self, data, max_length=0):
            out = self.inner.decompress(data, max_length)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self.inner, name)

    monkeypatch.setattr(zlib, "decompressobj", Counting)
    answer = post(client, secret, bomb, **{"Content-Encoding": "gzip"})
    assert answer.status_code == 413
    assert sum(inflated) <= 5 * 1024 * 1024 + 1  # in all, not only per step


def test_a_large_gzip_body_within_the_limit_is_read_whole(db, client, secret):
    events = [ev(f"e{i}", request_data={"x": "y" * 5000}) for i in range(1000)]
    body = json.dumps({"events": events}).encode()
    assert 4 * 1024 * 1024 < len(body) < 5 * 1024 * 1024
    answer = post(client, secret, gzip.compress(body), **{"Content-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.json["data"]["accepted"] == 1000


def test_keys_are_required_with_the_scope(db, client, secret):
    body = {"events": [ev()]}
    assert client.post(URL, json=body).status_code == 401
    _, reader = factories.api_key(scopes=("config:read",))
    db.session.commit()
    assert post(client, reader, body).status_code == 403
    assert count(db, UsageLog) == 0


def test_the_request_runs_as_the_application_database_role(db, client, secret, monkeypatch):
    from webapp.services.apps import ingestion_groups

    seen: list[str] = []
    real = ingestion_groups.ingest_batches

    def spy(key, batches):
        seen.append(current_database_role())
        return real(key, batches)

    monkeypatch.setattr(ingestion_groups, "ingest_batches", spy)
    assert post(client, secret, {"events": [ev()]}).status_code == 200
    assert seen == ["application"]


def test_text_no_database_can_store_is_refused_per_event(db, client, secret):
    # JSON may carry NUL characters and unpaired surrogates; PostgreSQL can store neither.
    events = [
        json.dumps(ev("nul", model="gpt\u00004o")),
        json.dumps(ev("surrogate", request_data={"q": "x"})).replace('"x"', '"\\udb72"'),
        json.dumps(ev("fine")),
    ]
    body = ('{"events": [' + ", ".join(events) + "]}").encode()
    answer = post(client, secret, body)
    assert answer.status_code == 207
    rejected = {item["id"]: item for item in answer.json["data"]["rejected"]}
    assert rejected["nul"]["errors"] == {"model": "must not contain NUL characters"}
    assert rejected["nul"]["code"] == "invalid"
    assert "request_data.q" in rejected["surrogate"]["errors"]
    assert answer.json["data"]["accepted"] == 1
    assert count(db, UsageLog) == 1


@pytest.mark.parametrize(
    ("fields", "field", "problem"),
    [
        # Each count fits 32 bits, their sum (tokens_used) would not.
        ({"input_tokens": 2**31 - 1, "output_tokens": 2**31 - 1}, "input_tokens", "at most"),
        ({"timestamp": "0001-01-01T00:00:00+01:00"}, "timestamp", "between the years"),
        ({"timestamp": "9999-12-31T23:59:59-14:00"}, "timestamp", "between the years"),
    ],
)
def test_values_past_what_the_columns_hold_are_refused_not_a_500(
    db, client, secret, fields, field, problem
):
    answer = post(client, secret, {"events": [ev("big", **fields), ev("fine")]})
    assert answer.status_code == 207
    (rejected,) = answer.json["data"]["rejected"]
    assert rejected["code"] == "invalid"
    assert problem in rejected["errors"][field]
    assert count(db, UsageLog) == 1


def test_a_uuid_id_is_one_event_whatever_its_spelling(db, client, secret):
    lower = "0f8fad5b-d9cb-469f-a165-70867728950e"
    first = post(client, secret, {"events": [ev(lower)]})
    again = post(client, secret, {"events": [ev(lower.upper()), ev(lower.replace("-", ""))]})
    assert first.json["data"]["accepted"] == 1
    assert again.json["data"]["duplicates"] == 2
    assert count(db, UsageLog) == 1


def test_only_the_key_that_reported_a_pending_event_may_complete_it(db, client, secret):
    other_feature = factories.feature("tagging")
    _, other = factories.api_key(environment="staging", features=(other_feature,))
    db.session.commit()
    post(client, secret, {"events": [ev("shared", status="pending", input_tokens=10)]})
    hijack = post(
        client,
        other,
        {"events": [ev("shared", feature="tagging", status="success", input_tokens=9999)]},
    )
    assert hijack.status_code == 200
    assert hijack.json["data"] == {"accepted": 0, "completed": 0, "duplicates": 1, "rejected": []}
    db.session.expire_all()
    row = db.session.scalar(select(UsageLog))
    assert (row.status, row.input_tokens) == ("pending", 10)
    mine = post(client, secret, {"events": [ev("shared", status="success", input_tokens=20)]})
    assert mine.json["data"]["completed"] == 1


# --- the catalog snapshot ingestion resolves names against (per process, by revision) ---

ADMIN_API = "/api/platform/ai-management"


def admin_write(admin_client, method, url, body):
    from tests.conftest import csrf_token

    headers = {"X-CSRFToken": csrf_token(admin_client, "/")}
    answer = admin_client.open(url, method=method, json=body, headers=headers)
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()["data"]


def test_a_catalog_change_through_the_admin_api_is_seen_by_the_next_batch(
    db, app, admin_client, secret
):
    applications = app.test_client()  # no session cookie: the application's own client
    first = post(applications, secret, {"events": [ev("a", input_tokens=1000)]})
    assert first.status_code == 200  # the snapshot of this revision is now cached
    model_id = db.session.scalar(select(UsageLog.model_id).where(UsageLog.event_id == "a"))

    admin_write(
        admin_client,
        "PUT",
        f"{ADMIN_API}/models/{model_id}",
        {"pricing": {"input_price_per_million": "20"}},
    )
    created = admin_write(
        admin_client,
        "POST",
        f"{ADMIN_API}/features",
        {"name": "newbie", "display_name": "New", "model_type": "llm"},
    )
    second = post(
        applications,
        secret,
        {"events": [ev("b", input_tokens=1000), ev("c", feature="newbie")]},
    )
    # The new price prices "b"; the new feature is known (the key may not report for it,
    # which is a different refusal than an unknown feature).
    assert second.status_code == 207
    assert second.json["data"]["rejected"][0]["code"] == "feature_not_allowed"
    costs = dict(db.session.execute(select(UsageLog.event_id, UsageLog.cost_usd)).all())
    assert costs == {"a": Decimal("0.01"), "b": Decimal("0.02")}
    assert created["name"] == "newbie"


def test_a_change_committed_elsewhere_is_seen_through_the_revision(db, app, secret):
    """Another worker's change reaches this process only through the configuration
    revision (no ORM flush here to drop the snapshot): a Core UPDATE plus the bump, as a
    use case of another process commits it."""
    from webapp.services.apps.config_revision import bump_config_revision
    from webapp.services.apps.ingestion_catalog import catalog_cache

    applications = app.test_client()
    assert post(applications, secret, {"events": [ev("a", input_tokens=1000)]}).status_code == 200
    cached = catalog_cache(app).current()
    models = AIModel.__table__
    db.session.execute(update(models).values(input_price_per_million=Decimal(30)))
    db.session.commit()
    # Not bumped yet: this process keeps its snapshot (what the revision is for).
    assert catalog_cache(app).current() is cached
    db.session.rollback()
    bump_config_revision()
    db.session.commit()
    assert post(applications, secret, {"events": [ev("b", input_tokens=1000)]}).status_code == 200
    costs = dict(db.session.execute(select(UsageLog.event_id, UsageLog.cost_usd)).all())
    assert costs == {"a": Decimal("0.01"), "b": Decimal("0.03")}


def test_a_factory_write_without_a_revision_bump_drops_the_snapshot(db, app, secret):
    applications = app.test_client()
    refused = post(applications, secret, {"events": [ev("a", model="gpt-5")]})
    assert refused.status_code == 200  # an unknown model is kept, unpriced
    factories.model(factories.provider("acme"), "gpt-5", input_price_per_million=Decimal(5))
    db.session.commit()
    answer = post(applications, secret, {"events": [ev("b", model="gpt-5", input_tokens=1000)]})
    assert answer.status_code == 200
    row = db.session.scalars(select(UsageLog).where(UsageLog.event_id == "b")).one()
    assert (row.cost_usd, row.cost_source) == (Decimal("0.005"), "catalog")
