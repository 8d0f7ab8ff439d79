"""The schema's invariants, enforced by the database itself (both backends)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tests import factories
from webapp.models import (
    AIModel,
    Budget,
    Experiment,
    ExperimentResult,
    Feature,
    FeatureModelAssignment,
    Prompt,
    ProviderHealthLog,
    UsageLog,
    User,
)


def assert_refused(db, *rows) -> None:
    """Inserting ``rows`` violates a constraint, and nothing stays behind."""
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add_all(rows)
        db.session.flush()


# --- Fix 1: history of assignments, at most one active per feature and environment ----


def test_assignment_history_is_kept_beside_the_active_one(db):
    # The seed's UNIQUE(feature_id, environment) refused this second row.
    feature = factories.feature()
    provider = factories.provider()
    old, new = factories.model(provider, "gpt-4"), factories.model(provider, "gpt-4o")
    factories.assignment(feature, old, is_active=False, deactivated_at=datetime.now(UTC))
    factories.assignment(feature, new, is_active=True)
    db.session.commit()
    rows = db.session.scalars(select(FeatureModelAssignment)).all()
    assert sorted(r.is_active for r in rows) == [False, True]


def test_second_active_assignment_in_same_environment_is_refused(db):
    feature = factories.feature()
    provider = factories.provider()
    factories.assignment(feature, factories.model(provider, "gpt-4"))
    second = FeatureModelAssignment(
        feature_id=feature.id,
        model_id=factories.model(provider, "gpt-4o").id,
        environment="production",
        is_active=True,
    )
    assert_refused(db, second)


def test_active_assignments_in_different_environments_coexist(db):
    feature = factories.feature()
    model = factories.model(factories.provider())
    for environment in ("development", "staging", "production"):
        factories.assignment(feature, model, environment)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(FeatureModelAssignment)) == 3


def test_assignment_environment_and_active_state_are_checked(db):
    feature = factories.feature()
    model = factories.model(factories.provider())
    assert_refused(
        db, FeatureModelAssignment(feature_id=feature.id, model_id=model.id, environment="qa")
    )
    assert_refused(
        db,
        FeatureModelAssignment(
            feature_id=feature.id,
            model_id=model.id,
            is_active=True,
            deactivated_at=datetime.now(UTC),
        ),
    )


# --- Fix 2: prompt versions unique with and without a feature --------------------------


def test_duplicate_version_of_prompt_without_feature_is_refused(db):
    # NULL feature_id made the seed's UNIQUE(feature_id, name, version) let this through.
    factories.prompt("greeting", 1, feature_id=None)
    assert_refused(db, Prompt(name="greeting", version=1, content="Hi", feature_id=None))


def test_duplicate_version_of_prompt_with_feature_is_refused(db):
    feature = factories.feature()
    factories.prompt("greeting", 1, feature_id=feature.id)
    assert_refused(db, Prompt(name="greeting", version=1, content="Hi", feature_id=feature.id))


def test_same_name_and_version_in_other_scopes_is_allowed(db):
    chatbot, search = factories.feature("chatbot"), factories.feature("ai-search")
    factories.prompt("greeting", 1, feature_id=chatbot.id)
    factories.prompt("greeting", 1, feature_id=search.id)
    factories.prompt("greeting", 1, feature_id=None)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(Prompt)) == 3


@pytest.mark.parametrize("with_feature", [True, False])
def test_only_one_active_version_per_feature_and_name(db, with_feature):
    feature_id = factories.feature().id if with_feature else None
    factories.prompt("greeting", 1, feature_id=feature_id, is_active=True)
    factories.prompt("greeting", 2, feature_id=feature_id, is_active=False)
    db.session.commit()
    assert_refused(
        db,
        Prompt(name="greeting", version=3, content="x", feature_id=feature_id, is_active=True),
    )


def test_prompt_version_must_be_positive(db):
    assert_refused(db, Prompt(name="greeting", version=0, content="x"))


# --- Models: the same NULL gap on (provider, name, version) ----------------------------


def test_model_without_version_cannot_be_duplicated(db):
    provider = factories.provider()
    factories.model(provider, "gpt-4", version=None)
    assert_refused(
        db, AIModel(name="gpt-4", display_name="x", provider_id=provider.id, model_type="llm")
    )


def test_model_versions_are_distinct_rows(db):
    provider = factories.provider()
    factories.model(provider, "gpt-4", version="0613")
    factories.model(provider, "gpt-4", version="1106")
    factories.model(provider, "gpt-4", version=None)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AIModel)) == 3


@pytest.mark.parametrize(
    "field, value",
    [
        ("input_price_per_million", Decimal("-0.01")),
        ("output_price_per_million", Decimal("-1")),
        ("price_per_request", Decimal("-0.000001")),
        ("price_per_image", Decimal("-0.5")),
        ("status", "retired"),
    ],
)
def test_model_prices_and_status_are_checked(db, field, value):
    provider = factories.provider()
    row = AIModel(name="m", display_name="M", provider_id=provider.id, model_type="llm")
    setattr(row, field, value)
    assert_refused(db, row)


# --- Checks on every other table -------------------------------------------------------


@pytest.mark.parametrize("status", ["archived", ""])
def test_feature_status_is_checked(db, status):
    assert_refused(db, Feature(name="x", display_name="X", status=status, model_type="llm"))


def test_feature_name_is_unique(db):
    factories.feature("chatbot")
    assert_refused(db, Feature(name="chatbot", display_name="Another", model_type="llm"))


@pytest.mark.parametrize("model_type", ["LLM", "text", "", None])
def test_feature_and_model_types_are_one_of_three(db, model_type):
    """The database holds llm, vision or embedding in both columns, nothing else."""
    assert_refused(db, Feature(name="x", display_name="X", model_type=model_type))
    provider = factories.provider()
    db.session.commit()
    row = AIModel(name="m", display_name="M", provider_id=provider.id, model_type=model_type)
    assert_refused(db, row)
    for kind in ("llm", "vision", "embedding"):
        factories.feature(f"f-{kind}", model_type=kind)
        factories.model(provider, f"m-{kind}", model_type=kind)
    db.session.commit()


@pytest.mark.parametrize(
    "fields",
    [
        {"budget_amount": Decimal("0")},
        {"budget_amount": Decimal("-5")},
        {"alert_threshold": Decimal("0")},
        {"alert_threshold": Decimal("1.01")},
        {"period_type": "hourly"},
        {"start_date": date(2026, 11, 30), "end_date": date(2026, 11, 1)},
    ],
)
def test_budget_rules_are_checked(db, fields):
    row = Budget(
        name="b",
        period_type="monthly",
        budget_amount=Decimal("10"),
        start_date=date(2026, 11, 1),
        end_date=date(2026, 11, 30),
    )
    for key, value in fields.items():
        setattr(row, key, value)
    assert_refused(db, row)


def test_budget_threshold_of_exactly_one_is_allowed(db):
    factories.budget(
        alert_threshold=Decimal("1"), start_date=date(2026, 11, 1), end_date=date(2026, 11, 1)
    )
    db.session.commit()
    assert db.session.scalar(select(Budget.alert_threshold)) == Decimal("1.00")


@pytest.mark.parametrize(
    "fields",
    [
        {"tokens_used": -1},
        {"input_tokens": 10, "output_tokens": 5, "tokens_used": 14},
        {"response_time_ms": -1},
        {"cost_usd": Decimal("-0.000001")},
        {"status": "done"},
    ],
)
def test_usage_log_rules_are_checked(db, fields):
    assert_refused(db, UsageLog(**fields))


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "ok"},
        {"health_score": 101},
        {"health_score": -1},
        {"error_rate": Decimal("100.01")},
        {"error_rate": Decimal("-0.01")},
    ],
)
def test_health_log_rules_are_checked(db, fields):
    provider = factories.provider()
    fields.setdefault("status", "healthy")
    assert_refused(db, ProviderHealthLog(provider_id=provider.id, **fields))


def test_health_log_bounds_are_inclusive(db):
    provider = factories.provider()
    db.session.add(
        ProviderHealthLog(
            provider_id=provider.id, status="down", health_score=0, error_rate=Decimal("100.00")
        )
    )
    db.session.commit()
    assert db.session.scalar(select(ProviderHealthLog.error_rate)) == Decimal("100.00")


@pytest.mark.parametrize(
    "fields",
    [
        {"experiment_type": "multivariate"},
        {"status": "archived"},
        {"statistical_significance": Decimal("1.0001")},
        {
            "start_date": datetime(2026, 11, 2, tzinfo=UTC),
            "end_date": datetime(2026, 11, 1, tzinfo=UTC),
        },
    ],
)
def test_experiment_rules_are_checked(db, fields):
    feature = factories.feature()
    fields.setdefault("experiment_type", "a_b_test")
    assert_refused(db, Experiment(name="e", feature_id=feature.id, **fields))


@pytest.mark.parametrize("fields", [{"role": "superuser"}, {"email": "Admin@Example.com"}])
def test_user_role_and_lowercase_email_are_checked(db, fields):
    fields.setdefault("email", "a@example.com")
    fields.setdefault("role", "viewer")
    assert_refused(db, User(password_hash="x", **fields))


# --- Foreign keys and ON DELETE behaviour ----------------------------------------------


def test_deleting_a_feature_cascades_and_detaches_as_the_seed_says(db):
    feature = factories.feature()
    model = factories.model(factories.provider())
    factories.assignment(feature, model)
    factories.budget(feature_id=feature.id)
    prompt = factories.prompt(feature_id=feature.id)
    experiment = Experiment(name="e", feature_id=feature.id, experiment_type="a_b_test")
    db.session.add(experiment)
    db.session.flush()
    db.session.add(
        ExperimentResult(
            experiment_id=experiment.id, variant_id="a", metric_name="m", metric_value=Decimal("1")
        )
    )
    db.session.add(UsageLog(feature_id=feature.id, model_id=model.id, status="success"))
    db.session.commit()

    db.session.delete(feature)
    db.session.commit()
    db.session.expire_all()

    count = lambda table: db.session.scalar(select(func.count()).select_from(table))  # noqa: E731
    assert count(FeatureModelAssignment) == 0  # CASCADE
    assert count(Budget) == 0  # CASCADE
    assert count(Experiment) == 0 and count(ExperimentResult) == 0  # CASCADE, twice
    assert db.session.get(Prompt, prompt.id).feature_id is None  # SET NULL
    assert db.session.scalar(select(UsageLog.feature_id)) is None  # SET NULL
    assert db.session.scalar(select(UsageLog.model_id)) == model.id


def test_deleting_a_provider_removes_its_models_and_their_assignments(db):
    provider = factories.provider()
    feature = factories.feature()
    model = factories.model(provider)
    factories.assignment(feature, model)
    db.session.add(UsageLog(feature_id=feature.id, model_id=model.id, status="success"))
    db.session.commit()

    db.session.delete(provider)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(AIModel)) == 0
    assert db.session.scalar(select(func.count()).select_from(FeatureModelAssignment)) == 0
    assert db.session.scalar(select(UsageLog.model_id)) is None
    assert db.session.get(Feature, feature.id) is not None


def test_foreign_keys_are_enforced(db):
    import uuid

    assert_refused(
        db,
        FeatureModelAssignment(feature_id=uuid.uuid4(), model_id=uuid.uuid4(), is_active=True),
    )


# --- Column behaviour -----------------------------------------------------------------


def test_updated_at_moves_on_orm_and_core_updates(db):
    feature = factories.feature()
    db.session.commit()
    created = feature.updated_at
    feature.description = "changed"
    db.session.commit()
    after_orm = feature.updated_at
    assert after_orm > created
    db.session.execute(update(Feature).where(Feature.id == feature.id).values(status="inactive"))
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Feature, feature.id).updated_at > after_orm


def test_timestamps_come_back_timezone_aware_utc(db):
    feature = factories.feature()
    db.session.commit()
    db.session.expire_all()
    loaded = db.session.get(Feature, feature.id)
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - loaded.created_at) < timedelta(minutes=1)


def test_naive_datetimes_are_refused(db):
    with pytest.raises(Exception, match="timezone-aware"):
        db.session.add(UsageLog(created_at=datetime(2026, 1, 1)))
        db.session.flush()


def test_money_sums_exactly(db):
    # 0.1 + 0.2 in binary floating point is 0.30000000000000004.
    for amount in ("0.100000", "0.200000", "0.000001"):
        db.session.add(UsageLog(cost_usd=Decimal(amount), status="success"))
    db.session.commit()
    total = db.session.scalar(select(func.sum(UsageLog.cost_usd)))
    assert total == Decimal("0.300001")
    assert isinstance(total, Decimal)


def test_money_is_rounded_half_even_to_the_column_scale(db):
    db.session.add(UsageLog(cost_usd=Decimal("0.0000025"), status="success"))
    db.session.add(UsageLog(cost_usd=Decimal("0.0000035"), status="success"))
    db.session.commit()
    values = sorted(db.session.scalars(select(UsageLog.cost_usd)))
    assert values == [Decimal("0.000002"), Decimal("0.000004")]
