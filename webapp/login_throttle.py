"""Sign-in throttling that strangers cannot turn into a lock-out (OWASP "device cookies").

Every attempt is counted when it arrives, before any password is hashed, with one atomic
hit on Flask-Limiter's storage (moving window), so parallel requests cannot slip past a
limit. An attempt is charged to:

- its client address (``LOGIN_FAILURES_PER_ADDRESS``): bounds spraying many accounts;
- and either the *device* (``LOGIN_FAILURES_PER_DEVICE``) when the browser carries a valid
  device cookie for the account typed — a signed cookie issued at a successful sign-in —
  or else the account's shared budget for untrusted clients (``LOGIN_FAILURES_PER_ACCOUNT``).

Someone hammering an account without its device cookie exhausts only the untrusted
budget: the owner's browser keeps its own. A successful sign-in resets the account or
device counter it was charged to, so signing in never adds up to a lock.

The account typed is read from the same parsed form the sign-in validates (Flask-WTF
reads form-encoded and JSON bodies alike), so no encoding escapes the per-account limit.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from limits import RateLimitItem, parse
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from webapp.extensions import limiter
from webapp.services.core.addresses import client_key
from webapp.services.identity.users import normalize_email

MAX_ACCOUNTS_PER_DEVICE = 5


class LoginThrottled(TooManyRequests):
    """429 for a sign-in attempt over one of its limits."""

    retry_after: int  # seconds (werkzeug's also allows a datetime or None)

    def __init__(self, retry_after: int, email: str) -> None:
        super().__init__("Too many sign-in attempts for this account or address.")
        self.retry_after = retry_after
        self.email = email  # as typed, normalized: audited for admins


@dataclass(frozen=True)
class Attempt:
    """The counters one sign-in attempt was charged to."""

    email: str
    account_limit: RateLimitItem | None = None
    account_key: str | None = None

    def succeeded(self) -> None:
        """The password was right: this attempt and the earlier failures of this account
        (or device) no longer count towards a limit."""
        if self.account_limit is not None and self.account_key is not None:
            limiter.limiter.clear(self.account_limit, self.account_key)


def device_cookie_name() -> str:
    return "__Host-device" if current_app.config["SESSION_COOKIE_SECURE"] else "device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="login-device")


def account_tag(email: str) -> str:
    """Names the account in the cookie without writing its email there."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, email.encode(), hashlib.sha256).hexdigest()[:32]


def _device() -> dict | None:
    """The valid device cookie's content ({"n": nonce, "a": [account tags]}), or None."""
    raw = request.cookies.get(device_cookie_name())
    if not raw:
        return None
    max_age = current_app.config["LOGIN_DEVICE_COOKIE_DAYS"] * 86400
    try:
        content = _serializer().loads(raw, max_age=max_age)
    except BadSignature:  # includes expired
        return None
    if not isinstance(content, dict) or not isinstance(content.get("n"), str):
        return None
    if not isinstance(content.get("a"), list):
        return None
    return content


def _hit(limit_value: str, key: str, email: str) -> RateLimitItem:
    """Count one attempt on ``key``; raise LoginThrottled when over ``limit_value``."""
    item = parse(limit_value)
    if not limiter.limiter.hit(item, key):
        reset_at = limiter.limiter.get_window_stats(item, key).reset_time
        raise LoginThrottled(max(1, int(reset_at - time.time())), email)
    return item


def count_attempt(typed_email: object) -> Attempt:
    """Charge this sign-in attempt (before any hashing) or raise LoginThrottled."""
    email = normalize_email(typed_email if isinstance(typed_email, str) else "")
    if not limiter.enabled:
        return Attempt(email)
    config = current_app.config
    address = client_key(request.remote_addr)  # an IPv6 client counts by its /64
    _hit(config["LOGIN_FAILURES_PER_ADDRESS"], f"login-address:{address}", email)
    tag = account_tag(email)
    device = _device()
    if device is not None and tag in device["a"]:
        key = f"login-device:{device['n']}:{tag}"
        item = _hit(config["LOGIN_FAILURES_PER_DEVICE"], key, email)
    else:
        key = f"login-account:{email}"
        item = _hit(config["LOGIN_FAILURES_PER_ACCOUNT"], key, email)
    return Attempt(email, item, key)


def address_key() -> str:
    """Flask-Limiter key for per-address limits: the client address, IPv6 by its /64."""
    return client_key(request.remote_addr)


def count_second_factor_attempt(user_id: object, email: str) -> None:
    """Charge one second-factor code attempt to the account's one budget for codes
    (``LOGIN_FAILURES_PER_ACCOUNT``), wherever it is typed: the sign-in's code step and
    re-authentication share it, so a stolen session cannot add its own budget of guesses
    to the sign-in's. Raises LoginThrottled when over."""
    if limiter.enabled:
        _hit(current_app.config["LOGIN_FAILURES_PER_ACCOUNT"], f"second-factor:{user_id}", email)


def remember_device(response: Response, email: str) -> Response:
    """Issue (or extend) the device cookie for the account just signed in to."""
    device = _device() or {"n": secrets.token_urlsafe(16), "a": []}
    tag = account_tag(normalize_email(email))
    tags = [tag, *(t for t in device["a"] if t != tag)][:MAX_ACCOUNTS_PER_DEVICE]
    config = current_app.config
    response.set_cookie(
        device_cookie_name(),
        _serializer().dumps({"n": device["n"], "a": tags}),
        max_age=config["LOGIN_DEVICE_COOKIE_DAYS"] * 86400,
        path="/",
        secure=config["SESSION_COOKIE_SECURE"],
        httponly=True,
        samesite="Lax",
    )
    return response
