"""The input models and the one place their errors become ValidationFailed (no database:
pure functions)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from webapp.services.catalog.schemas import FEATURE_NAME, FeatureCreate, NewModel, ProviderUpdate
from webapp.services.core.errors import ValidationFailed
from webapp.services.core.validation import JsonInput, check, validated
from webapp.services.prompts.schemas import PromptCreate
from webapp.services.spending.schemas import REQUIRED, BudgetCreate
from webapp.services.usage.schemas import UsageEvent


def test_every_wrong_field_is_named_at_once_in_our_words():
    checked = check(
        FeatureCreate,
        {"name": "Bad Name", "display_name": 5, "status": "zzz", "config": [], "colour": 1},
    )
    assert checked.model is None
    assert checked.errors == {
        "name": "must be 1-100 lower-case letters, digits and dashes (e.g. photo-tagging)",
        "display_name": "must be text",
        "status": "must be one of active, inactive, maintenance",
        "config": "must be a JSON object",
        "colour": "is not a field of a feature",
    }


def test_valid_fields_are_kept_when_others_are_wrong():
    """So the database checks (exists, unique) still run beside the shape errors."""
    checked = check(BudgetCreate, {"name": " May ", "budget_amount": "lots"})
    assert checked.values == {"name": "May"}
    assert set(checked.errors) == {"budget_amount", "start_date", "end_date"}


def test_validated_raises_validation_failed_with_a_prefix():
    with pytest.raises(ValidationFailed) as caught:
        validated(UsageEvent, {"input_tokens": True, "status": "done"}, prefix="events[2].")
    assert caught.value.errors == {
        "events[2].input_tokens": "must be a whole number from 0",
        "events[2].status": "must be one of pending, success, error, timeout",
    }
    not_an_object = check(UsageEvent, "x", prefix="events[0].")
    assert not_an_object.errors == {"events[0]": "must be an object"}


def test_nested_fields_keep_their_dotted_names():
    checked = check(
        ProviderUpdate,
        {"health_check": {"url": "ftp://x", "timeout_seconds": "0", "method": "POST"}},
    )
    assert checked.errors == {
        "health_check.url": "must be an http(s) URL of at most 2000 characters",
        "health_check.timeout_seconds": "must be a number of seconds above 0 and at most 30",
        "health_check.method": "is not a health-check setting (url, timeout_seconds)",
    }
    declared = check(PromptCreate, {"name": "p", "content": "x", "variables": {"1a": {}}})
    assert list(declared.errors) == ["variables.1a"]


def test_form_text_and_json_values_give_the_same_model():
    form = {
        "name": "m",
        "display_name": "M",
        "provider_id": "00000000-0000-0000-0000-000000000001",
        "model_type": "llm",
        "input_price_per_million": "0.1",
        "output_price_per_million": "4",
        "price_per_image": "",
    }
    json_body = JsonInput(form | {"input_price_per_million": 0.1, "output_price_per_million": 4})
    assert validated(NewModel, form) == validated(NewModel, json_body)
    assert validated(NewModel, form).input_price_per_million == Decimal("0.100000")


def test_a_json_body_is_held_to_json_types():
    """A form's comma-separated tags are text; in JSON, tags are a list."""
    fields = {"name": "p", "content": "Hello", "tags": "b, a, a"}
    assert validated(PromptCreate, fields).tags == ["a", "b"]
    assert check(PromptCreate, JsonInput(fields)).errors == {"tags": "must be a list of tags"}


def test_booleans_are_not_coerced_from_text():
    assert check(BudgetCreate, {"is_active": "yes"}).errors["is_active"] == (
        "must be true or false"
    )


def test_required_fields_come_from_the_model():
    assert REQUIRED == ("name", "budget_amount", "start_date", "end_date")


def test_the_models_describe_real_types_to_json_schema():
    schema = FeatureCreate.model_json_schema()
    properties = schema["properties"]
    assert set(schema["required"]) == {"name", "display_name"}
    assert schema["additionalProperties"] is False
    assert properties["name"]["pattern"] == FEATURE_NAME.pattern  # letters of any alphabet
    assert properties["status"]["enum"] == ["active", "inactive", "maintenance"]
    budget = BudgetCreate.model_json_schema()["properties"]
    assert budget["start_date"]["format"] == "date"
    assert budget["budget_amount"]["maximum"] == 99999999.99
