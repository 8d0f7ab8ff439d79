"""Cost optimisation recommendations over the last 30 days of usage.

The seed's three rules (high-cost low-usage model, a dominant provider, a dominant
feature), with their thresholds and estimated saving rates as named settings, plus one the
seed lacked and which needs no estimate: re-price each feature's real usage (same tokens,
same requests) with every cheaper available model of the same type, and recommend the
cheapest with its exact saving.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import AIModel, Feature, Provider
from webapp.services.core.money import MICRO_DOLLAR, usd
from webapp.services.spending.analytics import (
    CENT_PERCENT,
    HUNDRED,
    SpendingBreakdown,
    spending_breakdown,
)
from webapp.services.usage.cost import model_price_of
from webapp.services.usage.reads import ZERO_COST
from webapp.services.usage.windows import checked_environment

WINDOW_DAYS = 30


@dataclass(frozen=True)
class RecommendationSettings:
    """The rules' thresholds. Estimated savings are the seed's rates (rules 1-3 can only
    estimate); the re-pricing rule computes its saving."""

    high_cost_model_usd: Decimal = Decimal(100)  # rule 1: model spend above this...
    low_usage_requests: int = 100  # ...with fewer requests than this
    model_switch_saving_rate: Decimal = Decimal("0.30")
    provider_dominance_ratio: Decimal = Decimal(2)  # rule 2: top provider > 2 × the second
    provider_switch_saving_rate: Decimal = Decimal("0.15")
    feature_share_percent: Decimal = Decimal(50)  # rule 3: a feature above 50 % of spend
    usage_reduction_saving_rate: Decimal = Decimal("0.20")
    high_impact_usd: Decimal = Decimal(100)  # re-pricing: monthly saving for "high"
    medium_impact_usd: Decimal = Decimal(10)  # ... and for "medium"
    limit: int = 10  # like the seed, the top recommendations by saving


DEFAULT_SETTINGS = RecommendationSettings()


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN)


def _recommendation(
    ident: str,
    kind: str,
    title: str,
    description: str,
    saving: Decimal,
    base: Decimal,
    impact: str,
    effort: str,
    current: dict[str, Any],
    recommended: dict[str, Any],
    assumptions: list[str],
    risks: list[str],
) -> dict[str, Any]:
    """One recommendation with the fields of the seed's CostOptimizationRecommendation."""
    percentage = (saving * HUNDRED / base).quantize(CENT_PERCENT) if base > 0 else Decimal("0.00")
    return {
        "id": ident,
        "type": kind,
        "title": title,
        "description": description,
        "potential_savings": {
            "amount": _money(saving),
            "percentage": percentage,
            "timeframe": "monthly",
        },
        "impact": impact,
        "effort": effort,
        "details": {
            "current_setup": current,
            "recommended_setup": recommended,
            "assumptions": assumptions,
            "risks": risks,
        },
    }


def cost_recommendations(
    *,
    today: date | None = None,
    settings: RecommendationSettings = DEFAULT_SETTINGS,
    environment: str | None = None,
    known: SpendingBreakdown | None = None,
) -> list[dict[str, Any]]:
    """Recommendations for the last 30 days (today included) of usage in one
    ``environment`` or all (None or ""), largest saving first. ``known``: a breakdown the
    caller already has of the same environment; used when it covers exactly those 30
    days (the spending page's default range), so the page does not compute it twice."""
    environment = checked_environment(environment)
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=WINDOW_DAYS - 1)
    if known is not None and (known.period_start, known.period_end) == (first, today):
        breakdown = known
    else:
        breakdown = spending_breakdown(first, today, environment=environment, with_chart=False)
    found = [
        *_cheaper_model_rule(breakdown, settings),
        *_high_cost_low_usage_rule(breakdown, settings),
        *_dominant_provider_rule(breakdown, settings),
        *_dominant_feature_rule(breakdown, settings),
    ]
    found.sort(key=lambda r: (-r["potential_savings"]["amount"], r["id"]))
    return found[: settings.limit]


def _high_cost_low_usage_rule(breakdown: Any, s: RecommendationSettings) -> list[dict]:
    found = []
    for model in breakdown.by_model:
        if model.model_id is None:
            continue
        if model.amount > s.high_cost_model_usd and model.request_count < s.low_usage_requests:
            found.append(
                _recommendation(
                    f"model-optimization-{model.model_id}",
                    "model_switch",
                    f"Consider switching from {model.model_name}",
                    f"{model.model_name} cost {usd(model.amount)} in the last 30 days for only "
                    f"{model.request_count} requests. Consider a more cost-effective alternative.",
                    model.amount * s.model_switch_saving_rate,
                    model.amount,
                    "medium",
                    "moderate",
                    {
                        "model": model.model_name,
                        "provider": model.provider_name,
                        "monthly_cost": model.amount,
                        "requests": model.request_count,
                    },
                    {
                        "action": "Evaluate cheaper alternatives",
                        "considerations": ["Performance requirements", "Feature compatibility"],
                    },
                    [
                        f"Saving estimated at {s.model_switch_saving_rate * 100:.0f} %",
                        "Usage patterns remain consistent",
                    ],
                    ["Potential performance degradation", "Integration effort required"],
                )
            )
    return found


def _dominant_provider_rule(breakdown: Any, s: RecommendationSettings) -> list[dict]:
    providers = [p for p in breakdown.by_provider if p.provider_id is not None]
    if len(providers) < 2:
        return []
    top, second = providers[0], providers[1]
    if top.amount <= second.amount * s.provider_dominance_ratio:
        return []
    return [
        _recommendation(
            f"provider-optimization-{top.provider_id}",
            "provider_switch",
            f"{top.provider_name} accounts for {top.percentage} % of costs",
            f"Consider diversifying providers or negotiating better rates with "
            f"{top.provider_name}.",
            top.amount * s.provider_switch_saving_rate,
            top.amount,
            "high",
            "complex",
            {
                "provider": top.provider_name,
                "monthly_cost": top.amount,
                "percentage": top.percentage,
            },
            {
                "action": "Evaluate alternative providers or negotiate rates",
                "considerations": ["Service quality", "Feature compatibility", "Migration effort"],
            },
            [
                f"Saving estimated at {s.provider_switch_saving_rate * 100:.0f} %",
                "Alternative providers offer similar quality",
            ],
            ["Service disruption during migration", "Different API interfaces"],
        )
    ]


def _dominant_feature_rule(breakdown: Any, s: RecommendationSettings) -> list[dict]:
    found = []
    for feature in breakdown.by_feature:
        if feature.feature_id is None or feature.percentage <= s.feature_share_percent:
            continue
        found.append(
            _recommendation(
                f"feature-optimization-{feature.feature_id}",
                "usage_reduction",
                f"{feature.feature_name} represents {feature.percentage} % of total costs",
                f"Consider optimizing {feature.feature_name} usage patterns or implementing "
                f"request filtering.",
                feature.amount * s.usage_reduction_saving_rate,
                feature.amount,
                "high",
                "moderate",
                {
                    "feature": feature.feature_name,
                    "monthly_cost": feature.amount,
                    "percentage": feature.percentage,
                },
                {
                    "action": "Implement usage optimization strategies",
                    "considerations": ["Request filtering", "Caching", "Batch processing"],
                },
                [f"Saving estimated at {s.usage_reduction_saving_rate * 100:.0f} %"],
                ["User experience impact", "Development effort required"],
            )
        )
    return found


def repriced_cost(model: AIModel, input_tokens: int, output_tokens: int, requests: int) -> Decimal:
    """What the same usage would have cost on ``model``: tokens at its per-million prices,
    plus its per-request price, plus its per-image price once per request."""
    return _money(
        model_price_of(model, input_tokens, output_tokens, requests=requests, images=requests)
    )


@dataclass(frozen=True)
class Alternative:
    """A model that could serve some usage, and what that usage would cost on it."""

    cost: Decimal
    model: AIModel
    provider: Provider


def catalog_models() -> dict[uuid.UUID, tuple[AIModel, Provider]]:
    """Every model of the catalog with its provider, by id (one query)."""
    rows = db.session.execute(
        select(AIModel, Provider).join(Provider, Provider.id == AIModel.provider_id)
    ).all()
    return {model.id: (model, provider) for model, provider in rows}


def cheapest_alternatives(
    models: Iterable[tuple[AIModel, Provider]],
    model_type: str,
    input_tokens: int,
    output_tokens: int,
    requests: int,
    *,
    below: Decimal | None = None,
) -> list[Alternative]:
    """The *available* models of ``model_type`` from *active* providers that would serve
    this usage for less than ``below`` (any cost when None), cheapest first (ties by
    display name). The re-pricing rule and a soft budget's default model to degrade to
    (webapp.services.spending.enforcement) both pick the first."""
    found = []
    for model, provider in models:
        if model.model_type != model_type or model.status != "available":
            continue
        if provider.status != "active":
            continue
        cost = repriced_cost(model, input_tokens, output_tokens, requests)
        if below is None or cost < below:
            found.append(Alternative(cost, model, provider))
    found.sort(key=lambda a: (a.cost, a.model.display_name))
    return found


def _cheaper_model_rule(breakdown: SpendingBreakdown, s: RecommendationSettings) -> list[dict]:
    grouped = breakdown.by_feature_and_model
    models = catalog_models()
    features = dict(db.session.execute(select(Feature.id, Feature.display_name)).all())

    # Per (feature, model type): the usage to re-price and what it really cost.
    usage: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
    for (feature_id, model_id), sums in grouped.items():
        if feature_id not in features or model_id not in models:
            continue
        model = models[model_id][0]
        entry = usage.setdefault(
            (feature_id, model.model_type),
            {"cost": ZERO_COST, "input": 0, "output": 0, "requests": 0, "models": {}},
        )
        entry["cost"] += sums.cost
        entry["input"] += sums.input_tokens
        entry["output"] += sums.output_tokens
        entry["requests"] += sums.requests
        entry["models"][model_id] = entry["models"].get(model_id, 0) + sums.requests

    found = []
    for (feature_id, model_type), entry in sorted(usage.items(), key=lambda kv: str(kv[0])):
        candidates = cheapest_alternatives(
            models.values(),
            model_type,
            entry["input"],
            entry["output"],
            entry["requests"],
            below=entry["cost"],
        )
        if not candidates:
            continue
        best_cost, best = candidates[0].cost, candidates[0].model
        best_provider = candidates[0].provider.display_name
        if set(entry["models"]) == {best.id}:
            continue  # already served by the cheapest; its recorded costs differ only by rounding
        saving = entry["cost"] - best_cost
        current_names = ", ".join(sorted(models[m][0].display_name for m in entry["models"]))
        feature_name = features[feature_id]
        switching_provider = any(
            models[m][0].provider_id != best.provider_id for m in entry["models"]
        )
        found.append(
            _recommendation(
                f"model-switch-{feature_id}-{model_type}",
                "model_switch",
                f"Serve {feature_name} with {best.display_name}",
                f"{feature_name}'s last 30 days ({entry['requests']:,} requests on "
                f"{current_names}) cost {usd(entry['cost'])}; the same tokens on "
                f"{best.display_name} ({best_provider}) would have cost {usd(best_cost)}.",
                saving,
                entry["cost"],
                "high"
                if saving >= s.high_impact_usd
                else "medium"
                if saving >= s.medium_impact_usd
                else "low",
                "moderate" if switching_provider else "easy",
                {
                    "feature_id": feature_id,
                    "feature": feature_name,
                    "model_type": model_type,
                    "models": current_names,
                    "monthly_cost": entry["cost"],
                    "requests": entry["requests"],
                    "input_tokens": entry["input"],
                    "output_tokens": entry["output"],
                },
                {
                    "model_id": best.id,
                    "model": best.display_name,
                    "provider": best_provider,
                    "monthly_cost": best_cost,
                    "alternatives": [
                        {
                            "model_id": a.model.id,
                            "model": a.model.display_name,
                            "provider": a.provider.display_name,
                            "monthly_cost": a.cost,
                        }
                        for a in candidates
                    ],
                },
                [
                    "The last 30 days' tokens and requests repeat next month",
                    "Models priced per image get one image per request",
                    f"Only available models of type {model_type} from active providers",
                ],
                ["Quality or latency may differ: try it in an experiment first"],
            )
        )
    return found
