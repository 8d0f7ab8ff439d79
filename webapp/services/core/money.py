"""Money: exact arithmetic, and the text people read.

Amounts are Decimals, stored and computed to the micro-dollar (``cost_usd`` columns are
NUMERIC(…, 6)); rounding is half-even, as the database's. Only text meant for reading is
rounded half up, as people expect ($8.625 shows as $8.63)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

MICRO_DOLLAR = Decimal("0.000001")
ZERO_COST = Decimal("0.000000")


def to_micro_dollars(amount: Decimal) -> Decimal:
    """``amount`` rounded half-even to the micro-dollar."""
    return amount.quantize(MICRO_DOLLAR, rounding=ROUND_HALF_EVEN)


def usd(value: Decimal | None, places: int = 2) -> str:
    """$1,234.57; an em dash for no value."""
    if value is None:
        return "—"
    return f"${value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,}"
