"""Health metrics against a fixed dataset with hand-computed answers (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.usage_rows import roll_up
from webapp.models import UsageLog
from webapp.services.core.errors import ValidationFailed
from webapp.services.usage import windows

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
H0 = datetime(2026, 11, 25, 8, 10, tzinfo=UTC)

# (latency ms, status, hours after H0)
ROWS = [
    (100, "success", 0),
    (200, "success", 0),
    (300, "success", 0),
    (400, "success", 1),
    (500, "success", 1),
    (600, "success", 1),
    (700, "success", 1),
    (800, "success", 1),
    (900, "error", 2),
    (1000, "timeout", 2),
]


@pytest.fixture
def dataset(db):
    feature = factories.feature("chatbot")
    quiet = factories.feature("quiet")
    model = factories.model(factories.provider())
    for ms, status, hour in ROWS:
        db.session.add(
            UsageLog(
                feature_id=feature.id,
                model_id=model.id,
                status=status,
                response_time_ms=ms,
                cost_usd=Decimal("0.100000"),
                created_at=H0 + timedelta(hours=hour, minutes=ms // 100),
            )
        )
    # Outside the 24h window: must not count.
    db.session.add(
        UsageLog(
            feature_id=feature.id,
            status="error",
            response_time_ms=99999,
            cost_usd=Decimal("5"),
            created_at=NOW - timedelta(hours=25),
        )
    )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    return feature, quiet, model


def test_feature_metrics_hand_computed(dataset):
    feature, _quiet, _ = dataset
    since, until = windows.window_for("24h", NOW)
    result = windows.usage_metrics_by(UsageLog.feature_id, since, until)
    assert set(result) == {feature.id}  # a feature without traffic has no row
    m = result[feature.id]
    assert m.total_requests == 10
    assert m.success_rate == Decimal("80.00")
    assert m.error_rate == Decimal("20.00")  # error + timeout
    assert m.avg_response_ms == Decimal("550.0")
    # The latency histogram's p95 (every window): rank 0.95 × 10 = 9.5; nine requests lie
    # below 1000 ms, the tenth in [1000, 1500) → 1000 + 500 × (9.5 − 9) / 1.
    assert m.p95_response_ms == Decimal("1250.0")
    assert m.total_cost == Decimal("1.000000")
    assert m.cost_per_request == Decimal("0.100000")
    # Hours with traffic: 08, 09, 10; the 10 o'clock hour had no success.
    assert (m.hours_with_traffic, m.hours_up, m.uptime) == (3, 2, Decimal("66.67"))


def test_model_metrics_use_the_same_queries(dataset):
    _, _, model = dataset
    since, until = windows.window_for("24h", NOW)
    m = windows.usage_metrics_by(UsageLog.model_id, since, until)[model.id]
    assert m.total_requests == 10 and m.p95_response_ms == Decimal("1250.0")


def test_narrow_window_and_single_row_percentile(dataset):
    feature, _, _ = dataset
    since, until = windows.window_for("1h", H0 + timedelta(hours=2, minutes=9, seconds=30))
    # Only the 900 ms error falls in this hour (10:09:00): bucket [750, 1000), rank 0.95
    # → 750 + 250 × 0.95 = 987.5, rounded half-even to 988.
    m = windows.usage_metrics_by(UsageLog.feature_id, since, until)[feature.id]
    assert (m.total_requests, m.p95_response_ms, m.uptime) == (1, Decimal("988.0"), Decimal("0.00"))


def test_empty_metrics_have_no_rates():
    empty = windows.UsageMetrics.empty()
    assert (empty.success_rate, empty.uptime, empty.cost_per_request) == (None, None, None)


@pytest.mark.parametrize("bad", ["2h", "", "24H", "all"])
def test_unknown_time_range_is_a_validation_error(bad):
    with pytest.raises(ValidationFailed) as error:
        windows.window_for(bad)
    assert "time_range" in error.value.errors


def test_pending_requests_are_left_out_of_every_figure(db):
    feature = factories.feature("f")
    for status, ms in (("success", 1000), ("pending", 0), ("pending", 0)):
        db.session.add(
            UsageLog(
                feature_id=feature.id,
                status=status,
                response_time_ms=ms,
                cost_usd=Decimal("0.1"),
                created_at=NOW - timedelta(minutes=5),
            )
        )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    m = windows.usage_metrics_by(UsageLog.feature_id, *windows.window_for("1h", NOW))[feature.id]
    assert (m.total_requests, m.success_rate, m.avg_response_ms, m.p95_response_ms) == (
        1,
        Decimal("100.00"),
        Decimal("1000.0"),
        Decimal("1475.0"),  # bucket [1000, 1500): 1000 + 500 × 0.95
    )


def test_an_hour_with_mostly_failures_counts_as_down(db):
    feature = factories.feature("f")
    hour = NOW - timedelta(minutes=30)
    for status in ("success", "error", "error", "timeout"):
        db.session.add(UsageLog(feature_id=feature.id, status=status, created_at=hour))
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    m = windows.usage_metrics_by(UsageLog.feature_id, *windows.window_for("1h", NOW))[feature.id]
    assert (m.hours_with_traffic, m.hours_up, m.uptime) == (1, 0, Decimal("0.00"))


def test_p95_comes_from_the_latency_histogram_per_group(db):
    groups = {
        factories.feature(f"f{n}").id: values
        for n, values in enumerate([[10, 20, 30, 40, 50], [5], [100, 300], list(range(1, 101))])
    }
    for feature_id, values in groups.items():
        for ms in values:
            db.session.add(
                UsageLog(
                    feature_id=feature_id,
                    status="success",
                    response_time_ms=ms,
                    created_at=NOW - timedelta(minutes=1),
                )
            )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    result = windows.usage_metrics_by(UsageLog.feature_id, *windows.window_for("1h", NOW))
    # The histogram's p95 by hand (rank 0.95 × n, linear inside the bucket it falls in):
    expected = [
        Decimal("88.0"),  # 4 below 50, 50 in [50, 100): 50 + 50 × (4.75 − 4) = 87.5 → 88
        Decimal("48.0"),  # 5 in [0, 50): 50 × 0.95 = 47.5 → 48
        Decimal("390.0"),  # 100 in [100, 150), 300 in [300, 400): 300 + 100 × 0.9
        Decimal("96.0"),  # 49 below 50, 50 in [50, 100): 50 + 50 × (95 − 49) / 50
    ]
    assert {k: m.p95_response_ms for k, m in result.items()} == dict(
        zip(groups, expected, strict=True)
    )
