"""Experiments service: definition rules, lifecycle, assignment, results, analysis
(against SciPy on the same data, through the database), SRM and promotion."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import func, select

from tests import factories
from webapp.models import (
    AuditLog,
    Experiment,
    ExperimentResult,
    FeatureModelAssignment,
    Prompt,
    Provider,
)
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.experiments import lifecycle as experiments

ACTOR = Actor.cli()


@dataclass
class World:
    feature: object
    serving: object  # model active in production
    challenger: object  # another model
    deprecated: object
    old_prompt: object  # greeting v1, active
    new_prompt: object  # greeting v2


@pytest.fixture
def world(db) -> World:
    feature = factories.feature("chatbot")
    provider = factories.provider("openai")
    serving = factories.model(provider, "gpt-4")
    challenger = factories.model(provider, "gpt-4o-mini")
    deprecated = factories.model(provider, "davinci", status="deprecated")
    factories.assignment(feature, serving)
    old = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    new = factories.prompt("greeting", 2, feature_id=feature.id, content="Hi {{name}}!")
    db.session.commit()
    return World(feature, serving, challenger, deprecated, old, new)


def prompt_body(w: World, **changes) -> dict:
    body = {
        "name": "Greeting v2",
        "feature_id": str(w.feature.id),
        "experiment_type": "prompt_testing",
        "variants": [
            {"id": "control", "name": "Current", "prompt_id": str(w.old_prompt.id)},
            {"id": "v2", "name": "Friendlier", "prompt_id": str(w.new_prompt.id)},
        ],
        "traffic_allocation": {"control": 50, "v2": 50},
        "config": {"primary_metric": "converted", "alpha": 0.05},
    }
    body.update(changes)
    return body


def model_body(w: World, **changes) -> dict:
    return prompt_body(
        w,
        name="Cheaper model",
        experiment_type="model_comparison",
        variants=[
            {"id": "current", "name": "GPT-4", "model_id": str(w.serving.id)},
            {"id": "mini", "name": "Mini", "model_id": str(w.challenger.id)},
        ],
        traffic_allocation={"current": 50, "mini": 50},
        **changes,
    )


def audit_actions(db) -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).order_by(AuditLog.created_at)))


def add_results(db, experiment, variant: str, metric: str, values, subjects=True) -> None:
    rows = [
        {
            "id": uuid.uuid4(),
            "experiment_id": experiment.id,
            "variant_id": variant,
            "metric_name": metric,
            "metric_value": Decimal(str(round(float(v), 4))),
            "session_id": uuid.uuid4() if subjects else None,
            "metadata": {},
        }
        for v in values
    ]
    db.session.execute(ExperimentResult.__table__.insert(), rows)
    db.session.commit()


def running(db, w: World, body: dict | None = None) -> Experiment:
    experiment = experiments.create_experiment(ACTOR, body or prompt_body(w))
    return experiments.transition(ACTOR, experiment.id, "start")


# --- definition ---------------------------------------------------------------------


def test_create_stores_a_draft_with_one_audit_row(db, world):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    assert experiment.status == "draft" and experiment.start_date is None
    assert experiments.control_of(experiment) == "control"
    assert audit_actions(db) == ["experiment.create"]


def test_control_can_be_named_in_config(db, world):
    body = prompt_body(world, config={"primary_metric": "converted", "control": "v2"})
    assert experiments.control_of(experiments.create_experiment(ACTOR, body)) == "v2"


@pytest.mark.parametrize(
    "allocation, field",
    [
        ({"control": 50, "v2": 40}, "traffic_allocation"),
        ({"control": 50}, "traffic_allocation.v2"),
        ({"control": 50, "v2": 50, "v3": 0}, "traffic_allocation.v3"),
        ({"control": 0, "v2": 100}, "traffic_allocation.control"),
        ({"control": -10, "v2": 110}, "traffic_allocation.control"),
        ({"control": 33.333, "v2": 66.667}, "traffic_allocation.control"),
        ({"control": "half", "v2": 50}, "traffic_allocation.control"),
        ([50, 50], "traffic_allocation"),
    ],
)
def test_allocation_must_cover_every_variant_and_sum_to_100(db, world, allocation, field):
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, prompt_body(world, traffic_allocation=allocation))
    assert field in error.value.errors
    assert db.session.scalar(select(func.count()).select_from(Experiment)) == 0
    assert audit_actions(db) == []


def test_allocation_with_cents_and_an_even_default(db, world):
    body = prompt_body(world, traffic_allocation={"control": 33.33, "v2": 66.67})
    assert experiments.create_experiment(ACTOR, body).traffic_allocation == {
        "control": 33.33,
        "v2": 66.67,
    }
    body = model_body(world)
    body["variants"].append({"id": "again", "name": "Again", "model_id": str(world.serving.id)})
    del body["traffic_allocation"]
    split = experiments.create_experiment(ACTOR, body).traffic_allocation
    assert split == {"current": 33.34, "mini": 33.33, "again": 33.33}


def test_unknown_model_or_prompt_is_refused_naming_the_variant(db, world):
    body = model_body(world)
    body["variants"][1]["model_id"] = str(uuid.uuid4())
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    assert error.value.errors == {"variants.1.model_id": "is not a known model"}
    body = prompt_body(world)
    body["variants"][0]["prompt_id"] = "nope"
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    assert "variants.0.prompt_id" in error.value.errors
    body = model_body(world)
    body["variants"][1]["model_id"] = str(world.deprecated.id)
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    assert "deprecated" in error.value.errors["variants.1.model_id"]


def test_a_model_variant_of_another_type_is_refused(db, world):
    """Promoting it could never assign it: the feature needs llm models."""
    provider = db.session.get(Provider, world.serving.provider_id)
    embed = factories.model(provider, "embed", model_type="embedding")
    db.session.commit()
    body = model_body(world)
    body["variants"][1]["model_id"] = str(embed.id)
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    assert error.value.errors == {
        "variants.1.model_id": "EMBED is an embedding model; Chatbot needs an llm model"
    }


def test_variant_shape_rules(db, world):
    body = prompt_body(
        world,
        experiment_type="a_b_test",
        variants=[{"id": "a", "name": "A", "prompt_id": str(world.old_prompt.id)}, {"id": "a"}],
        traffic_allocation={"a": 100},
    )
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    errors = error.value.errors
    assert "variants.0.prompt_id" in errors  # a_b_test variants may carry only params
    assert "variants.1.id" in errors and "variants.1.name" in errors
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, prompt_body(world, variants=[]))
    assert "variants" in error.value.errors
    tuning = prompt_body(
        world,
        experiment_type="parameter_tuning",
        variants=[{"id": "cold", "name": "Cold"}, {"id": "hot", "name": "Hot", "params": {"t": 1}}],
        traffic_allocation={"cold": 50, "hot": 50},
    )
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, tuning)
    assert list(error.value.errors) == ["variants.0.params"]


def test_required_fields_and_config_are_named(db, world):
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, {})
    assert {"name", "feature_id", "experiment_type", "variants"} <= set(error.value.errors)
    body = prompt_body(world, config={"alpha": 2, "control": "zz", "aplha": 1})
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    assert set(error.value.errors) == {
        "config.primary_metric",
        "config.alpha",
        "config.control",
        "config.aplha",
    }
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, prompt_body(world, feature_id=str(uuid.uuid4())))
    assert error.value.errors == {"feature_id": "is not a known feature"}


def test_update_a_draft_then_variants_and_allocation_freeze(db, world):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    experiments.update_experiment(
        ACTOR, experiment.id, {"traffic_allocation": {"control": 80, "v2": 20}}
    )
    assert experiment.traffic_allocation == {"control": 80, "v2": 20}
    with pytest.raises(ValidationFailed) as error:
        experiments.update_experiment(ACTOR, experiment.id, {"traffic_allocation": {"control": 1}})
    assert "traffic_allocation.v2" in error.value.errors
    experiments.transition(ACTOR, experiment.id, "start")
    for change in ({"variants": []}, {"traffic_allocation": {"control": 50, "v2": 50}}):
        with pytest.raises(Conflict) as conflict:
            experiments.update_experiment(ACTOR, experiment.id, change)
        assert "frozen" in conflict.value.message
    experiments.update_experiment(ACTOR, experiment.id, {"name": "Renamed"})
    assert experiment.name == "Renamed"
    assert audit_actions(db) == [
        "experiment.create",
        "experiment.update",
        "experiment.start",
        "experiment.update",
    ]


# --- lifecycle ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, final",
    [
        (["start"], "running"),
        (["start", "pause"], "paused"),
        (["start", "pause", "resume"], "running"),
        (["start", "complete"], "completed"),
        (["start", "pause", "complete"], "completed"),
        (["cancel"], "cancelled"),
        (["start", "cancel"], "cancelled"),
        (["start", "pause", "cancel"], "cancelled"),
    ],
)
def test_every_allowed_transition(db, world, path, final):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    for action in path:
        experiment = experiments.transition(ACTOR, experiment.id, action)
    assert experiment.status == final
    assert (experiment.start_date is not None) == ("start" in path)
    assert (experiment.end_date is not None) == (final in ("completed", "cancelled"))
    assert audit_actions(db) == ["experiment.create", *[f"experiment.{a}" for a in path]]


@pytest.mark.parametrize(
    "path, refused",
    [
        ([], "pause"),
        ([], "resume"),
        ([], "complete"),
        (["start"], "start"),
        (["start"], "resume"),
        (["start", "pause"], "pause"),
        (["start", "complete"], "cancel"),
        (["start", "complete"], "start"),
        (["cancel"], "start"),
        (["cancel"], "cancel"),
    ],
)
def test_other_transitions_are_refused_and_change_nothing(db, world, path, refused):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    for action in path:
        experiments.transition(ACTOR, experiment.id, action)
    before = (experiment.status, len(audit_actions(db)))
    with pytest.raises(Conflict) as error:
        experiments.transition(ACTOR, experiment.id, refused)
    assert f"cannot {refused}" in error.value.message
    db.session.expire_all()
    assert (db.session.get(Experiment, experiment.id).status, len(audit_actions(db))) == before


def test_start_refuses_a_design_whose_prompt_is_gone(db, world):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    db.session.delete(db.session.get(Prompt, world.new_prompt.id))
    db.session.commit()
    with pytest.raises(ValidationFailed) as error:
        experiments.transition(ACTOR, experiment.id, "start")
    assert "variants.1.prompt_id" in error.value.errors


def test_delete_only_when_not_live(db, world):
    experiment = running(db, world)
    with pytest.raises(Conflict):
        experiments.delete_experiment(ACTOR, experiment.id)
    experiments.transition(ACTOR, experiment.id, "cancel")
    experiments.delete_experiment(ACTOR, experiment.id)
    with pytest.raises(NotFound):
        experiments.get_experiment(experiment.id)
    assert audit_actions(db)[-1] == "experiment.delete"


def test_list_filters_by_status_and_feature(db, world):
    first = experiments.create_experiment(ACTOR, prompt_body(world))
    running(db, world, model_body(world))
    assert [e.id for e, _ in experiments.list_experiments(["draft"])] == [first.id]
    assert len(experiments.list_experiments(["draft", "running"], world.feature.id)) == 2
    assert experiments.list_experiments(feature_id=uuid.uuid4()) == []
    with pytest.raises(ValidationFailed):
        experiments.list_experiments(["asleep"])


# --- assignment -----------------------------------------------------------------------


def test_assignment_is_stable_and_splits_100000_subjects_within_1_percent(db, world):
    body = model_body(world)
    body["variants"].append({"id": "third", "name": "Third", "model_id": str(world.serving.id)})
    body["traffic_allocation"] = {"current": 60, "mini": 30, "third": 10}
    experiment = experiments.create_experiment(ACTOR, body)
    first = experiments.assign(experiment.id, "user-42").variant["id"]
    assert all(
        experiments.assign(experiment.id, "user-42").variant["id"] == first for _ in range(5)
    )
    counts = Counter(
        experiments.variant_for_bucket(experiment, experiments.bucket_of(experiment.id, f"s{i}"))[
            "id"
        ]
        for i in range(100_000)
    )
    for variant, share in experiment.traffic_allocation.items():
        assert abs(counts[variant] / 100_000 * 100 - share) < 1, (variant, counts)


def test_assignment_differs_between_experiments_and_needs_a_subject(db, world):
    one = experiments.create_experiment(ACTOR, prompt_body(world))
    two = experiments.create_experiment(ACTOR, prompt_body(world))
    subjects = [f"u{i}" for i in range(200)]
    same = sum(
        experiments.assign(one.id, s).variant["id"] == experiments.assign(two.id, s).variant["id"]
        for s in subjects
    )
    assert 60 < same < 140  # independent hashes, not the same split twice
    with pytest.raises(ValidationFailed) as error:
        experiments.assign(one.id, " ")
    assert "subject" in error.value.errors


# --- results --------------------------------------------------------------------------


def test_results_are_recorded_per_item_with_reasons(db, world):
    experiment = running(db, world)
    batch = experiments.record_results(
        ACTOR,
        experiment.id,
        [
            {"variant_id": "control", "metric_name": "converted", "metric_value": 1},
            {"variant_id": "nope", "metric_name": "converted", "metric_value": 1},
            {
                "variant_id": "v2",
                "metric_name": "latency",
                "metric_value": "12.5",
                "user_id": "x" * 201,
            },
            {
                "variant_id": "v2",
                "metric_name": "converted",
                "metric_value": 0,
                "session_id": str(uuid.uuid4()),
                "metadata": {"page": "home"},
            },
        ],
    )
    assert batch.accepted == 2
    assert [r["index"] for r in batch.refused] == [1, 2]
    assert "not a variant" in batch.refused[0]["reason"]
    assert "user_id" in batch.refused[1]["reason"]
    assert db.session.scalar(select(func.count()).select_from(ExperimentResult)) == 2
    assert audit_actions(db)[-1] == "experiment.record_results"


def test_results_are_refused_when_not_running_or_all_invalid(db, world):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    item = {"variant_id": "control", "metric_name": "converted", "metric_value": 1}
    with pytest.raises(Conflict):
        experiments.record_results(ACTOR, experiment.id, [item])
    experiments.transition(ACTOR, experiment.id, "start")
    with pytest.raises(ValidationFailed) as error:
        experiments.record_results(ACTOR, experiment.id, [{**item, "variant_id": "x"}])
    assert "results.0" in error.value.errors
    with pytest.raises(ValidationFailed):
        experiments.record_results(ACTOR, experiment.id, [])
    assert db.session.scalar(select(func.count()).select_from(ExperimentResult)) == 0


# --- analysis -------------------------------------------------------------------------


def test_mean_metric_matches_scipy_welch_through_the_database(db, world):
    experiment = running(db, world)
    rng = np.random.default_rng(11)
    control = rng.normal(200, 40, 120).round(4)
    v2 = rng.normal(185, 55, 90).round(4)
    add_results(db, experiment, "control", "latency_ms", control)
    add_results(db, experiment, "v2", "latency_ms", v2)
    analysis = experiments.analyze(experiment.id)
    metric = analysis.metric("latency_ms")
    assert metric.kind == "mean"
    control_row, v2_row = metric.variants
    assert control_row.n == 120 and v2_row.n == 90
    assert control_row.value == pytest.approx(control.mean(), rel=1e-9)
    expected = stats.ttest_ind(control, v2, equal_var=False).pvalue
    assert v2_row.p_value == pytest.approx(expected, rel=1e-6)
    assert v2_row.p_value_corrected == v2_row.p_value  # one challenger: no correction
    low, high = stats.t.interval(0.95, 89, loc=v2.mean(), scale=stats.sem(v2))
    assert v2_row.ci == pytest.approx((low, high), rel=1e-6)


def test_rate_metric_with_two_challengers_is_holm_corrected(db, world):
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import proportions_ztest

    body = prompt_body(world)
    body["variants"].append(
        {
            "id": "v3",
            "name": "Third",
            "prompt_id": str(world.new_prompt.id),
            "params": {"temperature": 0.2},  # v2's version with other parameters
        }
    )
    body["traffic_allocation"] = {"control": 40, "v2": 30, "v3": 30}
    experiment = running(db, world, body)
    rng = np.random.default_rng(5)
    data = {
        "control": (rng.random(800) < 0.10).astype(int),
        "v2": (rng.random(600) < 0.15).astype(int),
        "v3": (rng.random(600) < 0.11).astype(int),
    }
    for variant, values in data.items():
        add_results(db, experiment, variant, "converted", values)
    metric = experiments.analyze(experiment.id).metric("converted")
    assert metric.kind == "rate" and "Holm" in metric.test
    raw = [
        proportions_ztest(
            [data[v].sum(), data["control"].sum()], [len(data[v]), len(data["control"])]
        )[1]
        for v in ("v2", "v3")
    ]
    corrected = multipletests(raw, method="holm")[1]
    challengers = metric.variants[1:]
    assert [r.p_value for r in challengers] == pytest.approx(raw, rel=1e-9)
    assert [r.p_value_corrected for r in challengers] == pytest.approx(list(corrected), rel=1e-9)
    assert metric.variants[0].value == pytest.approx(data["control"].mean())


def test_sample_guard_gives_no_p_value_below_the_minimum(db, world):
    experiment = running(db, world)
    add_results(db, experiment, "control", "converted", [1] * 4 + [0] * 96)
    add_results(db, experiment, "v2", "converted", [1] * 30 + [0] * 70)
    add_results(db, experiment, "control", "latency", range(29))
    add_results(db, experiment, "v2", "latency", range(40))
    analysis = experiments.analyze(experiment.id)
    for name in ("converted", "latency"):
        control, v2 = analysis.metric(name).variants
        assert control.sufficient_data is False
        assert v2.p_value is None and v2.p_value_corrected is None
    assert analysis.winner is None and analysis.decisive_p_value is None
    assert "Not enough data" in analysis.verdict
    assert analysis.as_dict()["metrics"][0]["variants"][1]["sufficient_data"] is True


def test_srm_warns_when_the_split_is_broken(db, world):
    experiment = running(db, world)
    add_results(db, experiment, "control", "converted", [1] * 100 + [0] * 500)
    add_results(db, experiment, "v2", "converted", [1] * 150 + [0] * 250)
    analysis = experiments.analyze(experiment.id)
    expected = stats.chisquare([600, 400], f_exp=[500, 500]).pvalue
    assert analysis.srm.checked and analysis.srm.mismatch
    assert analysis.srm.p_value == pytest.approx(expected)
    assert analysis.winner is None  # significant, but the broken split withholds it
    assert "mismatch" in analysis.verdict


def test_results_without_subjects_leave_srm_unchecked(db, world):
    experiment = running(db, world)
    add_results(db, experiment, "control", "converted", [1, 0], subjects=False)
    assert experiments.analyze(experiment.id).srm.checked is False


def test_outcome_is_stored_only_when_significant(db, world):
    experiment = running(db, world)
    add_results(db, experiment, "control", "converted", [1] * 50 + [0] * 450)
    add_results(db, experiment, "v2", "converted", [1] * 60 + [0] * 440)
    item = {"variant_id": "v2", "metric_name": "converted", "metric_value": 1}
    experiments.record_results(ACTOR, experiment.id, [item])
    db.session.expire_all()
    stored = db.session.get(Experiment, experiment.id)
    assert stored.statistical_significance is not None
    assert stored.statistical_significance > Decimal("0.05") and stored.winner_variant is None
    add_results(db, experiment, "v2", "converted", [1] * 40)
    experiments.transition(ACTOR, experiment.id, "complete")
    db.session.expire_all()
    stored = db.session.get(Experiment, experiment.id)
    assert stored.winner_variant == "v2" and stored.statistical_significance < Decimal("0.05")


def test_lower_is_better_and_a_winning_control(db, world):
    body = prompt_body(world, config={"primary_metric": "latency", "higher_is_better": False})
    experiment = running(db, world, body)
    rng = np.random.default_rng(3)
    add_results(db, experiment, "control", "latency", rng.normal(100, 10, 200))
    add_results(db, experiment, "v2", "latency", rng.normal(130, 10, 200))
    analysis = experiments.analyze(experiment.id)
    assert analysis.winner == "control" and "control" in analysis.verdict.lower()


def test_describe_targets_names_models_prompts_and_params(db, world):
    experiment = experiments.create_experiment(ACTOR, model_body(world))
    variants = [
        *experiment.variants,
        {"id": "gone", "name": "Gone", "model_id": str(uuid.uuid4())},
        {"id": "p", "name": "P", "prompt_id": str(world.new_prompt.id), "params": {"t": 1, "a": 2}},
        {"id": "bare", "name": "Bare"},
    ]
    assert experiments.describe_targets(variants) == {
        "current": world.serving.display_name,
        "mini": world.challenger.display_name,
        "gone": "a deleted model",
        "p": 'greeting v2 {"a": 2, "t": 1}',
        "bare": "",
    }


def test_available_actions_follow_the_lifecycle(db, world):
    experiment = experiments.create_experiment(ACTOR, prompt_body(world))
    assert experiments.available_actions(experiment) == ["start", "cancel"]
    experiments.transition(ACTOR, experiment.id, "start")
    assert experiments.available_actions(experiment) == ["pause", "complete", "cancel"]
    experiments.transition(ACTOR, experiment.id, "cancel")
    assert experiments.available_actions(experiment) == []


# --- promotion ------------------------------------------------------------------------


def significant_win(db, experiment, control: str, challenger: str) -> None:
    add_results(db, experiment, control, "converted", [1] * 50 + [0] * 450)
    add_results(db, experiment, challenger, "converted", [1] * 110 + [0] * 390)


def test_promote_a_model_assigns_it_in_production_with_one_audit_row(db, world):
    experiment = running(db, world, model_body(world))
    significant_win(db, experiment, "current", "mini")
    before = len(audit_actions(db))
    promotion = experiments.promote(ACTOR, experiment.id)
    assert promotion.variant["id"] == "mini"
    active = db.session.scalar(
        select(FeatureModelAssignment).where(
            FeatureModelAssignment.feature_id == world.feature.id,
            FeatureModelAssignment.environment == "production",
            FeatureModelAssignment.is_active,
        )
    )
    assert active.model_id == world.challenger.id
    assert audit_actions(db)[before:] == ["experiment.promote"]
    db.session.expire_all()
    stored = db.session.get(Experiment, experiment.id)
    assert stored.status == "completed" and stored.winner_variant == "mini"
    assert stored.results["promotion"]["variant_id"] == "mini"
    with pytest.raises(Conflict):
        experiments.promote(ACTOR, experiment.id)  # only once


def test_promote_a_prompt_activates_the_winning_version(db, world):
    experiment = running(db, world)
    significant_win(db, experiment, "control", "v2")
    experiments.transition(ACTOR, experiment.id, "pause")
    experiments.promote(ACTOR, experiment.id)
    db.session.expire_all()
    assert db.session.get(Prompt, world.new_prompt.id).is_active is True
    assert db.session.get(Prompt, world.old_prompt.id).is_active is False
    assert audit_actions(db)[-1] == "experiment.promote"


def test_promote_is_refused_without_a_significant_winner_and_changes_nothing(db, world):
    experiment = running(db, world, model_body(world))
    add_results(db, experiment, "current", "converted", [1] * 50 + [0] * 450)
    add_results(db, experiment, "mini", "converted", [1] * 52 + [0] * 448)
    before = len(audit_actions(db))
    with pytest.raises(Conflict) as error:
        experiments.promote(ACTOR, experiment.id)
    assert "no significant winner" in error.value.message
    db.session.expire_all()
    assert db.session.get(Experiment, experiment.id).status == "running"
    assert len(audit_actions(db)) == before
    active = db.session.scalars(
        select(FeatureModelAssignment.model_id).where(FeatureModelAssignment.is_active)
    ).all()
    assert active == [world.serving.id]


def ab_body(w: World) -> dict:
    return prompt_body(
        w,
        experiment_type="a_b_test",
        variants=[{"id": "a", "name": "A"}, {"id": "b", "name": "B", "params": {"x": 1}}],
        traffic_allocation={"a": 50, "b": 50},
    )


def test_promote_is_refused_for_types_without_a_target(db, world):
    experiment = running(db, world, ab_body(world))
    significant_win(db, experiment, "a", "b")
    with pytest.raises(Conflict) as error:
        experiments.promote(ACTOR, experiment.id)
    assert "a_b_test" in error.value.message


def test_can_promote_and_can_delete_answer_what_promote_and_delete_would_do(db, world):
    experiment = experiments.create_experiment(ACTOR, model_body(world))
    assert experiments.can_delete(experiment) is True
    assert experiments.can_promote(experiment, experiments.analyze(experiment.id)) is False
    experiments.transition(ACTOR, experiment.id, "start")
    assert experiments.can_delete(experiment) is False
    assert experiments.can_promote(experiment, experiments.analyze(experiment.id)) is False
    significant_win(db, experiment, "current", "mini")
    assert experiments.can_promote(experiment, experiments.analyze(experiment.id)) is True
    experiments.transition(ACTOR, experiment.id, "pause")
    assert experiments.can_promote(experiment, experiments.analyze(experiment.id)) is True
    experiments.promote(ACTOR, experiment.id)
    promoted = experiments.get_experiment(experiment.id)
    assert experiments.promotion_of(promoted)["variant_id"] == "mini"
    assert experiments.can_promote(promoted, experiments.analyze(experiment.id)) is False
    assert experiments.can_delete(promoted) is True  # completed


def test_can_promote_is_false_for_types_applied_by_hand(db, world):
    experiment = running(db, world, ab_body(world))
    significant_win(db, experiment, "a", "b")
    analysis = experiments.analyze(experiment.id)
    assert analysis.winner == "b" and experiments.is_promotable_type(experiment) is False
    assert experiments.can_promote(experiment, analysis) is False


def test_results_take_the_subject_ids_that_assignment_takes(db, world):
    """Issue 16 item 10: ``…/assignment?subject=user-42`` works, so ``…/results`` with
    user_id "user-42" must too: stored as the stable UUID the ingestion maps it to."""
    from webapp.services.apps.reported_events import subject_uuid

    experiment = running(db, world)
    assert experiments.assign(experiment.id, "user-42").subject == "user-42"
    batch = experiments.record_results(
        ACTOR,
        experiment.id,
        [
            {
                "variant_id": "control",
                "metric_name": "converted",
                "metric_value": 1,
                "user_id": "user-42",
                "session_id": "sess:abc",
            },
            {
                "variant_id": "v2",
                "metric_name": "converted",
                "metric_value": 0,
                "user_id": " user-42 ",
            },
        ],
    )
    assert batch.accepted == 2 and batch.refused == []
    rows = db.session.scalars(select(ExperimentResult).order_by(ExperimentResult.variant_id)).all()
    assert {row.user_id for row in rows} == {subject_uuid("user-42")}
    assert rows[0].session_id == subject_uuid("sess:abc")


def test_two_variants_on_the_same_prompt_version_are_refused(db, world):
    body = prompt_body(world)
    body["variants"][1]["prompt_id"] = str(world.old_prompt.id)
    with pytest.raises(ValidationFailed) as error:
        experiments.create_experiment(ACTOR, body)
    assert error.value.errors == {
        "variants.1.prompt_id": "is the same prompt version (with the same parameters) as "
        "variant control: each variant must test something different"
    }


def test_every_problem_of_a_new_experiment_is_named_at_once(db, world):
    """A wrong variant and an unknown model in one answer (the database's checks used to
    wait until the variants were right)."""
    body = {
        "name": "",
        "feature_id": str(world.feature.id),
        "experiment_type": "model_comparison",
        "variants": [
            {"id": "a", "name": "", "model_id": str(uuid.uuid4())},
            {"id": "b", "name": "B", "model_id": str(uuid.uuid4())},
        ],
        "config": {"primary_metric": "converted", "alpha": 0.5},
    }
    problems = experiments.definition_problems(body)
    assert {
        "name",
        "variants.0.name",
        "variants.0.model_id",
        "variants.1.model_id",
        "config.alpha",
    } <= set(problems)
    assert experiments.definition_problems(prompt_body(world)) == {}
