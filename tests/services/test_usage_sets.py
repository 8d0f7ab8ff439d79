"""Several groupings read in one pass (GROUPING SETS on PostgreSQL, one query per set on
SQLite) equal the groupings read one by one and the raw rows, on random usage (both
databases); and the overview computed from its three small sets equals the overview
computed from the one fine grouping (day or hour, feature, model, provider, status)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from tests.services.test_hourly_rollup import random_usage
from tests.spending_data import build_dataset
from webapp.services.health import provider_health
from webapp.services.overview.kpis import (
    GROUP_KEYS,
    OverviewUsage,
    grouped_usage,
    periods_for,
    usage_kpis,
)
from webapp.services.overview.panels import features_table, names_of, series, top_models
from webapp.services.usage.reads import (
    UsageSums,
    day_bounds,
    key_type,
    raw_usage_between,
    usage_between,
    usage_between_sets,
    usage_by,
    usage_by_sets,
)

NOW = datetime(2026, 11, 20, 14, 37, 12, 345678, tzinfo=UTC)

DAILY_SETS = [
    GROUP_KEYS,
    ("day", "feature_id"),
    ("day", "status"),
    ("status", "feature_id"),  # the members of a set before, in another order
    ("feature_id", "status"),
    ("environment", "provider_id"),
    (),
]
WINDOW_SETS = [
    ("hour", "feature_id"),
    ("hour", "status"),
    ("day", "model_id", "environment"),
    GROUP_KEYS,
    ("status", "hour"),
    (),
]


@pytest.fixture
def usage(db):
    data = build_dataset()
    # Five days and a bit before NOW: several whole days, hours and partial hours.
    random_usage(data, random.Random(4242), NOW - timedelta(hours=130), 131)
    return data


def _without_empty(grouped: dict) -> dict:
    # A completed pending row leaves zero sums under its old key in a rollup.
    return {key: sums for key, sums in grouped.items() if sums.requests}


@pytest.mark.parametrize("with_latency", [False, True])
@pytest.mark.parametrize("environment", [None, "staging"])
def test_daily_sets_equal_one_read_per_set_and_the_raw_rows(usage, with_latency, environment):
    first, last = NOW.date() - timedelta(days=4), NOW.date()
    found = usage_by_sets(
        first, last, DAILY_SETS, environment=environment, with_latency=with_latency
    )
    one_by_one = [
        usage_by(first, last, keys, environment=environment, with_latency=with_latency)
        for keys in DAILY_SETS
    ]
    assert found == one_by_one
    since, until = day_bounds(first, last)
    for keys, grouped in zip(DAILY_SETS, found, strict=True):
        raw = raw_usage_between(
            since, until, keys, environment=environment, with_latency=with_latency
        )
        assert _without_empty(grouped) == _without_empty(raw)
        assert raw and all(type(key)._fields == keys for key in grouped)
    if with_latency:
        assert all(len(sums.latency_buckets) == 21 for sums in found[0].values())
    else:
        assert all(not sums.latency_buckets for grouped in found for sums in grouped.values())


@pytest.mark.parametrize("with_latency", [False, True])
@pytest.mark.parametrize("environment", [None, "staging"])
@pytest.mark.parametrize(
    "window",
    [
        (NOW - timedelta(hours=24), NOW),  # partial head and tail hours
        (NOW.replace(minute=0, second=0, microsecond=0) - timedelta(hours=30), NOW),
        (NOW - timedelta(minutes=50), NOW),  # inside one hour: raw rows only
    ],
)
def test_window_sets_equal_one_read_per_set_and_the_raw_rows(
    usage, window, with_latency, environment
):
    since, until = window
    found = usage_between_sets(
        since, until, WINDOW_SETS, environment=environment, with_latency=with_latency
    )
    one_by_one = [
        usage_between(since, until, keys, environment=environment, with_latency=with_latency)
        for keys in WINDOW_SETS
    ]
    assert found == one_by_one
    for keys, grouped in zip(WINDOW_SETS, found, strict=True):
        raw = raw_usage_between(
            since, until, keys, environment=environment, with_latency=with_latency
        )
        assert _without_empty(grouped) == _without_empty(raw)
        assert raw or until - since < timedelta(hours=1)  # a few rows an hour


def test_window_sets_with_prompt_id_read_raw_rows(usage):
    since, until = NOW - timedelta(hours=3), NOW
    sets = [("prompt_id", "status"), ("hour",)]
    assert usage_between_sets(since, until, sets) == [
        usage_between(since, until, keys) for keys in sets
    ]


def test_unknown_keys_are_refused(db):
    with pytest.raises(ValueError, match="prompt_id"):
        usage_by_sets(NOW.date(), NOW.date(), [("status",), ("prompt_id",)])
    with pytest.raises(ValueError, match="nope"):
        usage_between_sets(NOW - timedelta(hours=1), NOW, [("status",), ("nope",)])


# --- the overview from its sets against the overview from the one fine grouping -------


def _fine_grouping(period) -> dict:
    """The grouping the overview read before it read sets: by time bucket and GROUP_KEYS."""
    if period.hourly:
        return usage_between(period.since, period.until, ("hour", *GROUP_KEYS), with_latency=True)
    return usage_by(period.first_day, period.last_day, ("day", *GROUP_KEYS), with_latency=True)


def _project(fine: dict, positions: tuple[int, ...], keys: tuple[str, ...]) -> dict:
    """The fine grouping summed in Python onto fewer keys (the old page's merging)."""
    make_key = key_type(keys)
    projected: dict = {}
    for key, sums in fine.items():
        projected.setdefault(make_key(*(key[i] for i in positions)), UsageSums()).add(sums)
    return projected


@pytest.mark.parametrize("range_name", ["24h", "7d"])
def test_the_overview_from_sets_equals_the_overview_from_the_fine_grouping(usage, range_name):
    _, period, _ = periods_for(range_name, now=NOW)
    bucket = "hour" if period.hourly else "day"
    fine = _fine_grouping(period)
    old = OverviewUsage(
        _project(fine, (1, 2, 3, 4), GROUP_KEYS),
        _project(fine, (0, 1), (bucket, "feature_id")),
        _project(fine, (0, 4), (bucket, "status")),
    )
    new = grouped_usage(period, True)
    assert len(new.by_feature) > 2 and len(new.by_status) > 2
    names = names_of(old.untimed)
    assert names_of(new.untimed) == names
    assert series(period, new, names) == series(period, old, names)
    assert top_models(new.untimed, names) == top_models(old.untimed, names)
    health = provider_health.current_health_by_provider(NOW)
    assert features_table(new.untimed, health) == features_table(old.untimed, health)
    assert usage_kpis(new.untimed) == usage_kpis(old.untimed)
    assert usage_kpis(new.untimed).requests > 0
    # The tiles' read has the untimed set alone, the same one.
    tiles = grouped_usage(period, False)
    assert tiles.untimed == new.untimed and not tiles.by_feature and not tiles.by_status
