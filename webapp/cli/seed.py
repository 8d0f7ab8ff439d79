"""The seed's default rows: 3 features, 3 providers, 2 models, 2 production assignments
and a monthly budget per feature. Idempotent: a second run finds everything and adds
nothing."""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import AIModel, Budget, Feature, FeatureModelAssignment, Provider
from webapp.services.apps.config_revision import bump_config_revision
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor

# (name, display name, description, the type of model it needs)
FEATURES = [
    (
        "photo-tagging",
        "Photo Tagging",
        "AI-powered photo analysis and tagging for industrial safety photos",
        "vision",
    ),
    ("chatbot", "AI Chatbot", "Intelligent chatbot for user assistance and support", "llm"),
    ("ai-search", "AI Search", "Semantic search powered by AI embeddings", "embedding"),
]

PROVIDERS: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "openai",
        "OpenAI",
        "openai",
        {"api_version": "v1", "base_url": "https://api.openai.com/v1"},
    ),
    (
        "google-cloud",
        "Google Cloud AI",
        "google",
        {"project_id": "", "region": "us-central1"},
    ),
    ("anthropic", "Anthropic", "anthropic", {"api_version": "2023-06-01"}),
]

# (provider, name, display name, type, config, input $/1M, output $/1M, per image)
MODELS = [
    (
        "openai",
        "gpt-4",
        "GPT-4",
        "llm",
        {"context_window": 8192, "max_tokens": 4096},
        Decimal("30.00"),
        Decimal("60.00"),
        None,
    ),
    (
        "google-cloud",
        "vision-v2",
        "Vision API v2",
        "vision",
        {"max_results": 20},
        Decimal("0"),
        Decimal("0"),
        Decimal("0.0015"),
    ),
]

PRODUCTION_ASSIGNMENTS = [("chatbot", "gpt-4"), ("photo-tagging", "vision-v2")]

MONTHLY_BUDGET = Decimal("1000.00")


@dataclass
class SeedReport:
    created: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str) -> None:
        self.created[kind] = self.created.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.created.values())


def month_bounds(day: date) -> tuple[date, date]:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.replace(day=1), day.replace(day=last)


def seed_defaults(actor: Actor, today: date) -> SeedReport:
    """Insert whichever default rows are missing, in one transaction with one audit row."""
    report = SeedReport()

    features = {f.name: f for f in db.session.scalars(select(Feature))}
    for name, display_name, description, model_type in FEATURES:
        if name not in features:
            features[name] = Feature(
                name=name,
                display_name=display_name,
                description=description,
                model_type=model_type,
            )
            db.session.add(features[name])
            report.count("features")

    providers = {p.name: p for p in db.session.scalars(select(Provider))}
    for name, display_name, provider_type, config in PROVIDERS:
        if name not in providers:
            providers[name] = Provider(
                name=name,
                display_name=display_name,
                provider_type=provider_type,
                config=config,
            )
            db.session.add(providers[name])
            report.count("providers")
    db.session.flush()

    models: dict[str, AIModel] = {}
    for (
        provider_name,
        name,
        display_name,
        model_type,
        config,
        price_in,
        price_out,
        per_image,
    ) in MODELS:
        provider = providers[provider_name]
        model = db.session.scalar(
            select(AIModel).where(AIModel.provider_id == provider.id, AIModel.name == name)
        )
        if model is None:
            model = AIModel(
                name=name,
                display_name=display_name,
                provider_id=provider.id,
                model_type=model_type,
                config=config,
                input_price_per_million=price_in,
                output_price_per_million=price_out,
                price_per_image=per_image,
            )
            db.session.add(model)
            report.count("models")
        models[name] = model
    db.session.flush()

    for feature_name, model_name in PRODUCTION_ASSIGNMENTS:
        feature = features[feature_name]
        has_active = db.session.scalar(
            select(FeatureModelAssignment.id).where(
                FeatureModelAssignment.feature_id == feature.id,
                FeatureModelAssignment.environment == "production",
                FeatureModelAssignment.is_active,
            )
        )
        if has_active is None:
            db.session.add(
                FeatureModelAssignment(
                    feature_id=feature.id,
                    model_id=models[model_name].id,
                    environment="production",
                    is_active=True,
                    assigned_by=actor.user_id,
                )
            )
            report.count("assignments")

    start, end = month_bounds(today)
    for name, *_ in FEATURES:
        feature = features[name]
        exists = db.session.scalar(
            select(Budget.id).where(
                Budget.feature_id == feature.id,
                Budget.period_type == "monthly",
                Budget.start_date <= start,
                Budget.end_date >= end,
            )
        )
        if exists is None:
            db.session.add(
                Budget(
                    name=f"{feature.display_name} Monthly Budget",
                    feature_id=feature.id,
                    period_type="monthly",
                    budget_amount=MONTHLY_BUDGET,
                    start_date=start,
                    end_date=end,
                )
            )
            report.count("budgets")

    if report.total:
        bump_config_revision()
        add_audit_row(actor, "seed.apply", "platform", new_values=report.created)
    db.session.commit()
    return report
