"""The hourly rollup: kept equal to the raw rows by every writer, and rolling windows read
from it (whole hours) plus raw rows (the partial hours at each end) give the figures the
raw rows give (both databases)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Integer, literal, select

from tests.spending_data import build_dataset, event
from tests.usage_rows import assert_hourly_rollup_equals_raw, hourly_rollup_sums
from webapp.models import AIModel, UsageLog
from webapp.models.rollup import LATENCY_BOUNDS_MS, latency_bucket, latency_bucket_of
from webapp.services.core.actor import Actor
from webapp.services.health.provider_health import Thresholds, window_usage_by_provider
from webapp.services.overview.kpis import grouped_usage, periods_for, usage_kpis
from webapp.services.usage import windows
from webapp.services.usage.reads import (
    UsageSums,
    raw_usage_between,
    split_window,
    usage_between,
)
from webapp.services.usage.recording import record_usage
from webapp.services.usage.rollup import rebuild_rollup, recompute_rollup

D = Decimal
NOW = datetime(2026, 11, 20, 14, 37, 12, 345678, tzinfo=UTC)


def t(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, 20, hour, minute, second, tzinfo=UTC)


# --- splitting a window ---------------------------------------------------------------


def test_a_window_splits_into_raw_head_rollup_hours_and_raw_tail():
    assert split_window(t(10, 20), t(14, 5)) == (
        (t(10, 20), t(11)),
        (t(11), t(14)),
        (t(14), t(14, 5)),
    )
    # Aligned ends have no raw part; a window inside one hour is all raw.
    assert split_window(t(10), t(14)) == (None, (t(10), t(14)), None)
    assert split_window(t(10, 5), t(10, 55)) == ((t(10, 5), t(10, 55)), None, None)
    assert split_window(t(10, 5), t(11, 5)) == ((t(10, 5), t(11, 5)), None, None)
    assert split_window(t(10, 5), t(11)) == ((t(10, 5), t(11)), None, None)
    assert split_window(t(10), t(10)) == (None, None, None)
    # A window given in another time zone is split on UTC hours.
    plus_0530 = t(16).astimezone(ZoneInfo("Asia/Kolkata"))  # 21:30 local
    assert split_window(plus_0530 - timedelta(minutes=90), plus_0530)[1] == (t(15), t(16))


# --- the writers keep it equal to the raw rows ----------------------------------------


def random_usage(data, rng: random.Random, start: datetime, hours: int) -> None:
    features = [data.chatbot, data.search, None]
    models = [data.gpt, data.mini, data.claude, data.vision, None]
    for _ in range(4):  # several transactions, so rows of one key meet in the upsert
        events = []
        for _ in range(rng.randint(60, 200)):
            model = rng.choice(models)
            item = event(
                rng.choice(features),
                model,
                start + timedelta(seconds=rng.randint(0, hours * 3600 - 1)),
                rng.randint(0, 5_000),
                rng.randint(0, 5_000),
                status=rng.choice(["success", "success", "error", "timeout", "pending"]),
                response_time_ms=rng.choice([0, 49, 50, 120, 999, 1000, 4321, 60_000, 99_999]),
            )
            if model is None or rng.random() < 0.3:
                item["cost_usd"] = str(D(rng.randint(0, 9_999_999)).scaleb(-6))
            if rng.random() < 0.2:
                item["environment"] = "staging"
            events.append(item)
        record_usage(events)


def test_random_inserts_and_rebuilds_keep_the_hourly_rollup_equal_to_raw_rows(db):
    data = build_dataset()
    random_usage(data, random.Random(20261202), NOW - timedelta(hours=50), 52)
    assert hourly_rollup_sums()  # not trivially equal
    assert_hourly_rollup_equals_raw()
    recompute_rollup(date(2026, 11, 19))  # from a day on
    assert_hourly_rollup_equals_raw()
    rebuild_rollup(Actor.cli())  # everything, committed
    assert_hourly_rollup_equals_raw()
    # The rebuild wrote shard 0 only; a recorded row lands in any shard and still adds up.
    record_usage([event(data.chatbot, data.gpt, NOW - timedelta(minutes=1), 10, 10)])
    assert_hourly_rollup_equals_raw()


# --- a rolling window read through the hourly rollup -----------------------------------


@pytest.fixture
def usage(db):
    data = build_dataset()
    random_usage(data, random.Random(7), NOW - timedelta(hours=49), 50)
    return data


def _without_empty(grouped: dict) -> dict:
    # A completed pending row leaves zero sums under its old key in a rollup.
    return {key: sums for key, sums in grouped.items() if sums.requests}


@pytest.mark.parametrize(
    "keys",
    [
        ("feature_id", "model_id", "provider_id", "status"),
        ("hour", "feature_id", "model_id", "provider_id", "status"),
        ("model_id", "environment", "status"),
        ("provider_id",),
        (),
    ],
)
def test_a_rolling_24_hours_sums_the_same_as_raw_rows(usage, keys):
    since, until = NOW - timedelta(hours=24), NOW
    assert split_window(since, until)[1] is not None  # the rollup is read
    for environment in (None, "staging"):
        through_rollup = usage_between(
            since, until, keys, environment=environment, with_latency=True
        )
        raw = raw_usage_between(since, until, keys, environment=environment, with_latency=True)
        # Counts, tokens, cost and every latency bucket equal: so does any p95 of them.
        assert _without_empty(through_rollup) == _without_empty(raw)
        assert sum(s.requests for s in raw.values()) > 0


def _expected_metrics(group: str, since: datetime, until: datetime) -> dict:
    """Requests, failures, cost and the histogram p95 per group, from raw rows only."""
    grouped = raw_usage_between(since, until, (group, "status"), with_latency=True)
    per: dict = {}
    for key, sums in grouped.items():
        if key[0] is None or key.status not in windows.FINISHED:
            continue
        entry = per.setdefault(key[0], [0, 0, UsageSums()])
        entry[0] += sums.requests
        entry[1] += sums.requests if key.status != "success" else 0
        entry[2].add(sums)
    return {
        value: (
            n,
            bad,
            total.cost,
            histogram_p95(total),
        )
        for value, (n, bad, total) in per.items()
    }


def histogram_p95(sums: UsageSums) -> Decimal | None:
    """The p95 of raw rows' latency histogram, to a tenth of a ms."""
    return windows.p95_of_buckets(sums.latency_buckets)


@pytest.mark.parametrize("group", ["feature_id", "model_id", "provider_id"])
@pytest.mark.parametrize("time_range", ["24h", "1h"])
def test_rolling_metrics_equal_the_raw_rows_figures(usage, group, time_range):
    since, until = windows.window_for(time_range, NOW)
    found = windows.metrics_for(group, time_range, NOW)
    assert found
    assert {
        value: (m.total_requests, m.failures, m.total_cost, m.p95_response_ms)
        for value, m in found.items()
    } == _expected_metrics(group, since, until)


@pytest.mark.parametrize("group", ["feature_id", "model_id", "provider_id"])
@pytest.mark.parametrize("environment", [None, "staging"])
def test_whole_day_uptime_from_the_hourly_rollup_equals_the_raw_rows_count(
    usage, group, environment
):
    # 7 whole days (today so far included): hours with traffic and hours up per group,
    # counted by the database from the hourly rollup, as _uptime_by counts raw rows.
    since = datetime.combine(NOW.date() - timedelta(days=6), datetime.min.time(), tzinfo=UTC)
    until = since + timedelta(days=7)
    column = windows.GROUP_COLUMNS[group]
    found = windows.usage_metrics_by(column, since, until, whole_days=True, environment=environment)
    raw = windows._uptime_by(
        column, windows.finished_conditions(column, since, until, None, environment)
    )
    assert raw and any(up < hours for hours, up in raw.values())  # not trivially 100 %
    assert {
        value: (m.hours_with_traffic, m.hours_up) for value, m in found.items() if m.total_requests
    } == raw


def test_the_overview_24_hours_reads_the_raw_rows_figures(usage):
    _, period, previous = periods_for("24h", now=NOW)
    for chosen in (period, previous):
        for with_time in (True, False):
            usage = grouped_usage(chosen, with_time)
            read = {("feature_id", "model_id", "provider_id", "status"): usage.untimed}
            if with_time:
                read |= {
                    ("hour", "feature_id"): usage.by_feature,
                    ("hour", "status"): usage.by_status,
                }
            else:
                assert not usage.by_feature and not usage.by_status
            for keys, grouped in read.items():
                # Only the untimed set carries the latency histogram.
                latency = "hour" not in keys
                raw = raw_usage_between(chosen.since, chosen.until, keys, with_latency=latency)
                assert _without_empty(grouped) == _without_empty(raw)
    kpis = usage_kpis(grouped_usage(period, False).untimed)
    raw_finished = [
        sums
        for key, sums in raw_usage_between(
            period.since, period.until, ("status",), with_latency=True
        ).items()
        if key.status in windows.FINISHED
    ]
    total = UsageSums()
    for sums in raw_finished:
        total.add(sums)
    assert kpis.finished == total.requests
    assert kpis.p95_latency_ms == histogram_p95(total)


def test_provider_health_windows_equal_the_raw_rows_figures(usage, app):
    limits = Thresholds.from_config()
    # An hour-aligned "now" puts both windows inside one hour (no partial hour before it).
    for now in (NOW, NOW.replace(minute=0, second=0, microsecond=0)):
        found = window_usage_by_provider(now, limits)
        for minutes, index in ((limits.short_minutes, 0), (limits.long_minutes, 1)):
            expected = _expected_metrics("provider_id", now - timedelta(minutes=minutes), now)
            got = {
                provider: (w[index].requests, w[index].failures, w[index].p95_ms)
                for provider, w in found.items()
                if w[index].requests
            }
            assert got == {k: (n, bad, p95) for k, (n, bad, _cost, p95) in expected.items()}


def test_windows_ending_together_read_once_give_each_window_read_whole(usage, app):
    """usage_metrics_by_windows (each row read once, the longer windows summed on from the
    shorter) answers what usage_metrics_by answers for each window alone: in any order, a
    window given twice, one that holds whole rollup hours, an hour-aligned end."""
    minutes = [60, 15, 150, 15]
    for column in (AIModel.provider_id, UsageLog.feature_id):
        for now in (NOW, NOW.replace(minute=0, second=0, microsecond=0)):
            found = windows.usage_metrics_by_windows(
                column, now, [timedelta(minutes=m) for m in minutes]
            )
            for window, got in zip(minutes, found, strict=True):
                since = now - timedelta(minutes=window)
                alone = windows.usage_metrics_by(column, since, now, with_uptime=False)
                assert got == alone
            assert found[2], "the 150-minute window has traffic"
            assert found[2] != found[1], "and more than the 15-minute one"


def test_rows_written_without_the_rollup_are_not_read_for_whole_hours(db):
    """The whole hours really come from the rollup: a raw row the writers never rolled up
    counts only in a partial hour (what `flask rollup rebuild` would repair)."""
    data = build_dataset()
    record_usage([event(data.chatbot, data.gpt, t(13, 30), 1, 1)])
    for moment in (t(12, 30), t(14, 30)):  # a whole hour, then the partial last hour
        db.session.add(
            UsageLog(feature_id=data.chatbot.id, model_id=data.gpt.id, created_at=moment)
        )
    db.session.commit()
    grouped = usage_between(t(12), NOW, ("feature_id",))
    assert grouped[(data.chatbot.id,)].requests == 2  # 13:30 (rollup) and 14:30 (raw)


def test_the_database_buckets_a_latency_as_the_rollup_writers_do(db):
    """latency_bucket_of (width_bucket on PostgreSQL, a CASE elsewhere) gives the index
    latency_bucket gives, at every bound, beside it and past the last one."""
    values = [0, 1, 10**9]
    for bound in LATENCY_BOUNDS_MS:
        values += [bound - 1, bound, bound + 1]
    buckets = db.session.execute(
        select(*[latency_bucket_of(literal(value, Integer)) for value in values])
    ).one()
    assert list(buckets) == [latency_bucket(value) for value in values]
    assert buckets[0] == 0 and buckets[-1] == len(LATENCY_BOUNDS_MS)
