"""ingest_events: every field rule and refusal code, idempotency, pending → final with the
rollup kept equal to the raw rows, model resolution and cost sources, the key's counters."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.services.test_usage_recording import _raw_sums
from tests.services.test_usage_recording import _rollup_sums as _all_rollup_sums
from tests.usage_rows import assert_hourly_rollup_equals_raw
from webapp.models import ApiKeyIngestion, UsageEventId, UsageLog
from webapp.rls import APPLICATION, use_database_role
from webapp.services.apps.authentication import AuthenticatedKey, authenticate_secret
from webapp.services.apps.ingestion import Rejection, ingest_events
from webapp.services.apps.reported_events import SUBJECT_NAMESPACE, subject_uuid
from webapp.services.usage.rollup import ROLLUP

D = Decimal
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ID_RULE = "must be a UUID or 1 to 128 characters of A-Z a-z 0-9 . _ : -"
RFC = "must be RFC 3339 with a time zone"
CACHED_11 = (
    "must include the cached tokens: cache_read_input_tokens + cache_write_input_tokens is 11"
)
OVER_16K = "must be at most 16 KiB as JSON (this is 16409 bytes)"
OVER_4K = "must be at most 4 KiB as JSON (this is 4109 bytes)"
TOO_OLD = "is more than 30 days in the past"
IN_FUTURE = "is more than 10 minutes in the future"


@pytest.fixture
def catalog(db):
    chatbot = factories.feature("chatbot")
    search = factories.feature("search")
    openai = factories.provider("openai")
    azure = factories.provider("azure")
    gpt = factories.model(
        openai,
        "gpt-4o",
        input_price_per_million=D(10),
        output_price_per_million=D(30),
        cache_read_price_per_million=D(1),
    )
    # The same name at a second provider, and a versioned entry at the first one.
    azure_gpt = factories.model(
        azure, "gpt-4o", input_price_per_million=D(20), output_price_per_million=D(60)
    )
    gpt_v2 = factories.model(
        openai,
        "gpt-4o",
        version="2024-08-06",
        input_price_per_million=D(5),
        output_price_per_million=D(15),
    )
    greeting = factories.prompt("greeting", 2, feature_id=chatbot.id)
    db.session.commit()
    return {
        "chatbot": chatbot,
        "search": search,
        "gpt": gpt,
        "azure_gpt": azure_gpt,
        "gpt_v2": gpt_v2,
        "greeting": greeting,
    }


def _rollup_sums() -> dict:
    """The rollup summed over shards, without the keys a completion emptied (their
    pending figures went out: minus in one shard, plus in another, zero in sum)."""
    return {key: sums for key, sums in _all_rollup_sums().items() if any(sums)}


def make_key(environment: str = "production", features=()) -> AuthenticatedKey:
    _, secret = factories.api_key(environment=environment, features=tuple(features))
    factories.db.session.commit()
    return authenticate_secret(secret)


def ev(event_id: str = "e1", **fields):
    event = {
        "id": event_id,
        "timestamp": "2026-11-20T11:00:00Z",
        "feature": "chatbot",
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 420,
    }
    event.update(fields)
    return {k: v for k, v in event.items() if v is not None}


def ingest(key, *events, now=NOW):
    return ingest_events(key, list(events), now=now)


def count(table) -> int:
    from webapp.extensions import db

    return db.session.scalar(select(func.count()).select_from(table))


def rows(db) -> list[UsageLog]:
    db.session.expire_all()
    return list(db.session.scalars(select(UsageLog).order_by(UsageLog.event_id)))


def counters(db, key) -> dict[str, int]:
    columns = [
        "accepted",
        "completed",
        "duplicates",
        "rejected_invalid",
        "rejected_unknown_feature",
        "rejected_feature_not_allowed",
        "rejected_too_old",
        "rejected_in_future",
        "rejected_too_large",
    ]
    sums = db.session.execute(
        select(*[func.coalesce(func.sum(getattr(ApiKeyIngestion, c)), 0) for c in columns]).where(
            ApiKeyIngestion.api_key_id == key.id
        )
    ).one()
    return {c: v for c, v in zip(columns, sums, strict=True) if v}


# --- one event, stored ------------------------------------------------------------------


def test_an_event_is_stored_with_everything_it_reports(db, catalog):
    key = make_key("staging")
    result = ingest(
        key,
        ev(
            input_tokens=1000,
            output_tokens=100,
            cache_read_input_tokens=400,
            reasoning_tokens=30,
            prompt={"name": "greeting", "version": 2},
            user_id="alice@example.com",
            session_id="6f1c1b36-6a43-4bd4-9c0a-0b4c5bda1a11",
            organization_id="acme",
            error_message="  kept  ",
            request_data={"q": "hi"},
            response_data={"a": "hello"},
            metadata={"region": "eu"},
        ),
    )
    assert result.accepted == 1 and not result.rejected
    (row,) = rows(db)
    assert row.environment == "staging"
    assert row.api_key_id == key.id
    assert row.event_id == "e1"
    assert row.feature_id == catalog["chatbot"].id
    assert row.model_id == catalog["gpt"].id  # openai's unversioned gpt-4o
    assert (row.model_name, row.provider_name) == ("gpt-4o", "openai")
    assert row.prompt_id == catalog["greeting"].id
    assert row.created_at == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    assert (row.input_tokens, row.output_tokens, row.tokens_used) == (1000, 100, 1100)
    assert (row.cache_read_input_tokens, row.reasoning_tokens) == (400, 30)
    assert row.response_time_ms == 420
    # 600 uncached × 10 + 400 cache reads × 1 + 100 out × 30, per million
    assert row.cost_usd == D("0.009400")
    assert row.cost_source == "catalog"
    assert row.user_id == uuid.uuid5(SUBJECT_NAMESPACE, "alice@example.com")
    assert row.session_id == uuid.UUID("6f1c1b36-6a43-4bd4-9c0a-0b4c5bda1a11")
    assert row.organization_id == uuid.uuid5(SUBJECT_NAMESPACE, "acme")
    assert row.error_message == "kept"
    assert (row.request_data, row.response_data, row.event_metadata) == (
        {"q": "hi"},
        {"a": "hello"},
        {"region": "eu"},
    )
    assert row.status == "success"
    assert _rollup_sums() == _raw_sums()


def test_subject_ids_map_to_stable_uuids():
    assert subject_uuid("alice") == subject_uuid("alice") != subject_uuid("bob")
    # Pinned: another namespace would split every end user's history in two.
    assert subject_uuid("alice") == uuid.UUID("66baabbc-40cd-5177-8fbf-6691cc4b8c2c")
    same = "0b7e6a52-3f4e-4f59-8d6a-1d1c4e0f9a10"
    assert subject_uuid(same) == uuid.UUID(same)


# --- every field rule -------------------------------------------------------------------


def test_every_wrong_field_is_named_at_once(db, catalog):
    key = make_key()
    bad = {
        "id": "has spaces",
        "timestamp": "2026-11-20 11:00:00",
        "feature": "",
        "model": 7,
        "provider": "p" * 201,
        "model_version": "v" * 101,
        "status": "done",
        "input_tokens": -1,
        "output_tokens": 1.5,
        "cache_read_input_tokens": "3",
        "cache_write_input_tokens": True,
        "reasoning_tokens": None,
        "images": 2**31,
        "latency_ms": "fast",
        "cost_usd": "0.1234567",
        "prompt": {"name": "", "version": 0, "other": 1},
        "user_id": 42,
        "session_id": "s" * 201,
        "error_message": "e" * 2001,
        "request_data": [],
        "metadata": "text",
        "surprise": 1,
    }
    (rejection,) = ingest(key, bad).rejected
    assert rejection.code == "invalid"
    assert rejection.id == "has spaces"
    assert rejection.errors == {
        "id": "must be a UUID or 1 to 128 characters of A-Z a-z 0-9 . _ : -",
        "timestamp": "must be RFC 3339 with a time zone",
        "feature": "is required",
        "model": "must be text",
        "provider": "must be at most 200 characters",
        "model_version": "must be at most 100 characters",
        "status": "must be one of pending, success, error, timeout",
        "input_tokens": "must be a whole number from 0",
        "output_tokens": "must be a whole number from 0",
        "cache_read_input_tokens": "must be a whole number from 0",
        "cache_write_input_tokens": "must be a whole number from 0",
        "reasoning_tokens": "must be a whole number from 0",
        "images": "must be a whole number from 0",
        "latency_ms": "must be a whole number from 0",
        "cost_usd": "must have at most 6 decimal places",
        "prompt.name": "is required",
        "prompt.version": "must be a whole number from 1",
        "prompt.other": "is not a field of a prompt reference (name, version)",
        "user_id": "must be text",
        "session_id": "must be at most 200 characters",
        "error_message": "must be at most 2000 characters",
        "request_data": "must be an object",
        "metadata": "must be an object",
        "surprise": "is not a field of a usage event",
    }
    assert count(UsageLog) == 0


@pytest.mark.parametrize(
    ("fields", "code", "errors"),
    [
        ({"id": None}, "invalid", {"id": "is required"}),
        ({"id": "x" * 129}, "invalid", {"id": ID_RULE}),
        ({"timestamp": None}, "invalid", {"timestamp": "is required"}),
        ({"timestamp": "2026-11-20T11:00:00"}, "invalid", {"timestamp": RFC}),
        ({"timestamp": "2026-02-30T11:00:00Z"}, "invalid", {"timestamp": RFC}),
        ({"feature": None}, "invalid", {"feature": "is required"}),
        ({"model": None}, "invalid", {"model": "is required"}),
        ({"cost_usd": -1}, "invalid", {"cost_usd": "must be from 0 to 9999.999999"}),
        ({"cost_usd": "abc"}, "invalid", {"cost_usd": "must be a decimal number"}),
        (
            {"input_tokens": 10, "cache_read_input_tokens": 8, "cache_write_input_tokens": 3},
            "invalid",
            {"input_tokens": CACHED_11},
        ),
        (
            {"output_tokens": 5, "reasoning_tokens": 6},
            "invalid",
            {"output_tokens": "must include the reasoning tokens (6)"},
        ),
        (
            {"prompt": {"name": "greeting", "version": 3}},
            "invalid",
            {"prompt": "names no prompt version of the feature chatbot (greeting version 3)"},
        ),
        (
            {"feature": "search", "prompt": {"name": "greeting", "version": 2}},
            "invalid",
            {"prompt": "names no prompt version of the feature search (greeting version 2)"},
        ),
        ({"feature": "nope"}, "unknown_feature", {"feature": "is not a feature of this console"}),
        ({"timestamp": "2026-10-21T11:59:59Z"}, "too_old", {"timestamp": TOO_OLD}),
        ({"timestamp": "2026-11-20T12:10:01Z"}, "in_future", {"timestamp": IN_FUTURE}),
        ({"request_data": {"x": "a" * 16_400}}, "too_large", {"request_data": OVER_16K}),
        ({"response_data": {"x": "a" * 16_400}}, "too_large", {"response_data": OVER_16K}),
        ({"metadata": {"x": "a" * 4_100}}, "too_large", {"metadata": OVER_4K}),
        # The first code of REJECTION_CODES wins; every problem is named.
        (
            {"feature": "nope", "timestamp": "2026-01-01T00:00:00Z", "status": "x"},
            "invalid",
            {
                "feature": "is not a feature of this console",
                "timestamp": "is more than 30 days in the past",
                "status": "must be one of pending, success, error, timeout",
            },
        ),
        (
            {"feature": "nope", "metadata": {"x": "a" * 4_100}},
            "unknown_feature",
            {
                "feature": "is not a feature of this console",
                "metadata": OVER_4K,
            },
        ),
    ],
)
def test_each_rule_refuses_with_its_code(db, catalog, fields, code, errors):
    key = make_key()
    result = ingest(key, _with(ev("bad"), fields))
    (rejection,) = result.rejected
    assert (rejection.code, rejection.errors) == (code, errors)
    assert count(UsageLog) == 0 and count(UsageEventId) == 0 and count(ROLLUP) == 0


def _with(event, fields):
    event = dict(event)
    for name, value in fields.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def test_limits_are_inclusive(db, catalog):
    key = make_key()
    result = ingest(
        key,
        ev("old", timestamp="2026-10-21T12:00:00Z"),  # exactly 30 days
        ev("soon", timestamp="2026-11-20T12:10:00+00:00"),  # exactly 10 minutes ahead
        ev("nanos", timestamp="2026-11-20T13:00:00.123456789+01:00"),
        ev("cached", input_tokens=10, cache_read_input_tokens=6, cache_write_input_tokens=4),
        ev(str(uuid.uuid4()), metadata={"x": "a" * (4096 - 9)}),
        ev("A-z0.9_:" + "x" * 120),
    )
    assert result.rejected == [] and result.accepted == 6
    stamps = {row.event_id: row.created_at for row in rows(db)}
    assert stamps["nanos"] == datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=UTC)


def test_the_age_limit_is_a_setting(app, db, catalog, monkeypatch):
    monkeypatch.setitem(app.config, "USAGE_MAX_AGE_DAYS", 2)
    key = make_key()
    (rejection,) = ingest(key, ev(timestamp="2026-11-17T12:00:00Z")).rejected
    assert rejection.errors == {"timestamp": "is more than 2 days in the past"}


def test_a_key_limited_to_features_refuses_the_others(db, catalog):
    key = make_key(features=[catalog["search"]])
    result = ingest(key, ev("a"), ev("b", feature="search"))
    assert result.accepted == 1
    assert result.rejected == [
        Rejection(
            0,
            "a",
            "feature_not_allowed",
            {"feature": "is not a feature this API key may report for"},
        )
    ]


def test_something_that_is_not_an_object_is_refused(db, catalog):
    result = ingest(make_key(), "event", ev("ok"))
    assert result.rejected == [Rejection(0, None, "invalid", {"event": "must be an object"})]
    assert result.accepted == 1


def test_a_refused_event_never_blocks_the_good_ones_and_a_refusal_changes_nothing(db, catalog):
    key = make_key()
    result = ingest(key, ev("a"), ev("b", feature="nope"), ev("c"))
    assert (result.accepted, [r.index for r in result.rejected]) == (2, [1])
    assert [row.event_id for row in rows(db)] == ["a", "c"]
    before = (count(UsageLog), count(UsageEventId), _rollup_sums())
    result = ingest(key, ev("d", feature="nope"), ev("e", status="?"))
    assert result.accepted == 0 and len(result.rejected) == 2
    assert (count(UsageLog), count(UsageEventId), _rollup_sums()) == before


# --- model and cost ---------------------------------------------------------------------


def test_models_are_resolved_by_name_provider_and_version(db, catalog):
    key = make_key()
    ingest(
        key,
        ev("1-openai", provider="OpenAI"),
        ev("2-azure", provider="azure"),
        ev("3-version", model_version="2024-08-06"),
        ev("4-unknown-version", model_version="1999"),  # falls back to the unversioned one
        ev("5-no-provider", provider=None),  # ambiguous: unversioned first, then by provider
        ev("6-unknown-provider", provider="acme"),
    )
    models = {row.event_id: row.model_id for row in rows(db)}
    assert models == {
        "1-openai": catalog["gpt"].id,
        "2-azure": catalog["azure_gpt"].id,
        "3-version": catalog["gpt_v2"].id,
        "4-unknown-version": catalog["gpt"].id,
        "5-no-provider": catalog["azure_gpt"].id,  # "azure" sorts before "openai"
        "6-unknown-provider": None,
    }


def test_an_unknown_model_is_kept_unpriced_and_a_reported_cost_wins(db, catalog):
    key = make_key()
    ingest(
        key,
        ev("a-unknown", model="llama-9", provider="meta"),
        ev("b-unknown-costed", model="llama-9", cost_usd="0.25"),
        ev("c-known-costed", cost_usd=0.1),
        ev("d-known"),
    )
    got = {
        row.event_id: (
            row.model_id,
            row.model_name,
            row.provider_name,
            row.cost_usd,
            row.cost_source,
        )
        for row in rows(db)
    }
    assert got == {
        "a-unknown": (None, "llama-9", "meta", D(0), "unpriced"),
        "b-unknown-costed": (None, "llama-9", "openai", D("0.25"), "reported"),
        "c-known-costed": (catalog["gpt"].id, "gpt-4o", "openai", D("0.1"), "reported"),
        "d-known": (catalog["gpt"].id, "gpt-4o", "openai", D("0.013"), "catalog"),
    }
    assert _rollup_sums() == _raw_sums()


# --- idempotency ------------------------------------------------------------------------


def test_the_same_batch_twice_stores_nothing_twice(db, catalog):
    key = make_key()
    batch = [ev("a"), ev("b", status="pending"), ev("c", status="error", error_message="boom")]
    first = ingest(key, *batch)
    assert (first.accepted, first.duplicates) == (3, 0)
    before = (
        [(r.id, r.status, r.input_tokens) for r in rows(db)],
        _rollup_sums(),
        count(UsageEventId),
    )
    again = ingest(key, *batch)
    assert (again.accepted, again.completed, again.duplicates, again.rejected) == (0, 0, 3, [])
    after = (
        [(r.id, r.status, r.input_tokens) for r in rows(db)],
        _rollup_sums(),
        count(UsageEventId),
    )
    assert after == before
    assert _rollup_sums() == _raw_sums()


def test_duplicates_inside_one_batch(db, catalog):
    key = make_key()
    result = ingest(
        key, ev("a"), ev("a", input_tokens=5), ev("b", status="pending"), ev("b", status="pending")
    )
    assert (result.accepted, result.completed, result.duplicates) == (2, 0, 2)
    assert {r.event_id: r.input_tokens for r in rows(db)} == {"a": 1000, "b": 1000}


def test_pending_then_final_in_one_batch_is_stored_final(db, catalog):
    key = make_key()
    result = ingest(
        key,
        ev("a", status="pending", input_tokens=0, output_tokens=0),
        ev("a", timestamp="2026-11-20T11:00:05Z", output_tokens=300),
        ev("a", output_tokens=999),
    )
    assert (result.accepted, result.completed, result.duplicates) == (1, 1, 1)
    (row,) = rows(db)
    assert (row.status, row.output_tokens) == ("success", 300)
    assert row.created_at == datetime(2026, 11, 20, 11, 0, tzinfo=UTC)  # the pending's time
    assert db.session.scalar(select(UsageEventId.is_final)) is True
    assert _rollup_sums() == _raw_sums()


def test_pending_then_final_moves_the_row_and_the_rollup_together(db, catalog):
    key = make_key()
    ingest(
        key,
        ev("a", status="pending", input_tokens=0, output_tokens=0, latency_ms=0),
        ev("b", status="pending", feature="search", model="llama-9"),
        ev("c"),
    )
    assert _rollup_sums() == _raw_sums()
    (pending_a,) = [r for r in rows(db) if r.event_id == "a"]
    result = ingest(
        key,
        ev(
            "a",
            timestamp="2026-11-20T11:00:09Z",
            input_tokens=2000,
            output_tokens=500,
            latency_ms=1800,
            status="error",
            error_message="rate limited",
            model_version="2024-08-06",
            response_data={"finish": "length"},
        ),
        ev("b", status="timeout", feature="search", model="llama-9", cost_usd="0.5"),
        ev("c", status="error"),  # already final: a duplicate
    )
    assert (result.accepted, result.completed, result.duplicates) == (0, 2, 1)
    got = {r.event_id: r for r in rows(db)}
    a = got["a"]
    assert a.id == pending_a.id and a.created_at == pending_a.created_at
    assert (a.status, a.input_tokens, a.output_tokens, a.tokens_used) == ("error", 2000, 500, 2500)
    assert (a.response_time_ms, a.error_message) == (1800, "rate limited")
    assert a.model_id == catalog["gpt_v2"].id and a.cost_usd == D("0.0175")
    assert a.response_data == {"finish": "length"}
    assert (got["b"].status, got["b"].cost_usd, got["b"].cost_source) == (
        "timeout",
        D("0.5"),
        "reported",
    )
    assert got["c"].status == "success"
    assert _rollup_sums() == _raw_sums()
    assert_hourly_rollup_equals_raw()
    # No pending rows remain in the rollup.
    assert not [k for k in _rollup_sums() if k[4] == "pending"]


def test_a_final_row_never_changes_again(db, catalog):
    key = make_key()
    ingest(key, ev("a", status="pending"))
    ingest(key, ev("a", output_tokens=7))
    before = ([(r.status, r.output_tokens) for r in rows(db)], _rollup_sums())
    again = ingest(key, ev("a", output_tokens=8), ev("a", status="pending", output_tokens=9))
    assert (again.completed, again.duplicates) == (0, 2)
    assert ([(r.status, r.output_tokens) for r in rows(db)], _rollup_sums()) == before


def test_the_same_id_in_another_environment_is_another_event(db, catalog):
    production, staging = make_key("production"), make_key("staging")
    assert ingest(production, ev("a")).accepted == 1
    assert ingest(staging, ev("a")).accepted == 1
    assert ingest(make_key("production"), ev("a")).duplicates == 1  # another key, same env
    assert sorted(r.environment for r in rows(db)) == ["production", "staging"]
    assert {k[5] for k in _rollup_sums()} == {"production", "staging"}


# --- counters ---------------------------------------------------------------------------


def test_counters_add_up_per_key_and_hour(db, catalog):
    key = make_key()
    ingest(key, ev("a"), ev("b", status="pending"), ev("c", feature="nope"))
    ingest(
        key,
        ev("a"),
        ev("b"),
        ev("d", timestamp="2027-01-01T00:00:00Z"),
        ev("e", metadata={"x": "y" * 5000}),
    )
    ingest(key, ev("f", status="?"), now=NOW + timedelta(minutes=5))  # all refused: counted too
    assert counters(db, key) == {
        "accepted": 2,
        "completed": 1,
        "duplicates": 1,
        "rejected_invalid": 1,
        "rejected_unknown_feature": 1,
        "rejected_in_future": 1,
        "rejected_too_large": 1,
    }
    hours = db.session.scalars(select(ApiKeyIngestion.hour).distinct()).all()
    assert hours == [datetime(2026, 11, 20, 12, 0, tzinfo=UTC)]
    last = db.session.scalar(select(func.max(ApiKeyIngestion.last_event_at)))
    assert last == NOW + timedelta(minutes=5)
    other = make_key()
    assert counters(db, other) == {}


# --- the application's database role (PostgreSQL row-level security) -------------------


def test_ingestion_works_under_the_application_role(db, catalog):
    key = make_key()
    use_database_role(APPLICATION)
    ingest(key, ev("a", status="pending"))
    result = ingest(key, ev("a"), ev("b"))
    assert (result.accepted, result.completed) == (1, 1)


# --- concurrency (PostgreSQL: real concurrent transactions) -----------------------------


def _at_once(app, calls):
    """Run each call in its own thread, app context and session, released together."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def run(index, call):
        with app.app_context():
            use_database_role(APPLICATION)
            barrier.wait()
            try:
                outcomes[index] = call()
            except Exception as error:  # asserted by the caller
                outcomes[index] = error
            finally:
                from webapp.extensions import db

                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_retries_of_one_batch_store_each_event_once(app, db, catalog, dialect):
    if dialect != "postgresql":
        pytest.skip("two real connections at once: PostgreSQL")
    key = make_key()
    batch = [ev(f"e{i}", status="pending" if i % 3 == 0 else "success") for i in range(50)]
    for _ in range(3):
        outcomes = _at_once(app, [lambda: ingest_events(key, batch, now=NOW)] * 4)
        assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    db.session.expire_all()
    assert count(UsageLog) == 50 and count(UsageEventId) == 50
    accepted = counters(db, key)["accepted"]
    assert accepted == 50
    assert counters(db, key)["duplicates"] == 50 * 11
    assert _rollup_sums() == _raw_sums()


def test_concurrent_finals_of_one_pending_complete_it_once(app, db, catalog, dialect):
    if dialect != "postgresql":
        pytest.skip("two real connections at once: PostgreSQL")
    key = make_key()
    ingest(key, *[ev(f"p{i}", status="pending") for i in range(20)])
    finals = [[ev(f"p{i}", output_tokens=tokens) for i in range(20)] for tokens in (111, 222, 333)]
    outcomes = _at_once(app, [lambda batch=b: ingest_events(key, batch, now=NOW) for b in finals])
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert sum(o.completed for o in outcomes) == 20
    assert sum(o.duplicates for o in outcomes) == 40
    db.session.expire_all()
    assert {r.status for r in rows(db)} == {"success"}
    assert count(UsageLog) == 20
    assert _rollup_sums() == _raw_sums()


def test_concurrent_mixed_batches_in_one_shard_do_not_deadlock(
    app, db, catalog, dialect, monkeypatch
):
    if dialect != "postgresql":
        pytest.skip("two real connections at once: PostgreSQL")
    import random

    from webapp.services.apps import ingestion

    monkeypatch.setattr(ingestion, "pick_shard", lambda: 0)  # every writer in one shard
    key = make_key()
    kinds = [("chatbot", "gpt-4o", "openai"), ("search", "llama-9", None), ("chatbot", "x", None)]

    def event(event_id, status, kind):
        feature, model, provider = kinds[kind]
        return ev(event_id, status=status, feature=feature, model=model, provider=provider)

    ingest(key, *[event(f"p{i}", "pending", i % 3) for i in range(30)])
    # Each writer's new rows land on "its" rollup row and its finals on the next writer's:
    # taken in two steps, those locks would make a circle with the ledger's.
    batches = []
    for writer in range(3):
        finals = [event(f"p{i}", "success", (writer + 1) % 3) for i in range(30)]
        fresh = [event(f"w{writer}-{i}", "success", writer) for i in range(40)]
        batch = finals + fresh
        random.Random(writer).shuffle(batch)
        batches.append(batch)
    outcomes = _at_once(app, [lambda b=b: ingest_events(key, b, now=NOW) for b in batches])
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert sum(o.completed for o in outcomes) == 30
    assert sum(o.accepted for o in outcomes) == 120
    db.session.expire_all()
    assert _rollup_sums() == _raw_sums()
