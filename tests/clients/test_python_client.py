"""The Python client (clients/python) against a live console over HTTP: the cache with
ETag revalidation, stale-if-error, the fallback bundle, the hard timeout, local variant
assignment, usage batching and retries without double counting, flush at exit, budget
reservations and refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import aipm_client
import pytest
from aipm_client import (
    BudgetExhausted,
    Client,
    ConsoleUnavailable,
    FeatureNotAllowed,
    Unauthorized,
    UnknownFeature,
)
from sqlalchemy import func, select

from tests import factories
from tests.clients.live import Fault, SlowServer
from webapp.models import ApiKey, BudgetReservation, UsageLog
from webapp.services.core.actor import Actor
from webapp.services.experiments import lifecycle as experiments
from webapp.services.spending.budgets import period_containing

CONFIG = "/api/v1/config/chatbot"
USAGE = "/api/v1/usage"


@pytest.fixture
def world(db):
    feature = factories.feature("chatbot")
    factories.feature("search")
    provider = factories.provider("openai")
    gpt4 = factories.model(provider, "gpt-4", config={"temperature": 1})
    mini = factories.model(provider, "gpt-4o-mini")
    factories.assignment(feature, gpt4)
    factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    _, secret = factories.api_key()
    _, limited = factories.api_key(features=(feature,))
    db.session.commit()
    return type(
        "World",
        (),
        {"feature": feature, "gpt4": gpt4, "mini": mini, "secret": secret, "limited": limited},
    )


def usage_rows(db) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(UsageLog))


def new_client(console, world, clock=None, **options):
    if clock is not None:
        options["clock"] = clock
    return Client(console.url, world.secret, **options)


def reassign(db, world, model) -> None:
    from webapp.services.catalog import assignments

    assignments.assign_model(Actor.cli(), world.feature.id, model.id, "production")
    db.session.commit()


def test_the_cache_honours_max_age_and_revalidates_with_the_etag(db, console, world, clock):
    client = new_client(console, world, clock)
    first = client.config("chatbot")
    assert first.source == "console" and first.model["name"] == "gpt-4"
    assert first.prompt("greeting")["version"] == 1
    clock.advance(29)
    assert client.config("chatbot").source == "cache"
    assert len(console.faults.requests(CONFIG)) == 1  # fresh: no request
    clock.advance(2)  # past max-age=30: revalidated, nothing changed
    again = client.config("chatbot")
    assert again.source == "console" and again.data == first.data
    seen = console.faults.requests(CONFIG)
    assert [s.status for s in seen] == [200, 304]
    clock.advance(29)  # the 304 renewed the answer's age
    assert client.config("chatbot").source == "cache"
    assert len(console.faults.requests(CONFIG)) == 2
    reassign(db, world, world.mini)
    clock.advance(2)
    changed = client.config("chatbot")
    assert changed.model["name"] == "gpt-4o-mini"
    assert [s.status for s in console.faults.requests(CONFIG)] == [200, 304, 200]


def test_stale_if_error_serves_the_cached_answer_while_the_console_errs(db, console, world, clock):
    client = new_client(console, world, clock)
    first = client.config("chatbot")
    console.faults.down = True  # 503 to everything
    clock.advance(31)
    stale = client.config("chatbot")
    assert stale.source == "stale" and stale.data == first.data
    assert console.faults.requests(CONFIG)[-1].status == 503
    asked = len(console.faults.requests(CONFIG))
    clock.advance(1)  # within retry_interval of the failure: not asked again
    assert client.config("chatbot").source == "stale"
    assert len(console.faults.requests(CONFIG)) == asked
    console.stop()  # unreachable now, not just failing
    clock.advance(3600)
    assert client.config("chatbot").source == "stale"
    clock.advance(86_400)  # past max-age + stale-if-error: nothing may stand in
    with pytest.raises(ConsoleUnavailable, match="chatbot"):
        client.config("chatbot")


def test_a_refusal_is_never_hidden_by_the_cache(db, console, world, clock):
    client = new_client(console, world, clock)
    client.config("chatbot")
    for key in db.session.scalars(select(ApiKey)):
        key.revoked_at = datetime.now(UTC)
    db.session.commit()
    clock.advance(31)
    with pytest.raises(Unauthorized, match="revoked"):
        client.config("chatbot")


def test_config_all_reads_every_feature_in_one_cached_request(db, console, world, clock):
    client = new_client(console, world, clock)
    every = client.config_all()
    assert sorted(every) == ["chatbot", "search"]
    assert every["chatbot"].model["name"] == "gpt-4" and every["search"].model is None
    clock.advance(10)
    assert client.config_all()["chatbot"].source == "cache"
    clock.advance(21)
    assert client.config_all()["chatbot"].source == "console"
    assert [s.status for s in console.faults.requests("/api/v1/config")] == [200, 304]
    console.faults.down = True
    clock.advance(31)
    assert client.config_all()["search"].source == "stale"


def test_the_fallback_bundle_answers_a_cold_start(app, db, console, world, clock, tmp_path):
    exported = app.test_cli_runner().invoke(
        args=["config", "export", "--environment", "production"]
    )
    assert exported.exit_code == 0, exported.output
    bundle = tmp_path / "bundle.json"
    bundle.write_text(exported.output)
    served = new_client(console, world).config("chatbot")
    console.stop()
    client = Client(console.url, world.secret, fallback_file=bundle, clock=clock)
    cold = client.config("chatbot")
    assert cold.source == "fallback"
    assert cold.data == json.loads(exported.output)["features"]["chatbot"] == served.data
    with pytest.raises(ConsoleUnavailable, match="fallback bundle has none"):
        client.config("not-in-the-bundle")
    clock.advance(3600)
    assert client.config("chatbot").source == "fallback"  # the console is still down
    without = Client(console.url, world.secret, clock=clock)
    with pytest.raises(ConsoleUnavailable, match="nothing is cached"):
        without.config("chatbot")
    everything = Client(console.url, world.secret, fallback_file=bundle, clock=clock).config_all()
    assert {name: answer.source for name, answer in everything.items()} == {
        "chatbot": "fallback",
        "search": "fallback",
    }


def test_a_bad_bundle_is_refused_at_construction(tmp_path, world):
    wrong = tmp_path / "bundle.json"
    wrong.write_text('{"environment": "production"}')
    with pytest.raises(ValueError, match="config export"):
        Client("http://127.0.0.1:1", world.secret, fallback_file=wrong)
    wrong.write_text('{"format": 2, "features": {}}')
    with pytest.raises(ValueError, match="format 2"):
        Client("http://127.0.0.1:1", world.secret, fallback_file=wrong)


@pytest.mark.parametrize("trickle", [False, True], ids=["hangs", "trickles"])
def test_the_timeout_bounds_the_whole_call(world, trickle):
    slow = SlowServer(trickle=trickle, interval=0.05)
    try:
        client = Client(slow.url, world.secret, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(ConsoleUnavailable, match=r"within 0\.5 s"):
            client.config("chatbot")
        elapsed = time.monotonic() - started
        # Without the deadline it would never end (the server never finishes); the slack
        # is for a loaded machine.
        assert 0.45 <= elapsed < 1.5, elapsed
        if trickle:
            assert slow.bytes_sent >= 3  # it kept sending: each byte alone was in time
        # The next call within retry_interval does not wait again.
        started = time.monotonic()
        with pytest.raises(ConsoleUnavailable):
            client.config("chatbot")
        assert time.monotonic() - started < 0.2
    finally:
        slow.stop()


def test_the_timeout_bounds_a_name_lookup_that_hangs(world, monkeypatch):
    import socket

    lookups = []

    def resolver_that_hangs(*args, **kwargs):
        lookups.append(args[0])
        time.sleep(3)
        raise OSError("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", resolver_that_hangs)
    client = Client("http://console.example.internal:8000", world.secret, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ConsoleUnavailable, match=r"within 0\.5 s"):
        client.config("chatbot")
    assert time.monotonic() - started < 1.5
    assert lookups == ["console.example.internal"]


def test_variants_are_the_servers_for_many_subjects_and_uneven_weights(
    db, console, world, admin_client
):
    prompts = [
        factories.prompt("greeting", n, feature_id=world.feature.id, content=f"v{n}")
        for n in (2, 3)
    ]
    experiment = experiments.create_experiment(
        Actor.cli(),
        {
            "name": "Three greetings",
            "feature_id": str(world.feature.id),
            "experiment_type": "prompt_testing",
            "variants": [
                {"id": "control", "name": "Now", "prompt_id": str(prompts[0].id)},
                {"id": "short", "name": "Short", "prompt_id": str(prompts[1].id)},
                {
                    "id": "warm",
                    "name": "Warm",
                    "prompt_id": str(prompts[0].id),
                    "params": {"temperature": 0.9},
                },
            ],
            "traffic_allocation": {"control": 12.5, "short": 60, "warm": 27.5},
            "config": {"primary_metric": "converted"},
        },
    )
    experiments.transition(Actor.cli(), experiment.id, "start")
    client = new_client(console, world)
    seen = {}
    for n in range(300):
        subject = f"user-{n}"
        mine = client.variant("chatbot", str(experiment.id), subject)
        theirs = admin_client.get(
            f"/api/platform/ai-management/experiments/{experiment.id}/assignment?subject={subject}"
        ).json["data"]
        assert mine is not None and mine.id == theirs["variant_id"], subject
        seen[mine.id] = seen.get(mine.id, 0) + 1
    assert set(seen) == {"control", "short", "warm"}
    assert seen["short"] > seen["warm"] > seen["control"]
    # The console's own ?subject= answer agrees too.
    answer = client.config("chatbot")
    assert (
        answer.variant(str(experiment.id), "user-7").id
        == experiments.assign(experiment.id, "user-7").variant["id"]
    )
    assert client.variant("chatbot", "00000000-0000-0000-0000-000000000000", "u") is None


def test_bucket_of_is_the_consoles(world):
    for n in range(200):
        experiment_id = uuid.uuid4()
        assert aipm_client.bucket_of(str(experiment_id), f"s{n}") == experiments.bucket_of(
            experiment_id, f"s{n}"
        )
    for weights in ([50, 50], [33.33, 33.33, 33.34], [0.01, 99.99], [10, 0, 90]):
        for bucket in (0, 1, 3332, 3333, 6665, 6666, 9998, 9999):
            assert aipm_client.variant_index(
                weights, bucket
            ) == experiments.variant_index_for_bucket(weights, bucket)


def test_record_sends_batches_bounded_by_size(db, console, world):
    client = new_client(console, world, batch_size=5, flush_interval=60)
    ids = [client.record("chatbot", "gpt-4", input_tokens=10, output_tokens=5) for _ in range(12)]
    assert len(set(ids)) == 12
    assert client.flush(10) is True
    assert [len(s.event_ids) for s in console.faults.requests(USAGE)] == [5, 5, 2]
    assert usage_rows(db) == 12
    client.close()


def test_record_sends_a_partial_batch_after_flush_interval(db, console, world):
    client = new_client(console, world, batch_size=100, flush_interval=0.2)
    client.record("chatbot", "gpt-4", input_tokens=1)
    deadline = time.monotonic() + 5
    while not console.faults.requests(USAGE) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(console.faults.requests(USAGE)) == 1  # without flush
    client.close()


def test_a_429_is_retried_after_retry_after_with_the_same_ids(db, console, world):
    console.faults.plan(Fault(USAGE, 429, {"Retry-After": "1"}))
    client = new_client(console, world)
    sent = {client.record("chatbot", "gpt-4", input_tokens=3) for _ in range(3)}
    assert client.flush(10) is True
    first, second = console.faults.requests(USAGE)
    assert (first.status, second.status) == (429, 200)
    assert set(first.event_ids) == set(second.event_ids) == sent
    assert second.at - first.at >= 1.0  # Retry-After honoured
    assert usage_rows(db) == 3
    client.close()


def test_a_lost_answer_is_resent_and_never_counted_twice(db, console, world):
    # The console stores the batch, then its answer is lost (503), then twice more a 502.
    console.faults.plan(
        Fault(USAGE, 503, after=True), Fault(USAGE, 502), Fault(USAGE, 502, after=True)
    )
    client = new_client(console, world, max_backoff=0.2)
    for _ in range(4):
        client.record("chatbot", "gpt-4", input_tokens=3)
    assert client.flush(10) is True
    seen = console.faults.requests(USAGE)
    assert [s.status for s in seen] == [503, 502, 502, 200]
    assert all(s.event_ids == seen[0].event_ids for s in seen)
    assert usage_rows(db) == 4
    assert client.rejected == [] and client.undelivered == []
    client.close()


def test_refused_events_are_kept_and_said_not_dropped_silently(db, console, world, caplog):
    client = new_client(console, world)
    good = client.record("chatbot", "gpt-4", input_tokens=1)
    bad = client.record("nope", "gpt-4", input_tokens=1)
    assert client.flush(10) is True
    assert [r.event["id"] for r in client.rejected] == [bad]
    assert client.rejected[0].code == "unknown_feature"
    assert bad in caplog.text and good not in caplog.text
    assert usage_rows(db) == 1
    client.close()


def test_a_full_queue_refuses_the_event_and_close_reports_what_was_not_sent(world):
    slow = SlowServer(trickle=False)
    try:
        client = Client(slow.url, world.secret, max_queue=2, batch_size=1, send_timeout=0.3)
        client.record("chatbot", "gpt-4")  # taken by the sender, which waits on the server
        deadline = time.monotonic() + 5
        while not slow.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        client.record("chatbot", "gpt-4")
        client.record("chatbot", "gpt-4")
        with pytest.raises(aipm_client.QueueFull, match="max_queue=2"):
            client.record("chatbot", "gpt-4")
        assert client.close(timeout=0.5) == 3
        assert len(client.undelivered) == 3
        with pytest.raises(aipm_client.ClientClosed):
            client.record("chatbot", "gpt-4")
    finally:
        slow.stop()


def test_events_queued_are_flushed_when_the_interpreter_exits(db, console, world):
    script = textwrap.dedent(
        f"""
        import gc
        from aipm_client import Client

        def handle_requests():
            client = Client({console.url!r}, {world.secret!r}, flush_interval=60)
            for n in range(3):
                client.record("chatbot", "gpt-4", input_tokens=n + 1, id=f"at-exit-{{n}}")

        handle_requests()  # the client itself is dropped: its queue is still sent at exit
        gc.collect()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert usage_rows(db) == 3
    assert console.faults.requests(USAGE)[0].event_ids == ["at-exit-0", "at-exit-1", "at-exit-2"]


def test_a_forked_child_sends_its_own_events(db, console, world):
    # A client made before a fork (gunicorn --preload): the child has no sender thread of
    # its own until it records; the parent's queue stays the parent's.
    script = textwrap.dedent(
        f"""
        import os
        from aipm_client import Client

        client = Client({console.url!r}, {world.secret!r}, flush_interval=60)
        client.record("chatbot", "gpt-4", id="before-fork")
        child = os.fork()
        if child == 0:
            client.record("chatbot", "gpt-4", id="in-child")
            assert client.flush(10)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        assert status == 0, status
        assert client.flush(10)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert usage_rows(db) == 2
    sent = sorted(i for seen in console.faults.requests(USAGE) for i in seen.event_ids)
    assert sent == ["before-fork", "in-child"]


def test_reserve_admits_then_refuses_with_402_and_settles_by_record(db, console, world):
    first, last = period_containing(datetime.now(UTC).date(), "monthly")
    factories.budget(
        name="chat hard",
        feature_id=world.feature.id,
        enforcement="hard",
        budget_amount=Decimal("1.00"),
        start_date=first,
        end_date=last,
    )
    db.session.commit()
    client = new_client(console, world)
    held = client.reserve("chatbot", estimated_cost_usd="0.60")
    assert held.id is not None and held.reserved_usd == Decimal("0.60")
    assert held.expires_at is not None and held.expires_at > datetime.now(UTC)
    with pytest.raises(BudgetExhausted) as exhausted:
        client.reserve("chatbot", Decimal("0.50"))
    end = last + timedelta(days=1)
    assert exhausted.value.resets_at == datetime(end.year, end.month, end.day, tzinfo=UTC)
    priced = client.reserve("chatbot", model="gpt-4", input_tokens=1000, max_output_tokens=1000)
    assert priced.reserved_usd == Decimal("0.09")  # 30 and 60 USD per million
    client.record("chatbot", "gpt-4", cost_usd="0.55", reservation_id=held.id, input_tokens=10)
    assert client.flush(10)
    db.session.rollback()
    settled = db.session.get(BudgetReservation, uuid.UUID(held.id))
    assert settled is not None and settled.settled_at is not None
    assert client.reserve("search", "0.10").id is None  # no hard budget covers it
    client.close()


def test_refusals_have_their_own_exceptions(db, console, world):
    wrong = Client(console.url, "aipm_prd_" + "x" * 40)
    with pytest.raises(Unauthorized) as refused:
        wrong.config("chatbot")
    assert refused.value.status == 401 and refused.value.code == "invalid_api_key"
    with pytest.raises(Unauthorized):
        wrong.reserve("chatbot", "0.01")
    client = new_client(console, world)
    with pytest.raises(UnknownFeature):
        client.config("nope")
    limited = Client(console.url, world.limited)
    with pytest.raises(FeatureNotAllowed):
        limited.config("search")
    with pytest.raises(aipm_client.InvalidRequest) as invalid:
        client.reserve("chatbot", "-1")
    assert "estimated_cost_usd" in invalid.value.fields
    with pytest.raises(ValueError, match="model is required"):
        client.record("chatbot")
