"""Request pricing and the audit helpers."""

from __future__ import annotations

from decimal import Decimal

from webapp.models import AIModel
from webapp.services.audit.records import changed_fields
from webapp.services.usage.cost import request_cost


def priced(**prices) -> AIModel:
    prices.setdefault("input_price_per_million", Decimal("0"))
    prices.setdefault("output_price_per_million", Decimal("0"))
    return AIModel(**prices)


def test_token_prices_are_per_million_and_exact():
    model = priced(input_price_per_million=Decimal("30"), output_price_per_million=Decimal("60"))
    # 1,234 × $30/1M + 567 × $60/1M = 0.03702 + 0.03402
    assert request_cost(model, 1234, 567) == Decimal("0.071040")


def test_rounding_is_half_even_to_the_micro_dollar():
    model = priced(input_price_per_million=Decimal("0.5"))
    assert request_cost(model, 5, 0) == Decimal("0.000002")  # 0.0000025 -> even
    assert request_cost(model, 7, 0) == Decimal("0.000004")  # 0.0000035 -> even


def test_per_request_and_per_image_prices_are_added():
    model = priced(
        input_price_per_million=Decimal("1"),
        price_per_request=Decimal("0.000100"),
        price_per_image=Decimal("0.0015"),
    )
    assert request_cost(model, 1000, 0, images=2) == Decimal("0.004100")


def test_cached_input_tokens_are_priced_at_the_cache_prices():
    model = priced(
        input_price_per_million=Decimal("3"),
        output_price_per_million=Decimal("15"),
        cache_read_price_per_million=Decimal("0.30"),
        cache_write_price_per_million=Decimal("3.75"),
    )
    # 10,000 input of which 6,000 read from cache and 1,000 written to it:
    # 3,000 × $3 + 6,000 × $0.30 + 1,000 × $3.75 + 500 × $15, per 1M tokens.
    cost = request_cost(model, 10_000, 500, cache_read_tokens=6_000, cache_write_tokens=1_000)
    assert cost == Decimal("0.009000") + Decimal("0.001800") + Decimal("0.003750") + Decimal(
        "0.007500"
    )


def test_cached_tokens_cost_the_input_price_when_the_model_has_no_cache_price():
    model = priced(input_price_per_million=Decimal("2"))
    with_cache = request_cost(model, 1_000, 0, cache_read_tokens=400, cache_write_tokens=100)
    assert with_cache == request_cost(model, 1_000, 0) == Decimal("0.002000")


def test_changed_fields_keeps_only_what_changed_as_json_values():
    old = {"status": "active", "budget": Decimal("1.50"), "name": "same"}
    new = {"status": "inactive", "budget": Decimal("2.00"), "name": "same"}
    assert changed_fields(old, new) == (
        {"status": "active", "budget": "1.50"},
        {"status": "inactive", "budget": "2.00"},
    )
