"""Applications' configuration as a service: the revision every configuration change bumps
(in its own transaction), the answer's builder, the budget guard stand-in and the export."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests import factories
from tests.services.test_experiments import add_results, model_body, prompt_body
from webapp.cli.seed import seed_defaults
from webapp.services.apps import runtime_config
from webapp.services.apps.authentication import AuthenticatedKey
from webapp.services.apps.config_revision import bump_config_revision, current_revision
from webapp.services.apps.runtime_config import ConfigCache, FeatureNotAllowed, FeatureRef
from webapp.services.catalog import ai_models, assignments, features, providers
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.experiments import lifecycle as experiments
from webapp.services.prompts import environments, versions
from webapp.services.spending import budgets
from webapp.services.spending.enforcement import budget_guard
from webapp.services.usage.recording import record_usage

ACTOR = Actor.cli()
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
VARIABLES = {"name": {"type": "string", "default": "", "description": "Who"}}


@pytest.fixture
def world(db):
    feature = factories.feature("chatbot")
    provider = factories.provider("openai", api_endpoint="https://api.openai.com/v1")
    serving = factories.model(
        provider, "gpt-4", config={"max_tokens": 1024, "sampling": {"temperature": 0.7, "top_p": 1}}
    )
    challenger = factories.model(provider, "gpt-4o-mini")
    factories.assignment(
        feature,
        serving,
        config_overrides={"max_tokens": 4096, "sampling": {"temperature": 0.2}},
    )
    old = factories.prompt(
        "greeting", 1, feature_id=feature.id, is_active=True, variables=VARIABLES
    )
    new = factories.prompt("greeting", 2, feature_id=feature.id, content="Hi {{name}}!")
    db.session.commit()
    return type(
        "World",
        (),
        {
            "feature": feature,
            "provider": provider,
            "serving": serving,
            "challenger": challenger,
            "old_prompt": old,
            "new_prompt": new,
        },
    )


def grows(change) -> int:
    """Run ``change``; the revision must have grown, and by exactly what it committed."""
    before = current_revision()
    change()
    after = current_revision()
    assert after > before
    return after - before


# --- the revision -------------------------------------------------------------------


def test_the_revision_starts_at_zero_and_a_bump_rolls_back_with_its_transaction(db):
    assert current_revision() == 0
    assert bump_config_revision() == 1
    db.session.rollback()
    assert current_revision() == 0
    bump_config_revision()
    db.session.commit()
    assert current_revision() == 1


def test_a_missing_row_starts_again(db):
    from webapp.models import ConfigRevision

    db.session.query(ConfigRevision).delete()
    db.session.commit()
    assert current_revision() == 0
    assert bump_config_revision() == 1


def test_parallel_changes_on_different_rows_each_count_once(app, db, world, dialect):
    """The one hot row serialises configuration changes without losing any (PostgreSQL:
    real connections at once; each change bumps it under its row lock)."""
    if dialect != "postgresql":
        pytest.skip("real concurrency: PostgreSQL")
    import threading

    from webapp.rls import OPERATOR, use_database_role

    names = [f"feature-{number}" for number in range(6)]
    barrier = threading.Barrier(len(names))
    failures: list[BaseException] = []
    before = current_revision()
    db.session.commit()

    def create(name: str) -> None:
        with app.app_context():
            use_database_role(OPERATOR)
            barrier.wait()
            try:
                features.create_feature(
                    ACTOR, {"name": name, "display_name": name, "model_type": "llm"}
                )
            except BaseException as error:  # asserted below
                failures.append(error)

    threads = [threading.Thread(target=create, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert failures == []
    assert current_revision() == before + len(names)


def test_assignments_bump_it_and_no_change_does_not(db, world):
    assert grows(
        lambda: assignments.assign_model(ACTOR, world.feature.id, world.challenger.id, "production")
    )
    before = current_revision()
    assignments.assign_model(ACTOR, world.feature.id, world.challenger.id, "production")
    assert current_revision() == before  # already serving: nothing changed
    grows(lambda: assignments.rollback(ACTOR, world.feature.id, "production"))


def test_a_refused_assignment_leaves_it(db, world):
    retired = factories.model(world.provider, "davinci", status="deprecated")
    db.session.commit()
    before = current_revision()
    with pytest.raises(Conflict):
        assignments.assign_model(ACTOR, world.feature.id, retired.id, "production")
    db.session.rollback()
    assert current_revision() == before


def test_prompt_activations_bump_it(db, world):
    grows(lambda: environments.activate_prompt(ACTOR, world.new_prompt.id, "development"))
    grows(lambda: environments.promote_prompt(ACTOR, world.new_prompt.id, "staging"))
    grows(lambda: environments.promote_prompt(ACTOR, world.new_prompt.id, "production"))
    grows(lambda: environments.rollback_prompt(ACTOR, world.feature.id, "greeting", "production"))
    grows(lambda: environments.deactivate_prompt(ACTOR, world.old_prompt.id, "production"))
    grows(lambda: versions.activate(ACTOR, world.old_prompt.id))  # the seed's activation
    grows(lambda: versions.deactivate(ACTOR, world.old_prompt.id))


def test_prompt_edits_and_deletes_bump_it(db, world):
    grows(
        lambda: versions.update_prompt(
            ACTOR,
            world.old_prompt.id,
            {"variables": {"x": {"type": "string", "default": "", "description": "X"}}},
        )
    )
    before = current_revision()
    versions.update_prompt(ACTOR, world.old_prompt.id, {"content": "A new text"})  # not live
    assert current_revision() == before
    grows(lambda: versions.delete_prompt(ACTOR, world.new_prompt.id))
    grows(
        lambda: versions.create_prompt(
            ACTOR, {"name": "farewell", "content": "Bye", "is_active": True}
        )
    )


def test_experiment_lifecycle_bumps_it(db, world):
    draft = experiments.create_experiment(ACTOR, prompt_body(world))
    grows(lambda: experiments.update_experiment(ACTOR, draft.id, {"name": "Renamed"}))
    for action in ("start", "pause", "resume", "complete"):
        grows(lambda action=action: experiments.transition(ACTOR, draft.id, action))
    grows(lambda: experiments.delete_experiment(ACTOR, draft.id))
    grows(lambda: experiments.create_experiment(ACTOR, prompt_body(world)))


def test_promoting_an_experiment_bumps_it(db, world):
    experiment = experiments.create_experiment(ACTOR, model_body(world))
    experiments.transition(ACTOR, experiment.id, "start")
    add_results(db, experiment, "current", "converted", [1] * 50 + [0] * 450)
    add_results(db, experiment, "mini", "converted", [1] * 150 + [0] * 350)
    grows(lambda: experiments.promote(ACTOR, experiment.id))


def test_budget_edits_bump_it(db, world):
    fields = {
        "name": "Monthly",
        "period_type": "monthly",
        "budget_amount": "100",
        "start_date": "2026-11-01",
        "end_date": "2026-11-30",
    }
    created = []
    grows(lambda: created.append(budgets.create_budget(ACTOR, fields)))
    grows(lambda: budgets.update_budget(ACTOR, created[0].id, {"budget_amount": "50"}))
    grows(lambda: budgets.delete_budget(ACTOR, created[0].id))


def test_feature_changes_bump_it(db, world):
    made = []
    grows(
        lambda: made.append(
            features.create_feature(
                ACTOR, {"name": "search", "display_name": "AI search", "model_type": "embedding"}
            )
        )
    )
    grows(lambda: features.update_feature(ACTOR, made[0].id, {"status": "maintenance"}))
    before = current_revision()
    features.update_feature(ACTOR, made[0].id, {"status": "maintenance"})
    assert current_revision() == before
    grows(lambda: features.bulk_update_features(ACTOR, [{"id": made[0].id, "status": "inactive"}]))
    grows(lambda: features.delete_feature(ACTOR, made[0].id))


def test_model_changes_bump_it(db, world):
    made = []
    fields = {
        "name": "claude",
        "display_name": "Claude",
        "provider_id": str(world.provider.id),
        "model_type": "llm",
        "input_price_per_million": "3",
        "output_price_per_million": "15",
    }
    grows(lambda: made.append(ai_models.create_model(ACTOR, fields)))
    grows(lambda: ai_models.update_model(ACTOR, made[0].id, {"config": {"max_tokens": 1}}))
    grows(lambda: ai_models.update_model(ACTOR, made[0].id, {"status": "deprecated"}))
    grows(lambda: ai_models.update_model(ACTOR, made[0].id, {"input_price_per_million": "4"}))
    grows(lambda: ai_models.delete_model(ACTOR, made[0].id))


def test_provider_changes_bump_it(db, world):
    made = []
    grows(
        lambda: made.append(
            providers.create_provider(
                ACTOR, {"name": "mistral", "display_name": "Mistral", "provider_type": "mistral"}
            )
        )
    )
    grows(
        lambda: providers.update_provider(
            ACTOR, made[0].id, {"api_endpoint": "https://api.mistral.ai/v1"}
        )
    )
    grows(lambda: providers.delete_provider(ACTOR, made[0].id))


def test_the_seed_bumps_it_when_it_adds_something(db):
    grows(lambda: seed_defaults(ACTOR, date(2026, 11, 20)))
    before = current_revision()
    seed_defaults(ACTOR, date(2026, 11, 20))
    assert current_revision() == before


# --- the answer -----------------------------------------------------------------------


def key_for(*allowed, environment: str = "production") -> AuthenticatedKey:
    return AuthenticatedKey(
        id=uuid.uuid4(),
        prefix="aipm_prd_x",
        environment=environment,
        scopes=frozenset({"config:read"}),
        feature_ids=frozenset(f.id for f in allowed),
    )


def resolve(key, name="chatbot", subject=None, cache=None, matches=lambda etag: False):
    return runtime_config.resolve_feature(
        cache or ConfigCache(), b"secret", key, name, subject, NOW, matches
    )


def test_every_field_of_the_answer(db, world):
    data = resolve(key_for()).data
    assert data["feature"] == {"name": "chatbot", "status": "active"}
    assert data["environment"] == "production"
    assert data["revision"] == current_revision()
    assert data["model"] == {
        "name": "gpt-4",
        "version": None,
        "provider": {
            "name": "openai",
            "provider_type": "openai",
            "api_endpoint": "https://api.openai.com/v1",
        },
        # Overrides win; nested objects are merged key by key.
        "config": {"max_tokens": 4096, "sampling": {"temperature": 0.2, "top_p": 1}},
        "pricing": {
            "input_price_per_million": "30.000000",
            "output_price_per_million": "60.000000",
            "price_per_request": None,
            "price_per_image": None,
            "cache_read_price_per_million": None,
            "cache_write_price_per_million": None,
        },
    }
    assert data["prompts"] == [
        {
            "name": "greeting",
            "version": 1,
            "content": "Hello {{name}}",
            "variables": VARIABLES,
            "sha256": hashlib.sha256(b"Hello {{name}}").hexdigest(),
        }
    ]
    assert data["experiments"] == []
    assert data["budget"] is None


def test_merged_config_replaces_values_and_merges_objects():
    base = {"a": 1, "nested": {"x": 1, "y": 2}, "list": [1, 2]}
    merged = runtime_config.merged_config(base, {"nested": {"y": 3}, "list": [9], "b": None})
    assert merged == {"a": 1, "nested": {"x": 1, "y": 3}, "list": [9], "b": None}
    assert base["nested"] == {"x": 1, "y": 2}  # the model's own config is untouched


def test_no_assignment_in_the_environment_answers_model_null(db, world):
    data = resolve(key_for(environment="staging")).data
    assert data["model"] is None
    assert data["environment"] == "staging"
    assert data["prompts"] == []  # nothing live in staging


def test_prompts_live_in_the_keys_environment_only(db, world):
    environments.activate_prompt(ACTOR, world.new_prompt.id, "staging")
    staging = resolve(key_for(environment="staging")).data
    production = resolve(key_for()).data
    assert [(p["name"], p["version"]) for p in staging["prompts"]] == [("greeting", 2)]
    assert [(p["name"], p["version"]) for p in production["prompts"]] == [("greeting", 1)]


@pytest.mark.parametrize("status", ["inactive", "maintenance"])
def test_an_inactive_feature_says_so(db, world, status):
    features.update_feature(ACTOR, world.feature.id, {"status": status})
    assert resolve(key_for()).data["feature"]["status"] == status


def test_unknown_and_forbidden_features(db, world):
    other = factories.feature("search")
    db.session.commit()
    with pytest.raises(NotFound):
        resolve(key_for(), name="nope")
    with pytest.raises(FeatureNotAllowed):
        resolve(key_for(other))
    assert resolve(key_for(world.feature)).data["feature"]["name"] == "chatbot"


def test_a_subject_is_checked(db, world):
    for bad in ("", "   ", "x" * 201):
        with pytest.raises(ValidationFailed) as error:
            resolve(key_for(), subject=bad)
        assert "subject" in error.value.errors


def test_running_experiments_and_their_variants_as_the_admin_assignment(db, world):
    draft = experiments.create_experiment(ACTOR, model_body(world))
    body = prompt_body(world, traffic_allocation={"control": 30, "v2": 70})
    experiment = experiments.create_experiment(ACTOR, body)
    experiments.transition(ACTOR, experiment.id, "start")
    data = resolve(key_for()).data
    assert [e["id"] for e in data["experiments"]] == [str(experiment.id)]  # not the draft
    assert str(draft.id) not in str(data["experiments"])
    entry = data["experiments"][0]
    assert entry["type"] == "prompt_testing"
    assert entry["assignment"] == "sha256"
    assert entry["buckets"] == 10_000
    assert entry["control"] == "control"
    assert entry["variant"] is None
    assert entry["variants"] == [
        {
            "id": "control",
            "name": "Current",
            "weight": 30,
            "prompt": {"name": "greeting", "version": 1},
        },
        {
            "id": "v2",
            "name": "Friendlier",
            "weight": 70,
            "prompt": {"name": "greeting", "version": 2},
        },
    ]
    seen = set()
    for number in range(60):
        subject = f"user-{number}"
        told = resolve(key_for(), subject=subject).data["experiments"][0]["variant"]
        assert told == experiments.assign(experiment.id, subject).variant["id"]
        seen.add(told)
    assert seen == {"control", "v2"}


def test_model_variants_name_the_model_and_provider(db, world):
    experiment = experiments.create_experiment(ACTOR, model_body(world))
    experiments.transition(ACTOR, experiment.id, "start")
    variants = resolve(key_for()).data["experiments"][0]["variants"]
    assert [v["model"] for v in variants] == [
        {"name": "gpt-4", "version": None, "provider": "openai"},
        {"name": "gpt-4o-mini", "version": None, "provider": "openai"},
    ]


# --- caching ----------------------------------------------------------------------------


def test_the_etag_depends_on_revision_subject_and_budget_only(db, world):
    cache = ConfigCache()
    first = resolve(key_for(), cache=cache)
    assert first.etag.startswith('"') and first.etag.endswith('"')
    assert resolve(key_for(), cache=cache).etag == first.etag
    assert resolve(key_for(world.feature), cache=ConfigCache()).etag == first.etag
    assert resolve(key_for(), subject="u1", cache=cache).etag != first.etag
    features.update_feature(ACTOR, world.feature.id, {"description": "changed"})
    assert resolve(key_for(), cache=cache).etag != first.etag


def test_a_matching_etag_builds_nothing(db, world, monkeypatch):
    cache = ConfigCache()
    etag = resolve(key_for(), cache=ConfigCache()).etag

    def refuse(*args, **kwargs):
        raise AssertionError("the answer was built")

    monkeypatch.setattr(runtime_config, "build_feature_config", refuse)
    not_modified = resolve(key_for(), cache=cache, matches=lambda tag: tag == etag)
    assert not_modified.data is None and not_modified.etag == etag


def test_the_cache_serves_one_revision_and_never_an_older_one(db, world):
    cache = ConfigCache()
    assert resolve(key_for(), cache=cache).data["model"]["name"] == "gpt-4"
    assignments.assign_model(ACTOR, world.feature.id, world.challenger.id, "production")
    assert resolve(key_for(), cache=cache).data["model"]["name"] == "gpt-4o-mini"


def test_an_answer_built_while_the_revision_moved_is_not_cached(db, world, monkeypatch):
    cache = ConfigCache()
    build = runtime_config.build_feature_config
    moved = []

    def build_while_someone_changes(ref: FeatureRef, environment: str):
        found = build(ref, environment)
        if not moved:  # a change commits between reading the revision and caching
            moved.append(True)
            bump_config_revision()
            db.session.commit()
        return found

    monkeypatch.setattr(runtime_config, "build_feature_config", build_while_someone_changes)
    answer = resolve(key_for(), cache=cache)
    assert answer.data["revision"] == current_revision()
    assert cache.revision == current_revision()


def test_budget_state_moves_the_etag_without_a_revision(db, world):
    factories.budget(
        feature_id=world.feature.id,
        budget_amount=Decimal("10"),
        start_date=date(2026, 11, 1),
        end_date=date(2026, 11, 30),
    )
    db.session.commit()
    cache = ConfigCache(budget_seconds=0)  # recompute the guard every time
    first = resolve(key_for(), cache=cache)
    assert first.data["budget"] == {
        "state": "ok",
        "action": "allow",
        "degrade_to": None,
        "resets_at": "2026-12-01T00:00:00+00:00",
    }
    revision = current_revision()
    record_usage(
        [
            {
                "feature_id": world.feature.id,
                "model_id": world.serving.id,
                "input_tokens": 1_000_000,
                "output_tokens": 0,
                "created_at": NOW,
            }
        ],
        now=NOW,
    )
    db.session.commit()
    second = resolve(key_for(), cache=cache)
    assert current_revision() == revision
    # $30 spent of $10 on an observe budget: past its amount, and nothing acts on it.
    assert second.data["budget"]["state"] == "warning"
    assert second.etag != first.etag


def test_budget_guard_states(db, world):
    assert budget_guard(world.feature.id, "production", NOW) is None
    factories.budget(budget_amount=Decimal("100"))  # global
    factories.budget(name="Old", start_date=date(2026, 1, 1), end_date=date(2026, 1, 31))
    db.session.commit()
    guard = budget_guard(world.feature.id, "production", NOW)
    assert (guard.state, guard.action, guard.degrade_to) == ("ok", "allow", None)
    record_usage(
        [
            {
                "feature_id": world.feature.id,
                "model_id": world.serving.id,
                "input_tokens": 2_700_000,  # $81 of $100: the 80% threshold crossed
                "output_tokens": 0,
                "created_at": NOW,
            }
        ],
        now=NOW,
    )
    db.session.commit()
    assert budget_guard(world.feature.id, "production", NOW).state == "warning"


# --- the prompt endpoint's service --------------------------------------------------------


def prompt(key, name="greeting", feature="chatbot", version=None, matches=lambda tag: False):
    return runtime_config.resolve_prompt(
        ConfigCache(), b"secret", key, name, feature, version, matches
    )


def test_one_prompt_version_live_by_default(db, world):
    live = prompt(key_for()).data
    assert (live["version"], live["live"], live["feature"]) == (1, True, "chatbot")
    assert live["sha256"] == hashlib.sha256(b"Hello {{name}}").hexdigest()
    other = prompt(key_for(), version=2).data
    assert (other["version"], other["live"], other["content"]) == (2, False, "Hi {{name}}!")
    with pytest.raises(NotFound):
        prompt(key_for(), version=7)
    with pytest.raises(NotFound):
        prompt(key_for(environment="staging"))  # nothing live there
    with pytest.raises(NotFound):
        prompt(key_for(), feature="nope")
    with pytest.raises(FeatureNotAllowed):
        prompt(key_for(factories.feature("search")))


def test_a_global_prompt(db, world):
    factories.prompt("system", 1, is_active=True, content="Be brief.")
    db.session.commit()
    assert prompt(key_for(), name="system", feature=None).data["content"] == "Be brief."


# --- export --------------------------------------------------------------------------------


def test_the_export_holds_every_feature_as_the_endpoint_answers_it(db, world):
    factories.feature("search", status="inactive")
    db.session.commit()
    bundle = runtime_config.export_bundle("production", NOW)
    assert bundle["environment"] == "production"
    assert bundle["revision"] == current_revision()
    assert sorted(bundle["features"]) == ["chatbot", "search"]
    assert bundle["features"]["chatbot"] == resolve(key_for()).data
    assert bundle["features"]["search"]["model"] is None
    with pytest.raises(ValidationFailed):
        runtime_config.export_bundle("qa", NOW)
