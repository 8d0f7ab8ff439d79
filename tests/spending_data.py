"""A fixed usage dataset with hand-computed spend, shared by the spending tests.

Prices per million tokens: GPT 10 in / 30 out, Mini 1 / 2 (both OpenAI), Claude 3 / 15
(Anthropic); Vision (Anthropic) 0.01 per image. "Today" is 2026-11-20 at noon UTC.

    day    feature  model   status  in / out tokens      cost
    11-18  chatbot  gpt     success 100,000 / 20,000     1.600000
    11-18  search   claude  success 200,000 / 10,000     0.750000
    11-19  chatbot  gpt     error    50,000 / 0          0.500000
    11-19  (none)   (none)  success  cost given          0.100000
    11-20  chatbot  claude  success 100,000 / 100,000    1.800000   (today: raw rows)
    11-20  search   mini    success 1,000,000 / 0        1.000000   (today: raw rows)
                                                 total   5.750000
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from tests import factories
from webapp.extensions import db
from webapp.models import AIModel, Feature, Provider
from webapp.services.usage.recording import record_usage

TODAY = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass
class Dataset:
    chatbot: Feature
    search: Feature
    openai: Provider
    anthropic: Provider
    gpt: AIModel
    mini: AIModel
    claude: AIModel
    vision: AIModel


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 11, day, hour, 0, tzinfo=UTC)


def build_dataset() -> Dataset:
    chatbot = factories.feature("chatbot")
    search = factories.feature("search")
    openai = factories.provider("openai", display_name="OpenAI")
    anthropic = factories.provider("anthropic", display_name="Anthropic")
    gpt = factories.model(
        openai,
        "gpt",
        display_name="GPT",
        input_price_per_million=Decimal(10),
        output_price_per_million=Decimal(30),
    )
    mini = factories.model(
        openai,
        "mini",
        display_name="Mini",
        input_price_per_million=Decimal(1),
        output_price_per_million=Decimal(2),
    )
    claude = factories.model(
        anthropic,
        "claude",
        display_name="Claude",
        input_price_per_million=Decimal(3),
        output_price_per_million=Decimal(15),
    )
    vision = factories.model(
        anthropic,
        "vision",
        display_name="Vision",
        model_type="vision",
        input_price_per_million=Decimal(0),
        output_price_per_million=Decimal(0),
        price_per_image=Decimal("0.01"),
    )
    db.session.commit()
    record_usage(
        [
            event(chatbot, gpt, at(18, 10), 100_000, 20_000),
            event(search, claude, at(18, 11), 200_000, 10_000),
            event(chatbot, gpt, at(19, 9), 50_000, 0, status="error"),
            {"created_at": at(19, 10), "cost_usd": "0.100000", "status": "success"},
            event(chatbot, claude, at(20, 8), 100_000, 100_000),
            event(search, mini, at(20, 9), 1_000_000, 0),
        ]
    )
    return Dataset(chatbot, search, openai, anthropic, gpt, mini, claude, vision)


def event(
    feature: Feature | None,
    model: AIModel | None,
    created_at: datetime,
    input_tokens: int = 0,
    output_tokens: int = 0,
    **fields,
) -> dict:
    return {
        "feature_id": str(feature.id) if feature else None,
        "model_id": str(model.id) if model else None,
        "created_at": created_at,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "response_time_ms": fields.pop("response_time_ms", 400),
        "status": fields.pop("status", "success"),
        **fields,
    }
