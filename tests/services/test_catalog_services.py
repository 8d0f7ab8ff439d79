"""Features, providers, models and assignments, without HTTP (both databases)."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.usage_rows import roll_up
from webapp.models import AIModel, AuditLog, Feature, FeatureModelAssignment, Provider, UsageLog
from webapp.services.catalog import ai_models, assignments, features, providers
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed

ACTOR = Actor(user_id=None, ip_address="192.0.2.9", user_agent="pytest")


def audit_actions(db) -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))


@pytest.fixture
def catalog(db):
    openai = factories.provider("openai", display_name="OpenAI")
    google = factories.provider("google", display_name="Google")
    gpt4 = factories.model(openai, "gpt-4", display_name="GPT-4")
    mini = factories.model(
        openai, "gpt-4o-mini", display_name="GPT-4o mini", input_price_per_million=Decimal("0.15")
    )
    vision = factories.model(google, "vision-v2", display_name="Vision", model_type="vision")
    old = factories.model(openai, "davinci", display_name="Davinci", status="deprecated")
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    tagging = factories.feature("photo-tagging", display_name="Photo Tagging", status="maintenance")
    factories.assignment(chatbot, gpt4, "production")
    db.session.commit()
    return {
        "openai": openai,
        "google": google,
        "gpt4": gpt4,
        "mini": mini,
        "vision": vision,
        "old": old,
        "chatbot": chatbot,
        "tagging": tagging,
    }


# --- Features --------------------------------------------------------------------------


def test_list_features_with_status_filter_models_and_metrics(db, catalog):
    now = datetime.now(UTC)
    db.session.add(
        UsageLog(
            feature_id=catalog["chatbot"].id,
            status="success",
            response_time_ms=100,
            cost_usd=Decimal("0.5"),
            created_at=now - timedelta(minutes=5),
        )
    )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    rows = features.list_features(include_metrics=True, time_range="1h")
    assert [r.feature.name for r in rows] == ["chatbot", "photo-tagging"]
    assert rows[0].models_by_environment["production"].name == "gpt-4"
    assert rows[0].metrics.total_requests == 1 and rows[1].metrics.total_requests == 0
    only = features.list_features(statuses=["maintenance"])
    assert [r.feature.name for r in only] == ["photo-tagging"] and only[0].metrics is None


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"statuses": ["gone"]}, "status"),
        ({"include_metrics": True, "time_range": "3d"}, "time_range"),
    ],
)
def test_list_features_refuses_unknown_filters(db, kwargs, field):
    with pytest.raises(ValidationFailed) as error:
        features.list_features(**kwargs)
    assert field in error.value.errors


def test_create_feature_validates_and_audits(db):
    feature = features.create_feature(
        ACTOR, {"name": "ai-search", "display_name": " AI Search ", "model_type": "embedding"}
    )
    assert feature.display_name == "AI Search" and feature.status == "active"
    assert feature.model_type == "embedding"
    with pytest.raises(Conflict) as error:
        features.create_feature(
            ACTOR, {"name": "ai-search", "display_name": "Again", "model_type": "llm"}
        )
    assert error.value.field == "name"
    with pytest.raises(ValidationFailed) as error:
        features.create_feature(
            ACTOR, {"name": "Bad Name", "display_name": "", "colour": "red", "model_type": "LLM"}
        )
    assert set(error.value.errors) == {"name", "display_name", "colour", "model_type"}
    assert error.value.errors["model_type"] == "must be one of llm, vision, embedding"
    assert audit_actions(db) == ["feature.create"]


def test_bulk_update_is_all_or_nothing(db, catalog):
    chatbot, tagging = catalog["chatbot"], catalog["tagging"]
    with pytest.raises(ValidationFailed) as error:
        features.bulk_update_features(
            ACTOR,
            [
                {"id": str(chatbot.id), "status": "inactive"},
                {"id": str(tagging.id), "status": "exploded"},
                {"id": str(uuid.uuid4()), "status": "active"},
            ],
        )
    assert set(error.value.errors) == {"items.1.status", "items.2.id"}
    db.session.expire_all()
    assert db.session.get(Feature, chatbot.id).status == "active"  # nothing changed
    updated = features.bulk_update_features(
        ACTOR,
        [
            {"id": str(chatbot.id), "status": "inactive"},
            {"id": str(tagging.id), "status": "active", "description": "back"},
        ],
    )
    assert [f.status for f in updated] == ["inactive", "active"]
    assert audit_actions(db) == ["feature.update", "feature.update"]


def test_bulk_update_refuses_an_empty_list_and_duplicates(db, catalog):
    with pytest.raises(ValidationFailed):
        features.bulk_update_features(ACTOR, [])
    same = str(catalog["chatbot"].id)
    with pytest.raises(ValidationFailed) as error:
        features.bulk_update_features(
            ACTOR, [{"id": same, "status": "inactive"}, {"id": same, "status": "active"}]
        )
    assert "items" in error.value.errors


def test_a_feature_with_history_cannot_be_deleted(db, catalog):
    """Refused while a model served it, it recorded usage or ran an experiment (counted
    and named); a feature without history goes, with one audit row."""
    chatbot = catalog["chatbot"]
    db.session.add_all([UsageLog(feature_id=chatbot.id, status="success") for _ in range(2)])
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    reason = (
        "AI Chatbot has 1 model assignment, 2 usage records in its history, which deleting "
        "it would erase; set its status to inactive instead"
    )
    assert features.deletion_refusal(chatbot.id) == reason
    with pytest.raises(Conflict, match="set its status to inactive instead") as refused:
        features.delete_feature(ACTOR, chatbot.id)
    assert refused.value.message == reason
    assert db.session.get(Feature, chatbot.id) is not None
    tagging = catalog["tagging"]
    assert features.deletion_refusal(tagging.id) is None
    features.delete_feature(ACTOR, tagging.id)
    assert db.session.get(Feature, tagging.id) is None
    assert audit_actions(db) == ["feature.delete"]


def test_usage_by_day_is_zero_filled(db, catalog):
    chatbot = catalog["chatbot"]
    for day, status in (
        (date(2026, 11, 20), "success"),
        (date(2026, 11, 22), "error"),
        (date(2026, 11, 22), "success"),
    ):
        db.session.add(
            UsageLog(
                feature_id=chatbot.id,
                status=status,
                cost_usd=Decimal("0.25"),
                created_at=datetime(day.year, day.month, day.day, 13, tzinfo=UTC),
            )
        )
    db.session.commit()
    roll_up()  # the rows above bypassed the write path that keeps the rollups
    series = features.usage_by_day(chatbot.id, days=4, today=date(2026, 11, 22))
    assert [(d.day.day, d.requests, d.errors, d.cost) for d in series] == [
        (19, 0, 0, Decimal("0.000000")),
        (20, 1, 0, Decimal("0.250000")),
        (21, 0, 0, Decimal("0.000000")),
        (22, 2, 1, Decimal("0.500000")),
    ]


# --- Providers -------------------------------------------------------------------------


def test_provider_crud_and_model_counts(db, catalog):
    created = providers.create_provider(
        ACTOR,
        {
            "name": "anthropic",
            "display_name": "Anthropic",
            "provider_type": "anthropic",
            "api_endpoint": "https://api.anthropic.com",
        },
    )
    counts = {p.name: n for p, n in providers.list_providers()}
    assert counts == {"anthropic": 0, "google": 1, "openai": 3}
    providers.update_provider(ACTOR, created.id, {"status": "inactive"})
    with pytest.raises(ValidationFailed) as error:
        providers.update_provider(
            ACTOR, created.id, {"status": "sleepy", "api_endpoint": "ftp://x"}
        )
    assert set(error.value.errors) == {"status", "api_endpoint"}
    with pytest.raises(Conflict):
        providers.update_provider(ACTOR, created.id, {"name": "openai"})
    providers.delete_provider(ACTOR, created.id)
    assert audit_actions(db) == ["provider.create", "provider.update", "provider.delete"]


def test_provider_serving_an_active_feature_cannot_be_deleted(db, catalog):
    with pytest.raises(Conflict, match="GPT-4 serves AI Chatbot \\(production\\)"):
        providers.delete_provider(ACTOR, catalog["openai"].id)
    assert db.session.get(Provider, catalog["openai"].id) is not None
    vision_id = catalog["vision"].id
    providers.delete_provider(ACTOR, catalog["google"].id)  # vision serves nothing
    assert db.session.get(AIModel, vision_id) is None


# --- Models ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({}, ["davinci", "gpt-4", "gpt-4o-mini", "vision-v2"]),
        ({"provider": "openai"}, ["davinci", "gpt-4", "gpt-4o-mini"]),
        ({"provider": "google"}, ["vision-v2"]),
        ({"provider": "nobody"}, []),
        ({"model_type": "vision"}, ["vision-v2"]),
        ({"status": "deprecated"}, ["davinci"]),
        ({"provider": "openai", "status": "available"}, ["gpt-4", "gpt-4o-mini"]),
    ],
)
def test_list_models_really_filters(db, catalog, filters, expected):
    assert sorted(m.name for m, _ in ai_models.list_models(**filters)) == expected


def test_create_model_with_structured_pricing(db, catalog):
    model = ai_models.create_model(
        ACTOR,
        {
            "name": "claude-haiku",
            "display_name": "Claude Haiku",
            "provider_id": str(catalog["openai"].id),
            "model_type": "llm",
            "input_price_per_million": "0.80",
            "output_price_per_million": 4,
            "price_per_request": "",
            "capabilities": ["chat", "tools", "chat"],
        },
    )
    assert model.input_price_per_million == Decimal("0.800000")
    assert model.output_price_per_million == Decimal("4.000000")
    assert model.price_per_request is None and model.capabilities == ["chat", "tools"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"input_price_per_million": "-1"}, "input_price_per_million"),
        ({"output_price_per_million": "abc"}, "output_price_per_million"),
        ({"price_per_image": "0.0000001"}, "price_per_image"),
        ({"price_per_request": "NaN"}, "price_per_request"),
        ({"provider_id": str(uuid.uuid4())}, "provider_id"),
        ({"status": "retired"}, "status"),
        ({"name": ""}, "name"),
    ],
)
def test_create_model_names_each_wrong_field(db, catalog, fields, field):
    base = {
        "name": "m",
        "display_name": "M",
        "provider_id": str(catalog["openai"].id),
        "model_type": "llm",
        "input_price_per_million": "1",
        "output_price_per_million": "2",
    }
    with pytest.raises(ValidationFailed) as error:
        ai_models.create_model(ACTOR, {**base, **fields})
    assert field in error.value.errors
    assert db.session.scalar(select(func.count()).select_from(AIModel)) == 4


def test_duplicate_model_is_a_conflict(db, catalog):
    with pytest.raises(Conflict):
        ai_models.create_model(
            ACTOR,
            {
                "name": "gpt-4",
                "display_name": "Again",
                "provider_id": str(catalog["openai"].id),
                "model_type": "llm",
                "input_price_per_million": 1,
                "output_price_per_million": 1,
            },
        )


def test_model_with_deployments_cannot_be_deleted(db, catalog):
    with pytest.raises(Conflict, match="set its status to deprecated instead"):
        ai_models.delete_model(ACTOR, catalog["gpt4"].id)
    mini_id = catalog["mini"].id
    ai_models.delete_model(ACTOR, mini_id)
    assert db.session.get(AIModel, mini_id) is None


@pytest.mark.parametrize("status", ["offline", "deprecated"])
def test_a_model_serving_a_feature_cannot_go_offline_or_deprecated(db, catalog, status):
    """Refused while any active assignment uses it, naming every feature and environment;
    nothing changes, nothing is audited. Once another model serves there, it may go."""
    summaries = factories.feature("summaries", display_name="Summaries")
    factories.assignment(summaries, catalog["gpt4"], "staging")
    db.session.commit()
    with pytest.raises(Conflict) as refused:
        ai_models.update_model(ACTOR, catalog["gpt4"].id, {"status": status})
    assert refused.value.field == "status"
    assert refused.value.message == (
        f"GPT-4 serves AI Chatbot in production, Summaries in staging; assign another "
        f"model there first, then set it {status}"
    )
    assert refused.value.data == {
        "in_use": [
            {
                "feature_id": catalog["chatbot"].id,
                "feature_name": "AI Chatbot",
                "environment": "production",
            },
            {"feature_id": summaries.id, "feature_name": "Summaries", "environment": "staging"},
        ]
    }
    db.session.expire_all()
    assert db.session.get(AIModel, catalog["gpt4"].id).status == "available"
    assert audit_actions(db) == []
    # Other changes of a serving model, and beta, stay allowed.
    ai_models.update_model(ACTOR, catalog["gpt4"].id, {"status": "beta", "display_name": "G4"})
    serving = ((catalog["chatbot"], "production"), (summaries, "staging"))
    for feature, environment in serving:
        assignments.assign_model(ACTOR, feature.id, catalog["mini"].id, environment)
    ai_models.update_model(ACTOR, catalog["gpt4"].id, {"status": status})
    assert db.session.get(AIModel, catalog["gpt4"].id).status == status


# --- Assignments -----------------------------------------------------------------------


def test_assign_deactivates_the_current_one_and_keeps_history(db, catalog):
    chatbot, gpt4, mini = catalog["chatbot"], catalog["gpt4"], catalog["mini"]
    result = assignments.assign_model(
        ACTOR, chatbot.id, mini.id, "production", {"temperature": 0.2}
    )
    assert result.changed and result.message == "GPT-4o mini now serves AI Chatbot in production"
    rows = assignments.history(chatbot.id)
    assert [(m.name, a.is_active) for a, m, _ in rows] == [("gpt-4o-mini", True), ("gpt-4", False)]
    assert rows[1][0].deactivated_at is not None
    assert rows[0][0].config_overrides == {"temperature": 0.2}
    [row] = db.session.scalars(select(AuditLog)).all()
    assert row.action == "assignment.assign"
    assert row.old_values["model_id"] == str(gpt4.id) and row.new_values["model_id"] == str(mini.id)
    assert [h[0].id for h in ai_models.deployment_history(gpt4.id)] == [rows[1][0].id]


def test_assigning_the_active_model_again_is_a_no_op(db, catalog):
    result = assignments.assign_model(
        ACTOR, catalog["chatbot"].id, catalog["gpt4"].id, "production"
    )
    assert not result.changed and "already serves" in result.message
    assert db.session.scalar(select(func.count()).select_from(FeatureModelAssignment)) == 1
    assert audit_actions(db) == []


@pytest.mark.parametrize("model_key, status", [("old", "deprecated"), ("mini", "offline")])
def test_offline_or_deprecated_models_cannot_be_assigned(db, catalog, model_key, status):
    model = catalog[model_key]
    model.status = status
    db.session.commit()
    with pytest.raises(Conflict, match=f"is {status}"):
        assignments.assign_model(ACTOR, catalog["chatbot"].id, model.id, "staging")


def test_only_models_of_the_features_type_can_be_assigned(db, catalog):
    with pytest.raises(Conflict) as refused:
        assignments.assign_model(ACTOR, catalog["chatbot"].id, catalog["vision"].id, "staging")
    assert refused.value.field == "model_id"
    assert refused.value.message == "Vision is a vision model; AI Chatbot needs an llm model"
    assert audit_actions(db) == []
    result = assignments.assign_model(ACTOR, catalog["tagging"].id, catalog["vision"].id, "staging")
    assert result.changed
    assert [m.name for m, _ in assignments.assignable_models("vision")] == ["vision-v2"]
    assert [m.name for m, _ in assignments.assignable_models("llm")] == ["gpt-4", "gpt-4o-mini"]


def test_a_feature_served_by_a_model_keeps_its_type(db, catalog):
    with pytest.raises(Conflict) as refused:
        features.update_feature(ACTOR, catalog["chatbot"].id, {"model_type": "vision"})
    assert refused.value.field == "model_type"
    assert "served by GPT-4 in production" in refused.value.message
    # Not served yet: the type can still be corrected.
    idle = factories.feature("summaries", display_name="Summaries", model_type="vision")
    db.session.commit()
    assert features.update_feature(ACTOR, idle.id, {"model_type": "llm"}).model_type == "llm"


def test_a_serving_model_keeps_its_type(db, catalog):
    with pytest.raises(Conflict) as refused:
        ai_models.update_model(ACTOR, catalog["gpt4"].id, {"model_type": "embedding"})
    assert refused.value.field == "model_type"
    assert refused.value.message == (
        "GPT-4 serves AI Chatbot in production, which need an llm model; assign another "
        "model there first, then change its type to embedding"
    )
    ai_models.update_model(ACTOR, catalog["mini"].id, {"model_type": "embedding"})
    assert db.session.get(AIModel, catalog["mini"].id).model_type == "embedding"


def test_assign_refuses_bad_input(db, catalog):
    with pytest.raises(ValidationFailed):
        assignments.assign_model(ACTOR, catalog["chatbot"].id, catalog["mini"].id, "qa")
    with pytest.raises(ValidationFailed):
        assignments.assign_model(ACTOR, catalog["chatbot"].id, uuid.uuid4(), "staging")
    with pytest.raises(NotFound):
        assignments.assign_model(ACTOR, uuid.uuid4(), catalog["mini"].id, "staging")


def test_rollback_brings_back_the_previous_model(db, catalog):
    chatbot = catalog["chatbot"]
    assignments.assign_model(ACTOR, chatbot.id, catalog["mini"].id, "production")
    result = assignments.rollback(ACTOR, chatbot.id, "production")
    assert result.assignment.model_id == catalog["gpt4"].id and result.changed
    assert audit_actions(db) == ["assignment.assign", "assignment.rollback"]
    with pytest.raises(Conflict, match="no earlier model"):
        assignments.rollback(ACTOR, chatbot.id, "staging")


def test_two_admins_assigning_at_once_leave_one_active_assignment(app, db, catalog, dialect):
    if dialect != "postgresql":
        pytest.skip("row locks and real concurrency: PostgreSQL")
    from webapp.rls import OPERATOR, use_database_role

    gemini = factories.model(catalog["google"], "gemini", display_name="Gemini")  # an llm
    db.session.commit()
    chatbot_id, choices = catalog["chatbot"].id, [catalog["mini"].id, gemini.id]
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def assign(model_id):
        with app.app_context():
            use_database_role(OPERATOR)
            barrier.wait()
            try:
                outcomes.append(assignments.assign_model(ACTOR, chatbot_id, model_id, "production"))
            except Exception as error:  # recorded, asserted below
                outcomes.append(error)

    threads = [threading.Thread(target=assign, args=(m,)) for m in choices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(outcomes) == 2
    assert all(isinstance(o, assignments.AssignmentResult) for o in outcomes), outcomes
    db.session.expire_all()
    active = db.session.scalars(
        select(FeatureModelAssignment).where(
            FeatureModelAssignment.feature_id == chatbot_id, FeatureModelAssignment.is_active
        )
    ).all()
    assert len(active) == 1
    assert db.session.scalar(select(func.count()).select_from(FeatureModelAssignment)) == 3


def test_a_provider_whose_model_served_a_feature_in_maintenance_keeps_its_history(db, catalog):
    tagging, vision = catalog["tagging"], catalog["vision"]  # tagging is in maintenance
    factories.assignment(tagging, vision, "staging")
    db.session.commit()
    with pytest.raises(Conflict, match="Vision serves Photo Tagging \\(staging\\)"):
        providers.delete_provider(ACTOR, catalog["google"].id)
    assert db.session.scalar(select(func.count()).select_from(FeatureModelAssignment)) == 2


def test_assignable_models_leave_out_offline_and_deprecated(db, catalog):
    names = [m.name for m, _ in assignments.assignable_models()]
    assert "davinci" not in names and "gpt-4" in names
