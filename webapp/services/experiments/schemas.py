"""What an experiment's input may hold: its definition (variants, allocation, config) and
the results applications record, as pydantic models used by the JSON API and the
create form alike. The rules between fields (what a variant of each type points at,
an allocation that covers every variant and sums to 100, a control that is a variant)
are validators of the fields they name, so every wrong field is reported at once. The
service adds what needs the database: the feature, model and prompt exist, the model
can serve traffic, the prompt belongs to the feature."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import JsonDict

from webapp.models import EXPERIMENT_TYPES
from webapp.services.apps.reported_events import subject_uuid
from webapp.services.core.validation import (
    Id,
    Input,
    JsonObject,
    OneOf,
    Rule,
    Text,
    as_decimal,
    check,
    problem,
    problems,
)

# Letters of any alphabet, digits, then also _ . -
VARIANT_ID_PATTERN = re.compile(r"^[^\W_][\w.-]{0,99}$")
VARIANT_ID_PROBLEM = "must be 1-100 letters, digits, dots, dashes or underscores (e.g. control)"
MAX_VARIANTS = 10
DEFAULT_ALPHA = 0.05
MAX_ALPHA = 0.2
CONFIG_KEYS = ("primary_metric", "alpha", "control", "higher_is_better")
# What a variant must point at, and what else it may carry, per experiment type.
VARIANT_TARGETS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "model_comparison": ("model_id", ("params",)),
    "prompt_testing": ("prompt_id", ("params",)),
    "parameter_tuning": ("params", ()),
    "a_b_test": (None, ("params",)),
}
TARGET_REQUIRED = {
    "model_id": "is required: the id of a model",
    "prompt_id": "is required: the id of a prompt version",
    "params": "is required: the parameter set this variant tries",
}
SHARE_PROBLEM = "must be a percentage above 0 and at most 100, with at most 2 decimals"
MAX_RESULTS_PER_BATCH = 5_000
METRIC_VALUE_LIMIT = Decimal("100000000")  # NUMERIC(12, 4)
RESULT_FIELDS = ("variant_id", "metric_name", "metric_value", "user_id", "session_id", "metadata")


# ---------------------------------------------------------------------------------------
# Variants


class Variant(Input):
    """One arm of an experiment. Which of model_id, prompt_id and params it must or may
    carry depends on the experiment's type (``VARIANT_TARGETS``)."""

    unknown_field: ClassVar[str] = "is not allowed in a variant"
    messages: ClassVar[dict[str, str]] = {
        "name": "is required (text of at most 200 characters)",
        "params": "must be a JSON object of parameters",
    }

    id: Annotated[str, Text(100, pattern=VARIANT_ID_PATTERN, problem=VARIANT_ID_PROBLEM)]
    name: Annotated[str, Text(200)]
    # Blank counts as missing: the type's rule then says what is required.
    model_id: Annotated[uuid.UUID | None, Id(TARGET_REQUIRED["model_id"], optional=True)] = None
    prompt_id: Annotated[uuid.UUID | None, Id(TARGET_REQUIRED["prompt_id"], optional=True)] = None
    params: Annotated[
        dict[str, Any] | None,
        JsonObject("must be a JSON object of parameters", optional=True),
    ] = None

    def stored(self) -> dict[str, Any]:
        """What the experiment's ``variants`` column keeps: ids as canonical text."""
        found: dict[str, Any] = {"id": self.id, "name": self.name}
        for key in ("model_id", "prompt_id"):
            value = getattr(self, key)
            if value is not None:
                found[key] = str(value)
        if "params" in self.model_fields_set and self.params is not None:
            found["params"] = self.params
        return found


def _variant_problems(experiment_type: str | None, index: int, raw: Any) -> dict[str, str]:
    """The problems of one variant, its type's rules included, named ``<index>.<field>``."""
    if not isinstance(raw, dict):
        return {str(index): "must be an object with id and name"}
    found = dict(check(Variant, raw).errors)
    target, extras = VARIANT_TARGETS.get(experiment_type or "", (None, ("params",)))
    allowed = {"id", "name", *extras, *([target] if target else [])}
    for key in raw:
        if key not in allowed:
            found[key] = (
                f"is not allowed in a {experiment_type} variant "
                f"(allowed: {', '.join(sorted(allowed))})"
            )
    if target is not None and target not in found and not raw.get(target):
        found[target] = TARGET_REQUIRED[target]
    return {f"{index}.{key}": message for key, message in found.items()}


def _same_targets(
    experiment_type: str | None, value: list[Any], found: dict[str, str]
) -> dict[str, str]:
    """Two variants of a prompt test that point at the same prompt version with the same
    parameters compare nothing: the later one is refused, naming the earlier. (The same
    version with other parameters is a real comparison.)"""
    target = VARIANT_TARGETS.get(experiment_type or "", (None, ()))[0]
    if target != "prompt_id":
        return {}
    what = "prompt version"
    first: dict[str, str] = {}
    same: dict[str, str] = {}
    for index, raw in enumerate(value):
        key = f"{index}.{target}"
        if not isinstance(raw, dict) or not raw.get(target) or key in found:
            continue
        try:
            pointed = str(uuid.UUID(str(raw[target])))
        except ValueError:
            continue
        arm = json.dumps([pointed, raw.get("params") or {}], sort_keys=True, default=str)
        if arm in first:
            same[key] = (
                f"is the same {what} (with the same parameters) as variant {first[arm]}: "
                f"each variant must test something different"
            )
        else:
            first[arm] = str(raw.get("id") or index + 1)
    return same


def _variants(value: Any, experiment_type: str | None) -> list[Variant]:
    if not isinstance(value, list) or not 2 <= len(value) <= MAX_VARIANTS:
        raise problem(f"must be a list of 2 to {MAX_VARIANTS} variants")
    found: dict[str, str] = {}
    seen: set[str] = set()
    for index, raw in enumerate(value):
        found.update(_variant_problems(experiment_type, index, raw))
        variant_id = raw.get("id") if isinstance(raw, dict) else None
        if f"{index}.id" in found or not isinstance(variant_id, str):
            continue
        if variant_id in seen:
            found[f"{index}.id"] = f"{variant_id} is used by another variant"
        seen.add(variant_id)
    found.update(_same_targets(experiment_type, value, found))
    if found:
        raise problems(found, value)
    return [Variant.model_validate(raw) for raw in value]


# ---------------------------------------------------------------------------------------
# Traffic allocation and config


def as_share(value: Any) -> Decimal | None:
    """A percentage > 0 and ≤ 100 with at most two decimals, else None."""
    number = as_decimal(value)
    if number is None or not 0 < number <= 100 or number != number.quantize(Decimal("0.01")):
        return None
    return number


def json_number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def even_split(variant_ids: list[str]) -> dict[str, float | int]:
    """Equal shares summing to exactly 100 (the first variants take the odd cents)."""
    count = len(variant_ids)
    base = (Decimal(100) / count).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    left = Decimal(100) - base * count
    shares = {}
    for variant_id in variant_ids:
        share = base + (Decimal("0.01") if left > 0 else 0)
        left -= Decimal("0.01") if left > 0 else 0
        shares[variant_id] = json_number(share)
    return shares


def _allocation(value: Any, ids: list[str]) -> dict[str, float | int]:
    """{variant id: percent} covering every variant once and summing to 100."""
    if not isinstance(value, dict):
        raise problem("must be an object of variant id → percent")
    found: dict[str, str] = {}
    shares: dict[str, Decimal] = {}
    for key, raw in value.items():
        if key not in ids:
            found[key] = "is not a variant of this experiment"
            continue
        share = as_share(raw)
        if share is None:
            found[key] = SHARE_PROBLEM
        else:
            shares[key] = share
    for variant_id in ids:
        if variant_id not in value:
            found[variant_id] = "is required (percent of traffic)"
    if found:
        raise problems(found, value)
    total = sum(shares.values(), Decimal(0))
    if total != 100:
        raise problem(f"must sum to 100 (the shares sum to {total})")
    return {variant_id: json_number(shares[variant_id]) for variant_id in ids}


def _config(value: Any, ids: list[str] | None) -> dict[str, Any]:
    """The settings of the analysis; ``control`` is checked when the variants are right."""
    config = JsonObject().validate(value)
    assert config is not None
    found: dict[str, str] = {}
    for key in config:
        if key not in CONFIG_KEYS:
            found[key] = f"is not a setting (settings: {', '.join(CONFIG_KEYS)})"
    metric = config.get("primary_metric")
    if not isinstance(metric, str) or not metric.strip() or len(metric) > 100:
        found["primary_metric"] = "is required: the metric that decides the winner (e.g. converted)"
    alpha = config.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= MAX_ALPHA:
        found["alpha"] = f"must be a significance level above 0 and at most {MAX_ALPHA}"
    control = config.get("control")
    if control is not None and ids is not None and control not in ids:
        found["control"] = "must be the id of one of the variants"
    if not isinstance(config.get("higher_is_better", True), bool):
        found["higher_is_better"] = "must be true or false"
    if found:
        raise problems(found, value)
    return {**config, "primary_metric": metric.strip()} if isinstance(metric, str) else config


CONFIG_SCHEMA: JsonDict = {
    "type": "object",
    "properties": {
        "primary_metric": {"type": "string", "minLength": 1, "maxLength": 100},
        "alpha": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_ALPHA},
        "control": {"type": "string"},
        "higher_is_better": {"type": "boolean"},
    },
    "required": ["primary_metric"],
    "additionalProperties": False,
}
ALLOCATION_SCHEMA: JsonDict = {
    "type": "object",
    "description": "variant id → percent of traffic (above 0, at most 100, summing to 100)",
    "additionalProperties": {"type": ["number", "string"], "exclusiveMinimum": 0, "maximum": 100},
}


# ---------------------------------------------------------------------------------------
# The experiment


def _ids(info: ValidationInfo) -> list[str] | None:
    """The variants' ids when the variants are right (validated before)."""
    variants = info.data.get("variants")
    return [v.id for v in variants] if variants is not None else None


class ExperimentDefinition(Input):
    """An experiment's whole design: what a new one is given, and what an existing one
    holds after a change (the service merges the change into the stored design and
    checks the result). Fields are validated in this order, so the variants are checked
    against the valid type, and the allocation and control against the valid variants."""

    unknown_field: ClassVar[str] = "is not a field of an experiment"
    messages: ClassVar[dict[str, str]] = {
        "description": "must be text of at most 10,000 characters"
    }
    # A missing or empty allocation is split evenly (a new experiment's default).
    split_evenly: ClassVar[bool] = False

    name: Annotated[str, Text(200)]
    description: Annotated[str | None, Text(10_000, required=False)] = None
    feature_id: Annotated[uuid.UUID, Id("is required: the id of a feature")]
    experiment_type: Annotated[str, OneOf(EXPERIMENT_TYPES)]
    variants: list[Variant] = Field(min_length=2, max_length=MAX_VARIANTS)
    traffic_allocation: dict[str, float | int] = Field(
        default_factory=dict, validate_default=True, json_schema_extra=ALLOCATION_SCHEMA
    )
    config: dict[str, Any] = Field(
        default_factory=dict, validate_default=True, json_schema_extra=CONFIG_SCHEMA
    )

    @model_validator(mode="before")
    @classmethod
    def _say_what_is_missing(cls, data: Any) -> Any:
        """A missing feature, type or variant list is told what it should be (their
        rules refuse None with that wording), not just "is required"."""
        if isinstance(data, dict):
            return {**dict.fromkeys(("feature_id", "experiment_type", "variants")), **data}
        return data

    @field_validator("experiment_type", mode="before")
    @classmethod
    def _type_given(cls, value: Any) -> Any:
        if value in (None, ""):
            raise problem(f"is required: one of {', '.join(EXPERIMENT_TYPES)}")
        return value

    @field_validator("variants", mode="plain", json_schema_input_type=list[Variant])
    @classmethod
    def _check_variants(cls, value: Any, info: ValidationInfo) -> list[Variant]:
        return _variants(value, info.data.get("experiment_type"))

    @field_validator("traffic_allocation", mode="plain", json_schema_input_type=dict[str, Any])
    @classmethod
    def _check_allocation(cls, value: Any, info: ValidationInfo) -> Any:
        ids = _ids(info)
        if ids is None:  # the variants are wrong: they are what to fix first
            return value
        if cls.split_evenly and value in (None, {}):
            return even_split(ids)
        return _allocation(value, ids)

    @field_validator("config", mode="plain", json_schema_input_type=dict[str, Any])
    @classmethod
    def _check_config(cls, value: Any, info: ValidationInfo) -> dict[str, Any]:
        return _config(value, _ids(info))

    def stored(self) -> dict[str, Any]:
        """The experiment's columns as validated (variants as JSON objects)."""
        return {
            "name": self.name,
            "description": self.description,
            "feature_id": self.feature_id,
            "experiment_type": self.experiment_type,
            "variants": [variant.stored() for variant in self.variants],
            "traffic_allocation": self.traffic_allocation,
            "config": self.config,
        }


FIELDS = tuple(ExperimentDefinition.model_fields)


class ExperimentCreate(ExperimentDefinition):
    """POST /experiments and the create form: the allocation defaults to an even split."""

    split_evenly: ClassVar[bool] = True


class ExperimentUpdate(Input):
    """PUT /experiments/<id>: any of the definition's fields. The service merges them
    into the stored design and checks it whole (``ExperimentDefinition``); after draft
    only name and description may change."""

    unknown_field: ClassVar[str] = ExperimentDefinition.unknown_field

    name: Annotated[str | None, Text(200)] = None
    description: Annotated[str | None, Text(10_000, required=False)] = None
    feature_id: Annotated[uuid.UUID | None, Id("must be a feature id")] = None
    experiment_type: Annotated[str | None, OneOf(EXPERIMENT_TYPES)] = None
    variants: list[Variant] | None = Field(default=None, min_length=2, max_length=MAX_VARIANTS)
    traffic_allocation: dict[str, Any] | None = Field(
        default=None, json_schema_extra=ALLOCATION_SCHEMA
    )
    config: dict[str, Any] | None = Field(default=None, json_schema_extra=CONFIG_SCHEMA)


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class MetricValue(Rule):
    """A number, or numeric text, below 100,000,000 in size (NUMERIC(12, 4))."""

    def validate(self, value: Any) -> Decimal:
        number = as_decimal(value)
        if number is None or abs(number) >= METRIC_VALUE_LIMIT:
            raise problem("must be a number below 100,000,000 in size")
        return number

    def json_schema(self) -> dict[str, Any]:
        limit = float(METRIC_VALUE_LIMIT)
        return {"type": ["number", "string"], "exclusiveMinimum": -limit, "exclusiveMaximum": limit}


MAX_SUBJECT = 200  # as ``assign`` takes it: GET …/assignment?subject=


@dataclass(frozen=True)
class Subject(Rule):
    """A user or session id as the application knows it: the same strings that
    ``…/assignment?subject=`` accepts (any text of 1-200 characters, stripped). A UUID is
    kept; any other text is stored as its stable UUID (``subject_uuid``: the one
    mapping the usage ingestion uses too), so the same subject is one subject."""

    def validate(self, value: Any) -> uuid.UUID | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_SUBJECT:
            raise problem(f"must be a user or session id (text of 1-{MAX_SUBJECT} characters)")
        return subject_uuid(value.strip())

    def json_schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "string", "minLength": 1, "maxLength": MAX_SUBJECT},
                {"type": "null"},
            ],
            "description": "Any id (as for …/assignment?subject=); text that is not a UUID "
            "is stored as a stable UUID derived from it.",
        }


class ResultItem(Input):
    """One observation of a metric for a variant (which variants exist is the
    experiment's: the service checks it)."""

    unknown_field: ClassVar[str] = "is not a field of a result"
    messages: ClassVar[dict[str, str]] = {
        "metric_name": "is required (text of at most 100 characters)"
    }

    variant_id: Annotated[str, Text(100)]
    metric_name: Annotated[str, Text(100)]
    metric_value: Annotated[Decimal, MetricValue()]
    user_id: Annotated[uuid.UUID | None, Subject()] = None
    session_id: Annotated[uuid.UUID | None, Subject()] = None
    metadata: Annotated[dict[str, Any] | None, JsonObject(optional=True)] = None


@dataclass(frozen=True)
class ResultList(Rule):
    """1 to 5,000 results; each is checked on its own (one wrong item refuses only itself)."""

    def validate(self, value: Any) -> list[Any]:
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_RESULTS_PER_BATCH:
            raise problem(f"must be a list of 1 to {MAX_RESULTS_PER_BATCH:,} results")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_RESULTS_PER_BATCH,
            "items": ResultItem.model_json_schema(),
        }


class ResultBatch(Input):
    """POST /experiments/<id>/results (or a bare JSON array of results)."""

    unknown_field: ClassVar[str] = "is not a field (send results: [...])"

    results: Annotated[list[Any], ResultList()]


def result_refusal(errors: dict[str, str]) -> str:
    """One refused result's reason: its unknown fields, else each wrong field."""
    unknown = sorted(key for key, message in errors.items() if message == ResultItem.unknown_field)
    if unknown:
        return f"unknown fields: {', '.join(unknown)}"
    return "; ".join(f"{key} {message}" for key, message in errors.items())
