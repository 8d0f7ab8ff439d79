"""Portable column types and SQL helpers behave the same on both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from tests import factories
from webapp.models import AuditLog, Prompt, UsageLog
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
