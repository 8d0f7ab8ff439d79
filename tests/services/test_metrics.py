"""Health metrics against a fixed dataset with hand-computed answers (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
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
    # percentile_cont(0.95): position 0.95 × 9 = 8.55 → 900 + 0.55 × (1000 − 900)
    assert m.p95_response_ms == Decimal("955.0")
    assert m.total_cost == Decimal("1.000000")
    assert m.cost_per_request == Decimal("0.100000")
    # Hours with traffic: 08, 09, 10; the 10 o'clock hour had no success.
    assert (m.hours_with_traffic, m.hours_up, m.uptime) == (3, 2, Decimal("66.67"))


def test_model_metrics_use_the_same_queries(dataset):
    _, _, model = dataset
    since, until = windows.window_for("24h", NOW)
    m = windows.usage_metrics_by(UsageLog.model_id, since, until)[model.id]
    assert m.total_requests == 10 and m.p95_response_ms == Decimal("955.0")


def test_narrow_window_and_single_row_percentile(dataset):
    feature, _, _ = dataset
    since, until = windows.window_for("1h", H0 + timedelta(hours=2, minutes=9, seconds=30))
    # Only the 900 ms error falls in this hour (10:09:00).
    m = windows.usage_metrics_by(UsageLog.feature_id, since, until)[feature.id]
    assert (m.total_requests, m.p95_response_ms, m.uptime) == (1, Decimal("900.0"), Decimal("0.00"))


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
    m = windows.usage_metrics_by(UsageLog.feature_id, *windows.window_for("1h", NOW))[feature.id]
    assert (m.total_requests, m.success_rate, m.avg_response_ms, m.p95_response_ms) == (
        1,
        Decimal("100.00"),
        Decimal("1000.0"),
        Decimal("1000.0"),
    )


def test_an_hour_with_mostly_failures_counts_as_down(db):
    feature = factories.feature("f")
    hour = NOW - timedelta(minutes=30)
    for status in ("success", "error", "error", "timeout"):
        db.session.add(UsageLog(feature_id=feature.id, status=status, created_at=hour))
    db.session.commit()
    m = windows.usage_metrics_by(UsageLog.feature_id, *windows.window_for("1h", NOW))[feature.id]
    assert (m.hours_with_traffic, m.hours_up, m.uptime) == (1, 0, Decimal("0.00"))


def test_p95_is_computed_per_group_in_one_query(db):
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
    result = windows.usage_metrics_by(UsageLog.feature_id, *windows.window_for("1h", NOW))

    def by_hand(values):  # percentile_cont: linear interpolation at 0.95 × (n − 1)
        values = sorted(values)
        position = 0.95 * (len(values) - 1)
        low = int(position)
        high = min(low + 1, len(values) - 1)
        return Decimal(str(values[low] + (values[high] - values[low]) * (position - low))).quantize(
            Decimal("0.1")
        )

    assert {k: m.p95_response_ms for k, m in result.items()} == {
        k: by_hand(v) for k, v in groups.items()
    }
