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


def test_changed_fields_keeps_only_what_changed_as_json_values():
    old = {"status": "active", "budget": Decimal("1.50"), "name": "same"}
    new = {"status": "inactive", "budget": Decimal("2.00"), "name": "same"}
    assert changed_fields(old, new) == (
        {"status": "active", "budget": "1.50"},
        {"status": "inactive", "budget": "2.00"},
    )
