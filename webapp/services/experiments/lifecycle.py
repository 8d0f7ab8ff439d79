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
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    EXPERIMENT_STATUSES,
    AIModel,
    Experiment,
    ExperimentResult,
    Feature,
    Prompt,
)
from webapp.models.types import utcnow
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.audit.writes import apply_changes
from webapp.services.catalog import assignments, features
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.sorting import Page, Sort, order_by, page_of_query
from webapp.services.core.validation import check
from webapp.services.experiments import analysis as experiment_analysis
from webapp.services.experiments.schemas import (
    FIELDS,
    MAX_SUBJECT,
    ExperimentCreate,
    ExperimentDefinition,
    ResultBatch,
    ResultItem,
    result_refusal,
)
from webapp.services.prompts import versions as prompts

BUCKETS = 10_000  # assignment resolution: allocations are percentages with 2 decimals
FROZEN_AFTER_DRAFT = ("feature_id", "experiment_type", "variants", "traffic_allocation", "config")
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


def _as_uuid(value: Any) -> uuid.UUID | None:
    """A stored variant's model or prompt id (text in JSON) as a UUID, None if it is not one."""
    try:
        return uuid.UUID(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


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
    query = _experiments_query(statuses, feature_id).order_by(
        Experiment.created_at.desc(), Experiment.name
    )
    return [(experiment, name) for experiment, name in db.session.execute(query)]


def _experiments_query(statuses: list[str] | None, feature_id: uuid.UUID | None) -> Any:
    for status in statuses or []:
        if status not in EXPERIMENT_STATUSES:
            raise ValidationFailed({"status": f"must be one of {', '.join(EXPERIMENT_STATUSES)}"})
    query = select(Experiment, Feature.display_name).join(
        Feature, Feature.id == Experiment.feature_id
    )
    if statuses:
        query = query.where(Experiment.status.in_(statuses))
    if feature_id:
        query = query.where(Experiment.feature_id == feature_id)
    return query


# Sort keys of the experiments table and their columns ("created": newest first by default).
EXPERIMENT_SORTS = {
    "created": Experiment.created_at,
    "name": Experiment.name,
    "feature": Feature.display_name,
    "type": Experiment.experiment_type,
    "status": Experiment.status,
    "started": Experiment.start_date,
    "winner": Experiment.winner_variant,
}


def experiments_page(
    statuses: list[str] | None, sort: Sort, page: int
) -> Page[tuple[Experiment, str]]:
    """One page of (experiment, feature display name), ordered in SQL by ``sort`` (one of
    ``EXPERIMENT_SORTS``)."""
    query = _experiments_query(statuses, None).order_by(
        *order_by(sort, EXPERIMENT_SORTS, Experiment.id)
    )
    found = page_of_query(query, page)
    rows = [(experiment, name) for experiment, name in found.items]
    return Page(rows, found.page, found.pages, found.total)


# --- validation ---------------------------------------------------------------------
# Shapes, types and the rules between fields are ExperimentDefinition's (schemas.py);
# what follows needs the database.


def _check_model(model_id: uuid.UUID, field: str, feature: Feature | None) -> dict[str, str]:
    model = db.session.get(AIModel, model_id)
    if model is None:
        return {field: "is not a known model"}
    if model.status in assignments.UNASSIGNABLE_STATUSES:
        return {field: f"{model.display_name} is {model.status} and cannot serve traffic"}
    mismatch = assignments.type_mismatch(model, feature) if feature is not None else None
    if mismatch:
        return {field: mismatch}  # promoting it could never assign it
    return {}


def _check_prompt(prompt_id: uuid.UUID, field: str, feature_id: uuid.UUID | None) -> dict[str, str]:
    prompt = db.session.get(Prompt, prompt_id)
    if prompt is None:
        return {field: "is not a known prompt version"}
    if prompt.feature_id is not None and feature_id is not None and prompt.feature_id != feature_id:
        return {field: f"{prompt.name} v{prompt.version} belongs to another feature"}
    return {}


def _targets(
    values: Mapping[str, Any], fields: Mapping[str, Any]
) -> list[tuple[uuid.UUID | None, uuid.UUID | None]]:
    """Each variant's model and prompt ids: from the valid variants, or, when one of them
    is wrong, from every raw variant whose ids read as UUIDs (so a wrong model is named
    in the same answer as a wrong variant name)."""
    if values.get("variants") is not None:
        return [(v.model_id, v.prompt_id) for v in values["variants"]]
    raw = fields.get("variants")
    found: list[tuple[uuid.UUID | None, uuid.UUID | None]] = []
    for item in raw if isinstance(raw, list) else []:
        ids: list[uuid.UUID | None] = []
        for key in ("model_id", "prompt_id"):
            value = item.get(key) if isinstance(item, dict) else None
            try:
                ids.append(uuid.UUID(str(value)) if value else None)
            except ValueError:
                ids.append(None)
        found.append((ids[0], ids[1]))
    return found


def definition_problems(fields: Mapping[str, Any]) -> dict[str, str]:
    """Every problem of a new experiment's fields, the database's checks included, without
    saving anything: the create form merges them with its own (JSON it could not read)."""
    try:
        _checked(ExperimentCreate, fields)
    except ValidationFailed as error:
        return dict(error.errors)
    return {}


def _checked(schema: type[ExperimentDefinition], fields: Mapping[str, Any]) -> dict[str, Any]:
    """The experiment's columns as validated by ``schema``, with the checks that need
    the database: the feature exists, each variant's model can serve traffic and its
    prompt version exists for the feature (every problem at once)."""
    checked = check(schema, fields)
    errors, values = checked.errors, checked.values
    feature_id = values.get("feature_id")
    if feature_id is not None and not features.feature_exists(feature_id):
        errors["feature_id"] = "is not a known feature"
        feature_id = None
    feature = db.session.get(Feature, feature_id) if feature_id is not None else None
    for index, (model_id, prompt_id) in enumerate(_targets(values, fields)):
        if model_id is not None and f"variants.{index}.model_id" not in errors:
            errors.update(_check_model(model_id, f"variants.{index}.model_id", feature))
        if prompt_id is not None and f"variants.{index}.prompt_id" not in errors:
            errors.update(_check_prompt(prompt_id, f"variants.{index}.prompt_id", feature_id))
    if errors:
        raise ValidationFailed(errors)
    return checked.valid().stored()


# --- create, update, delete ---------------------------------------------------------


def create_experiment(actor: Actor, fields: dict[str, Any]) -> Experiment:
    experiment = Experiment(
        **_checked(ExperimentCreate, fields), status="draft", created_by=actor.user_id
    )
    db.session.add(experiment)
    db.session.flush()
    bump_config_revision()
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
    merged = _checked(ExperimentDefinition, {**current, **changes})
    new = {key: merged[key] for key in changes}
    if apply_changes(actor, experiment, new, "experiment.update", "experiment"):
        bump_config_revision()
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
    bump_config_revision()
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
        try:
            _checked(ExperimentDefinition, {key: getattr(experiment, key) for key in FIELDS})
        except ValidationFailed as error:
            raise ValidationFailed(
                error.errors, "The experiment can no longer start as designed"
            ) from None
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
    bump_config_revision()
    add_audit_row(actor, f"experiment.{action}", "experiment", experiment.id, old, new)
    db.session.commit()
    return experiment


# --- assignment -----------------------------------------------------------------------


def bucket_of(experiment_id: uuid.UUID, subject: str) -> int:
    """A stable bucket in 0..9999 from SHA-256 of (experiment id, subject id): the same
    subject always lands in the same bucket of an experiment, and buckets are uniform."""
    digest = hashlib.sha256(f"{experiment_id}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def variant_index_for_bucket(weights: Sequence[Any], bucket: int) -> int:
    """Walk the weights (percentages) in order; each owns weight × 100 consecutive
    buckets. Applications' configuration (GET /api/v1/config) uses the same walk."""
    edge = Decimal(0)
    for index, weight in enumerate(weights):
        edge += Decimal(str(weight)) * 100
        if bucket < edge:
            return index
    return len(weights) - 1  # unreachable while the weights sum to 100


def variant_for_bucket(experiment: Experiment, bucket: int) -> dict[str, Any]:
    weights = [experiment.traffic_allocation[variant["id"]] for variant in experiment.variants]
    return experiment.variants[variant_index_for_bucket(weights, bucket)]


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
    if not isinstance(subject, str) or not subject.strip() or len(subject.strip()) > MAX_SUBJECT:
        raise ValidationFailed(
            {"subject": f"is required: a user or session id (≤ {MAX_SUBJECT} characters)"}
        )
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
    checked = check(ResultItem, item)
    variant_ids = [v["id"] for v in experiment.variants]
    if "variant_id" not in checked.errors and item["variant_id"] not in variant_ids:
        checked.errors = {
            "variant_id": f"{item['variant_id']!r} is not a variant of this experiment",
            **checked.errors,
        }
    if checked.errors:
        return None, result_refusal(checked.errors)
    result = checked.valid()
    return {
        "id": uuid.uuid4(),
        "experiment_id": experiment.id,
        **result.model_dump(),
        "metadata": result.metadata or {},
        "recorded_at": utcnow(),
    }, None


def record_results(actor: Actor, experiment_id: uuid.UUID, items: Any) -> RecordedBatch:
    """Store the valid items of a batch; refuse the others one by one with a reason.
    Nothing is stored when the experiment is not running (409) or no item is valid (400).
    The stored outcome (p-value, winner) is refreshed in the same transaction."""
    items = check(ResultBatch, {"results": items}).valid().results
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


def variant_label(experiment: Experiment, variant_id: str | None) -> str | None:
    """A variant as the pages name it: "Friendlier (v2)", its name and id."""
    for variant in experiment.variants or []:
        if variant.get("id") == variant_id:
            return f"{variant.get('name') or variant_id} ({variant_id})"
    return variant_id


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
        change = prompts.activate_in_transaction(prompt, actor)
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
    bump_config_revision()
    add_audit_row(actor, "experiment.promote", "experiment", experiment.id, old, new)
    db.session.commit()
    return Promotion(experiment, variant, message)
