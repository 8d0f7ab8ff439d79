"""Jinja filters for figures and dates, so that every page writes a count, a latency,
a share, an amount or a timestamp the same way. A missing value (None) reads "—"
everywhere, never 0 or 100 %: a window without requests has no error rate.

Services hand over figures already rounded where the rounding is a rule (shares that add
up to 100.00, p95 to the millisecond); these filters only lay them out."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from flask import Flask

from webapp.services.core.money import usd
from webapp.views.messages import field_sentence, label_of

NONE = "—"


def number(value: int | float | Decimal | None, places: int | None = None) -> str:
    """1,234 (thousands separators); with ``places``, that many decimals: 1,234.500."""
    if value is None:
        return NONE
    return f"{value:,}" if places is None else f"{value:,.{places}f}"


def cost(value: Decimal | None, places: int = 4) -> str:
    """One request's cost in a table: ``places`` decimals (the header says so), and a
    cost too small for them reads "< $0.0001", never "$0.0000" beside a real charge."""
    if value is not None and 0 < value < Decimal(1).scaleb(-places):
        return f"< {usd(Decimal(1).scaleb(-places), places)}"
    return usd(value, places)


def ms(value: int | float | Decimal | None) -> str:
    """A latency in whole milliseconds: 1,250 ms."""
    return NONE if value is None else f"{value:,.0f} ms"


def pct(
    value: int | float | Decimal | None, places: int | None = None, signed: bool = False
) -> str:
    """A percentage as the service rounded it (12.5 %), or with ``places`` decimals;
    ``signed`` writes the sign of a change (+3.0 %, -1.2 %)."""
    if value is None:
        return NONE
    sign = "+" if signed else ""
    text = f"{value:{sign}}" if places is None else f"{value:{sign}.{places}f}"
    return f"{text} %"


def when(value: datetime | None, seconds: bool = False, empty: str = NONE) -> str:
    """A timestamp in UTC to the minute (2026-11-20 12:05), or to the second."""
    if value is None:
        return empty
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def day(value: date | datetime | None, empty: str = NONE) -> str:
    """A calendar day, ISO 8601 (2026-11-20); a timestamp counts for its UTC day."""
    if value is None:
        return empty
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d")


def field_message(problem: str, label: str) -> str:
    """A field's problem as a sentence with its label (webapp.views.messages)."""
    return field_sentence(label, problem)


FILTERS = {
    "number": number,
    "ms": ms,
    "pct": pct,
    "money": usd,
    "cost": cost,
    "when": when,
    "day": day,
    "field_message": field_message,
    "field_label": label_of,
}


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(FILTERS)
