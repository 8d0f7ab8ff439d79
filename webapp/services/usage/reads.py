"""Usage sums over whole UTC days (the daily rollup) and over rolling windows (the hourly
rollup plus the window's partial hours of raw rows).

Every whole day comes from the daily rollup (a few rows per day), today included: its
rollup row is written in the same transaction as the raw rows, so it is exactly as fresh.
Reading today's raw rows instead would cap the rollup's advantage at the share of the range
that today is (late in the day, about 30x for 30 days, less with fixed costs).

A window that is not whole days (the last 24 hours or hour, provider-health windows) is
split by ``split_window``: the whole UTC hours inside it come from the hourly rollup (as
fresh, for the same reason), only the partial hour at each end from raw rows
(``usage_between``). Groupings the rollups do not hold (``prompt_id``) read raw rows
(``raw_usage_between``).

``raw_from`` reads the days from that one on from raw rows instead: the benchmark uses it
to compute the same answers without the rollup.
"""

from __future__ import annotations

import functools
import uuid
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeAlias, TypeVar

from sqlalchemy import BigInteger, and_, case, cast, func, literal, or_, select, tuple_

from webapp.extensions import db
from webapp.models import AIModel, UsageLog
from webapp.models.rollup import BUCKET_COLUMNS, LATENCY_BOUNDS_MS, NO_REFERENCE, latency_bucket_of
from webapp.models.types import utc_day, utc_hour
from webapp.services.core.dates import ceil_hour, floor_hour
from webapp.services.core.money import ZERO_COST
from webapp.services.usage.rollup import HOURLY_ROLLUP, ROLLUP
from webapp.services.usage.settled import (
    DaySpan,
    HourSpan,
    hour_days,
    settled_sums,
    split_days,
    split_hours,
)

KEYS = ("day", "feature_id", "model_id", "provider_id", "status", "environment")
# What a rolling window's read may group by ("hour" is "YYYY-MM-DD HH", UTC).
WINDOW_KEYS = (*KEYS, "hour", "prompt_id")
# [since, until) of a part of a window.
Span: TypeAlias = tuple[datetime, datetime]
# A daily rollup span or an hourly one, as settled.py names them.
SpanT = TypeVar("SpanT", DaySpan, HourSpan)

# The group key of a read: a named tuple made by ``key_type`` whose fields are the keys the
# read asked for (``key.status``, ``key.feature_id``, …). Its fields exist only at run
# time, so a type checker takes them on trust.
UsageKey: TypeAlias = Any


@dataclass(slots=True)
class UsageSums:
    """Sums for one group. ``latency_buckets`` counts requests per latency bucket; it is
    empty (all zero) unless the read asked for latency."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    tokens: int = 0
    cost: Decimal = ZERO_COST
    response_time_ms: int = 0
    latency_buckets: list[int] = field(default_factory=list)

    def copy(self) -> UsageSums:
        return UsageSums(
            self.requests,
            self.input_tokens,
            self.output_tokens,
            self.tokens,
            self.cost,
            self.response_time_ms,
            list(self.latency_buckets),
        )

    def add(self, other: UsageSums) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.tokens += other.tokens
        self.cost += other.cost
        self.response_time_ms += other.response_time_ms
        if other.latency_buckets:
            self.latency_buckets = merge_buckets(self.latency_buckets, other.latency_buckets)


def merge_buckets(left: Sequence[int], right: Sequence[int]) -> list[int]:
    """Two latency histograms added bucket by bucket (an empty one is all zero)."""
    if not left:
        return list(right)
    if not right:
        return list(left)
    return [a + b for a, b in zip(left, right, strict=True)]


@functools.cache
def key_type(keys: tuple[str, ...]) -> type:
    """A named tuple for the group keys of a read: ``key.status``, not ``key[-1]``. It
    compares equal to the plain tuple of the same values."""
    return namedtuple("UsageKey", keys)


def day_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00 UTC, the day after end 00:00 UTC): both calendar dates inclusive."""
    return (
        datetime.combine(start, time.min, tzinfo=UTC),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC),
    )


def usage_by(
    start: date,
    end: date,
    keys: Sequence[str],
    *,
    feature_id: uuid.UUID | None = None,
    environment: str | None = None,
    with_latency: bool = False,
    raw_from: date | None = None,
    feature_as: Mapping[uuid.UUID | None, int] | None = None,
) -> dict[UsageKey, UsageSums]:
    """{key values: sums} for usage from ``start`` to ``end`` (UTC dates, inclusive),
    grouped by ``keys`` (a subset of KEYS, in that order of the tuple). Missing feature,
    model or provider is ``None`` in the key. ``feature_id`` limits to one feature,
    ``environment`` to one environment (None: all). ``feature_as`` groups features
    together: the feature_id key is the number it maps a feature's id to (None: usage
    without a feature), and ``OTHER_FEATURES`` for every feature it does not list."""
    unknown = set(keys) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    merged: dict[UsageKey, UsageSums] = {}
    if raw_from is None:
        raw_from = end + timedelta(days=1)
    last_rollup_day = min(end, raw_from - timedelta(days=1))
    if start <= last_rollup_day:
        (found,) = _daily_rollup(
            (start, last_rollup_day), [keys], feature_id, environment, with_latency, feature_as
        )
        _merge_keyed(merged, found)
    first_raw_day = max(start, raw_from)
    if first_raw_day <= end:
        since, until = day_bounds(first_raw_day, end)
        raw = _raw_rows(since, until, keys, feature_id, environment, with_latency, feature_as)
        _merge(merged, raw, keys)
    return merged


def split_window(since: datetime, until: datetime) -> tuple[Span | None, Span | None, Span | None]:
    """[since, until) as (raw head, rollup hours, raw tail): the partial hour before the
    first whole UTC hour, the whole hours, the partial hour after them; None for a part
    that is empty. A window inside one hour (no whole hour in it) is all head."""
    first, last = ceil_hour(since), floor_hour(until)
    if first >= last:
        return ((since, until) if since < until else None), None, None
    head = (since, first) if since < first else None
    tail = (last, until) if last < until else None
    return head, (first, last), tail


def usage_between(
    since: datetime,
    until: datetime,
    keys: Sequence[str],
    *,
    environment: str | None = None,
    with_latency: bool = False,
) -> dict[UsageKey, UsageSums]:
    """Like ``usage_by`` over [since, until), any window: its whole UTC hours from the
    hourly rollup, its partial first and last hour from raw rows (``split_window``); the
    same sums as ``raw_usage_between``. ``keys`` may include ``hour`` ("YYYY-MM-DD HH");
    with ``prompt_id`` (not in the rollups) every row is read raw."""
    _check_window_keys(keys)
    if "prompt_id" in keys:
        return raw_usage_between(
            since, until, keys, environment=environment, with_latency=with_latency
        )
    head, hours, tail = split_window(since, until)
    merged: dict[UsageKey, UsageSums] = {}
    for part in (head, tail):
        if part is not None:
            rows = _raw_rows(*part, keys, None, environment, with_latency)
            _merge(merged, rows, keys)
    if hours is not None:
        (found,) = _hourly_rollup(hours, [keys], environment, with_latency)
        _merge_keyed(merged, found)
    return merged


def usage_by_sets(
    start: date,
    end: date,
    sets: Sequence[Sequence[str]],
    *,
    environment: str | None = None,
    raw_from: date | None = None,
    with_latency: bool = False,
) -> list[dict[UsageKey, UsageSums]]:
    """``[usage_by(start, end, keys, …) for keys in sets]``, answered in one pass over the
    daily rollup on PostgreSQL (``GROUP BY GROUPING SETS``: one scan of the range, every
    set grouped by the database) and by one grouped query per set elsewhere (SQLite has
    no grouping sets) or when ``raw_from`` reads part of the range from raw rows."""
    for keys in sets:
        unknown = set(keys) - set(KEYS)
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
    whole_rollup = raw_from is None or raw_from > end
    if len(sets) < 2 or not whole_rollup or not _has_grouping_sets():
        return [
            usage_by(
                start,
                end,
                keys,
                environment=environment,
                raw_from=raw_from,
                with_latency=with_latency,
            )
            for keys in sets
        ]
    return _daily_rollup((start, end), sets, None, environment, with_latency, None)


def usage_between_sets(
    since: datetime,
    until: datetime,
    sets: Sequence[Sequence[str]],
    *,
    environment: str | None = None,
    with_latency: bool = False,
) -> list[dict[UsageKey, UsageSums]]:
    """``[usage_between(since, until, keys, …) for keys in sets]``: the window's whole
    hours from the hourly rollup in one GROUPING SETS pass on PostgreSQL, its partial first
    and last hour from raw rows in another (one grouped query per set and part elsewhere).
    Keys may include ``hour`` and ``day``; a set with ``prompt_id`` is read raw."""
    for keys in sets:
        _check_window_keys(keys)
    if not _has_grouping_sets() or any("prompt_id" in keys for keys in sets):
        return [
            usage_between(since, until, keys, environment=environment, with_latency=with_latency)
            for keys in sets
        ]
    head, hours, tail = split_window(since, until)
    found: list[dict[UsageKey, UsageSums]] = [{} for _ in sets]
    # The partial hours, both in one query: a few minutes' raw rows each.
    spans = [part for part in (head, tail) if part is not None]
    if spans:
        from_raw = _raw_sets(spans, sets, environment, with_latency)
        for merged, part_found, keys in zip(found, from_raw, sets, strict=True):
            _merge(merged, [(*key, sums) for key, sums in part_found.items()], keys)
    if hours is not None:
        from_rollup = _hourly_rollup(hours, sets, environment, with_latency)
        for merged, part_found in zip(found, from_rollup, strict=True):
            _merge_keyed(merged, part_found)
    return found


def _daily_rollup(
    days: tuple[date, date],
    sets: Sequence[Sequence[str]],
    feature_id: uuid.UUID | None,
    environment: str | None,
    with_latency: bool,
    feature_as: Mapping[uuid.UUID | None, int] | None,
) -> list[dict[UsageKey, UsageSums]]:
    """Per set, the daily rollup's sums over ``days`` (both inclusive): the settled days
    as this process remembers them (webapp/services/usage/settled.py), the others read."""
    c = ROLLUP.c

    def read(span: tuple[date, date]) -> list[dict[UsageKey, UsageSums]]:
        within = [c.day >= span[0], c.day <= span[1]]
        if _has_grouping_sets() and feature_id is None and feature_as is None:
            expressions = {key: c[key] for key in KEYS}
            return _rollup_sets(ROLLUP, expressions, within, sets, environment, with_latency)
        options = (feature_id, environment, with_latency, feature_as)
        return [_merged(_rollup_rows(ROLLUP, within, keys, *options), keys) for keys in sets]

    grouped = None if feature_as is None else tuple(feature_as.items())
    remembered, current = split_days(*days)
    key = ("day", _sets_key(sets), feature_id, environment, with_latency, grouped)
    return _settled_and_current(key, remembered, remembered, current, read, len(sets))


def _hourly_rollup(
    hours: Span, sets: Sequence[Sequence[str]], environment: str | None, with_latency: bool
) -> list[dict[UsageKey, UsageSums]]:
    """Per set, the hourly rollup's sums over the whole hours [since, until): the settled
    hours as this process remembers them, the others read."""
    c = HOURLY_ROLLUP.c

    def read(span: Span) -> list[dict[UsageKey, UsageSums]]:
        within = [c.hour >= span[0], c.hour < span[1]]
        if _has_grouping_sets():
            expressions = _hourly_expressions(c)
            return _rollup_sets(HOURLY_ROLLUP, expressions, within, sets, environment, with_latency)
        options = (None, environment, with_latency)
        return [_merged(_rollup_rows(HOURLY_ROLLUP, within, keys, *options), keys) for keys in sets]

    remembered, current = split_hours(*hours)
    key = ("hour", _sets_key(sets), environment, with_latency)
    days = None if remembered is None else hour_days(remembered)
    return _settled_and_current((*key, remembered), remembered, days, current, read, len(sets))


def _sets_key(sets: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(keys) for keys in sets)


def _settled_and_current(
    key: tuple,
    remembered: SpanT | None,
    days: DaySpan | None,
    current: SpanT | None,
    read: Callable[[SpanT], list[dict[UsageKey, UsageSums]]],
    set_count: int,
) -> list[dict[UsageKey, UsageSums]]:
    """``read(span)`` of the ``remembered`` span through the process's settled sums
    (filed under ``key`` and the late writes on ``days``) merged with ``read(current)``."""
    found: list[dict[UsageKey, UsageSums]] = [{} for _ in range(set_count)]
    parts = []
    if remembered is not None and days is not None:
        parts.append(settled_sums().read(key, days, lambda: read(remembered)))
    if current is not None:
        parts.append(read(current))
    for part in parts:
        for merged, part_found in zip(found, part, strict=True):
            _merge_keyed(merged, part_found)
    return found


def _merged(rows: Any, keys: Sequence[str]) -> dict[UsageKey, UsageSums]:
    merged: dict[UsageKey, UsageSums] = {}
    _merge(merged, rows, keys)
    return merged


def _has_grouping_sets() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _hourly_expressions(c: Any) -> dict[str, Any]:
    """The hourly rollup's key expressions: ``day`` and ``hour`` spelled as raw rows spell
    them. Both compile to text without bound parameters, so each renders the same in
    SELECT, GROUPING() and GROUPING SETS (PostgreSQL matches them by their text)."""
    expressions = {key: c[key] for key in KEYS if key in c}
    return expressions | {"day": utc_day(c.hour), "hour": utc_hour(c.hour)}


def _rollup_sets(
    table: Any,
    expressions: Mapping[str, Any],
    within: Sequence[Any],
    sets: Sequence[Sequence[str]],
    environment: str | None,
    with_latency: bool,
) -> list[dict[UsageKey, UsageSums]]:
    """One GROUPING SETS pass over a rollup ``table`` (daily or hourly) for its rows
    ``within`` the period: per set, {key values: sums} as ``_rollup_rows`` gives them.
    ``expressions`` maps each key to its expression on ``table``."""
    used = list(dict.fromkeys(key for keys in sets for key in keys))
    columns = [expressions[key] for key in used]
    masks, distinct = _set_masks(used, sets)
    sums = _rollup_sums(table)
    if with_latency:
        sums += _bucket_sums(table)
    grouping = func.grouping(*columns) if columns else literal(0)
    query = (
        select(grouping, *columns, *sums)
        .where(*within)
        .group_by(
            func.grouping_sets(*[tuple_(*[expressions[key] for key in keys]) for keys in distinct])
        )
    )
    if environment is not None:
        query = query.where(table.c.environment == environment)
    rows_of: list[list[tuple]] = [[] for _ in sets]
    positions = [[used.index(key) for key in keys] for keys in sets]
    for row in db.session.execute(query):
        figures = row[1 + len(used) :]
        for index in masks[row[0]]:
            keys_of_row = [row[1 + i] for i in positions[index]]
            rows_of[index].append(
                _sums_from((*keys_of_row, *figures), len(keys_of_row), with_latency)
            )
    found: list[dict[UsageKey, UsageSums]] = [{} for _ in sets]
    for merged, rows, keys in zip(found, rows_of, sets, strict=True):
        _merge(merged, rows, keys)
    return found


def raw_usage_between(
    since: datetime,
    until: datetime,
    keys: Sequence[str],
    *,
    environment: str | None = None,
    with_latency: bool = False,
) -> dict[UsageKey, UsageSums]:
    """Like ``usage_between`` from raw rows only: for groupings the rollups do not hold
    (``prompt_id``), and to check the rollups against."""
    _check_window_keys(keys)
    merged: dict[UsageKey, UsageSums] = {}
    _merge(merged, _raw_rows(since, until, keys, None, environment, with_latency), keys)
    return merged


def _check_window_keys(keys: Sequence[str]) -> None:
    unknown = set(keys) - set(WINDOW_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")


def _merge(merged: dict[UsageKey, UsageSums], rows: Any, keys: Sequence[str]) -> None:
    make_key = key_type(tuple(keys))
    for row in rows:
        key = make_key(
            *(None if value is not None and value == NO_REFERENCE else value for value in row[:-1])
        )
        _add_sums(merged, key, row[-1])


def _merge_keyed(merged: dict[UsageKey, UsageSums], found: dict[UsageKey, UsageSums]) -> None:
    """``_merge`` for sums whose keys are made already (what ``_rollup_sets`` answers):
    building each key again, only to find it equal, cost more than adding the sums."""
    for key, sums in found.items():
        _add_sums(merged, key, sums)


def _add_sums(merged: dict[UsageKey, UsageSums], key: UsageKey, sums: UsageSums) -> None:
    if key in merged:
        merged[key].add(sums)
    else:
        merged[key] = sums


def _sums_from(row: Any, key_count: int, with_latency: bool) -> tuple:
    values = list(row)
    keys = values[:key_count]
    rest = values[key_count:]
    sums = UsageSums(
        requests=int(rest[0] or 0),
        input_tokens=int(rest[1] or 0),
        output_tokens=int(rest[2] or 0),
        tokens=int(rest[3] or 0),
        cost=rest[4] if rest[4] is not None else ZERO_COST,
        response_time_ms=int(rest[5] or 0),
    )
    if with_latency:
        sums.latency_buckets = [int(v or 0) for v in rest[6:]]
    return (*keys, sums)


def _rollup_rows(
    table: Any,
    within: Sequence[Any],
    keys: Sequence[str],
    feature_id: uuid.UUID | None,
    environment: str | None,
    with_latency: bool,
    feature_as: Mapping[uuid.UUID | None, int] | None = None,
) -> list[tuple]:
    """Sums from a rollup ``table`` (daily or hourly) over its rows ``within`` the period
    conditions, grouped by ``keys``; the hourly rollup answers ``day`` and ``hour`` as raw
    rows spell them. ``feature_as`` groups features into numbered groups (see
    ``_grouped_features``)."""
    c = table.c
    expressions = {key: c[key] for key in keys if key in c}
    if "hour" in c:
        expressions = _hourly_expressions(c)
    if feature_as is not None:
        expressions["feature_id"] = _grouped_features(c.feature_id, feature_as)
    columns = [expressions[key] for key in keys]
    sums = _rollup_sums(table)
    if with_latency:
        sums += _bucket_sums(table)
    query = select(*columns, *sums).where(*within)
    if columns:
        query = query.group_by(*columns)
    if feature_id is not None:
        query = query.where(c.feature_id == feature_id)
    if environment is not None:
        query = query.where(c.environment == environment)
    return [_sums_from(row, len(keys), with_latency) for row in db.session.execute(query)]


OTHER_FEATURES = -1


def _grouped_features(column: Any, feature_as: Mapping[uuid.UUID | None, int]) -> Any:
    """``column`` (a feature id, NO_REFERENCE for none) as the group number ``feature_as``
    gives it, OTHER_FEATURES for the ids it does not list."""
    if not feature_as:
        return literal(OTHER_FEATURES)
    kind = ROLLUP.c.feature_id.type
    return case(
        *[
            (column == literal(NO_REFERENCE if ident is None else ident, kind), number)
            for ident, number in feature_as.items()
        ],
        else_=OTHER_FEATURES,
    )


def _int_sum(column: Any) -> Any:
    # PostgreSQL sums a bigint as numeric, which arrives as a Decimal: casting back to
    # bigint in the query makes it a Python int (several times cheaper to convert, and a
    # page reads thousands of them: 21 latency buckets per group).
    return cast(func.sum(column), BigInteger)


def _rollup_sums(table: Any = ROLLUP) -> list[Any]:
    """The sums a rollup read selects (before the latency buckets), of ``table``."""
    c = table.c
    return [
        _int_sum(c.request_count),
        _int_sum(c.input_tokens),
        _int_sum(c.output_tokens),
        _int_sum(c.tokens_used),
        func.sum(c.cost_usd),
        _int_sum(c.response_time_ms_sum),
    ]


def _bucket_sums(table: Any) -> list[Any]:
    """The latency histogram's sums, of ``table``."""
    return [_int_sum(table.c[name]) for name in BUCKET_COLUMNS]


def _raw_expressions() -> dict[str, Any]:
    """The raw rows' key expressions, spelled as the rollups hold them (no reference is
    NO_REFERENCE); ``provider_id`` needs the join to the model."""
    nil = literal(NO_REFERENCE, ROLLUP.c.feature_id.type)
    return {
        "day": utc_day(UsageLog.created_at),
        "hour": utc_hour(UsageLog.created_at),
        "feature_id": func.coalesce(UsageLog.feature_id, nil),
        "model_id": func.coalesce(UsageLog.model_id, nil),
        "prompt_id": func.coalesce(UsageLog.prompt_id, nil),
        "provider_id": func.coalesce(AIModel.provider_id, nil),
        "status": UsageLog.status,
        "environment": UsageLog.environment,
    }


def _raw_aggregates() -> list[Any]:
    return [
        func.count(),
        func.sum(UsageLog.input_tokens),
        func.sum(UsageLog.output_tokens),
        func.sum(UsageLog.tokens_used),
        func.sum(UsageLog.cost_usd),
        func.sum(UsageLog.response_time_ms),
    ]


@dataclass(frozen=True)
class _RawSource:
    """What a grouped read of raw rows selects: ``expressions`` per key, the latency
    ``bucket``, the ``aggregates`` (as ``_add_raw`` takes them), from ``source`` with the
    ``conditions`` still to apply."""

    expressions: dict[str, Any]
    bucket: Any
    aggregates: list[Any]
    source: Any
    conditions: list[Any]


def _raw_source(
    used: Sequence[str],
    conditions: list[Any],
    with_latency: bool,
    feature_as: Mapping[uuid.UUID | None, int] | None = None,
) -> _RawSource:
    """The raw rows matching ``conditions``, ready to group by the keys ``used``.

    With ``provider_id`` the rows are first summed in a subquery by everything else and
    the model, and only those groups are joined to their model: a few hundred rows
    instead of every raw row. (The planner estimates one model row under the row-level
    security filter and joins each raw row in a nested loop over all models: 13,500 rows
    of the provider-health window in 13.4 ms; 7.9 summed first, with width_bucket.)
    Re-summing the sums gives the same figures."""
    expressions = _raw_expressions()
    if feature_as is not None:
        expressions["feature_id"] = _grouped_features(expressions["feature_id"], feature_as)
    bucket = latency_bucket_of(UsageLog.response_time_ms)
    aggregates = _raw_aggregates()
    if "provider_id" not in used:
        return _RawSource(expressions, bucket, aggregates, UsageLog, conditions)
    keys = [key for key in dict.fromkeys([*used, "model_id"]) if key != "provider_id"]
    group = [expressions[key] for key in keys] + ([bucket] if with_latency else [])
    labelled = [expressions[key].label(key) for key in keys]
    if with_latency:
        labelled.append(bucket.label("bucket"))
    sums = [aggregate.label(f"sum_{index}") for index, aggregate in enumerate(aggregates)]
    grouped = select(*labelled, *sums).where(*conditions).group_by(*group).subquery("grouped")
    c = grouped.c
    nil = literal(NO_REFERENCE, ROLLUP.c.feature_id.type)
    return _RawSource(
        {key: c[key] for key in keys} | {"provider_id": func.coalesce(AIModel.provider_id, nil)},
        c.bucket if with_latency else None,
        [
            *(_int_sum(c[f"sum_{index}"]) for index in range(4)),
            func.sum(c.sum_4),
            _int_sum(c.sum_5),
        ],
        grouped.outerjoin(AIModel, AIModel.id == c.model_id),
        [],
    )


def _add_raw(sums: UsageSums, figures: Sequence[Any], bucket: int | None) -> None:
    """Add one grouped raw row's figures (``_raw_aggregates``) to ``sums``; ``bucket``:
    the latency bucket the row's requests fall in (None: without latency)."""
    requests = int(figures[0] or 0)
    sums.requests += requests
    sums.input_tokens += int(figures[1] or 0)
    sums.output_tokens += int(figures[2] or 0)
    sums.tokens += int(figures[3] or 0)
    sums.cost += figures[4] if figures[4] is not None else ZERO_COST
    sums.response_time_ms += int(figures[5] or 0)
    if bucket is not None:
        if not sums.latency_buckets:
            sums.latency_buckets = [0] * len(BUCKET_COLUMNS)
        sums.latency_buckets[bucket] += requests


def _raw_rows(
    since: datetime,
    until: datetime,
    keys: Sequence[str],
    feature_id: uuid.UUID | None,
    environment: str | None,
    with_latency: bool,
    feature_as: Mapping[uuid.UUID | None, int] | None = None,
) -> list[tuple]:
    conditions = [UsageLog.created_at >= since, UsageLog.created_at < until]
    if feature_id is not None:
        conditions.append(UsageLog.feature_id == feature_id)
    if environment is not None:
        conditions.append(UsageLog.environment == environment)
    raw = _raw_source(keys, conditions, with_latency, feature_as)
    columns = [raw.expressions[key] for key in keys]
    group = [*columns, raw.bucket] if with_latency else columns
    query = select(*group, *raw.aggregates).select_from(raw.source).where(*raw.conditions)
    if group:
        query = query.group_by(*group)
    # Sum the rows of one key here (with latency, a key comes once per latency bucket).
    found: dict[tuple[Any, ...], UsageSums] = {}
    width = len(keys)
    offset = width + 1 if with_latency else width
    for row in db.session.execute(query):
        key = tuple(row[:width])
        sums = found.get(key)
        if sums is None:
            sums = found[key] = UsageSums()
        _add_raw(sums, row[offset:], int(row[width]) if with_latency else None)
    return [(*key, sums) for key, sums in found.items()]


def _raw_sets(
    spans: Sequence[Span],
    sets: Sequence[Sequence[str]],
    environment: str | None,
    with_latency: bool,
) -> list[dict[tuple[Any, ...], UsageSums]]:
    """The raw rows in ``spans`` (a window's partial hours) grouped by every set in one
    GROUPING SETS query (PostgreSQL): per set, {key values: sums} as ``_raw_rows`` sums
    them, the spans together."""
    used = list(dict.fromkeys(key for keys in sets for key in keys))
    within = or_(
        *[and_(UsageLog.created_at >= since, UsageLog.created_at < until) for since, until in spans]
    )
    conditions = [within]
    if environment is not None:
        conditions.append(UsageLog.environment == environment)
    raw = _raw_source(used, conditions, with_latency)
    columns = [raw.expressions[key] for key in used]
    masks, distinct = _set_masks(used, sets)
    latency = [raw.bucket] if with_latency else []
    grouping = func.grouping(*columns) if columns else literal(0)
    sets_grouped = [tuple_(*[raw.expressions[key] for key in keys], *latency) for keys in distinct]
    query = (
        select(grouping, *columns, *latency, *raw.aggregates)
        .select_from(raw.source)
        .where(*raw.conditions)
        .group_by(func.grouping_sets(*sets_grouped))
    )
    found: list[dict[tuple[Any, ...], UsageSums]] = [{} for _ in sets]
    positions = [[used.index(key) for key in keys] for keys in sets]
    offset = 1 + len(used) + len(latency)
    for row in db.session.execute(query):
        for index in masks[row[0]]:
            key = tuple(row[1 + i] for i in positions[index])
            sums = found[index].get(key)
            if sums is None:
                sums = found[index][key] = UsageSums()
            _add_raw(sums, row[offset:], int(row[1 + len(used)]) if with_latency else None)
    return found


def _set_masks(
    used: Sequence[str], sets: Sequence[Sequence[str]]
) -> tuple[dict[int, list[int]], list[Sequence[str]]]:
    """For a GROUPING SETS query over the keys ``used``: which sets each GROUPING(used…)
    value answers, and the distinct sets to group by. GROUPING(a, b, …) has a bit set
    (first argument highest) for each column a row's set does not group by: it tells the
    sets apart whatever the key values are. Sets with the same keys (in any order) share
    a mask and are grouped once (a grouping set listed twice would answer every group
    twice), so a mask names a list of sets."""
    masks: dict[int, list[int]] = {}
    distinct: list[Sequence[str]] = []
    for index, keys in enumerate(sets):
        mask = sum(1 << (len(used) - 1 - i) for i, key in enumerate(used) if key not in keys)
        if mask not in masks:
            distinct.append(keys)
        masks.setdefault(mask, []).append(index)
    return masks, distinct


def percentile_from_buckets(buckets: Sequence[int], fraction: float) -> int | None:
    """The latency below which ``fraction`` of requests fall, interpolated linearly inside
    its bucket (the open last bucket reports its lower bound). None without requests."""
    total = sum(buckets)
    if not total:
        return None
    rank = fraction * total
    lower = (0, *LATENCY_BOUNDS_MS)
    seen = 0
    for index, count in enumerate(buckets):
        if count and seen + count >= rank:
            if index >= len(LATENCY_BOUNDS_MS):
                return lower[index]
            width = LATENCY_BOUNDS_MS[index] - lower[index]
            return round(lower[index] + width * (rank - seen) / count)
        seen += count
    return lower[-1]
