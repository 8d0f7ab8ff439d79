"""What requests cost, from a model's structured prices (exact Decimal arithmetic).

One formula serves the recorded cost of a request, a prompt's estimated input cost and the
re-pricing recommendation: tokens × price per 1M tokens, plus the per-request and
per-image prices when the model has them.

Cached input: ``input_tokens`` counts every input token, cached ones included (as the
OpenTelemetry GenAI conventions and OpenAI report them). Tokens read from or written to a
provider's prompt cache are priced at the model's cache read / cache write price, or at
the input price when the model has none; the rest at the input price.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

from webapp.services.core.money import to_micro_dollars

ONE_MILLION = Decimal(1_000_000)


class ModelPrices(Protocol):
    """A model's prices: an ``AIModel``, or ingestion's cached copy of one."""

    @property
    def input_price_per_million(self) -> Decimal: ...
    @property
    def output_price_per_million(self) -> Decimal: ...
    @property
    def price_per_request(self) -> Decimal | None: ...
    @property
    def price_per_image(self) -> Decimal | None: ...
    @property
    def cache_read_price_per_million(self) -> Decimal | None: ...
    @property
    def cache_write_price_per_million(self) -> Decimal | None: ...


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
    model: ModelPrices,
    input_tokens: int,
    output_tokens: int,
    *,
    requests: int = 1,
    images: int = 0,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    """``price_of`` at ``model``'s prices (unrounded). The cached tokens are part of
    ``input_tokens`` and are priced at the cache prices (the input price when unset)."""
    uncached = input_tokens - cache_read_tokens - cache_write_tokens
    cost = price_of(
        uncached,
        output_tokens,
        model.input_price_per_million,
        model.output_price_per_million,
        price_per_request=model.price_per_request,
        price_per_image=model.price_per_image,
        requests=requests,
        images=images,
    )
    read_price = model.cache_read_price_per_million
    write_price = model.cache_write_price_per_million
    cost += (
        Decimal(cache_read_tokens)
        * (read_price if read_price is not None else model.input_price_per_million)
        + Decimal(cache_write_tokens)
        * (write_price if write_price is not None else model.input_price_per_million)
    ) / ONE_MILLION
    return cost


def request_cost(
    model: ModelPrices,
    input_tokens: int,
    output_tokens: int,
    images: int = 0,
    *,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> Decimal:
    """One request's cost rounded half-even to the micro-dollar, as ``cost_usd`` stores it."""
    return to_micro_dollars(
        model_price_of(
            model,
            input_tokens,
            output_tokens,
            images=images,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )
    )
