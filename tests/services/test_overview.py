"""The Global Overview's figures against the fixed dataset of tests/spending_data.py
(now = 2026-11-20 12:00 UTC) plus one request in the previous week:

    11-10  chatbot  gpt  success  10,000 / 0 tokens   0.100000   (previous 7-day period)

Every request took 400 ms except the one without a model (0 ms): in the 7 days, average
2,000 / 6 = 333 ms; p95 rank 0.95 × 6 = 5.7 falls in the [400, 500) bucket after the one
request below it: 400 + 100 × 4.7 / 5 = 494 ms."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from tests import factories
from tests.spending_data import NOW, at, build_dataset
from tests.spending_data import event as usage_event
from webapp.extensions import db
from webapp.models import Experiment
from webapp.services.core.errors import ValidationFailed
from webapp.services.overview.dashboard import (
    build_alerts,
    build_overview,
    build_tiles,
    periods_for,
)
from webapp.services.overview.kpis import grouped_usage, kpi_usage, usage_kpis
from webapp.services.usage.recording import record_usage
from webapp.services.usage.settled import settled_sums

D = Decimal


@pytest.fixture
def data(db):
    data = build_dataset()
    record_usage([usage_event(data.chatbot, data.gpt, at(10, 10), 10_000, 0)])
    return data


def tiles(overview) -> dict:
    return {t.key: t for t in overview.kpis.tiles}


def test_7_day_kpis_and_their_change_against_the_previous_7_days(data):
    overview = build_overview("7d", now=NOW)
    assert overview.period.first_day.isoformat() == "2026-11-14"
    assert overview.previous.first_day.isoformat() == "2026-11-07"
    t = tiles(overview)
    assert (t["requests"].value, t["requests"].previous, t["requests"].delta) == (6, 1, 5)
    assert t["requests"].delta_percent == D("500.0")
    assert (t["spend"].value, t["spend"].previous) == (D("5.750000"), D("0.100000"))
    assert t["spend"].delta == D("5.650000") and t["spend"].tone == "bad"
    assert (t["success_rate"].value, t["success_rate"].previous) == (D("83.33"), D("100.00"))
    assert t["success_rate"].delta == D("-16.67") and t["success_rate"].tone == "bad"
    assert (t["avg_latency"].value, t["p95_latency"].value) == (333, 494)
    assert (t["features"].value, t["features"].previous) == (2, 1)
    assert t["active_features"].value == 2


def test_24_hour_range_reads_the_last_24_hours_against_the_24_before(data):
    t = tiles(build_overview("24h", now=NOW))
    # 11-19 12:00 → 11-20 12:00: the two requests of the 20th; before: the two of the 19th
    assert (t["requests"].value, t["requests"].previous) == (2, 2)
    assert (t["spend"].value, t["spend"].previous) == (D("2.800000"), D("0.600000"))
    assert t["requests"].delta == 0 and t["requests"].tone == "neutral"
    assert t["success_rate"].previous == D("50.00")


def test_custom_range_and_its_previous_period(data):
    overview = build_overview("custom", "2026-11-18", "2026-11-19", now=NOW)
    assert overview.previous.first_day.isoformat() == "2026-11-16"
    t = tiles(overview)
    assert (t["requests"].value, t["requests"].previous) == (4, 0)
    assert t["requests"].delta_percent is None  # no percentage of nothing
    assert t["spend"].value == D("2.950000")


def test_bad_ranges_are_named(db):
    with pytest.raises(ValidationFailed) as caught:
        periods_for("1y")
    assert caught.value.errors == {"range": "must be one of 24h, 7d, 30d, custom"}
    with pytest.raises(ValidationFailed) as caught:
        periods_for("custom", "2026-11-05", "2026-11-01")
    assert caught.value.errors == {"end_date": "must be on or after start_date"}


def test_series_tables_and_top_models(data):
    overview = build_overview("7d", now=NOW)
    s = overview.series
    assert s.buckets[0] == "2026-11-14" and s.buckets[-1] == "2026-11-20"
    assert s.spend_by_feature["Chatbot"][-3:] == [D("1.600000"), D("0.500000"), D("1.800000")]
    assert s.requests[-3:] == [2, 2, 2]
    assert s.error_rate[-3:] == [D("0.00"), D("50.00"), D("0.00")]
    assert s.error_rate[0] is None  # no request that day: no rate, not 0 %
    assert s.spend_by_provider == [
        ("OpenAI", D("3.100000")),
        ("Anthropic", D("2.550000")),
        ("(no provider)", D("0.100000")),
    ]
    top = [(m.name, m.cost, m.requests, m.cost_per_request) for m in overview.top_models]
    assert top == [
        ("Claude", D("2.550000"), 2, D("1.275000")),
        ("GPT", D("2.100000"), 2, D("1.050000")),
        ("Mini", D("1.000000"), 1, D("1.000000")),
    ]
    features = {row.feature.name: row for row in overview.features}
    assert features["chatbot"].requests == 3 and features["chatbot"].success_rate == D("66.67")


def test_budgets_at_risk_now_and_at_the_end_of_the_previous_period(data):
    factories.budget(name="Tight", budget_amount=D("5.00"))  # November, global
    db.session.commit()
    t = tiles(build_overview("7d", now=NOW))
    assert (t["budgets_at_risk"].value, t["budgets_at_risk"].previous) == (1, 0)
    assert t["budgets_at_risk"].tone == "bad"


def test_alerts_budget_provider_experiment_and_maintenance(data):
    factories.budget(name="Tight", budget_amount=D("5.00"))
    factories.assignment(data.chatbot, data.claude)
    data.search.status = "maintenance"
    experiment = Experiment(
        name="Greeting v2",
        feature_id=data.chatbot.id,
        experiment_type="a_b_test",
        status="running",
        winner_variant="v2",
    )
    db.session.add(experiment)
    db.session.commit()
    # Anthropic fails every request in the last 15 minutes: down.
    record_usage(
        [
            usage_event(data.search, data.claude, NOW - timedelta(minutes=m), 10, 0, status="error")
            for m in range(1, 7)
        ]
    )
    found = build_alerts(now=NOW)
    assert [(a.level, a.kind) for a in found] == [
        ("critical", "budget"),
        ("critical", "provider"),
        ("info", "experiment"),
        ("info", "feature"),
    ]
    # 5.75 + the 11-10 request 0.10 + six failed Claude calls of 10 tokens (0.00003 each)
    assert found[0].message == "Budget Tight: Over budget: $5.85 spent of $5.00"
    assert found[1].message == "Anthropic is down: Chatbot (production) affected"
    assert (
        found[2].message
        == "Experiment Greeting v2 has a significant winner (v2) waiting for promotion"
    )
    assert found[3].message == "Search is in maintenance"
    # Issue 13: services name the resource (kind, id); the web layer knows its page.
    assert (found[1].kind, found[1].resource_id) == ("provider", data.anthropic.id)


def test_empty_database_says_so(db):
    overview = build_overview("7d", now=NOW)
    assert overview.empty is True
    assert tiles(overview)["requests"].value == 0
    assert overview.top_models == [] and overview.alerts == []


def test_query_count_does_not_grow_with_features_models_and_providers(data):
    def statements() -> int:
        seen = []
        engine = db.engine
        listener = lambda *args: seen.append(1)  # noqa: E731
        settled_sums().forget()  # the cold page: every read reaches the database
        event.listen(engine, "before_cursor_execute", listener)
        try:
            build_overview("7d", now=NOW)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        db.session.rollback()
        return len(seen)

    before = statements()
    for n in range(8):
        provider = factories.provider(f"extra-{n}")
        model = factories.model(provider, f"extra-model-{n}")
        feature = factories.feature(f"extra-feature-{n}")
        factories.assignment(feature, model)
        db.session.commit()
        record_usage([usage_event(feature, model, at(19, 12), 100, 100)])
    assert statements() == before


def test_active_features_then_and_now_from_the_audited_changes(data, admin_user):
    from webapp.services.catalog.features import create_feature, update_feature
    from webapp.services.core.actor import Actor

    actor = Actor(admin_user.id)
    # After the previous period ended (these audit rows are stamped now, after NOW - 7d):
    update_feature(actor, data.search.id, {"status": "maintenance"})
    create_feature(actor, {"name": "newcomer", "display_name": "Newcomer", "model_type": "llm"})
    t = tiles(build_overview("7d", now=NOW))
    # Now: chatbot and newcomer active. Before: chatbot and search (newcomer did not exist).
    assert (t["active_features"].value, t["active_features"].previous) == (2, 2)
    update_feature(actor, data.chatbot.id, {"status": "inactive"})
    t = tiles(build_overview("7d", now=NOW))
    assert (t["active_features"].value, t["active_features"].previous) == (1, 2)


def test_recent_activity_links_only_to_resources_that_still_exist(data, admin_user):
    from webapp.services.core.actor import Actor
    from webapp.services.spending.budgets import create_budget, delete_budget

    actor = Actor(admin_user.id)
    kept = create_budget(
        actor,
        {
            "name": "Kept",
            "budget_amount": "5",
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
        },
    )
    gone = create_budget(
        actor,
        {
            "name": "Gone",
            "budget_amount": "5",
            "start_date": "2026-11-01",
            "end_date": "2026-11-30",
        },
    )
    delete_budget(actor, gone.id)
    activity = build_overview("7d", now=NOW).activity
    links = {(a.event.action, a.event.resource_id): a.resource_kind for a in activity}
    assert links[("budget.create", kept.id)] == "budget"
    assert links[("budget.create", gone.id)] is None
    assert links[("budget.delete", gone.id)] is None
    assert activity[0].event.action == "budget.delete"  # newest first
    assert activity[0].email == admin_user.email


def test_feature_rows_count_and_rate_finished_requests(data):
    # Issue 13: one definition of "requests" everywhere: pending ones are left out.
    record_usage([usage_event(data.chatbot, data.gpt, at(19, 20), 1, 1, status="pending")])
    features = {row.feature.name: row for row in build_overview("7d", now=NOW).features}
    assert features["chatbot"].requests == 3
    assert features["chatbot"].success_rate == D("66.67")  # 2 of the 3 finished
    assert features["chatbot"].production_model is None  # no production assignment


@pytest.mark.parametrize("range_name", ["7d", "30d"])
def test_no_raw_usage_read_covers_a_past_day(data, range_name):
    """Past days come from the rollup: every read of ai_usage_logs starts today or later
    (the usage of today, the provider-health windows)."""
    from datetime import UTC, datetime

    from sqlalchemy import event as sa_event

    factories.budget(name="Watched", budget_amount=D("50.00"))  # budgets are read twice
    db.session.commit()
    starts = []

    def capture(conn, clause, multiparams, params, execution_options):
        compiled = clause.compile(dialect=conn.dialect)
        # The alert on usage from models not in the catalog reads its 30 days from raw
        # rows through the partial index of unknown model names (those rows only).
        unknown_models = "ai_usage_logs.model_name IS NOT NULL" in str(compiled)
        if "ai_usage_logs" in str(compiled) and not unknown_models:
            starts.extend(v for v in compiled.params.values() if isinstance(v, datetime))

    sa_event.listen(db.engine, "before_execute", capture)
    try:
        build_overview(range_name, now=NOW)
    finally:
        sa_event.remove(db.engine, "before_execute", capture)
    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    assert starts, "the test must see the raw reads it checks"
    assert min(starts) >= midnight


@pytest.mark.parametrize("range_name", ["24h", "7d", "30d"])
@pytest.mark.parametrize("environment", [None, "production"])
def test_the_tiles_partial_shows_the_pages_tiles(data, range_name, environment):
    """The tiles partial reads the usage grouped by feature and status only (KPI_KEYS),
    the page by feature, model, provider and status: the same tiles, now and before."""
    rng = random.Random(17)
    models = [data.gpt, data.mini, data.claude, None]
    chosen = [rng.choice(models) for _ in range(300)]
    record_usage(
        [
            usage_event(
                rng.choice([data.chatbot, data.search, None]),
                model,
                NOW - timedelta(minutes=rng.randrange(1, 60 * 24 * 60)),
                rng.randrange(0, 5_000),
                rng.randrange(0, 2_000),
                response_time_ms=rng.choice([10, 120, 480, 2_500, 70_000]),
                status=rng.choice(["success", "success", "error", "timeout", "pending"]),
                environment=rng.choice(["production", "staging"]),
                **({} if model else {"cost_usd": str(rng.randrange(0, 999) / 1000)}),
            )
            for model in chosen
        ]
    )
    page = build_overview(range_name, now=NOW, environment=environment).kpis
    partial = build_tiles(range_name, now=NOW, environment=environment)
    assert partial.tiles == page.tiles
    assert (partial.current, partial.previous) == (page.current, page.previous)
    assert page.current.requests and page.previous.requests
    assert page.current.features_with_traffic == 2
    # Both read the previous period by KPI_KEYS: hold that grouping to the finer one too.
    period, previous = periods_for(range_name, None, None, NOW)[1:]
    for chosen_period in (period, previous):
        fine = grouped_usage(chosen_period, False, environment).untimed
        assert usage_kpis(kpi_usage(chosen_period, environment)) == usage_kpis(fine)
