"""Provider credentials at rest: the API key and extra headers a provider's API needs,
encrypted with ``cryptography``'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under
``CREDENTIALS_KEY``.

``CREDENTIALS_KEY`` may list several keys separated by commas (MultiFernet): the first
encrypts, every one decrypts. Rotating a key: put the new key first, keep the old one
after it, run ``flask credentials rotate`` (every stored token is re-encrypted with the
new key), then drop the old key.

The clear values exist only inside the call that needs them (a playground run); what is
stored, audited and shown is the ciphertext, ``credentials_set`` and the key's last 4
characters. A token that no listed key opens fails with ``CredentialsUnreadable``, which
names the provider and the fix, never the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from flask import current_app
from sqlalchemy import select

from webapp.config import ConfigError, check_credentials_keys
from webapp.extensions import db
from webapp.models import Provider
from webapp.services.audit.records import add_audit_row
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict

HINT_LENGTH = 4


class CredentialsUnreadable(Conflict):
    """Stored credentials that ``CREDENTIALS_KEY`` cannot decrypt (a changed key)."""


@dataclass(frozen=True, repr=False)
class ProviderCredentials:
    """The clear values, for the one call that needs them (``repr`` never shows them)."""

    api_key: str
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<ProviderCredentials ending …{hint_of(self.api_key)}>"


def hint_of(api_key: str) -> str:
    """The last 4 characters (fewer when the key is shorter than 8: then none)."""
    return api_key[-HINT_LENGTH:] if len(api_key) >= 2 * HINT_LENGTH else ""


def _box() -> MultiFernet:
    value = current_app.config.get("CREDENTIALS_KEY")
    if not value:
        raise ConfigError("CREDENTIALS_KEY is not set: provider credentials cannot be used.")
    return MultiFernet([Fernet(key) for key in check_credentials_keys(str(value))])


def seal(credentials: ProviderCredentials) -> str:
    """The Fernet token stored for ``credentials``."""
    payload = json.dumps(
        {"api_key": credentials.api_key, "headers": credentials.headers}, separators=(",", ":")
    )
    return _box().encrypt(payload.encode("utf-8")).decode("ascii")


def unseal(provider: Provider) -> ProviderCredentials | None:
    """The provider's credentials in clear, None when none are set."""
    token = provider.credentials_ciphertext
    if not token:
        return None
    try:
        payload: dict[str, Any] = json.loads(_box().decrypt(token.encode("ascii")))
    except (InvalidToken, ValueError):
        raise CredentialsUnreadable(_unreadable(provider.display_name)) from None
    return ProviderCredentials(str(payload["api_key"]), dict(payload.get("headers") or {}))


def _unreadable(name: str) -> str:
    return (
        f"The stored credentials of {name} cannot be decrypted with CREDENTIALS_KEY: the key "
        "was changed without keeping the old one. List the old key after the new one "
        "(comma-separated) and run `flask credentials rotate`, or set the API key again."
    )


def apply_credentials(provider: Provider, credentials: ProviderCredentials | None) -> str | None:
    """Set (or clear, with None) the provider's stored credentials; the audit action
    (``provider.credentials_set`` / ``_replace`` / ``_clear``) or None when nothing
    changes (clearing credentials that are not set)."""
    had = provider.credentials_ciphertext is not None
    if credentials is None:
        if not had:
            return None
        provider.credentials_ciphertext = None
        provider.credentials_hint = None
        return "provider.credentials_clear"
    provider.credentials_ciphertext = seal(credentials)
    provider.credentials_hint = hint_of(credentials.api_key) or None
    return "provider.credentials_replace" if had else "provider.credentials_set"


def credentials_audit_values(
    provider: Provider, credentials: ProviderCredentials | None
) -> dict[str, Any]:
    """What the audit row keeps of a change: whether set, the hint, the header names."""
    return {
        "credentials_set": credentials is not None,
        "credentials_hint": provider.credentials_hint,
        "header_names": sorted(credentials.headers) if credentials else [],
    }


def rotate_credentials(actor: Actor) -> int:
    """Re-encrypt every stored token with the first key of ``CREDENTIALS_KEY`` (one
    transaction with its audit row: all or none). CredentialsUnreadable when a token
    opens with no key. Returns how many were re-encrypted."""
    box = _box()
    providers = db.session.scalars(
        select(Provider).where(Provider.credentials_ciphertext.is_not(None)).order_by(Provider.id)
    ).all()
    for provider in providers:
        try:
            rotated = box.rotate(str(provider.credentials_ciphertext).encode("ascii"))
        except InvalidToken:
            db.session.rollback()
            raise CredentialsUnreadable(_unreadable(provider.display_name)) from None
        provider.credentials_ciphertext = rotated.decode("ascii")
    add_audit_row(
        actor,
        "provider.credentials_rotate",
        "provider",
        new_values={
            "re_encrypted": len(providers),
            "keys": len(check_credentials_keys(str(current_app.config["CREDENTIALS_KEY"]))),
        },
    )
    db.session.commit()
    return len(providers)
