"""The experiment's input models (no database: pure functions): every wrong field at
once, the rules between fields named by the field they concern, results one by one."""

from __future__ import annotations

import uuid
from decimal import Decimal

from webapp.api import schemas as api_schemas
from webapp.services.core.validation import check
from webapp.services.experiments.schemas import (
    VARIANT_ID_PROBLEM,
    ExperimentCreate,
    ExperimentDefinition,
    ResultBatch,
    ResultItem,
    result_refusal,
)

FEATURE = str(uuid.uuid4())


def body(**changes):
    return {
        "name": "Greeting",
        "feature_id": FEATURE,
        "experiment_type": "a_b_test",
        "variants": [{"id": "a", "name": "A"}, {"id": "b", "name": "B", "params": {"t": 1}}],
        "config": {"primary_metric": " converted "},
        **changes,
    }


def test_every_wrong_field_is_named_at_once():
    checked = check(
        ExperimentCreate,
        body(
            name="",
            feature_id="nope",
            variants=[{"id": "a", "name": "A", "colour": 1}, {"id": "a bad", "name": "B"}],
            config={"primary_metric": "x", "alpha": 1},
        ),
    )
    assert checked.model is None
    assert checked.errors == {
        "name": "is required",
        "feature_id": "is required: the id of a feature",
        "variants.0.colour": "is not allowed in a a_b_test variant (allowed: id, name, params)",
        "variants.1.id": VARIANT_ID_PROBLEM,
        "config.alpha": "must be a significance level above 0 and at most 0.2",
    }
    # The right fields are kept for the database checks.
    assert checked.values["experiment_type"] == "a_b_test"


def test_cross_field_rules_name_their_field():
    errors = check(
        ExperimentCreate,
        body(
            variants=[{"id": "a", "name": "A"}, {"id": "a", "name": "B"}],
            traffic_allocation={"a": 100},
        ),
    ).errors
    assert errors == {"variants.1.id": "a is used by another variant"}
    errors = check(ExperimentCreate, body(traffic_allocation={"a": 60, "b": 60})).errors
    assert errors == {"traffic_allocation": "must sum to 100 (the shares sum to 120)"}
    errors = check(
        ExperimentCreate, body(experiment_type="model_comparison", config={"control": "z"})
    ).errors
    assert errors == {
        "variants.0.model_id": "is required: the id of a model",
        "variants.1.model_id": "is required: the id of a model",
        "config.primary_metric": "is required: the metric that decides the winner (e.g. converted)",
    }
    # The control is checked against the variants once they are right.
    errors = check(ExperimentCreate, body(config={"primary_metric": "x", "control": "z"})).errors
    assert errors == {"config.control": "must be the id of one of the variants"}


def test_a_new_experiment_splits_evenly_a_stored_one_does_not():
    stored = check(ExperimentCreate, body()).valid().stored()
    assert stored["traffic_allocation"] == {"a": 50, "b": 50}
    assert stored["config"] == {"primary_metric": "converted"}
    assert stored["variants"] == [
        {"id": "a", "name": "A"},
        {"id": "b", "name": "B", "params": {"t": 1}},
    ]
    assert stored["feature_id"] == uuid.UUID(FEATURE)
    assert check(ExperimentDefinition, body()).errors == {
        "traffic_allocation.a": "is required (percent of traffic)",
        "traffic_allocation.b": "is required (percent of traffic)",
    }


def test_variant_ids_are_stored_as_canonical_text():
    model = str(uuid.uuid4()).upper()
    variants = [
        {"id": "a", "name": "A", "model_id": model},
        {"id": "b", "name": "B", "model_id": model},
    ]
    stored = check(ExperimentCreate, body(experiment_type="model_comparison", variants=variants))
    assert stored.valid().stored()["variants"][0]["model_id"] == model.lower()


def test_a_result_names_each_wrong_field():
    checked = check(
        ResultItem,
        {"variant_id": "a", "metric_name": "", "metric_value": "lots", "user_id": "x" * 201},
    )
    assert result_refusal(checked.errors) == (
        "metric_name is required; metric_value must be a number below 100,000,000 in size; "
        "user_id must be a user or session id (text of 1-200 characters)"
    )
    unknown = check(ResultItem, {"variant_id": "a", "colour": 1, "size": 2}).errors
    assert result_refusal(unknown) == "unknown fields: colour, size"
    item = check(ResultItem, {"variant_id": "a", "metric_name": "x", "metric_value": "12.5"})
    assert item.valid().metric_value == Decimal("12.5")
    assert check(ResultBatch, {"results": []}).errors == {
        "results": "must be a list of 1 to 5,000 results"
    }


def test_the_api_names_the_experiment_models_with_real_types():
    schema = api_schemas.ExperimentCreate.model_json_schema()
    assert schema["required"] == ["name", "feature_id", "experiment_type", "variants"]
    assert schema["properties"]["feature_id"]["format"] == "uuid"
    assert schema["properties"]["variants"]["items"] == {"$ref": "#/$defs/Variant"}
    assert "model_id" in schema["$defs"]["Variant"]["properties"]
    results = api_schemas.ResultBatch.model_json_schema()["properties"]["results"]
    assert results["items"]["properties"]["metric_value"]["exclusiveMaximum"] == 1e8
    assert api_schemas.ExperimentUpdate.model_json_schema().get("required") is None
