"""The environment filter: every usage figure of spending, the overview and the catalog
pages, for one environment or all of them (the sum)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests import factories
from tests.usage_rows import earlier_today, insert_usage
from webapp.models import ENVIRONMENTS
from webapp.services.catalog import ai_models, features
from webapp.services.core.errors import ValidationFailed
from webapp.services.overview import dashboard
from webapp.services.spending.analytics import spending_breakdown, spending_trends
from webapp.services.usage import windows

D = Decimal
# Spend per environment in the dataset below (production: two rows today, one 3 days ago).
SPEND = {"production": D("2.50"), "staging": D("0.25"), "development": D("0.75")}


@pytest.fixture
def usage(db):
    """Rows in every environment: recent ones (the last 24 hours) and older ones."""
    feature = factories.feature("chatbot")
    model = factories.model(factories.provider("openai"), "gpt")
    db.session.commit()
    now = datetime.now(UTC)
    recent, older = earlier_today(), now - timedelta(days=3)

    def row(environment, created_at, cost, status="success", ms=100):
        return {
            "feature_id": feature.id,
            "model_id": model.id,
            "environment": environment,
            "created_at": created_at,
            "cost_usd": cost,
            "cost_source": "reported",
            "status": status,
            "response_time_ms": ms,
            "input_tokens": 10,
            "output_tokens": 5,
        }

    insert_usage(
        [
            row("production", recent, "1.00"),
            row("production", recent, "1.00", ms=900),
            row("production", older, "0.50"),
            row("staging", recent, "0.25", status="error", ms=3000),
            row("development", older, "0.75"),
        ]
    )
    return feature, model


def test_checked_environment_takes_the_three_environments_or_none():
    assert windows.checked_environment(None) is None
    assert windows.checked_environment("") is None
    for name in ENVIRONMENTS:
        assert windows.checked_environment(name) == name
    with pytest.raises(ValidationFailed) as caught:
        windows.checked_environment("prod")
    assert caught.value.errors == {"environment": "must be one of development, staging, production"}


@pytest.mark.parametrize("time_range", ["24h", "7d", "30d"])
def test_metrics_per_environment_add_up_to_all(usage, time_range):
    feature, model = usage
    every = windows.metrics_for("feature_id", time_range)[feature.id]
    parts = {
        name: windows.metrics_for("feature_id", time_range, environment=name).get(feature.id)
        for name in ENVIRONMENTS
    }
    found = [m for m in parts.values() if m is not None]
    assert sum(m.total_requests for m in found) == every.total_requests
    assert sum(m.total_cost for m in found) == every.total_cost
    assert sum(m.failures for m in found) == every.failures
    staging = parts["staging"]
    assert staging is not None and staging.total_requests == 1 and staging.error_rate == 100
    if time_range == "24h":
        assert parts["development"] is None  # 3 days ago
        assert every.total_requests == 3
    else:
        assert every.total_requests == 5 and every.total_cost == sum(SPEND.values())
    # the models page and the features page read the same function
    by_model = ai_models.model_performance([model.id], time_range, environment="staging")
    assert by_model[model.id].total_cost == D("0.25")
    health = features.feature_health(feature.id, time_range, environment="staging")
    assert health == staging
    listed = features.list_features(
        include_metrics=True, time_range=time_range, environment="staging"
    )
    assert listed[0].metrics == staging


def test_spending_breakdown_per_environment_adds_up_to_all(usage):
    today = datetime.now(UTC).date()
    start = today - timedelta(days=6)
    every = spending_breakdown(start, today)
    for name, spend in SPEND.items():
        part = spending_breakdown(start, today, environment=name)
        assert part.total_spend == spend
        assert sum(f.amount for f in part.by_feature) == spend
        assert sum(d.amount for d in part.by_day) == spend
    assert every.total_spend == sum(SPEND.values())
    assert every.total_requests == 5


def test_spending_trends_per_environment(usage):
    every = spending_trends(30)
    production = spending_trends(30, environment="production")
    development = spending_trends(30, environment="development")
    staging = spending_trends(30, environment="staging")
    # trends leave today out: the rows of 3 days ago only
    assert production.total_spend == D("0.50")
    assert development.total_spend == D("0.75")
    assert staging.total_spend == 0
    assert every.total_spend == production.total_spend + development.total_spend


@pytest.mark.parametrize("range_name", ["24h", "7d"])
def test_overview_per_environment_adds_up_to_all(usage, range_name):
    every = dashboard.build_overview(range_name)
    parts = [dashboard.build_overview(range_name, environment=name) for name in ENVIRONMENTS]
    assert sum(p.kpis.current.spend for p in parts) == every.kpis.current.spend
    assert sum(p.kpis.current.requests for p in parts) == every.kpis.current.requests
    staging = dashboard.build_overview(range_name, environment="staging")
    assert staging.kpis.current.spend == D("0.25")
    assert staging.kpis.current.error_rate == 100
    assert [m.cost for m in staging.top_models] == [D("0.25")]
    assert staging.features[0].requests == 1
    assert sum(staging.series.requests) == 1
    tiles = dashboard.build_tiles(range_name, environment="staging")
    assert tiles.current.spend == D("0.25")
    if range_name == "7d":
        assert every.kpis.current.spend == sum(SPEND.values())


def test_daily_usage_per_environment(usage):
    feature, _ = usage
    every = features.usage_by_day(feature.id, 7)
    parts = [features.usage_by_day(feature.id, 7, environment=name) for name in ENVIRONMENTS]
    for index, day in enumerate(every):
        assert day.requests == sum(p[index].requests for p in parts)
        assert day.cost == sum(p[index].cost for p in parts)
    assert sum(
        d.cost for d in features.usage_by_day(feature.id, 7, environment="development")
    ) == D("0.75")


def test_a_wrong_environment_is_refused_with_every_other_wrong_field(usage):
    feature, _ = usage
    with pytest.raises(ValidationFailed) as caught:
        spending_breakdown("2026-11-05", "2026-11-01", environment="moon")
    assert set(caught.value.errors) == {"end_date", "environment"}
    with pytest.raises(ValidationFailed) as caught:
        dashboard.build_overview("1y", environment="moon")
    assert set(caught.value.errors) == {"range", "environment"}
    for call in (
        lambda: spending_trends(30, environment="moon"),
        lambda: windows.metrics_for("model_id", "24h", environment="moon"),
        lambda: features.usage_by_day(feature.id, 7, environment="moon"),
        lambda: features.list_features(environment="moon"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            call()
        assert set(caught.value.errors) == {"environment"}
