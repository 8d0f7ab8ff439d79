"""Portable column types and SQL helpers behave the same on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from webapp.models import AuditLog, Budget, Prompt, UsageLog
from webapp.models.types import json_array_overlaps, utc_day


@pytest.fixture
def tagged_prompts(db):
    factories.prompt("a", tags=["chat", "greeting"])
    factories.prompt("b", tags=["vision"])
    factories.prompt("c", tags=[])
    factories.prompt("d", tags=["Chat"])
    db.session.commit()


@pytest.mark.parametrize(
    "wanted, expected",
    [
        (["chat"], ["a"]),
        (["vision", "greeting"], ["a", "b"]),
        (["nothing"], []),
        ([], []),
        (["it's"], []),  # quoting is the driver's job: no SQL injection through tags
    ],
)
def test_json_array_overlaps_filters_tag_lists(db, tagged_prompts, wanted, expected):
    names = db.session.scalars(
        select(Prompt.name).where(json_array_overlaps(Prompt.tags, wanted)).order_by(Prompt.name)
    ).all()
    assert names == expected


def test_utc_day_groups_by_utc_calendar_day(db):
    for moment in (
        datetime(2026, 11, 1, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 11, 2, 0, 0, 0, tzinfo=UTC),
    ):
        db.session.add(UsageLog(created_at=moment, status="success"))
    db.session.commit()
    days = db.session.scalars(select(utc_day(UsageLog.created_at)).order_by(UsageLog.created_at))
    assert list(days) == [date(2026, 11, 1), date(2026, 11, 2)]


def test_json_columns_round_trip_nested_values(db):
    feature = factories.feature(config={"limits": {"rpm": 60}, "flags": [True, None]})
    db.session.commit()
    db.session.expire_all()
    assert feature.config == {"limits": {"rpm": 60}, "flags": [True, None]}


def test_ip_addresses_are_stored(db):
    db.session.add(AuditLog(action="x", resource_type="y", ip_address="2001:db8::1"))
    db.session.commit()
    assert str(db.session.scalar(select(AuditLog.ip_address))) == "2001:db8::1"


def test_postgresql_uses_native_types(db, dialect):
    if dialect != "postgresql":
        pytest.skip("PostgreSQL only: native JSONB, INET, NUMERIC, TIMESTAMPTZ")
    from sqlalchemy import text

    rows = dict(
        db.session.execute(
            text(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = 'ai_usage_logs'"
            )
        ).all()
    )
    assert rows["request_data"] == "jsonb"
    assert rows["cost_usd"] == "numeric"
    assert rows["created_at"] == "timestamp with time zone"
    assert rows["id"] == "uuid"


# --- ExactNumeric arithmetic: the same answers on both databases ----------------------


@pytest.fixture
def money_rows(db):
    feature = factories.feature()
    factories.budget(feature_id=feature.id, budget_amount=Decimal("0.60"))
    for cost in ("0.500000", "1.250000"):
        db.session.add(UsageLog(cost_usd=Decimal(cost), status="success", feature_id=feature.id))
    db.session.commit()


@pytest.mark.parametrize(
    "expression, expected",
    [
        (lambda: select(func.sum(UsageLog.cost_usd * 2)), "3.500000"),
        (lambda: select(func.sum(UsageLog.cost_usd / 2)), "0.875000"),
        (lambda: select(func.sum(UsageLog.cost_usd * Decimal("0.1"))), "0.175000"),
        (lambda: select(func.sum(UsageLog.cost_usd + Decimal("0.000001"))), "1.750002"),
        (lambda: select(func.avg(UsageLog.cost_usd, type_=UsageLog.cost_usd.type)), "0.875000"),
        (lambda: select(func.max(UsageLog.cost_usd)), "1.250000"),
    ],
)
def test_money_arithmetic_with_plain_numbers(db, money_rows, expression, expected):
    assert db.session.scalar(expression()) == Decimal(expected)


def test_money_columns_of_different_scales_compare_correctly(db, money_rows):
    # cost_usd is NUMERIC(10, 6), budget_amount NUMERIC(10, 2): 0.5 < 0.60 < 1.25
    over = db.session.scalars(
        select(UsageLog.cost_usd)
        .join(Budget, Budget.feature_id == UsageLog.feature_id)
        .where(UsageLog.cost_usd > Budget.budget_amount)
    ).all()
    assert over == [Decimal("1.250000")]
    assert db.session.scalar(select(func.count()).where(UsageLog.cost_usd > Decimal("0.5"))) == 1


def test_values_too_large_for_the_column_are_refused_on_both_databases(db):
    with pytest.raises(Exception, match="does not fit"), db.session.begin_nested():
        db.session.add(UsageLog(cost_usd=Decimal("10000.000000"), status="success"))
        db.session.flush()
