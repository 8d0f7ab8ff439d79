"""What requests cost, from a model's structured prices (exact Decimal arithmetic).

One formula serves the recorded cost of a request, a prompt's estimated input cost and the
re-pricing recommendation: tokens × price per 1M tokens, plus the per-request and
per-image prices when the model has them.
"""

from __future__ import annotations

from decimal import Decimal

from webapp.models import AIModel
from webapp.services.core.money import to_micro_dollars

ONE_MILLION = Decimal(1_000_000)


def price_of(
    input_tokens: int,
    output_tokens: int,
    input_price_per_million: Decimal,
    output_price_per_million: Decimal,
    *,
    price_per_request: Decimal | None = None,
    price_per_image: Decimal | None = None,
    requests: int = 1,
    images: int = 0,
) -> Decimal:
    """The exact (unrounded) cost of ``requests`` requests with these token and image
    totals."""
    cost = (
        Decimal(input_tokens) * input_price_per_million
        + Decimal(output_tokens) * output_price_per_million
    ) / ONE_MILLION
    if price_per_request is not None:
        cost += price_per_request * requests
    if price_per_image is not None:
        cost += price_per_image * images
    return cost


def model_price_of(
    model: AIModel, input_tokens: int, output_tokens: int, *, requests: int = 1, images: int = 0
) -> Decimal:
    """``price_of`` at ``model``'s prices (unrounded)."""
    return price_of(
        input_tokens,
        output_tokens,
        model.input_price_per_million,
        model.output_price_per_million,
        price_per_request=model.price_per_request,
        price_per_image=model.price_per_image,
        requests=requests,
        images=images,
    )


def request_cost(model: AIModel, input_tokens: int, output_tokens: int, images: int = 0) -> Decimal:
    """One request's cost rounded half-even to the micro-dollar, as ``cost_usd`` stores it."""
    return to_micro_dollars(model_price_of(model, input_tokens, output_tokens, images=images))
