"""A value a page POST must show once on the page it redirects to (post/redirect/get):
a generated password. It rides in the session cookie encrypted (Fernet, key derived from
SECRET_KEY), so the cookie does not reveal it, and the next page takes it out: a reload
shows it no more, and a reload cannot repeat the POST that made it."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, session

SESSION_KEY = "one_time"
MAX_AGE_SECONDS = 300  # a handover older than this was never shown: it is dropped


def _fernet() -> Fernet:
    digest = hashlib.sha256(
        b"aipm one-time handover v1\0" + current_app.config["SECRET_KEY"].encode()
    )
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def hand_over(purpose: str, value: dict[str, Any]) -> None:
    """Keep ``value`` (JSON) for the next page of this session that takes ``purpose``."""
    payload = json.dumps({"purpose": purpose, "value": value}).encode()
    session[SESSION_KEY] = _fernet().encrypt(payload).decode()


def take(purpose: str) -> dict[str, Any] | None:
    """The value handed over for ``purpose``, once; None when there is none, it is for
    another page, or it is too old."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        return None
    try:
        found = json.loads(_fernet().decrypt(token.encode(), ttl=MAX_AGE_SECONDS))
    except (InvalidToken, ValueError):
        session.pop(SESSION_KEY, None)
        return None
    if not isinstance(found, dict) or found.get("purpose") != purpose:
        return None
    session.pop(SESSION_KEY, None)
    value = found.get("value")
    return value if isinstance(value, dict) else None
