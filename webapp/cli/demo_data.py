"""Realistic demo data so every page has something real to show: usage logs priced from
the models' structured prices, hourly provider health checks, prompts with versions and a
running experiment with results. Deterministic for a given random seed."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import (
    AIModel,
    Experiment,
    ExperimentResult,
    Feature,
    FeatureModelAssignment,
    Prompt,
    PromptActivation,
    Provider,
    ProviderHealthLog,
)
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.experiments import lifecycle as experiments
from webapp.services.usage.recording import add_usage

BATCH_SIZE = 5_000

# (provider, name, display name, type, status, input $/1M, output $/1M)
DEMO_MODELS = [
    (
        "openai",
        "gpt-4o-mini",
        "GPT-4o mini",
        "llm",
        "available",
        Decimal("0.15"),
        Decimal("0.60"),
    ),
    (
        "anthropic",
        "claude-3-5-haiku",
        "Claude 3.5 Haiku",
        "llm",
        "available",
        Decimal("0.80"),
        Decimal("4.00"),
    ),
    (
        "openai",
        "text-embedding-3-small",
        "Text Embedding 3 Small",
        "embedding",
        "available",
        Decimal("0.02"),
        Decimal("0"),
    ),
    (
        "google-cloud",
        "gemini-1.5-flash",
        "Gemini 1.5 Flash",
        "llm",
        "beta",
        Decimal("0.075"),
        Decimal("0.30"),
    ),
]

# (feature, environment, model)
DEMO_ASSIGNMENTS = [
    ("ai-search", "production", "text-embedding-3-small"),
    ("chatbot", "staging", "claude-3-5-haiku"),
    ("chatbot", "development", "gpt-4o-mini"),
    ("photo-tagging", "staging", "vision-v2"),
]

# A model name some demo usage reports that the demo catalog does not have.
UNKNOWN_DEMO_MODEL = "gpt-4.1-mini"

# Share of traffic, (input tokens range), (output tokens range), median latency ms.
TRAFFIC = {
    "chatbot": (0.5, (250, 1500), (80, 700), 1400),
    "photo-tagging": (0.3, (0, 0), (0, 0), 650),
    "ai-search": (0.2, (12, 90), (0, 0), 120),
}

ERRORS = [
    "Rate limit exceeded (429)",
    "Upstream 502 Bad Gateway",
    "Invalid request: context too long",
]


@dataclass
class DemoReport:
    models: int = 0
    assignments: int = 0
    usage_logs: int = 0
    health_logs: int = 0
    prompts: int = 0
    experiments: int = 0
    experiment_results: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def load_demo_data(
    actor: Actor,
    now: datetime,
    days: int,
    requests: int,
    progress: Callable[[int], None] | None = None,
    seed: int = 7,
) -> DemoReport:
    """Add demo rows for the seeded features (run ``seed_defaults`` first), one transaction."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if requests < 0:
        raise ValueError("requests must not be negative")
    rng = random.Random(seed)
    report = DemoReport()
    features = {f.name: f for f in db.session.scalars(select(Feature))}
    missing = [name for name in TRAFFIC if name not in features]
    if missing:
        raise LookupError(f"features {', '.join(missing)} are missing: run `flask seed` first")

    models = _ensure_demo_models(report)
    served_by = _ensure_demo_assignments(actor, features, models, report)
    prompts = _ensure_prompts(actor, features, report)
    chat_prompts = [p.id for p in prompts]
    _insert_usage(rng, now, days, requests, features, served_by, report, progress, chat_prompts)
    _insert_health(rng, now, days, report)
    _ensure_experiment(rng, actor, now, features["chatbot"], prompts, report)

    bump_config_revision()  # demo models, assignments, prompts and an experiment
    add_audit_row(actor, "demo_data.load", "platform", new_values=report.as_dict())
    db.session.commit()
    return report


def _ensure_demo_models(report: DemoReport) -> dict[str, AIModel]:
    providers = {p.name: p for p in db.session.scalars(select(Provider))}
    models = {m.name: m for m in db.session.scalars(select(AIModel))}
    for (
        provider_name,
        name,
        display_name,
        model_type,
        status,
        price_in,
        price_out,
    ) in DEMO_MODELS:
        if name in models:
            continue
        models[name] = AIModel(
            name=name,
            display_name=display_name,
            provider_id=providers[provider_name].id,
            model_type=model_type,
            status=status,
            input_price_per_million=price_in,
            output_price_per_million=price_out,
            capabilities=["chat"] if model_type == "llm" else [model_type],
        )
        db.session.add(models[name])
        report.models += 1
    db.session.flush()
    return models


def _ensure_demo_assignments(
    actor: Actor,
    features: dict[str, Feature],
    models: dict[str, AIModel],
    report: DemoReport,
) -> dict[str, list[tuple[str, AIModel]]]:
    """Fill empty environments, then return the models serving each feature, production
    first (production gets most of the demo traffic)."""
    active = list(
        db.session.scalars(select(FeatureModelAssignment).where(FeatureModelAssignment.is_active))
    )
    taken = {(a.feature_id, a.environment) for a in active}
    for feature_name, environment, model_name in DEMO_ASSIGNMENTS:
        feature = features[feature_name]
        if (feature.id, environment) in taken:
            continue
        assignment = FeatureModelAssignment(
            feature_id=feature.id,
            model_id=models[model_name].id,
            environment=environment,
            is_active=True,
            assigned_by=actor.user_id,
        )
        db.session.add(assignment)
        active.append(assignment)
        report.assignments += 1
    db.session.flush()

    by_id = {m.id: m for m in models.values()}
    order = {"production": 0, "staging": 1, "development": 2}
    served_by: dict[str, list[tuple[str, AIModel]]] = {}
    for name, feature in features.items():
        rows = sorted(
            (a for a in active if a.feature_id == feature.id),
            key=lambda a: order[a.environment],
        )
        served_by[name] = [(a.environment, by_id[a.model_id]) for a in rows]
    return served_by


def _insert_usage(
    rng: random.Random,
    now: datetime,
    days: int,
    requests: int,
    features: dict[str, Feature],
    served_by: dict[str, list[tuple[str, AIModel]]],
    report: DemoReport,
    progress: Callable[[int], None] | None,
    chat_prompts: list[uuid.UUID],
) -> None:
    """``chat_prompts``: the greeting's versions, oldest first; chatbot requests use the
    newest mostly, so prompt usage statistics have something to show."""
    names = [name for name in TRAFFIC if served_by.get(name)]
    weights = [TRAFFIC[name][0] for name in names]
    window = days * 86_400
    batch: list[dict[str, Any]] = []
    for _ in range(requests):
        name = rng.choices(names, weights)[0]
        _, in_range, out_range, median_ms = TRAFFIC[name]
        candidates = served_by[name]
        # Production first (most traffic); staging and development get the rest.
        environment, model = (
            candidates[0]
            if rng.random() < 0.85 or len(candidates) == 1
            else rng.choice(candidates[1:])
        )
        # A few chatbot requests name a model the catalog does not know (the overview
        # alerts about it, and adding the model attaches and prices them).
        unknown = name == "chatbot" and environment == "production" and rng.random() < 0.01
        roll = rng.random()
        status = "success" if roll < 0.955 else ("error" if roll < 0.985 else "timeout")
        input_tokens = rng.randint(*in_range)
        output_tokens = rng.randint(*out_range) if status == "success" else 0
        images = 1 if model.model_type == "vision" else 0
        latency = int(median_ms * math.exp(rng.gauss(0, 0.45)))
        if status == "timeout":
            latency = 30_000
        # Recent days carry a little more traffic, so trends have a direction.
        offset = window * (1 - math.sqrt(rng.random()))
        batch.append(
            {
                "feature_id": features[name].id,
                "model_id": None if unknown else model.id,
                "model_name": UNKNOWN_DEMO_MODEL if unknown else None,
                "environment": environment,
                "prompt_id": (
                    (chat_prompts[-1] if rng.random() < 0.8 else chat_prompts[0])
                    if name == "chatbot" and chat_prompts
                    else None
                ),
                "user_id": uuid.UUID(int=rng.getrandbits(128)),
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
                "response_time_ms": latency,
                "images": images,
                "status": status,
                "error_message": rng.choice(ERRORS) if status == "error" else None,
                "created_at": now - timedelta(seconds=offset),
            }
        )
        if status == "timeout":
            batch[-1]["cost_usd"] = Decimal(0)  # nothing came back, nothing to pay
        # Otherwise no cost: recording prices it from the catalog ("unpriced" when the
        # model is not in it).
        if len(batch) == BATCH_SIZE:
            report.usage_logs += add_usage(batch, now)
            if progress:
                progress(len(batch))
            batch = []
    if batch:
        report.usage_logs += add_usage(batch, now)
        if progress:
            progress(len(batch))


def _insert_health(rng: random.Random, now: datetime, days: int, report: DemoReport) -> None:
    providers = db.session.scalars(select(Provider).order_by(Provider.name)).all()
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    rows: list[dict[str, Any]] = []
    hours = days * 24
    for provider in providers:
        for hour in range(1, hours + 1):
            checked_at = start + timedelta(hours=hour)
            # Anthropic is degraded for the last three hours: something for the alerts panel.
            degraded = provider.name == "anthropic" and hour > hours - 3
            status = "degraded" if degraded else ("healthy" if rng.random() > 0.01 else "degraded")
            error_rate = (
                Decimal(rng.randint(500, 1500)) / 100
                if status == "degraded"
                else Decimal(rng.randint(0, 120)) / 100
            )
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "provider_id": provider.id,
                    "status": status,
                    "response_time_ms": rng.randint(80, 400) * (3 if status == "degraded" else 1),
                    "error_rate": error_rate,
                    "throughput": rng.randint(20, 400),
                    "health_score": rng.randint(50, 75)
                    if status == "degraded"
                    else rng.randint(90, 100),
                    "details": {},
                    "checked_at": checked_at,
                }
            )
    for i in range(0, len(rows), BATCH_SIZE):
        db.session.execute(ProviderHealthLog.__table__.insert(), rows[i : i + BATCH_SIZE])
    report.health_logs += len(rows)


def _ensure_prompts(actor: Actor, features: dict[str, Feature], report: DemoReport) -> list[Prompt]:
    existing = db.session.scalar(select(func.count()).select_from(Prompt)) or 0
    if existing:
        return list(
            db.session.scalars(
                select(Prompt).where(Prompt.name == "chatbot-greeting").order_by(Prompt.version)
            )
        )
    greeting_vars = {
        "user_name": {"type": "string", "description": "Name shown to the user"},
        "product": {"type": "string", "default": "Minerva"},
    }
    prompts = [
        Prompt(
            name="chatbot-greeting",
            description="First message of a chat session",
            content="You are the {{product}} assistant. Greet {{ user_name }} and offer help.",
            version=1,
            feature_id=features["chatbot"].id,
            tags=["chat", "greeting"],
            variables=greeting_vars,
            is_active=False,
            created_by=actor.user_id,
        ),
        Prompt(
            name="chatbot-greeting",
            description="First message of a chat session",
            content="You are the friendly {{product}} assistant. Say hello to {{ user_name }} "
            "by name and ask how you can help today.",
            version=2,
            feature_id=features["chatbot"].id,
            tags=["chat", "greeting"],
            variables=greeting_vars,
            is_active=True,
            created_by=actor.user_id,
        ),
        Prompt(
            name="photo-tag-instructions",
            description="Tagging instructions for safety photos",
            content="List up to {{max_tags}} safety-relevant objects visible in the photo.",
            version=1,
            feature_id=features["photo-tagging"].id,
            tags=["vision", "safety"],
            variables={"max_tags": {"type": "number", "default": 10}},
            is_active=True,
            created_by=actor.user_id,
        ),
    ]
    db.session.add_all(prompts)
    db.session.flush()
    # What is live where: each active version in production (is_active's meaning), and
    # the friendlier greeting in development and staging as well.
    live = [(p, "production") for p in prompts if p.is_active]
    live += [(prompts[1], "development"), (prompts[1], "staging")]
    db.session.add_all(
        PromptActivation(
            feature_id=p.feature_id,
            name=p.name,
            environment=environment,
            prompt_id=p.id,
            version=p.version,
            activated_by=actor.user_id,
        )
        for p, environment in live
    )
    db.session.flush()
    report.prompts += len(prompts)
    return prompts[:2]


def _ensure_experiment(
    rng: random.Random,
    actor: Actor,
    now: datetime,
    chatbot: Feature,
    greeting_versions: list[Prompt],
    report: DemoReport,
) -> None:
    if (
        db.session.scalar(select(func.count()).select_from(Experiment))
        or len(greeting_versions) < 2
    ):
        return
    control, candidate = greeting_versions[0], greeting_versions[1]
    experiment = Experiment(
        name="Greeting v2",
        description="Does the friendlier greeting convert more chats into resolved sessions?",
        feature_id=chatbot.id,
        experiment_type="prompt_testing",
        variants=[
            {"id": "control", "name": "Current", "prompt_id": str(control.id)},
            {"id": "v2", "name": "Friendlier", "prompt_id": str(candidate.id)},
        ],
        traffic_allocation={"control": 50, "v2": 50},
        config={"primary_metric": "converted", "alpha": 0.05},
        status="running",
        start_date=now - timedelta(days=14),
        created_by=actor.user_id,
    )
    db.session.add(experiment)
    db.session.flush()
    rows = []
    for variant, rate in (("control", 0.12), ("v2", 0.15)):
        for _ in range(1000):
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "experiment_id": experiment.id,
                    "variant_id": variant,
                    "session_id": uuid.UUID(int=rng.getrandbits(128)),
                    "metric_name": "converted",
                    "metric_value": Decimal(1 if rng.random() < rate else 0),
                    "metadata": {},
                    "recorded_at": now - timedelta(seconds=rng.randint(0, 14 * 86_400)),
                }
            )
    db.session.execute(ExperimentResult.__table__.insert(), rows)
    experiments.store_outcome(experiment)  # the stored p-value and winner, as if recorded live
    report.experiments += 1
    report.experiment_results += len(rows)
