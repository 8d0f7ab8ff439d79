"""Showing money to people. Stored and computed amounts stay exact Decimals; only text
meant for reading is rounded, half up as people expect ($8.625 shows as $8.63)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def usd(value: Decimal | None, places: int = 2) -> str:
    """$1,234.57; an em dash for no value."""
    if value is None:
        return "—"
    return f"${value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP):,}"
