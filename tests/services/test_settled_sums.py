"""Settled rollup sums remembered per process (webapp/services/usage/settled.py): which
spans are settled, which writes count as late, that a remembered read answers what the
raw rows give after every kind of writer (late reports, pending → final, attaching rows,
rebuilds, compaction), that it reads nothing from the rollup when it hits, and that the
memory stays bounded (both databases)."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from tests import factories
from tests.services.test_hourly_outcomes import complete_some_pending, unknown_model_rows
from tests.services.test_hourly_rollup import random_usage
from tests.spending_data import build_dataset
from tests.spending_data import event as usage_event
from tests.usage_rows import insert_usage
from webapp.config import ConfigError, settings_from_environment
from webapp.extensions import db
from webapp.models import UsageLog, UsageRollupRevision
from webapp.services.core.actor import Actor
from webapp.services.core.dates import floor_hour
from webapp.services.usage.attach import attach_unknown_usage
from webapp.services.usage.compaction import compact_rollups
from webapp.services.usage.reads import (
    UsageSums,
    raw_usage_between,
    usage_between,
    usage_between_sets,
    usage_by,
    usage_by_sets,
)
from webapp.services.usage.recording import record_usage
from webapp.services.usage.rollup import rebuild_rollup
from webapp.services.usage.settled import (
    SettledSums,
    late_days,
    settled_before,
    settled_sums,
    split_days,
    split_hours,
)

AT = datetime(2026, 12, 3, 10, 20, tzinfo=UTC)  # settled: everything before 09:00
FIRST, LAST = date(2026, 11, 14), date(2026, 11, 20)
SETS = [("feature_id", "model_id", "provider_id", "status"), ("day", "feature_id"), ("status",)]


def test_a_span_is_settled_an_hour_after_the_hour_it_ends_in():
    assert settled_before(AT) == datetime(2026, 12, 3, 9, tzinfo=UTC)
    # Days: yesterday is settled from 01:00 on, not before.
    assert split_days(date(2026, 11, 1), date(2026, 12, 3), AT) == (
        (date(2026, 11, 1), date(2026, 12, 2)),
        (date(2026, 12, 3), date(2026, 12, 3)),
    )
    just_after_midnight = datetime(2026, 12, 3, 0, 59, tzinfo=UTC)
    assert split_days(date(2026, 12, 2), date(2026, 12, 3), just_after_midnight) == (
        None,
        (date(2026, 12, 2), date(2026, 12, 3)),
    )
    assert split_days(date(2026, 12, 2), date(2026, 12, 2), AT) == (
        (date(2026, 12, 2), date(2026, 12, 2)),
        None,
    )
    # Hours: the last hour that ended is not settled yet, the one before is.
    since, until = datetime(2026, 12, 2, 11, tzinfo=UTC), datetime(2026, 12, 3, 10, tzinfo=UTC)
    nine = datetime(2026, 12, 3, 9, tzinfo=UTC)
    assert split_hours(since, until, AT) == ((since, nine), (nine, until))
    assert split_hours(nine, until, AT) == (None, (nine, until))
    assert split_hours(since, nine, AT) == ((since, nine), None)


def test_a_write_is_late_when_its_hour_has_ended():
    rows = [
        datetime(2026, 12, 3, 10, 0, tzinfo=UTC),  # the current hour: not late
        datetime(2026, 12, 3, 9, 59, 59, tzinfo=UTC),  # the hour before: late, today
        datetime(2026, 12, 2, 23, 0),  # naive: UTC; yesterday
    ]
    assert late_days(rows, AT) == {date(2026, 12, 3), date(2026, 12, 2)}
    assert late_days(rows[:1], AT) == set()


def revisions() -> dict[tuple[date, int], int]:
    rows = db.session.execute(
        select(UsageRollupRevision.day, UsageRollupRevision.shard, UsageRollupRevision.revision)
    ).all()
    return {(day, shard): revision for day, shard, revision in rows}


def clear_of_the_hours_end() -> datetime:
    """Now, at least ten seconds before the current hour ends: a test that reads "the
    current hour" twice must not see it end in between (it waits for the next one)."""
    now = datetime.now(UTC)
    left = (floor_hour(now) + timedelta(hours=1) - now).total_seconds()
    if left < 10:
        time.sleep(left + 0.1)
    return datetime.now(UTC)


def test_recording_counts_late_writes_per_day_and_shard_and_nothing_for_the_current_hour(db):
    data = build_dataset()  # its usage is days old: late writes already
    before = revisions()
    now = clear_of_the_hours_end()
    assert before and all(day < now.date() for day, _ in before)
    current = now.replace(minute=0, second=0, microsecond=0) + (now - now.replace(minute=0)) / 2
    insert_usage([{"feature_id": data.chatbot.id, "created_at": current}])
    assert revisions() == before  # the current hour is nobody's settled span yet
    two_days_ago = now - timedelta(days=2)
    insert_usage([{"created_at": two_days_ago}, {"created_at": two_days_ago}])
    insert_usage([{"created_at": two_days_ago}])
    after = revisions()
    added = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key)}
    assert sum(added.values()) == 2  # one per transaction, not per row
    assert {day for day, _ in added} == {two_days_ago.date()}


class RollupStatements:
    """Counts the statements that read a rollup table while active."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __enter__(self) -> RollupStatements:
        event.listen(db.engine, "before_cursor_execute", self._listener)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(db.engine, "before_cursor_execute", self._listener)

    def _listener(self, _conn, _cursor, statement, *_args) -> None:
        if "_rollup" in statement and "ai_usage_rollup_revisions" not in statement:
            self.seen.append(statement)


def window() -> tuple[datetime, datetime]:
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC) + timedelta(minutes=17)
    return start, start + timedelta(days=3, minutes=5)


def counted(found: dict) -> dict:
    """Without the groups whose sums are all zero: a rollup keeps a key whose rows moved
    away (pending → final), the raw rows have no such group."""
    return {key: sums for key, sums in found.items() if sums != UsageSums(latency_buckets=[])}


def assert_every_read_equals_raw_rows() -> None:
    """Each read twice (the second from memory when settled), against the raw rows."""
    since, until = window()
    for _ in range(2):
        for environment in (None, "staging"):
            raw_sets = [
                usage_by(FIRST, LAST, keys, environment=environment, raw_from=FIRST)
                for keys in SETS
            ]
            assert all(raw_sets)
            raw_windows = [
                raw_usage_between(since, until, keys, environment=environment) for keys in SETS
            ]
            for keys, raw, raw_window in zip(SETS, raw_sets, raw_windows, strict=True):
                assert counted(usage_by(FIRST, LAST, keys, environment=environment)) == raw
                between = usage_between(since, until, keys, environment=environment)
                assert counted(between) == raw_window
            by_sets = usage_by_sets(FIRST, LAST, SETS, environment=environment)
            assert [counted(found) for found in by_sets] == raw_sets
            between_sets = usage_between_sets(since, until, SETS, environment=environment)
            assert [counted(found) for found in between_sets] == raw_windows
            with_latency = usage_by_sets(
                FIRST, LAST, SETS, environment=environment, with_latency=True
            )
            assert with_latency == [
                usage_by(FIRST, LAST, keys, environment=environment, with_latency=True)
                for keys in SETS
            ]


def test_remembered_reads_equal_the_raw_rows_after_every_kind_of_writer(db):
    data = build_dataset()
    rng = random.Random(20261203)
    start = datetime.combine(FIRST, datetime.min.time(), tzinfo=UTC)
    random_usage(data, rng, start, 24 * 7)
    assert_every_read_equals_raw_rows()
    assert len(settled_sums()) > 0

    # A late report on a settled day and hour.
    record_usage([usage_event(data.chatbot, data.gpt, start + timedelta(hours=30), 7, 9)])
    assert_every_read_equals_raw_rows()

    # Pending → final, the way ingestion completes them.
    assert complete_some_pending(data, rng, 0.7) > 10
    assert_every_read_equals_raw_rows()

    # Rows of an unknown model attached to the model an admin adds.
    unknown_model_rows(data.chatbot, rng, start + timedelta(hours=5), 40)
    assert_every_read_equals_raw_rows()
    assert attach_unknown_usage(factories.model(data.openai, "gpt-9")) == 80
    db.session.commit()
    assert_every_read_equals_raw_rows()

    # Compaction folds shards and changes no figure: what is remembered stays right.
    before = revisions()
    assert compact_rollups(datetime.now(UTC)).daily_rows_folded > 0
    db.session.commit()
    assert revisions() == before
    assert_every_read_equals_raw_rows()

    # A raw row removed behind the rollups' back, then a rebuild.
    victim = db.session.scalars(select(UsageLog).order_by(UsageLog.cost_usd.desc())).first()
    db.session.delete(victim)
    db.session.commit()
    rebuild_rollup(Actor.cli())
    assert_every_read_equals_raw_rows()


def test_a_transaction_that_counted_late_writes_reads_around_the_memory(db):
    data = build_dataset()
    day = datetime(2026, 11, 16, 12, tzinfo=UTC)
    before = usage_by(FIRST, LAST, ("status",))
    insert_usage([{"feature_id": data.chatbot.id, "created_at": day}] * 5, commit=False)
    inside = usage_by(FIRST, LAST, ("status",))  # sees its own rows, files nothing
    assert inside[("success",)].requests == before[("success",)].requests + 5
    db.session.rollback()
    insert_usage([{"feature_id": data.chatbot.id, "status": "error", "created_at": day}])
    after = usage_by(FIRST, LAST, ("status",))
    assert after[("success",)].requests == before[("success",)].requests
    assert after == usage_by(FIRST, LAST, ("status",), raw_from=FIRST)


def test_a_remembered_read_reads_no_rollup_row_and_hands_out_copies(db, dialect):
    data = build_dataset()
    passes = 1 if dialect == "postgresql" else len(SETS)  # SQLite: a query per set
    random_usage(data, random.Random(7), datetime(2026, 11, 15, tzinfo=UTC), 48)
    with RollupStatements() as first:
        found = usage_by_sets(FIRST, LAST, SETS, with_latency=True)
    assert len(first.seen) == passes
    key, sums = next(iter(found[0].items()))
    sums.requests += 1_000  # a caller adding to what it got (as merges do)
    sums.latency_buckets[0] += 1_000
    with RollupStatements() as second:
        again = usage_by_sets(FIRST, LAST, SETS, with_latency=True)
    assert second.seen == []
    assert again[0][key].requests == sums.requests - 1_000
    assert again[0][key].latency_buckets[0] == sums.latency_buckets[0] - 1_000
    remembered = again[0][key].copy()
    again[0][key].add(remembered)  # and what a hit handed out is a copy too
    again[0][key].latency_buckets[1] += 5
    assert usage_by_sets(FIRST, LAST, SETS, with_latency=True)[0][key] == remembered
    # Another environment, other sets, other days: each is a read of its own.
    with RollupStatements() as other:
        usage_by_sets(FIRST, LAST, SETS, environment="staging", with_latency=True)
        usage_by_sets(FIRST, LAST, SETS[:2], with_latency=True)
        usage_by_sets(FIRST, LAST - timedelta(days=1), SETS, with_latency=True)
        usage_by(FIRST, LAST, ("day",), feature_id=data.chatbot.id)
        usage_by(FIRST, LAST, ("day",), feature_id=data.search.id)
    # SQLite reads each set on its own, so the two sets asked again are remembered there.
    assert len(other.seen) == (5 if dialect == "postgresql" else 3 + 0 + 3 + 2)
    settled_sums().forget()
    with RollupStatements() as forgotten:
        usage_by_sets(FIRST, LAST, SETS, with_latency=True)
    assert len(forgotten.seen) == passes


def test_the_current_hours_are_always_read(db):
    data = build_dataset()
    now = clear_of_the_hours_end()
    hour = now.replace(minute=0, second=0, microsecond=0)
    since, until = hour - timedelta(hours=30), hour
    assert usage_between(since, until, ("status",)) == raw_usage_between(since, until, ("status",))
    with RollupStatements() as seen:
        usage_between(since, until, ("status",))
    assert len(seen.seen) == 1  # the last hour before this one: not settled yet
    # A row in that hour (not a late write before its hour ended) is counted at once.
    insert_usage([{"feature_id": data.search.id, "created_at": hour - timedelta(minutes=30)}])
    assert usage_between(since, until, ("status",)) == raw_usage_between(since, until, ("status",))


def test_memory_is_bounded_by_groups_least_recently_used_first(app, db):
    data = build_dataset()
    random_usage(data, random.Random(3), datetime(2026, 11, 15, tzinfo=UTC), 48)
    cache = SettledSums(max_groups=60)
    reads = {}

    def read(first: date, keys: tuple[str, ...]):
        def compute():
            reads[(first, keys)] = reads.get((first, keys), 0) + 1
            return [usage_by(first, LAST, keys, raw_from=first)]

        return cache.read(("test", first, keys), (first, LAST), compute)

    day_keys = ("day", "feature_id", "status")
    assert 10 < sum(map(len, read(FIRST, day_keys))) <= 60
    read(FIRST, ("status",))
    assert cache.groups <= 60 and len(cache) == 2
    read(FIRST, day_keys)  # a hit: now the most recently used
    assert reads[(FIRST, day_keys)] == 1
    read(FIRST - timedelta(days=5), day_keys)  # pushes out the least recently used
    assert cache.groups <= 60
    read(FIRST, ("status",))
    assert reads[(FIRST, ("status",))] == 2
    # A read larger than the whole budget is answered and not kept.
    too_big = SettledSums(max_groups=3)
    answer = too_big.read(("x",), (FIRST, LAST), lambda: [usage_by(FIRST, LAST, day_keys)])
    assert sum(map(len, answer)) > 3 and len(too_big) == 0 and too_big.groups == 0
    # 0 turns it off: every read computes.
    off = SettledSums(max_groups=0)
    calls = []
    for _ in range(2):
        off.read(("x",), (FIRST, LAST), lambda: calls.append(1) or [{}])
    assert len(calls) == 2 and len(off) == 0


def test_the_setting_is_checked(monkeypatch):
    monkeypatch.setenv("USAGE_SETTLED_CACHE_GROUPS", "-1")
    with pytest.raises(ConfigError, match="USAGE_SETTLED_CACHE_GROUPS"):
        settings_from_environment({"SECRET_KEY": "x"})
    monkeypatch.setenv("USAGE_SETTLED_CACHE_GROUPS", "0")
    assert settings_from_environment({"SECRET_KEY": "x"})["USAGE_SETTLED_CACHE_GROUPS"] == 0


def test_revisions_only_grow_and_count_every_late_transaction(db):
    build_dataset()
    total = db.session.scalar(select(func.sum(UsageRollupRevision.revision)))
    day = datetime.now(UTC) - timedelta(days=3)
    for _ in range(3):
        insert_usage([{"created_at": day}])
    assert db.session.scalar(select(func.sum(UsageRollupRevision.revision))) == total + 3
