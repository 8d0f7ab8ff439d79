"""What an application is told to do for a feature in its environment (GET /api/v1/config,
GET /api/v1/prompts/<name>, ``flask config export``): one builder for all three.

An answer is a pure function of (configuration revision, environment, feature, subject,
budget guard). Every change that can alter the configuration bumps the revision in its
own transaction (webapp.services.apps.config_revision), so:

- The ETag is a hash of those inputs, not of the answer: a ``304`` needs one read of the
  revision and the (briefly cached) budget guard, never the answer itself.
- The revision-bound part of the answer (feature, model, prompts, experiments) is cached
  per process under its revision (``ConfigCache``). Every request reads the committed
  revision first, so a change made through one worker is seen by every other worker on
  its next request; an entry is only stored when the revision read again after building
  it is unchanged (nothing committed in between), so no entry holds data of another
  revision.
- Budget state moves without an admin change (spend grows). The guard is part of what the
  ETag hashes, and is recomputed at most every ``CONFIG_BUDGET_SECONDS`` (default 10) per
  feature and process, and at once when the revision changes (a budget edit): a state
  change caused by spend reaches applications within that time plus their max-age. Hard
  limits do not rely on it: reservations are checked atomically at reserve time.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    AIModel,
    Experiment,
    Feature,
    FeatureModelAssignment,
    Prompt,
    PromptActivation,
    Provider,
)
from webapp.services.apps.authentication import AuthenticatedKey
from webapp.services.apps.config_revision import current_revision
from webapp.services.catalog.schemas import PRICE_FIELDS
from webapp.services.core.errors import DomainError, NotFound, ValidationFailed
from webapp.services.core.serialization import to_jsonable
from webapp.services.experiments.lifecycle import (
    BUCKETS,
    bucket_of,
    control_of,
    variant_index_for_bucket,
)
from webapp.services.prompts.environments import check_environment, live_prompts
from webapp.services.spending.enforcement import BudgetGuard, budget_guard

# Part of every ETag: a change of the answer's shape in a release changes every ETag.
ANSWER_FORMAT = 1
MAX_SUBJECT = 200
# How often a stale-looking revision is re-read while building (see ``_consistent``).
BUILD_ATTEMPTS = 3


class FeatureNotAllowed(DomainError):
    """The key is limited to other features."""

    status_code = 403


@dataclass(frozen=True)
class FeatureRef:
    id: uuid.UUID
    name: str
    status: str


@dataclass
class ConfigCache:
    """One process's answers, valid for one revision (everything is dropped when the
    revision moves), and budget guards valid for ``budget_seconds``."""

    budget_seconds: float = 10.0
    revision: int | None = None
    # Keyed by revision too: a thread that read revision n may store its entry just after
    # another thread moved the cache to n + 1; keyed so, that entry is never read at n + 1.
    features: dict[int, dict[str, FeatureRef]] = field(default_factory=dict)
    configs: dict[tuple[int, uuid.UUID, str], dict[str, Any]] = field(default_factory=dict)
    budgets: dict[tuple[int, uuid.UUID, str], tuple[float, BudgetGuard | None]] = field(
        default_factory=dict
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    # A cache used for one answer only (see ``_retrying``): it may hold a newer revision's
    # data under an older number, since nobody else reads it.
    throwaway: bool = False

    def at(self, revision: int) -> None:
        """Forget what belongs to another revision (a newer one, or an older one after
        the database was restored)."""
        if self.revision != revision:
            with self.lock:
                if self.revision != revision:
                    self.revision = revision
                    self.features, self.configs, self.budgets = {}, {}, {}

    def check(self, revision: int) -> None:
        """What was just read belongs to ``revision`` only if no change committed since it
        was read (every change bumps it)."""
        if not self.throwaway and current_revision() != revision:
            raise _RevisionMoved

    def forget(self) -> None:
        with self.lock:
            self.revision, self.features, self.configs, self.budgets = None, {}, {}, {}


class _RevisionMoved(Exception):
    """The revision changed while an answer was being built: build again."""


# --- reading the catalogue ----------------------------------------------------------


def _feature_index(cache: ConfigCache, revision: int) -> dict[str, FeatureRef]:
    index = cache.features.get(revision)
    if index is None:
        rows = db.session.execute(select(Feature.id, Feature.name, Feature.status))
        index = {name: FeatureRef(fid, name, status) for fid, name, status in rows}
        cache.check(revision)
        cache.features[revision] = index
    return index


def feature_ref(cache: ConfigCache, revision: int, key: AuthenticatedKey, name: str) -> FeatureRef:
    found = _feature_index(cache, revision).get(name)
    if found is None:
        raise NotFound(f"there is no feature named {name!r}")
    if not key.may_use_feature(found.id):
        raise FeatureNotAllowed(f"this API key may not read the feature {name!r}")
    return found


def readable_features(cache: ConfigCache, revision: int, key: AuthenticatedKey) -> list[FeatureRef]:
    """The features the key may read, by name."""
    index = _feature_index(cache, revision)
    return [ref for name, ref in sorted(index.items()) if key.may_use_feature(ref.id)]


def merged_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The model's config with an assignment's overrides applied: an override replaces the
    value, except that two objects are merged key by key (so overriding one nested setting
    keeps its siblings)."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merged_config(merged[key], value)
        else:
            merged[key] = value
    return merged


def _model_section(feature_id: uuid.UUID, environment: str) -> dict[str, Any] | None:
    row = db.session.execute(
        select(FeatureModelAssignment, AIModel, Provider)
        .join(AIModel, AIModel.id == FeatureModelAssignment.model_id)
        .join(Provider, Provider.id == AIModel.provider_id)
        .where(
            FeatureModelAssignment.feature_id == feature_id,
            FeatureModelAssignment.environment == environment,
            FeatureModelAssignment.is_active,
        )
    ).first()
    if row is None:
        return None
    assignment, model, provider = row
    return {
        "name": model.name,
        "version": model.version,
        "provider": {
            "name": provider.name,
            "provider_type": provider.provider_type,
            "api_endpoint": provider.api_endpoint,
        },
        "config": merged_config(dict(model.config or {}), dict(assignment.config_overrides or {})),
        "pricing": {name: getattr(model, name) for name in PRICE_FIELDS},
    }


def content_sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def prompt_entry(name: str, version: int, content: str, variables: Any) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "content": content,
        "variables": dict(variables or {}),
        "sha256": content_sha256(content),
    }


def _experiments_section(feature_id: uuid.UUID) -> list[dict[str, Any]]:
    experiments = db.session.scalars(
        select(Experiment)
        .where(Experiment.feature_id == feature_id, Experiment.status == "running")
        .order_by(Experiment.start_date, Experiment.id)
    ).all()
    model_ids, prompt_ids = set(), set()
    for experiment in experiments:
        for variant in experiment.variants:
            model_ids.add(_uuid(variant.get("model_id")))
            prompt_ids.add(_uuid(variant.get("prompt_id")))
    models: dict[uuid.UUID | None, dict[str, Any]] = {
        model.id: {"name": model.name, "version": model.version, "provider": provider}
        for model, provider in db.session.execute(
            select(AIModel, Provider.name)
            .join(Provider, Provider.id == AIModel.provider_id)
            .where(AIModel.id.in_(model_ids - {None}))
        )
    }
    prompts: dict[uuid.UUID | None, dict[str, Any]] = {
        prompt.id: {"name": prompt.name, "version": prompt.version}
        for prompt in db.session.scalars(select(Prompt).where(Prompt.id.in_(prompt_ids - {None})))
    }
    section = []
    for experiment in experiments:
        variants = []
        for variant in experiment.variants:
            entry: dict[str, Any] = {
                "id": variant["id"],
                "name": variant.get("name"),
                "weight": experiment.traffic_allocation[variant["id"]],
            }
            if "model_id" in variant:
                entry["model"] = models.get(_uuid(variant["model_id"]))
            if "prompt_id" in variant:
                entry["prompt"] = prompts.get(_uuid(variant["prompt_id"]))
            if variant.get("params") is not None:
                entry["params"] = variant["params"]
            variants.append(entry)
        section.append(
            {
                "id": experiment.id,
                "name": experiment.name,
                "type": experiment.experiment_type,
                "assignment": "sha256",
                "buckets": BUCKETS,
                "control": control_of(experiment),
                "variants": variants,
            }
        )
    return section


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def build_feature_config(ref: FeatureRef, environment: str) -> dict[str, Any]:
    """The part of a feature's answer that only a configuration change alters (no
    revision, budget or variant), as JSON-ready values."""
    return to_jsonable(
        {
            "feature": {"name": ref.name, "status": ref.status},
            "environment": environment,
            "model": _model_section(ref.id, environment),
            "prompts": [
                prompt_entry(p["name"], p["version"], p["content"], p["variables"])
                for p in live_prompts(ref.id, environment)
            ],
            "experiments": _experiments_section(ref.id),
        }
    )


def _cached_config(
    cache: ConfigCache, revision: int, ref: FeatureRef, environment: str
) -> dict[str, Any]:
    found = cache.configs.get((revision, ref.id, environment))
    if found is None:
        found = build_feature_config(ref, environment)
        cache.check(revision)
        cache.configs[(revision, ref.id, environment)] = found
    return found


def _cached_budget(
    cache: ConfigCache, revision: int, ref: FeatureRef, environment: str, now: datetime
) -> BudgetGuard | None:
    moment = time.monotonic()
    found = cache.budgets.get((revision, ref.id, environment))
    if found is not None and moment - found[0] < cache.budget_seconds:
        return found[1]
    guard = budget_guard(ref.id, environment, now)
    cache.budgets[(revision, ref.id, environment)] = (moment, guard)
    return guard


def budget_as_dict(guard: BudgetGuard | None) -> dict[str, Any] | None:
    if guard is None:
        return None
    return to_jsonable(
        {
            "state": guard.state,
            "action": guard.action,
            "degrade_to": guard.degrade_to,
            "resets_at": guard.resets_at,
        }
    )


def variant_of(experiment: dict[str, Any], subject: str) -> str:
    """The variant ``subject`` gets in an experiment of the answer: the same hash and walk
    as the admin API's /experiments/<id>/assignment."""
    bucket = bucket_of(uuid.UUID(str(experiment["id"])), subject)
    weights = [variant["weight"] for variant in experiment["variants"]]
    return str(experiment["variants"][variant_index_for_bucket(weights, bucket)]["id"])


def checked_subject(subject: str | None) -> str | None:
    if subject is None:
        return None
    if not subject.strip() or len(subject) > MAX_SUBJECT:
        raise ValidationFailed(
            {"subject": f"must be a user or session id (1 to {MAX_SUBJECT} characters)"}
        )
    return subject.strip()


def _answer(
    config: dict[str, Any], revision: int, budget: dict[str, Any] | None, subject: str | None
) -> dict[str, Any]:
    experiments = [
        {**experiment, "variant": variant_of(experiment, subject) if subject else None}
        for experiment in config["experiments"]
    ]
    return {
        "feature": config["feature"],
        "environment": config["environment"],
        "revision": revision,
        "model": config["model"],
        "prompts": config["prompts"],
        "experiments": experiments,
        "budget": budget,
    }


# --- resolving a request ------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """An answer's ETag, and the answer itself unless the caller's copy is current."""

    etag: str
    data: dict[str, Any] | None  # None: not modified


def etag_of(secret: bytes, *parts: Any) -> str:
    """A strong ETag over the inputs of an answer. Keyed with the app's secret, so a
    client cannot make up the ETag of an answer it was never given."""
    payload = json.dumps([ANSWER_FORMAT, *parts], sort_keys=True, default=str)
    return '"' + hashlib.sha256(secret + payload.encode()).hexdigest()[:40] + '"'


def _retrying(cache: ConfigCache, resolve: Callable[[ConfigCache, int], Resolved]) -> Resolved:
    """Run ``resolve`` at the committed revision; again if a change committed meanwhile.
    Should changes keep coming, the last attempt builds from a throwaway cache: its answer
    is at least as new as its revision, and no shared entry keeps it."""
    for _ in range(BUILD_ATTEMPTS):
        revision = current_revision()
        cache.at(revision)
        try:
            return resolve(cache, revision)
        except _RevisionMoved:
            continue
    revision = current_revision()
    return resolve(ConfigCache(cache.budget_seconds, revision, throwaway=True), revision)


def resolve_feature(
    cache: ConfigCache,
    secret: bytes,
    key: AuthenticatedKey,
    name: str,
    subject: str | None,
    now: datetime,
    matches: Callable[[str], bool],
) -> Resolved:
    """GET /api/v1/config/<name>: 404 (NotFound) for an unknown feature, 403
    (FeatureNotAllowed) outside the key's features; ``matches(etag)``: the client's copy
    is this one (If-None-Match)."""
    subject = checked_subject(subject)
    environment = key.environment

    def resolve(cache: ConfigCache, revision: int) -> Resolved:
        ref = feature_ref(cache, revision, key, name)
        budget = budget_as_dict(_cached_budget(cache, revision, ref, environment, now))
        etag = etag_of(secret, "feature", revision, environment, ref.name, subject, budget)
        if matches(etag):
            return Resolved(etag, None)
        config = _cached_config(cache, revision, ref, environment)
        return Resolved(etag, _answer(config, revision, budget, subject))

    return _retrying(cache, resolve)


def resolve_all(
    cache: ConfigCache,
    secret: bytes,
    key: AuthenticatedKey,
    subject: str | None,
    now: datetime,
    matches: Callable[[str], bool],
) -> Resolved:
    """GET /api/v1/config: every feature the key may read, keyed by name."""
    subject = checked_subject(subject)
    environment = key.environment

    def resolve(cache: ConfigCache, revision: int) -> Resolved:
        refs = readable_features(cache, revision, key)
        budgets = {
            ref.name: budget_as_dict(_cached_budget(cache, revision, ref, environment, now))
            for ref in refs
        }
        scope = sorted(str(feature_id) for feature_id in key.feature_ids) or "*"
        etag = etag_of(secret, "all", revision, environment, scope, subject, budgets)
        if matches(etag):
            return Resolved(etag, None)
        features = {
            ref.name: _answer(
                _cached_config(cache, revision, ref, environment),
                revision,
                budgets[ref.name],
                subject,
            )
            for ref in refs
        }
        return Resolved(
            etag, {"environment": environment, "revision": revision, "features": features}
        )

    return _retrying(cache, resolve)


def resolve_prompt(
    cache: ConfigCache,
    secret: bytes,
    key: AuthenticatedKey,
    name: str,
    feature: str | None,
    version: int | None,
    matches: Callable[[str], bool],
) -> Resolved:
    """GET /api/v1/prompts/<name>: one version of a feature's prompt (``feature`` None: a
    global prompt); by default the one live in the key's environment."""
    environment = key.environment

    def resolve(cache: ConfigCache, revision: int) -> Resolved:
        ref = feature_ref(cache, revision, key, feature) if feature is not None else None
        etag = etag_of(secret, "prompt", revision, environment, feature, name, version)
        if matches(etag):
            return Resolved(etag, None)
        data = _prompt_answer(name, ref, environment, version)
        cache.check(revision)
        return Resolved(etag, data | {"revision": revision, "feature": feature})

    return _retrying(cache, resolve)


def _prompt_answer(
    name: str, ref: FeatureRef | None, environment: str, version: int | None
) -> dict[str, Any]:
    family = (
        Prompt.feature_id == ref.id if ref is not None else Prompt.feature_id.is_(None),
        Prompt.name == name,
    )
    live_version = db.session.scalar(
        select(PromptActivation.version).where(
            PromptActivation.feature_id == ref.id
            if ref is not None
            else PromptActivation.feature_id.is_(None),
            PromptActivation.name == name,
            PromptActivation.environment == environment,
            PromptActivation.deactivated_at.is_(None),
        )
    )
    wanted = version if version is not None else live_version
    where = f"for {ref.name}" if ref is not None else "among global prompts"
    if wanted is None:
        raise NotFound(f"no version of the prompt {name!r} {where} is live in {environment}")
    prompt = db.session.scalar(select(Prompt).where(*family, Prompt.version == wanted))
    if prompt is None:
        raise NotFound(f"the prompt {name!r} {where} has no version {wanted}")
    return prompt_entry(prompt.name, prompt.version, prompt.content, prompt.variables) | {
        "environment": environment,
        "live": prompt.version == live_version,
    }


# --- export -------------------------------------------------------------------------


def export_bundle(environment: str, now: datetime) -> dict[str, Any]:
    """Every feature's answer for ``environment`` (what a key for every feature would be
    told, without subject): the Python client's fallback for a cold start."""
    check_environment(environment)
    revision = current_revision()
    cache = ConfigCache(revision=revision, throwaway=True)
    features = {}
    for name, ref in sorted(_feature_index(cache, revision).items()):
        config = build_feature_config(ref, environment)
        features[name] = _answer(
            config, revision, budget_as_dict(budget_guard(ref.id, environment, now)), None
        )
    return {
        "format": ANSWER_FORMAT,
        "environment": environment,
        "revision": revision,
        "exported_at": to_jsonable(now),
        "features": features,
    }
