"""Cost of one request from a model's structured prices (exact Decimal arithmetic)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from webapp.models import AIModel

MICRO_DOLLAR = Decimal("0.000001")
ONE_MILLION = Decimal(1_000_000)


def request_cost(model: AIModel, input_tokens: int, output_tokens: int, images: int = 0) -> Decimal:
    """Input tokens × input price + output tokens × output price (per 1M tokens), plus the
    per-request and per-image prices when the model has them; rounded half-even to the
    micro-dollar, as the ``cost_usd`` column stores it."""
    cost = (
        Decimal(input_tokens) * model.input_price_per_million
        + Decimal(output_tokens) * model.output_price_per_million
    ) / ONE_MILLION
    if model.price_per_request is not None:
        cost += model.price_per_request
    if model.price_per_image is not None:
        cost += model.price_per_image * images
    return cost.quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN)
