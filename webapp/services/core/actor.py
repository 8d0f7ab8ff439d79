"""The actor of every use case."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """Who acts, and from where: passed explicitly from the view or CLI to each service."""

    user_id: uuid.UUID | None
    ip_address: str | None = None
    user_agent: str | None = None

    @classmethod
    def cli(cls) -> Actor:
        return cls(user_id=None, ip_address=None, user_agent="flask-cli")
