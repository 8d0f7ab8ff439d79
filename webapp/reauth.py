"""Re-authentication before sensitive actions: the session must have proved who its user
is (a sign-in, or the re-authentication form: password, and the second factor when
enrolled) within the last REAUTH_MINUTES.

Use ``@requires_reauthentication`` on a view, or ``reauthentication_needed()`` when only
some submissions are sensitive (a provider's health-check URL only when it changes). The
admin API answers 401 with ``"code": "reauthentication_required"``; pages are sent to the
form, which returns to the page the action was started from; htmx gets HX-Redirect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from flask import current_app, url_for
from werkzeug.wrappers import Response as BaseResponse

from webapp.auth import (
    current_session_record,
    is_api_request,
    now_utc,
    page_to_return_to,
    send_browser_to,
)

REAUTHENTICATION_REQUIRED = "reauthentication_required"

View = TypeVar("View", bound=Callable[..., Any])


def recently_authenticated() -> bool:
    record = current_session_record()
    if record is None:
        return False
    window = timedelta(minutes=current_app.config["REAUTH_MINUTES"])
    return now_utc() - record.authenticated_at <= window


def reauthentication_response() -> BaseResponse:
    if is_api_request():
        from webapp.api.envelope import error_response

        return error_response(
            401,
            "Re-authentication required",
            "Confirm your password (and second factor) at /account/reauthenticate, then "
            "repeat the request.",
            code=REAUTHENTICATION_REQUIRED,
        )
    url = url_for("account.reauthenticate", next=page_to_return_to(use_referrer=True))
    return send_browser_to(url, htmx_status=401, status=303)


def reauthentication_needed() -> BaseResponse | None:
    """The answer to give instead of acting, or None when the session is fresh enough."""
    return None if recently_authenticated() else reauthentication_response()


def requires_reauthentication(view: View) -> View:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return reauthentication_needed() or view(*args, **kwargs)

    wrapper.requires_reauthentication = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def health_check_url_changes(current: dict[str, Any] | None, fields: dict[str, Any]) -> bool:
    """Whether saving ``fields`` would set a different health-check URL than ``current``."""
    check = fields.get("health_check")
    if not isinstance(check, dict) or "url" not in check:
        return False
    new_url = check.get("url") or None
    return new_url is not None and new_url != ((current or {}).get("url") or None)
