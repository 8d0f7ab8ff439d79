"""Usage from models the catalog does not know: listing it, and attaching it to a model
when an admin adds that model.

Rows an application reported for a model name the catalog did not know are stored with
``model_id`` NULL and the names as reported (``model_name``, ``provider_name``,
``model_version``). ``attach_unknown_usage`` runs inside the transaction that creates the
model: it sets ``model_id`` on the matching rows, prices the ``unpriced`` ones at the new
model's prices (``cost.request_cost``'s formula, evaluated by the database so that no row
is loaded into Python) and moves their rollup contribution from "no model" to the model.
In the hourly outcomes the rows had no model or provider row (usage without a model has
none), so their outcomes are only added under the model and its provider; their feature
rows stay as they are (neither the feature nor the status changes).
Everything is set-based: a handful of statements whatever the number of rows.

Which rows match a new model: the same model name; a provider name equal (ignoring case)
to the new model's provider's ``name`` or ``display_name``, or no provider name reported;
and, when the new model has a version, the same version or none reported.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Numeric,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.elements import ColumnElement

from webapp.extensions import db
from webapp.models import AIModel, Provider, UsageLog
from webapp.models.rollup import NO_REFERENCE, UsageDailyRollup
from webapp.services.usage.rollup import (
    DAILY,
    FINISHED,
    HOURLY,
    OUTCOMES,
    PERIODS,
    outcomes_upsert,
    pick_shard,
    raw_row_sums,  # the rebuild's own sums and latency buckets: both agree on every bound
    rollup_upsert,
)
from webapp.services.usage.settled import note_late_writes

UNKNOWN_WINDOW = timedelta(days=30)
MICRO = 1_000_000


@dataclass(frozen=True)
class UnknownModel:
    """A model name applications reported that the catalog does not know."""

    model_name: str
    provider_name: str | None
    requests: int
    last_seen: datetime


def unknown_models(now: datetime, limit: int = 20) -> list[UnknownModel]:
    """Model names (with the provider name as reported) of the last 30 days' usage that
    no catalog model matched, most requests first (the partial index on
    ``model_name`` serves it)."""
    rows = db.session.execute(
        select(
            UsageLog.model_name,
            UsageLog.provider_name,
            func.count(),
            func.max(UsageLog.created_at),
        )
        .where(
            UsageLog.model_id.is_(None),
            UsageLog.model_name.is_not(None),
            UsageLog.created_at >= now - UNKNOWN_WINDOW,
        )
        .group_by(UsageLog.model_name, UsageLog.provider_name)
        .order_by(func.count().desc(), UsageLog.model_name, UsageLog.provider_name)
        .limit(limit)
    ).all()
    return [UnknownModel(str(name), provider, int(n), last) for name, provider, n, last in rows]


def _matching(model: AIModel, provider: Provider) -> list[ColumnElement[bool]]:
    names = {provider.name.lower(), provider.display_name.lower()}
    conditions: list[ColumnElement[bool]] = [
        UsageLog.model_id.is_(None),
        UsageLog.model_name == model.name,
        or_(UsageLog.provider_name.is_(None), func.lower(UsageLog.provider_name).in_(names)),
    ]
    if model.version is not None:
        conditions.append(
            or_(UsageLog.model_version.is_(None), UsageLog.model_version == model.version)
        )
    return conditions


def _micro(price: Any) -> ColumnElement[int]:
    """A price as a whole number of micro-dollars (prices have at most 6 decimals)."""
    return literal(int(price * MICRO), BigInteger)


def _catalog_cost(model: AIModel) -> ColumnElement[Any]:
    """``request_cost`` of each row at ``model``'s prices, in SQL: the token part summed
    in whole units of 1e-12 USD (tokens × micro-dollars per million), rounded half-even
    to the micro-dollar, plus the per-request and per-image prices (whole micro-dollars).
    Integer arithmetic only, so it is exact on both databases."""
    read_price = model.cache_read_price_per_million
    write_price = model.cache_write_price_per_million
    read = model.input_price_per_million if read_price is None else read_price
    write = model.input_price_per_million if write_price is None else write_price
    cached = UsageLog.cache_read_input_tokens + UsageLog.cache_write_input_tokens
    tokens = (
        (UsageLog.input_tokens - cached) * _micro(model.input_price_per_million)
        + UsageLog.output_tokens * _micro(model.output_price_per_million)
        + UsageLog.cache_read_input_tokens * _micro(read)
        + UsageLog.cache_write_input_tokens * _micro(write)
    )
    whole = tokens // literal(MICRO, BigInteger)  # floor division of integers
    rest = tokens % literal(MICRO, BigInteger)
    half = MICRO // 2
    rounded = whole + case((rest > half, 1), ((rest == half) & (whole % 2 == 1), 1), else_=0)
    micro = (
        rounded
        + _micro(model.price_per_request or 0)
        + UsageLog.images * _micro(model.price_per_image or 0)
    )
    if db.session.get_bind().dialect.name == "sqlite":
        return micro  # ExactNumeric stores micro-units on SQLite
    return cast(micro, Numeric(24, 0)) / MICRO


def _move_rollup(model: AIModel, sign: int, shard: int) -> None:
    """Add (``sign`` 1) or take out (-1) the contribution of the rows now carrying
    ``model``'s id: taken out under "no model, no provider" (as they were counted before),
    added under the model and its provider. One INSERT … SELECT … ON CONFLICT per rollup."""
    nil = literal(NO_REFERENCE, UsageDailyRollup.feature_id.type)
    feature = func.coalesce(UsageLog.feature_id, nil)
    if sign > 0:
        model_key = literal(model.id, UsageDailyRollup.model_id.type)
        provider_key = literal(model.provider_id, UsageDailyRollup.provider_id.type)
    else:
        model_key = provider_key = nil
    dialect_name = db.session.get_bind().dialect.name
    for period in PERIODS:
        moment = period.sql(UsageLog.created_at)
        query = (
            select(
                moment,
                feature,
                model_key,
                provider_key,
                UsageLog.status,
                UsageLog.environment,
                literal(shard, UsageDailyRollup.shard.type),
                *[value * sign for value in raw_row_sums()],
            )
            .where(UsageLog.model_id == model.id)
            .group_by(moment, feature, UsageLog.status, UsageLog.environment)
        )
        db.session.execute(rollup_upsert(dialect_name, period, query))


def _add_outcomes(model: AIModel, shard: int) -> None:
    """Add the outcomes of the rows now carrying ``model``'s id under the model and its
    provider: one INSERT … SELECT … ON CONFLICT, in key order (after the rollups)."""
    hour = HOURLY.sql(UsageLog.created_at)
    successes = func.sum(case((UsageLog.status == "success", 1), else_=0))
    parts = [
        select(
            hour.label("hour"),
            literal(kind, OUTCOMES.c.kind.type).label("kind"),
            literal(key_id, OUTCOMES.c.key_id.type).label("key_id"),
            UsageLog.environment.label("environment"),
            literal(shard, OUTCOMES.c.shard.type).label("shard"),
            successes.label("successes"),
            func.count().label("finished"),
        )
        .where(UsageLog.model_id == model.id, UsageLog.status.in_(FINISHED))
        .group_by(hour, UsageLog.environment)
        for kind, key_id in (("model", model.id), ("provider", model.provider_id))
    ]
    moved = union_all(*parts).subquery()
    query = select(*moved.c).where(moved.c.finished > 0).order_by(*list(moved.c)[:4])
    db.session.execute(outcomes_upsert(db.session.get_bind().dialect.name, query))


def attach_unknown_usage(model: AIModel) -> int:
    """Attach the earlier rows that named ``model`` (flushed, not yet committed: the
    caller's transaction) and price the unpriced ones; returns how many were attached.

    Order matters for exactness: the rows are claimed first by setting ``model_id`` (no
    other transaction can write the id of a model not yet committed, so afterwards
    ``model_id = model.id`` names exactly the claimed rows), their old contribution is
    taken out of the rollup, they are priced, and their new contribution is added."""
    provider = db.session.get(Provider, model.provider_id)
    if provider is None:
        return 0
    result = db.session.execute(
        update(UsageLog)
        .where(*_matching(model, provider))
        .values(model_id=model.id)
        .execution_options(synchronize_session=False)
    )
    # An UPDATE answers a cursor result, which counts its rows on both drivers.
    claimed = typing.cast(CursorResult[Any], result).rowcount
    if not claimed:
        return 0
    shard = pick_shard()
    _move_rollup(model, -1, shard)
    db.session.execute(
        update(UsageLog)
        .where(UsageLog.model_id == model.id, UsageLog.cost_source == "unpriced")
        .values(cost_usd=_catalog_cost(model), cost_source="catalog")
        .execution_options(synchronize_session=False)
    )
    _move_rollup(model, 1, shard)
    _add_outcomes(model, shard)
    # Rows of any age moved between keys: a late write on every day they are from.
    moved = select(DAILY.sql(UsageLog.created_at)).where(UsageLog.model_id == model.id)
    note_late_writes(db.session.scalars(moved.distinct()), shard)
    return int(claimed)
