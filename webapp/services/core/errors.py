"""Domain errors. ``webapp.errors`` maps them to HTTP answers for pages and JSON alike."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status_code = 404


class ValidationFailed(DomainError):
    """Input broke a rule. ``errors`` maps each wrong field to what is wrong with it."""

    status_code = 400

    def __init__(self, errors: dict[str, str], message: str = "Validation failed") -> None:
        super().__init__(message)
        self.errors = errors

    def __str__(self) -> str:
        return "; ".join(f"{field}: {problem}" for field, problem in self.errors.items())


class Conflict(DomainError):
    """The change clashes with existing state (a duplicate name, a resource in use)."""

    status_code = 409

    def __init__(
        self, message: str, field: str | None = None, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        # What the JSON answer carries beside the message, for a client to act on (e.g.
        # the assignments that keep a model in service).
        self.data = data
