"""Group commit of small batches (webapp/services/apps/ingestion_groups.py): requests of
one key waiting at the same time are stored in one transaction, each answered with its
own result; a refused event stays that event's answer; a group whose transaction fails
is stored again request by request, so only the failing request fails."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from tests.services.test_ingestion import _rollup_sums, catalog, counters, make_key, rows
from tests.services.test_usage_recording import _raw_sums
from webapp.rls import APPLICATION, use_database_role
from webapp.services.apps import ingestion_groups
from webapp.services.apps.ingestion_groups import IngestionGroups, _Queue

__all__ = ["catalog"]  # the fixture, imported to be used here


def ev(event_id: str, **fields):
    stamp = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    event = {
        "id": event_id,
        "timestamp": stamp,
        "feature": "chatbot",
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 1000,
        "output_tokens": 100,
        "latency_ms": 420,
    }
    return event | fields


@pytest.fixture
def calls(monkeypatch):
    """Every ingest_batches call the groups make: the batches of each transaction."""
    made: list[list[list[str]]] = []
    real = ingestion_groups.ingest_batches

    def recorded(key, batches, now=None):
        made.append([[e.get("id") for e in events] for events, _ in batches])
        # What a database error raised by one event's row does to its transaction.
        if any(e.get("id") == "poison" for b, _ in batches for e in b):
            raise IntegrityError("INSERT …", {}, Exception("poison"))
        return real(key, batches, now)

    monkeypatch.setattr(ingestion_groups, "ingest_batches", recorded)
    return made


def _concurrently(app, groups, key, requests):
    """Send ``requests`` (lists of events) while a group of ``key`` is being stored, so
    they all wait; then let that group finish: the first waiter leads the rest."""
    groups._queues[key] = _Queue(busy=True)  # the running group
    answers: list[object] = [None] * len(requests)

    def send(index):
        with app.app_context():
            use_database_role(APPLICATION)
            try:
                answers[index] = groups.ingest(key, requests[index])
            except Exception as error:  # asserted by the test
                answers[index] = error
            finally:
                from webapp.extensions import db

                db.session.remove()

    threads = []
    for index in range(len(requests)):  # queued in this order
        threads.append(threading.Thread(target=send, args=(index,)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        while len(groups._queues[key].waiting) <= index and time.monotonic() < deadline:
            time.sleep(0.001)
    groups._hand_over(key)  # the running group committed
    for thread in threads:
        thread.join(30)
    assert key not in groups._queues  # the last group handed over to nobody
    return answers


def test_waiting_requests_are_one_transaction_each_with_its_own_answer(app, db, catalog, calls):
    key = make_key()
    groups = IngestionGroups()
    answers = _concurrently(
        app,
        groups,
        key,
        [
            [ev("a1"), ev("a2")],
            [ev("b1"), ev("b2", input_tokens=-1)],  # one bad event among them
            [ev("a1"), ev("c1")],  # a1 again: a duplicate for this later request
            [ev("d1", status="pending")],
            [ev("d1")],  # completes d1 of the request before it
        ],
    )
    assert calls == [[["a1", "a2"], ["b1", "b2"], ["a1", "c1"], ["d1"], ["d1"]]]
    a, b, c, d, e = answers
    assert (a.accepted, a.duplicates, a.rejected) == (2, 0, [])
    assert (b.accepted, b.duplicates) == (1, 0)
    assert [(r.index, r.id, r.code) for r in b.rejected] == [(1, "b2", "invalid")]
    assert (c.accepted, c.duplicates, c.rejected) == (1, 1, [])
    assert (d.accepted, d.completed) == (1, 0)
    assert (e.accepted, e.completed, e.duplicates) == (0, 1, 0)
    stored = rows(db)
    assert [(r.event_id, r.status) for r in stored] == [
        ("a1", "success"),
        ("a2", "success"),
        ("b1", "success"),
        ("c1", "success"),
        ("d1", "success"),
    ]
    totals = counters(db, key)
    assert (totals["accepted"], totals["completed"], totals["duplicates"]) == (5, 1, 1)
    assert totals["rejected_invalid"] == 1
    assert _rollup_sums() == _raw_sums()


def test_a_failing_request_fails_alone_and_the_others_are_stored(app, db, catalog, calls):
    key = make_key()
    groups = IngestionGroups()
    answers = _concurrently(app, groups, key, [[ev("a1")], [ev("ok"), ev("poison")], [ev("c1")]])
    # The group's transaction failed; each request was then stored on its own.
    assert calls == [
        [["a1"], ["ok", "poison"], ["c1"]],
        [["a1"]],
        [["ok", "poison"]],
        [["c1"]],
    ]
    a, b, c = answers
    assert isinstance(b, IntegrityError)
    assert (a.accepted, c.accepted) == (1, 1)
    assert [r.event_id for r in rows(db)] == ["a1", "c1"]  # nothing of the failed request
    assert counters(db, key)["accepted"] == 2
    assert _rollup_sums() == _raw_sums()


def test_a_lone_request_is_stored_at_once_and_large_ones_alone(app, db, catalog, calls):
    key = make_key()
    groups = IngestionGroups()
    with app.app_context():
        use_database_role(APPLICATION)
        assert groups.ingest(key, [ev("x")]).accepted == 1
        big = [ev(f"big{i}") for i in range(ingestion_groups.GROUPED_EVENTS + 1)]
        groups._queues[key] = _Queue(busy=True)  # a group running: the large batch does not wait
        assert groups.ingest(key, big).accepted == len(big)
    assert calls == [[["x"]], [[e["id"] for e in big]]]
