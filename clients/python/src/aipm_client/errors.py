"""What the client raises. Every exception is an ``AipmError``."""

from __future__ import annotations

from datetime import datetime
from typing import Any


class AipmError(Exception):
    """Base of every error of this client."""


class ConsoleUnavailable(AipmError):
    """The console did not answer in time, could not be reached, or answered 429/5xx, and
    nothing cached or in the fallback bundle could stand in for the answer."""


class ApiError(AipmError):
    """The console refused the request; ``status``, ``code`` (machine-readable, may be
    None) and ``fields`` (each wrong field and what is wrong) say why."""

    def __init__(
        self,
        message: str,
        status: int,
        code: str | None = None,
        fields: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields = fields or {}
        self.body = body or {}


class Unauthorized(ApiError):
    """401: the API key is missing, unknown, revoked or expired."""


class Forbidden(ApiError):
    """403: the key lacks the scope (``code`` ``insufficient_scope``) or may not use the
    feature (``feature_not_allowed``)."""


class FeatureNotAllowed(Forbidden):
    """403 ``feature_not_allowed``: the key is limited to other features."""


class UnknownFeature(ApiError):
    """404: the console has no feature of that name."""


class InvalidRequest(ApiError):
    """400 (or another 4xx): a field is wrong; ``fields`` names each."""


class BudgetExhausted(ApiError):
    """402 ``budget_exhausted``: a hard budget has no room for the request until
    ``resets_at`` (None when the console did not say)."""

    def __init__(self, message: str, resets_at: datetime | None, body: dict[str, Any]) -> None:
        super().__init__(message, 402, "budget_exhausted", None, body)
        self.resets_at = resets_at


class QueueFull(AipmError):
    """``record`` could not queue the event: ``max_queue`` events are waiting to be sent
    (the console has been unreachable for a while). The event was NOT queued; the caller
    decides (drop it knowingly, retry later, write it elsewhere)."""


class ClientClosed(AipmError):
    """``record`` was called after ``close``."""
