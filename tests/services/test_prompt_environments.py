"""Prompts per environment (issue 15): activation, promotion, roll back, history, what is
live, the database's one-live-row rule and the audit rows (both databases)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests import factories
from tests.conftest import make_user
from webapp.models import AuditLog, Prompt, PromptActivation
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.prompts import environments as envs
from webapp.services.prompts import versions as prompts

ACTOR = Actor(user_id=None, ip_address="192.0.2.3", user_agent="pytest")


@pytest.fixture
def family(db):
    """chatbot's greeting v1..v3, nothing live anywhere."""
    feature = factories.feature("chatbot")
    versions = [
        factories.prompt("greeting", n, feature_id=feature.id, content=f"v{n} {{{{name}}}}")
        for n in (1, 2, 3)
    ]
    db.session.commit()
    return feature, versions


def live_rows(feature_id, environment=None):
    db_query = select(PromptActivation).where(
        PromptActivation.feature_id == feature_id, PromptActivation.deactivated_at.is_(None)
    )
    if environment:
        db_query = db_query.where(PromptActivation.environment == environment)
    from webapp.extensions import db

    db.session.expire_all()
    return db.session.scalars(db_query).all()


def audit_rows(db, action=None):
    query = select(AuditLog).order_by(AuditLog.created_at)
    if action:
        query = query.where(AuditLog.action == action)
    return db.session.scalars(query).all()


def active_versions(db, prompt):
    db.session.expire_all()
    return [p.version for p in prompts.versions(prompt.id) if p.is_active]


# --- activation ----------------------------------------------------------------------------


def test_each_environment_has_its_own_live_version(db, family):
    feature, (v1, v2, v3) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    envs.activate_prompt(ACTOR, v2.id, "staging")
    envs.activate_prompt(ACTOR, v3.id, "production")
    live = {row.environment: row.version for row in live_rows(feature.id)}
    assert live == {"development": 1, "staging": 2, "production": 3}
    assert active_versions(db, v1) == [3]  # is_active = live in production, nothing else


def test_activating_replaces_the_live_version_and_keeps_history(db, family):
    feature, (v1, v2, _) = family
    admin = make_user("ada@example.com", "platform_admin")
    by_ada = Actor(user_id=admin.id)
    envs.activate_prompt(ACTOR, v1.id, "staging")
    result = envs.activate_prompt(by_ada, v2.id, "staging")
    assert result.changed and result.message == "greeting v2 is now live in staging"
    assert [row.version for row in live_rows(feature.id, "staging")] == [2]
    entries = envs.history(feature.id, "greeting", "staging")
    assert [(e.activation.version, e.is_live) for e in entries] == [(2, True), (1, False)]
    newest, older = entries
    assert newest.activation.previous_prompt_id == v1.id
    assert newest.activation.previous_version == 1
    assert newest.activated_by_email == "ada@example.com"
    assert older.deactivated_by_email == "ada@example.com"
    assert older.activation.deactivated_at is not None
    assert older.activated_by_email is None  # ACTOR has no user: shown as "system"


def test_activation_is_audited_with_its_environment(db, family):
    _, (v1, v2, _) = family
    envs.activate_prompt(ACTOR, v1.id, "staging")
    envs.activate_prompt(ACTOR, v2.id, "staging")
    row = audit_rows(db, "prompt.activate")[-1]
    assert row.resource_type == "prompt" and row.resource_id == v2.id
    assert row.old_values == {
        "environment": "staging",
        "active_version": 1,
        "prompt_id": str(v1.id),
    }
    assert row.new_values["environment"] == "staging"
    assert row.new_values["active_version"] == 2
    assert row.new_values["prompt_id"] == str(v2.id)


def test_activating_the_live_version_again_changes_nothing(db, family):
    _, (v1, _, _) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    before = len(audit_rows(db))
    result = envs.activate_prompt(ACTOR, v1.id, "development")
    assert not result.changed and "already live in development" in result.message
    assert len(audit_rows(db)) == before
    assert db.session.scalar(select(func.count()).select_from(PromptActivation)) == 1


@pytest.mark.parametrize("environment", ["qa", "", None, "Production"])
def test_an_unknown_environment_is_refused_by_name(db, family, environment):
    _, (v1, _, _) = family
    with pytest.raises(ValidationFailed) as refused:
        envs.activate_prompt(ACTOR, v1.id, environment)
    assert "must be one of development, staging, production" in refused.value.errors["environment"]
    assert db.session.scalar(select(func.count()).select_from(PromptActivation)) == 0
    assert audit_rows(db) == []


def test_an_unknown_prompt_is_not_found(db, family):
    import uuid

    with pytest.raises(NotFound):
        envs.activate_prompt(ACTOR, uuid.uuid4(), "staging")


def test_the_seeds_activate_and_deactivate_mean_production(db, family):
    feature, (v1, v2, _) = family
    envs.activate_prompt(ACTOR, v1.id, "staging")
    prompts.activate(ACTOR, v2.id)
    assert [r.version for r in live_rows(feature.id, "production")] == [2]
    assert [r.version for r in live_rows(feature.id, "staging")] == [1]  # untouched
    prompts.deactivate(ACTOR, v2.id)
    assert live_rows(feature.id, "production") == []
    assert active_versions(db, v1) == []
    row = audit_rows(db, "prompt.deactivate")[-1]
    assert row.old_values == {"environment": "production", "is_active": True}


def test_deactivating_one_environment_leaves_the_others(db, family):
    feature, (v1, _, _) = family
    for environment in ("development", "staging"):
        envs.activate_prompt(ACTOR, v1.id, environment)
    result = envs.deactivate_prompt(ACTOR, v1.id, "development")
    assert result.changed
    assert [r.environment for r in live_rows(feature.id)] == ["staging"]
    again = envs.deactivate_prompt(ACTOR, v1.id, "development")
    assert not again.changed and "not live in development" in again.message


def test_a_version_created_active_is_live_in_production(db, family):
    feature, (v1, _, _) = family
    prompts.activate(ACTOR, v1.id)
    created = prompts.create_prompt(
        ACTOR,
        {"name": "greeting", "content": "v4", "feature_id": str(feature.id), "is_active": True},
    )
    assert [r.prompt_id for r in live_rows(feature.id, "production")] == [created.id]
    assert active_versions(db, v1) == [4]
    assert audit_rows(db)[-1].action == "prompt.create"  # one use case, one audit row


def test_a_version_active_without_a_row_is_replaced_like_a_live_one(db, family):
    """Rows written before the table existed (or directly): is_active is production."""
    feature, (v1, v2, _) = family
    v1.is_active = True
    db.session.commit()
    envs.activate_prompt(ACTOR, v2.id, "production")
    assert active_versions(db, v1) == [2]
    row = audit_rows(db, "prompt.activate")[-1]
    assert row.old_values["active_version"] == 1
    assert live_rows(feature.id, "production")[0].previous_version == 1


# --- promotion -----------------------------------------------------------------------------


def test_promotion_goes_development_staging_production(db, family):
    feature, (_, v2, _) = family
    envs.activate_prompt(ACTOR, v2.id, "development")
    to_staging = envs.promote_prompt(ACTOR, v2.id, "staging")
    assert to_staging.message == "greeting v2 promoted from development to staging"
    envs.promote_prompt(ACTOR, v2.id, "production")
    live = {r.environment: r for r in live_rows(feature.id)}
    assert {env: r.version for env, r in live.items()} == {
        "development": 2,  # a promotion copies: still live where it came from
        "staging": 2,
        "production": 2,
    }
    assert live["production"].action == "promote"
    assert active_versions(db, v2) == [2]
    promoted = audit_rows(db, "prompt.promote")
    assert [(r.new_values["from_environment"], r.new_values["environment"]) for r in promoted] == [
        ("development", "staging"),
        ("staging", "production"),
    ]


@pytest.mark.parametrize("target, source", [("staging", "development"), ("production", "staging")])
def test_promotion_needs_the_version_live_in_the_environment_before(db, family, target, source):
    feature, (v1, v2, _) = family
    envs.activate_prompt(ACTOR, v1.id, source)  # another version is live there
    before = len(audit_rows(db))
    with pytest.raises(Conflict) as refused:
        envs.promote_prompt(ACTOR, v2.id, target)
    assert f"only while it is live in {source} (v1 is live there now)" in refused.value.message
    assert refused.value.field == "to_environment"
    assert live_rows(feature.id, target) == []
    assert len(audit_rows(db)) == before


def test_promotion_from_an_empty_environment_says_so(db, family):
    _, (v1, _, _) = family
    with pytest.raises(Conflict, match="no version is live there now"):
        envs.promote_prompt(ACTOR, v1.id, "staging")


def test_production_cannot_be_skipped_to_from_development(db, family):
    _, (v1, _, _) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    with pytest.raises(Conflict, match="live in staging"):
        envs.promote_prompt(ACTOR, v1.id, "production")


@pytest.mark.parametrize("target", ["development", "qa", ""])
def test_promotion_target_must_be_staging_or_production(db, family, target):
    _, (v1, _, _) = family
    with pytest.raises(ValidationFailed) as refused:
        envs.promote_prompt(ACTOR, v1.id, target)
    assert "must be one of staging, production" in refused.value.errors["to_environment"]


def test_promoting_what_is_already_live_there_changes_nothing(db, family):
    _, (v1, _, _) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    envs.promote_prompt(ACTOR, v1.id, "staging")
    before = len(audit_rows(db))
    assert not envs.promote_prompt(ACTOR, v1.id, "staging").changed
    assert len(audit_rows(db)) == before


def test_promotion_target_for_the_page(db, family):
    _, (v1, v2, v3) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    envs.promote_prompt(ACTOR, v1.id, "staging")
    envs.activate_prompt(ACTOR, v2.id, "development")
    live = envs.live_by_environment(v1.id)
    assert envs.promotion_target(v1, live) == "production"
    assert envs.promotion_target(v2, live) == "staging"
    assert envs.promotion_target(v3, live) is None


# --- roll back -----------------------------------------------------------------------------


def test_rollback_brings_back_the_version_live_before(db, family):
    feature, (v1, v2, v3) = family
    for version in (v1, v2, v3):
        envs.activate_prompt(ACTOR, version.id, "production")
    result = envs.rollback_prompt(ACTOR, feature.id, "greeting", "production")
    assert result.changed and result.prompt.id == v2.id
    assert result.message == "greeting v2 is live again in production"
    assert active_versions(db, v1) == [2]
    row = live_rows(feature.id, "production")[0]
    assert (row.action, row.previous_version) == ("rollback", 3)
    audit = audit_rows(db, "prompt.rollback")[-1]
    assert (audit.old_values["active_version"], audit.new_values["active_version"]) == (3, 2)
    # Rolling back again goes to what was live before v2 this time: v3.
    assert envs.rollback_prompt(ACTOR, feature.id, "greeting", "production").prompt.id == v3.id


def test_rollback_is_per_environment(db, family):
    feature, (v1, v2, _) = family
    envs.activate_prompt(ACTOR, v1.id, "staging")
    envs.activate_prompt(ACTOR, v2.id, "staging")
    envs.activate_prompt(ACTOR, v2.id, "production")
    envs.rollback_prompt(ACTOR, feature.id, "greeting", "staging")
    assert [r.version for r in live_rows(feature.id, "staging")] == [1]
    assert [r.version for r in live_rows(feature.id, "production")] == [2]


def test_rollback_skips_deleted_versions(db, family):
    feature, (v1, v2, v3) = family
    for version in (v1, v2, v3):
        envs.activate_prompt(ACTOR, version.id, "staging")
    prompts.delete_prompt(ACTOR, v2.id)
    entries = envs.history(feature.id, "greeting", "staging")
    assert [(e.activation.version, e.activation.prompt_id) for e in entries][1] == (2, None)
    assert envs.rollback_prompt(ACTOR, feature.id, "greeting", "staging").prompt.id == v1.id


def test_rollback_without_an_earlier_version_is_refused(db, family):
    feature, (v1, _, _) = family
    with pytest.raises(Conflict, match="no earlier version of greeting to roll back to in staging"):
        envs.rollback_prompt(ACTOR, feature.id, "greeting", "staging")
    envs.activate_prompt(ACTOR, v1.id, "staging")
    with pytest.raises(Conflict, match="no earlier version"):
        envs.rollback_prompt(ACTOR, feature.id, "greeting", "staging")


def test_rollback_after_deactivation_brings_back_the_last_live_version(db, family):
    feature, (v1, _, _) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    envs.deactivate_prompt(ACTOR, v1.id, "development")
    assert envs.rollback_prompt(ACTOR, feature.id, "greeting", "development").prompt.id == v1.id


def test_rollback_refuses_bad_input(db, family):
    feature, _ = family
    with pytest.raises(ValidationFailed) as refused:
        envs.rollback_prompt(ACTOR, feature.id, "greeting", "qa")
    assert "environment" in refused.value.errors
    with pytest.raises(NotFound):
        envs.rollback_prompt(ACTOR, feature.id, "no-such-prompt", "staging")


# --- deletion ------------------------------------------------------------------------------


def test_a_version_live_in_any_environment_cannot_be_deleted(db, family):
    _, (v1, v2, _) = family
    envs.activate_prompt(ACTOR, v1.id, "staging")
    with pytest.raises(Conflict, match="live in staging"):
        prompts.delete_prompt(ACTOR, v1.id)
    envs.activate_prompt(ACTOR, v2.id, "staging")
    prompts.delete_prompt(ACTOR, v1.id)  # history stays, without the version
    row = db.session.scalar(select(PromptActivation).where(PromptActivation.version == 1))
    assert row.prompt_id is None and row.deactivated_at is not None


# --- reads ---------------------------------------------------------------------------------


def test_live_prompts_are_plain_data_per_feature_and_environment(db, family):
    feature, (v1, v2, _) = family
    other = factories.feature("search")
    tagging = factories.prompt(
        "search-hint", 1, feature_id=other.id, variables={"q": {"type": "string"}}
    )
    farewell = factories.prompt("farewell", 1, feature_id=feature.id, content="Bye")
    global_prompt = factories.prompt("house-style", 1, content="Be brief")
    db.session.commit()
    envs.activate_prompt(ACTOR, v1.id, "staging")
    envs.activate_prompt(ACTOR, v2.id, "production")
    envs.activate_prompt(ACTOR, farewell.id, "production")
    envs.activate_prompt(ACTOR, tagging.id, "production")
    envs.activate_prompt(ACTOR, global_prompt.id, "production")
    live = envs.live_prompts(feature.id, "production")
    assert [(p["name"], p["version"], p["prompt_id"]) for p in live] == [
        ("farewell", 1, farewell.id),
        ("greeting", 2, v2.id),
    ]
    assert set(live[1]) == {"prompt_id", "name", "version", "content", "variables", "activated_at"}
    assert live[1]["content"] == "v2 {{name}}" and live[1]["variables"] == {}
    assert [p["version"] for p in envs.live_prompts(feature.id, "staging")] == [1]
    assert envs.live_prompts(feature.id, "development") == []
    assert [p["name"] for p in envs.live_prompts(None, "production")] == ["house-style"]
    assert envs.live_prompts(other.id, "production")[0]["variables"] == {"q": {"type": "string"}}
    with pytest.raises(ValidationFailed):
        envs.live_prompts(feature.id, "qa")


def test_history_is_newest_first_and_filters_by_environment(db, family):
    feature, (v1, v2, _) = family
    envs.activate_prompt(ACTOR, v1.id, "development")
    envs.promote_prompt(ACTOR, v1.id, "staging")
    envs.activate_prompt(ACTOR, v2.id, "development")
    everything = envs.history(feature.id, "greeting")
    assert [(e.activation.environment, e.activation.version) for e in everything] == [
        ("development", 2),
        ("staging", 1),
        ("development", 1),
    ]
    assert len(envs.history(feature.id, "greeting", "staging")) == 1
    with pytest.raises(ValidationFailed):
        envs.history(feature.id, "greeting", "qa")
    as_dict = envs.activation_as_dict(everything[0])
    assert as_dict["is_live"] is True and as_dict["previous_version"] == 1


def test_an_experiments_winning_prompt_goes_live_in_production_by_its_promoter(db, family):
    feature, (v1, v2, _) = family
    admin = make_user("ada@example.com", "platform_admin")
    prompts.activate(ACTOR, v1.id)
    change = prompts.activate_in_transaction(v2, Actor(user_id=admin.id))
    db.session.commit()
    assert change is not None and change[1]["active_version"] == 2
    row = live_rows(feature.id, "production")[0]
    assert (row.version, row.activated_by) == (2, admin.id)


# --- the database's rules ------------------------------------------------------------------


def _live(prompt, environment="staging", **fields):
    return PromptActivation(
        feature_id=prompt.feature_id,
        name=prompt.name,
        environment=environment,
        prompt_id=prompt.id,
        version=prompt.version,
        **fields,
    )


@pytest.mark.parametrize("with_feature", [True, False])
def test_the_database_allows_one_live_row_per_family_and_environment(db, with_feature):
    feature_id = factories.feature().id if with_feature else None
    v1 = factories.prompt("greeting", 1, feature_id=feature_id)
    v2 = factories.prompt("greeting", 2, feature_id=feature_id)
    db.session.add(_live(v1))
    db.session.flush()
    db.session.add(_live(v2, "production"))  # another environment: fine
    db.session.add(_live(v2, deactivated_at=datetime.now(UTC)))  # history: fine
    db.session.flush()
    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.add(_live(v2))
        db.session.flush()


def test_the_database_refuses_unknown_environments_actions_and_live_rows_without_a_version(db):
    v1 = factories.prompt("greeting", 1)
    now = datetime.now(UTC)
    for bad in (
        _live(v1, "qa"),
        _live(v1, action="copy"),
        PromptActivation(name="greeting", environment="staging", version=1),
    ):
        with pytest.raises(IntegrityError), db.session.begin_nested():
            db.session.add(bad)
            db.session.flush()
    closed = PromptActivation(
        name="greeting", environment="staging", version=1, deactivated_at=now - timedelta(1)
    )
    db.session.add(closed)  # a closed row of a deleted version is history
    db.session.flush()


def test_two_activations_at_once_leave_one_live_version(app, db, family, dialect):
    if dialect != "postgresql":
        pytest.skip("two real connections at once: PostgreSQL")
    from webapp.rls import OPERATOR, use_database_role

    feature, (v1, v2, _) = family
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def activate(prompt_id):
        with app.app_context():
            use_database_role(OPERATOR)
            barrier.wait()
            try:
                outcomes.append(envs.activate_prompt(ACTOR, prompt_id, "production"))
            except Exception as error:  # recorded, asserted below
                outcomes.append(error)

    threads = [threading.Thread(target=activate, args=(p.id,)) for p in (v1, v2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(outcomes) == 2
    assert all(isinstance(o, envs.ActivationResult) and o.changed for o in outcomes), outcomes
    live = live_rows(feature.id, "production")
    assert len(live) == 1
    assert db.session.scalar(select(func.count()).select_from(PromptActivation)) == 2
    # The second replaced the first: history says so, and is_active agrees.
    closed = db.session.scalar(
        select(PromptActivation).where(PromptActivation.deactivated_at.is_not(None))
    )
    assert live[0].previous_prompt_id == closed.prompt_id
    assert db.session.scalars(select(Prompt.id).where(Prompt.is_active)).all() == [
        live[0].prompt_id
    ]
    assert len(audit_rows(db, "prompt.activate")) == 2
