"""Exact money arithmetic: amounts are Decimals, stored and computed to the micro-dollar
(``cost_usd`` columns are NUMERIC(…, 6)); rounding is half-even, as the database's."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MICRO_DOLLAR = Decimal("0.000001")
ZERO_COST = Decimal("0.000000")


def to_micro_dollars(amount: Decimal) -> Decimal:
    """``amount`` rounded half-even to the micro-dollar."""
    return amount.quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN)
