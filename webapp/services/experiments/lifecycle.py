"""Experiments: definition (variants, allocation, config), lifecycle, deterministic
assignment of subjects, recording results, analysis and promotion of the winner.

Lifecycle: draft → running ⇄ paused → completed; cancelled from draft, running or paused.
Completing is allowed from running and from paused. Once an experiment has left draft,
only its name and description change: variants, allocation, config, type and feature
are frozen, so results always belong to the design they were collected under.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    EXPERIMENT_STATUSES,
    EXPERIMENT_TYPES,
    AIModel,
    Experiment,
    ExperimentResult,
    Feature,
    Prompt,
)
from webapp.models.types import utcnow
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes
from webapp.services.catalog import assignments, features
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.json_values import check_json_field
from webapp.services.core.validation import as_decimal, check_choice, clean_text
from webapp.services.experiments import analysis as experiment_analysis
from webapp.services.prompts import versions as prompts

VARIANT_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
MAX_VARIANTS = 10
BUCKETS = 10_000  # assignment resolution: allocations are percentages with 2 decimals
DEFAULT_ALPHA = 0.05
CONFIG_KEYS = ("primary_metric", "alpha", "control", "higher_is_better")
FIELDS = (
    "name",
    "description",
    "feature_id",
    "experiment_type",
    "variants",
    "traffic_allocation",
    "config",
)
FROZEN_AFTER_DRAFT = ("feature_id", "experiment_type", "variants", "traffic_allocation", "config")
# What a variant must point at, and what else it may carry, per experiment type.
VARIANT_TARGETS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "model_comparison": ("model_id", ("params",)),
    "prompt_testing": ("prompt_id", ("params",)),
    "parameter_tuning": ("params", ()),
    "a_b_test": (None, ("params",)),
}
# Allowed transitions: action → (statuses it starts from, status it leads to).
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": (("draft",), "running"),
    "pause": (("running",), "paused"),
    "resume": (("paused",), "running"),
    "complete": (("running", "paused"), "completed"),
    "cancel": (("draft", "running", "paused"), "cancelled"),
}
PROMOTABLE_TYPES = ("model_comparison", "prompt_testing")
PROMOTABLE_STATUSES = ("running", "paused", "completed")
DELETABLE_STATUSES = ("draft", "completed", "cancelled")
MAX_RESULTS_PER_BATCH = 5_000
METRIC_VALUE_LIMIT = Decimal("100000000")  # NUMERIC(12, 4)


def experiment_as_dict(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "name": experiment.name,
        "description": experiment.description,
        "feature_id": experiment.feature_id,
        "experiment_type": experiment.experiment_type,
        "status": experiment.status,
        "variants": experiment.variants,
        "traffic_allocation": experiment.traffic_allocation,
        "control": control_of(experiment),
        "config": experiment.config,
        "start_date": experiment.start_date,
        "end_date": experiment.end_date,
        "results": experiment.results,
        "statistical_significance": experiment.statistical_significance,
        "winner_variant": experiment.winner_variant,
        "created_by": experiment.created_by,
        "created_at": experiment.created_at,
        "updated_at": experiment.updated_at,
    }


def control_of(experiment: Experiment) -> str | None:
    """config.control when set, otherwise the first variant."""
    control = (experiment.config or {}).get("control")
    if control:
        return control
    return experiment.variants[0]["id"] if experiment.variants else None


def describe_targets(variants: list[dict[str, Any]]) -> dict[str, str]:
    """What each variant points at, in words: the model's display name or the prompt's
    name and version (a deleted one says so), then its params as sorted JSON."""
    model_ids = {_as_uuid(v["model_id"]) for v in variants if "model_id" in v} - {None}
    prompt_ids = {_as_uuid(v["prompt_id"]) for v in variants if "prompt_id" in v} - {None}
    models = {
        str(model.id): model.display_name
        for model in db.session.scalars(select(AIModel).where(AIModel.id.in_(model_ids)))
    }
    prompt_names = {
        str(prompt.id): f"{prompt.name} v{prompt.version}"
        for prompt in db.session.scalars(select(Prompt).where(Prompt.id.in_(prompt_ids)))
    }
    described = {}
    for variant in variants:
        if "model_id" in variant:
            text = models.get(str(_as_uuid(variant["model_id"])), "a deleted model")
        elif "prompt_id" in variant:
            text = prompt_names.get(str(_as_uuid(variant["prompt_id"])), "a deleted prompt")
        else:
            text = ""
        if variant.get("params"):
            text = f"{text} {json.dumps(variant['params'], sort_keys=True)}".strip()
        described[variant["id"]] = text
    return described


def get_experiment(experiment_id: uuid.UUID) -> Experiment:
    experiment = db.session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    return experiment


def _lock(experiment_id: uuid.UUID) -> Experiment:
    """Lock the row (PostgreSQL: SELECT … FOR UPDATE): two admins changing the same
    experiment take turns, the second sees the first's result."""
    experiment = db.session.scalar(
        select(Experiment)
        .where(Experiment.id == experiment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} does not exist")
    return experiment


def list_experiments(
    statuses: list[str] | None = None, feature_id: uuid.UUID | None = None
) -> list[tuple[Experiment, str]]:
    """(experiment, feature display name), newest first."""
    for status in statuses or []:
        if status not in EXPERIMENT_STATUSES:
            raise ValidationFailed({"status": f"must be one of {', '.join(EXPERIMENT_STATUSES)}"})
    query = (
        select(Experiment, Feature.display_name)
        .join(Feature, Feature.id == Experiment.feature_id)
        .order_by(Experiment.created_at.desc(), Experiment.name)
    )
    if statuses:
        query = query.where(Experiment.status.in_(statuses))
    if feature_id:
        query = query.where(Experiment.feature_id == feature_id)
    return [(experiment, name) for experiment, name in db.session.execute(query)]


# --- validation ---------------------------------------------------------------------


def _percent(value: Any) -> Decimal | None:
    """A percentage > 0 and ≤ 100 with at most two decimals, else None."""
    number = as_decimal(value)
    if number is None or not 0 < number <= 100 or number != number.quantize(Decimal("0.01")):
        return None
    return number


def even_split(variant_ids: list[str]) -> dict[str, float | int]:
    """Equal shares summing to exactly 100 (the first variants take the odd cents)."""
    count = len(variant_ids)
    base = (Decimal(100) / count).quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    left = Decimal(100) - base * count
    shares = {}
    for variant_id in variant_ids:
        share = base + (Decimal("0.01") if left > 0 else 0)
        left -= Decimal("0.01") if left > 0 else 0
        shares[variant_id] = _json_number(share)
    return shares


def _json_number(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _check_variants(
    experiment_type: str | None, variants: Any, feature_id: uuid.UUID | None
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not isinstance(variants, list) or not 2 <= len(variants) <= MAX_VARIANTS:
        return {"variants": f"must be a list of 2 to {MAX_VARIANTS} variants"}
    target, extras = VARIANT_TARGETS.get(experiment_type or "", (None, ("params",)))
    seen: set[str] = set()
    for index, variant in enumerate(variants):
        where = f"variants.{index}"
        if not isinstance(variant, dict):
            errors[where] = "must be an object with id and name"
            continue
        allowed = {"id", "name", *extras, *([target] if target else [])}
        for key in variant:
            if key not in allowed:
                errors[f"{where}.{key}"] = (
                    f"is not allowed in a {experiment_type} variant "
                    f"(allowed: {', '.join(sorted(allowed))})"
                )
        variant_id = variant.get("id")
        if not isinstance(variant_id, str) or not VARIANT_ID_PATTERN.match(variant_id):
            errors[f"{where}.id"] = (
                "must be 1-100 letters, digits, dots, dashes or underscores (e.g. control)"
            )
        elif variant_id in seen:
            errors[f"{where}.id"] = f"{variant_id} is used by another variant"
        else:
            seen.add(variant_id)
        name = variant.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            errors[f"{where}.name"] = "is required (text of at most 200 characters)"
        if "params" in variant and not isinstance(variant["params"], dict):
            errors[f"{where}.params"] = "must be a JSON object of parameters"
        check_json_field({f"{where}.params": variant.get("params")}, f"{where}.params", errors)
        if target == "params" and not variant.get("params"):
            errors[f"{where}.params"] = "is required: the parameter set this variant tries"
        elif target == "model_id":
            errors.update(_check_model(variant.get("model_id"), f"{where}.model_id"))
        elif target == "prompt_id":
            errors.update(_check_prompt(variant.get("prompt_id"), f"{where}.prompt_id", feature_id))
    return errors


def _as_uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _check_model(value: Any, field: str) -> dict[str, str]:
    model_id = _as_uuid(value)
    if model_id is None:
        return {field: "is required: the id of a model"}
    model = db.session.get(AIModel, model_id)
    if model is None:
        return {field: "is not a known model"}
    if model.status in assignments.UNASSIGNABLE_STATUSES:
        return {field: f"{model.display_name} is {model.status} and cannot serve traffic"}
    return {}


def _check_prompt(value: Any, field: str, feature_id: uuid.UUID | None) -> dict[str, str]:
    prompt_id = _as_uuid(value)
    if prompt_id is None:
        return {field: "is required: the id of a prompt version"}
    prompt = db.session.get(Prompt, prompt_id)
    if prompt is None:
        return {field: "is not a known prompt version"}
    if prompt.feature_id is not None and feature_id is not None and prompt.feature_id != feature_id:
        return {field: f"{prompt.name} v{prompt.version} belongs to another feature"}
    return {}


def _check_allocation(variants: list[dict[str, Any]], allocation: Any) -> dict[str, str]:
    if not isinstance(allocation, dict):
        return {"traffic_allocation": "must be an object of variant id → percent"}
    errors: dict[str, str] = {}
    ids = [v["id"] for v in variants]
    total = Decimal(0)
    for key, value in allocation.items():
        if key not in ids:
            errors[f"traffic_allocation.{key}"] = "is not a variant of this experiment"
            continue
        share = _percent(value)
        if share is None:
            errors[f"traffic_allocation.{key}"] = (
                "must be a percentage above 0 and at most 100, with at most 2 decimals"
            )
        else:
            total += share
    for variant_id in ids:
        if variant_id not in allocation:
            errors[f"traffic_allocation.{variant_id}"] = "is required (percent of traffic)"
    if not errors and total != 100:
        errors["traffic_allocation"] = f"must sum to 100 (the shares sum to {total})"
    return errors


def _check_config(config: Any, variant_ids: list[str]) -> dict[str, str]:
    if not isinstance(config, dict):
        return {"config": "must be a JSON object"}
    errors: dict[str, str] = {}
    check_json_field({"config": config}, "config", errors)
    if errors:
        return errors
    for key in config:
        if key not in CONFIG_KEYS:
            errors[f"config.{key}"] = f"is not a setting (settings: {', '.join(CONFIG_KEYS)})"
    metric = config.get("primary_metric")
    if not isinstance(metric, str) or not metric.strip() or len(metric) > 100:
        errors["config.primary_metric"] = (
            "is required: the metric that decides the winner (e.g. converted)"
        )
    alpha = config.get("alpha", DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha <= 0.2:
        errors["config.alpha"] = "must be a significance level above 0 and at most 0.2"
    control = config.get("control")
    if control is not None and control not in variant_ids:
        errors["config.control"] = "must be the id of one of the variants"
    if not isinstance(config.get("higher_is_better", True), bool):
        errors["config.higher_is_better"] = "must be true or false"
    return errors


def _clean(fields: dict[str, Any], creating: bool) -> dict[str, str]:
    """Check ``fields`` (the full definition when creating, the merged one otherwise) in
    place; return every problem, keyed by field."""
    errors: dict[str, str] = {}
    for key in list(fields):
        if key not in FIELDS:
            errors[key] = "is not a field of an experiment"
    clean_text(fields, "name", errors, max_length=200)
    description = fields.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 10_000):
        errors["description"] = "must be text of at most 10,000 characters"
    if not fields.get("experiment_type"):
        errors["experiment_type"] = f"is required: one of {', '.join(EXPERIMENT_TYPES)}"
    else:
        check_choice(fields, "experiment_type", EXPERIMENT_TYPES, errors)
    feature_id = _as_uuid(fields.get("feature_id"))
    if feature_id is None:
        errors["feature_id"] = "is required: the id of a feature"
    elif not features.feature_exists(feature_id):
        errors["feature_id"] = "is not a known feature"
        feature_id = None
    else:
        fields["feature_id"] = feature_id
    experiment_type = fields.get("experiment_type")
    variant_errors = _check_variants(
        experiment_type if "experiment_type" not in errors else None,
        fields.get("variants"),
        feature_id,
    )
    errors.update(variant_errors)
    if not variant_errors:
        variants = [
            {**v, "name": v["name"].strip(), **_normalised_refs(v)} for v in fields["variants"]
        ]
        fields["variants"] = variants
        ids = [v["id"] for v in variants]
        if fields.get("traffic_allocation") in (None, {}) and creating:
            fields["traffic_allocation"] = even_split(ids)
        allocation_errors = _check_allocation(variants, fields.get("traffic_allocation"))
        errors.update(allocation_errors)
        if not allocation_errors:
            # Checked above: every share is a percentage.
            shares = {v: _percent(fields["traffic_allocation"][v]) for v in ids}
            fields["traffic_allocation"] = {
                v: _json_number(share) for v, share in shares.items() if share is not None
            }
        errors.update(_check_config(fields.get("config", {}), ids))
    else:
        given = fields.get("variants")
        raw = given if isinstance(given, list) else []
        ids = [v.get("id") for v in raw if isinstance(v, dict)]
        errors.update(_check_config(fields.get("config", {}), ids))
    if not errors:
        config = dict(fields.get("config") or {})
        config["primary_metric"] = config["primary_metric"].strip()
        fields["config"] = config
    return errors


def _normalised_refs(variant: dict[str, Any]) -> dict[str, Any]:
    """Ids as canonical strings (what JSON keeps)."""
    return {
        key: str(uuid.UUID(str(variant[key])))
        for key in ("model_id", "prompt_id")
        if key in variant
    }


# --- create, update, delete ---------------------------------------------------------


def create_experiment(actor: Actor, fields: dict[str, Any]) -> Experiment:
    fields = dict(fields)
    errors = _clean(fields, creating=True)
    if errors:
        raise ValidationFailed(errors)
    experiment = Experiment(**fields, status="draft", created_by=actor.user_id)
    db.session.add(experiment)
    db.session.flush()
    add_audit_row(
        actor,
        "experiment.create",
        "experiment",
        experiment.id,
        new_values=experiment_as_dict(experiment),
    )
    db.session.commit()
    return experiment


def update_experiment(
    actor: Actor, experiment_id: uuid.UUID, changes: dict[str, Any]
) -> Experiment:
    """Change a draft freely; after draft, only name and description (409 otherwise)."""
    experiment = _lock(experiment_id)
    unknown = {k: "is not a field of an experiment" for k in changes if k not in FIELDS}
    if unknown:
        raise ValidationFailed(unknown)
    if experiment.status != "draft":
        for key in FROZEN_AFTER_DRAFT:
            if key in changes:
                raise Conflict(
                    f"{key} is frozen: the experiment is {experiment.status} (only a draft's "
                    "design can change)",
                    field=key,
                )
    current = {key: getattr(experiment, key) for key in FIELDS}
    merged = {**current, **changes}
    errors = _clean(merged, creating=False)
    if errors:
        raise ValidationFailed(errors)
    new = {key: merged[key] for key in changes}
    apply_changes(actor, experiment, new, "experiment.update", "experiment")
    db.session.commit()
    return experiment


def can_delete(experiment: Experiment) -> bool:
    """Running and paused experiments are kept (cancel or complete them first)."""
    return experiment.status in DELETABLE_STATUSES


def delete_experiment(actor: Actor, experiment_id: uuid.UUID) -> None:
    """Deletes the experiment with its results. Refused while it runs or is paused:
    cancel or complete it first, so that nobody deletes live data by accident."""
    experiment = _lock(experiment_id)
    if not can_delete(experiment):
        raise Conflict(
            f"{experiment.name} is {experiment.status}: cancel or complete it before deleting it"
        )
    snapshot = experiment_as_dict(experiment)
    result_count = db.session.scalar(
        select(func.count()).where(ExperimentResult.experiment_id == experiment.id)
    )
    db.session.delete(experiment)
    db.session.flush()
    add_audit_row(
        actor,
        "experiment.delete",
        "experiment",
        experiment_id,
        old_values={**snapshot, "result_count": result_count},
    )
    db.session.commit()


# --- lifecycle ------------------------------------------------------------------------


def available_actions(experiment: Experiment) -> list[str]:
    """The lifecycle actions the experiment's status allows, in TRANSITIONS' order."""
    return [action for action, (sources, _) in TRANSITIONS.items() if experiment.status in sources]


def transition(actor: Actor, experiment_id: uuid.UUID, action: str) -> Experiment:
    """start, pause, resume, complete or cancel; any other move is a 409 saying why."""
    if action not in TRANSITIONS:
        raise ValidationFailed({"action": f"must be one of {', '.join(TRANSITIONS)}"})
    experiment = _lock(experiment_id)
    sources, target = TRANSITIONS[action]
    if experiment.status not in sources:
        raise Conflict(
            f"cannot {action} {experiment.name}: it is {experiment.status} "
            f"({action} applies to {' or '.join(sources)} experiments)"
        )
    if action == "start":
        # The design was valid when saved; models or prompts may have gone since.
        errors = _clean({key: getattr(experiment, key) for key in FIELDS}, creating=False)
        if errors:
            raise ValidationFailed(errors, "The experiment can no longer start as designed")
    old = {
        "status": experiment.status,
        "start_date": experiment.start_date,
        "end_date": experiment.end_date,
    }
    now = utcnow()
    experiment.status = target
    if action == "start":
        experiment.start_date = now
    if target in ("completed", "cancelled"):
        experiment.end_date = now
    if target == "completed":
        store_outcome(experiment)
    new: dict[str, Any] = {
        "status": experiment.status,
        "start_date": experiment.start_date,
        "end_date": experiment.end_date,
    }
    if target == "completed":
        new["statistical_significance"] = experiment.statistical_significance
        new["winner_variant"] = experiment.winner_variant
    add_audit_row(actor, f"experiment.{action}", "experiment", experiment.id, old, new)
    db.session.commit()
    return experiment


# --- assignment -----------------------------------------------------------------------


def bucket_of(experiment_id: uuid.UUID, subject: str) -> int:
    """A stable bucket in 0..9999 from SHA-256 of (experiment id, subject id): the same
    subject always lands in the same bucket of an experiment, and buckets are uniform."""
    digest = hashlib.sha256(f"{experiment_id}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant_for_bucket(experiment: Experiment, bucket: int) -> dict[str, Any]:
    """Walk the variants in order; each owns allocation × 100 consecutive buckets."""
    edge = Decimal(0)
    for variant in experiment.variants:
        edge += Decimal(str(experiment.traffic_allocation[variant["id"]])) * 100
        if bucket < edge:
            return variant
    return experiment.variants[-1]  # unreachable while the allocation sums to 100


@dataclass(frozen=True)
class Assignment:
    experiment: Experiment
    subject: str
    bucket: int
    variant: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment.id,
            "subject": self.subject,
            "bucket": self.bucket,
            "variant_id": self.variant["id"],
            "variant": self.variant,
            "experiment_status": self.experiment.status,
            # Applications should serve the control unless the experiment is running.
            "running": self.experiment.status == "running",
        }


def assign(experiment_id: uuid.UUID, subject: Any) -> Assignment:
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200:
        raise ValidationFailed({"subject": "is required: a user or session id (≤ 200 characters)"})
    experiment = get_experiment(experiment_id)
    bucket = bucket_of(experiment.id, subject.strip())
    return Assignment(experiment, subject.strip(), bucket, variant_for_bucket(experiment, bucket))


# --- results --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedBatch:
    accepted: int
    refused: list[dict[str, Any]]  # {"index", "reason"}


def _result_row(experiment: Experiment, item: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The row to insert for one item, or why it is refused."""
    if not isinstance(item, dict):
        return None, "must be an object"
    unknown = set(item) - {
        "variant_id",
        "metric_name",
        "metric_value",
        "user_id",
        "session_id",
        "metadata",
    }
    if unknown:
        return None, f"unknown fields: {', '.join(sorted(unknown))}"
    variant_ids = [v["id"] for v in experiment.variants]
    if item.get("variant_id") not in variant_ids:
        return None, f"variant_id {item.get('variant_id')!r} is not a variant of this experiment"
    metric = item.get("metric_name")
    if not isinstance(metric, str) or not metric.strip() or len(metric) > 100:
        return None, "metric_name is required (text of at most 100 characters)"
    value = as_decimal(item.get("metric_value"))
    if value is None or abs(value) >= METRIC_VALUE_LIMIT:
        return None, "metric_value must be a number below 100,000,000 in size"
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "experiment_id": experiment.id,
        "variant_id": item["variant_id"],
        "metric_name": metric.strip(),
        "metric_value": value,
        "metadata": item.get("metadata") or {},
        "recorded_at": utcnow(),
    }
    if not isinstance(row["metadata"], dict):
        return None, "metadata must be a JSON object"
    problems: dict[str, str] = {}
    check_json_field(row, "metadata", problems)
    if problems:
        return None, f"metadata {problems['metadata']}"
    for key in ("user_id", "session_id"):
        if item.get(key) not in (None, ""):
            subject = _as_uuid(item[key])
            if subject is None:
                return None, f"{key} must be a UUID"
            row[key] = subject
        else:
            row[key] = None
    return row, None


def record_results(actor: Actor, experiment_id: uuid.UUID, items: Any) -> RecordedBatch:
    """Store the valid items of a batch; refuse the others one by one with a reason.
    Nothing is stored when the experiment is not running (409) or no item is valid (400).
    The stored outcome (p-value, winner) is refreshed in the same transaction."""
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_RESULTS_PER_BATCH:
        raise ValidationFailed(
            {"results": f"must be a list of 1 to {MAX_RESULTS_PER_BATCH:,} results"}
        )
    experiment = _lock(experiment_id)
    if experiment.status != "running":
        raise Conflict(
            f"{experiment.name} is {experiment.status}: results are recorded only while it "
            f"runs; all {len(items)} refused"
        )
    rows: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        row, reason = _result_row(experiment, item)
        if row is None:
            refused.append({"index": index, "reason": reason})
        else:
            rows.append(row)
    if not rows:
        raise ValidationFailed({f"results.{r['index']}": r["reason"] for r in refused})
    db.session.execute(sa.insert(ExperimentResult), rows)
    old = {
        "statistical_significance": experiment.statistical_significance,
        "winner_variant": experiment.winner_variant,
    }
    store_outcome(experiment)
    add_audit_row(
        actor,
        "experiment.record_results",
        "experiment",
        experiment.id,
        old,
        {
            "accepted": len(rows),
            "refused": len(refused),
            "statistical_significance": experiment.statistical_significance,
            "winner_variant": experiment.winner_variant,
        },
    )
    db.session.commit()
    return RecordedBatch(len(rows), refused)


# --- analysis and promotion ---------------------------------------------------------


def analyze(experiment_id: uuid.UUID) -> experiment_analysis.Analysis:
    return experiment_analysis.analyze(get_experiment(experiment_id))


def store_outcome(experiment: Experiment) -> experiment_analysis.Analysis:
    """Analyse and keep the p-value and winner on the experiment (no commit, no audit:
    part of the caller's use case)."""
    db.session.flush()  # the sums must see the rows this transaction added
    analysis = experiment_analysis.analyze(experiment)
    p = analysis.decisive_p_value
    experiment.statistical_significance = (
        None if p is None else Decimal(str(p)).quantize(Decimal("0.0001"))
    )
    experiment.winner_variant = analysis.winner
    return analysis


@dataclass(frozen=True)
class Promotion:
    experiment: Experiment
    variant: dict[str, Any]
    message: str


def promotion_of(experiment: Experiment) -> dict[str, Any] | None:
    """The stored record of the promotion (variant, when, by whom), if it happened."""
    return (experiment.results or {}).get("promotion")


def _promotion_refusal(experiment: Experiment) -> str | None:
    """Why the experiment cannot be promoted whatever its results say, or None."""
    if experiment.experiment_type not in PROMOTABLE_TYPES:
        return (
            f"{experiment.experiment_type} experiments have nothing to promote automatically "
            "(only model_comparison and prompt_testing do); apply the winning variant by hand"
        )
    if experiment.status not in PROMOTABLE_STATUSES:
        return f"{experiment.name} is {experiment.status}: there is nothing to promote"
    if promotion_of(experiment):
        return f"{experiment.name} has been promoted already"
    return None


def is_promotable_type(experiment: Experiment) -> bool:
    """Whether promote can apply this type's winner by itself (the others are by hand)."""
    return experiment.experiment_type in PROMOTABLE_TYPES


def can_promote(experiment: Experiment, analysis: experiment_analysis.Analysis) -> bool:
    """Whether ``promote`` would go through now: the same checks, with ``analysis`` as
    the fresh analysis of the experiment's results."""
    return _promotion_refusal(experiment) is None and analysis.winner is not None


def promote(actor: Actor, experiment_id: uuid.UUID) -> Promotion:
    """Put the significant winner into production — the model (model_comparison) or the
    prompt version (prompt_testing) — and complete the experiment: one transaction, one
    audit row. Refused without a significant winner, for other types, or twice."""
    experiment = _lock(experiment_id)
    refusal = _promotion_refusal(experiment)
    if refusal is not None:
        raise Conflict(refusal)
    analysis = store_outcome(experiment)
    if analysis.winner is None:
        raise Conflict(
            f"{experiment.name} has no significant winner on {analysis.primary_metric} at "
            f"alpha {analysis.alpha}: {analysis.verdict}"
        )
    variant = next(v for v in experiment.variants if v["id"] == analysis.winner)
    old: dict[str, Any] = {"status": experiment.status}
    new: dict[str, Any] = {
        "winner_variant": analysis.winner,
        "statistical_significance": experiment.statistical_significance,
    }
    if experiment.experiment_type == "model_comparison":
        switch = assignments.assign_in_transaction(
            actor, experiment.feature_id, uuid.UUID(variant["model_id"]), "production"
        )
        old.update(switch.old_values)
        new.update(
            {
                "model_id": variant["model_id"],
                "environment": "production",
                "assignment_id": switch.assignment.id,
                "changed": switch.changed,
            }
        )
        message = switch.message
    else:
        prompt = prompts.get_prompt(uuid.UUID(variant["prompt_id"]))
        change = prompts.activate_in_transaction(prompt)
        if change is not None:
            old.update(change[0])
        new.update(
            {
                "prompt_id": variant["prompt_id"],
                "active_version": prompt.version,
                "changed": change is not None,
            }
        )
        message = (
            f"{prompt.name} v{prompt.version} is now the active version"
            if change is not None
            else f"{prompt.name} v{prompt.version} was already the active version"
        )
    now = utcnow()
    if experiment.status != "completed":
        experiment.status = "completed"
        experiment.end_date = now
    new["status"] = "completed"
    experiment.results = {
        **(experiment.results or {}),
        "promotion": {
            "variant_id": analysis.winner,
            "promoted_at": now.isoformat(),
            "promoted_by": str(actor.user_id) if actor.user_id else None,
            "message": message,
        },
    }
    add_audit_row(actor, "experiment.promote", "experiment", experiment.id, old, new)
    db.session.commit()
    return Promotion(experiment, variant, message)
