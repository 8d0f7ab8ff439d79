"""Small checks shared by the services, safe on any input type (API bodies reach the
services with their types unchecked, so that every wrong field is named at once)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any


def clean_text(
    fields: dict[str, Any],
    key: str,
    errors: dict[str, str],
    *,
    max_length: int,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
    problem: str | None = None,
) -> None:
    """Strip ``fields[key]`` in place, or record in ``errors`` what is wrong with it."""
    value = fields.get(key)
    if value is None or value == "":
        if required:
            errors[key] = "is required"
        fields[key] = None
        return
    if not isinstance(value, str):
        errors[key] = "must be text"
        return
    value = value.strip()
    if required and not value:
        errors[key] = "is required"
    elif len(value) > max_length:
        errors[key] = f"must be at most {max_length} characters"
    elif pattern is not None and not pattern.match(value):
        errors[key] = problem or "is not in the expected form"
    fields[key] = value if value else None


def check_choice(
    fields: dict[str, Any], key: str, choices: tuple[str, ...], errors: dict[str, str]
) -> None:
    if key in fields and (not isinstance(fields[key], str) or fields[key] not in choices):
        errors[key] = f"must be one of {', '.join(choices)}"


def as_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a number or numeric text, else None. A JSON number arrives as
    a float whose shortest repr is the text the client sent ("0.1"): that text becomes the
    Decimal, never the binary float. Booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
