"""Who may do what, and for how long.

- Every request needs a signed-in user unless its view is marked ``public``.
- Every write (non-GET/HEAD/OPTIONS) needs ``platform_admin`` unless its view is marked
  ``any_role_may_post`` (sign-out, changing one's own password).
- Views marked ``admin_only`` (user management) refuse viewers even for reading.
Default-deny: a new route is protected without anyone remembering to decorate it.

Sessions: the session cookie names the user *and* their session version; bumping the
version (sign-out, password change, deactivation) invalidates every earlier cookie, copies
included. Sessions also end after an idle period and after an absolute lifetime.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, redirect, request, session, url_for
from flask_login import current_user, logout_user

from webapp.extensions import db, login_manager
from webapp.models import User
from webapp.rls import ANONYMOUS, reset_database_role, use_database_role
from webapp.services.audit import Actor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"static"})

View = TypeVar("View", bound=Callable[..., Any])


def public(view: View) -> View:
    """Reachable without signing in (the login page)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def any_role_may_post(view: View) -> View:
    """A write every signed-in user may make (signing out, changing own password)."""
    view.any_role_may_post = True  # type: ignore[attr-defined]
    return view


def admin_only(view: View) -> View:
    """Reading is for platform admins too (user management)."""
    view.admin_only = True  # type: ignore[attr-defined]
    return view


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def is_htmx_request() -> bool:
    return request.headers.get("HX-Request") == "true"


def view_for_request() -> Callable[..., Any] | None:
    if request.endpoint is None:
        return None
    return current_app.view_functions.get(request.endpoint)


def now() -> float:
    return time.time()


def start_session_clock() -> None:
    """Called right after sign-in."""
    session["signed_in_at"] = session["seen_at"] = int(now())
    session.permanent = True


def session_expired() -> bool:
    signed_in_at = session.get("signed_in_at")
    seen_at = session.get("seen_at")
    if signed_in_at is None or seen_at is None:
        return True
    moment = now()
    idle_limit = current_app.config["SESSION_IDLE_MINUTES"] * 60
    absolute_limit = current_app.config["SESSION_ABSOLUTE_HOURS"] * 3600
    return moment - seen_at > idle_limit or moment - signed_in_at > absolute_limit


def carries_nul() -> bool:
    """NUL characters have no business in any field (PostgreSQL refuses them in text)."""
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        return True
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return any("\x00" in value for _, value in request.form.items(multi=True))
    if request.is_json:
        raw = request.get_data(cache=True)
        return b"\\u0000" in raw or b"\x00" in raw
    return False


def refuse_nul() -> None:
    if carries_nul():
        abort(400, description="Request fields must not contain NUL characters.")


def guard_request() -> Response | None:
    use_database_role(ANONYMOUS)
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None  # unknown URL: the 404 handler answers, revealing nothing
    view = view_for_request()
    if getattr(view, "is_public", False):
        refuse_nul()
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if session_expired():
        logout_user()
        session.clear()
        return login_manager.unauthorized()
    session["seen_at"] = int(now())
    use_database_role(current_user.role, current_user.id)
    if not current_user.is_admin and (
        getattr(view, "admin_only", False)
        or (request.method not in SAFE_METHODS and not getattr(view, "any_role_may_post", False))
    ):
        abort(403)
    refuse_nul()  # only now is the body read: never for anonymous or refused requests
    return None


# Where a user who must replace a generated password may still go.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout"})


def require_password_change() -> Response | None:
    """A signed-in user whose password the console generated must choose their own
    before anything else: pages redirect to /account/password, htmx gets HX-Redirect,
    the API answers 403 with the code ``password_change_required``."""
    if not current_user.is_authenticated or not current_user.must_change_password:
        return None
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if request.endpoint in PASSWORD_CHANGE_ENDPOINTS or getattr(
        view_for_request(), "is_public", False
    ):
        return None
    from webapp.api.envelope import error_response

    if is_api_request():
        response = error_response(
            403,
            "Password change required",
            "Choose your own password at /account/password before using the API.",
        )
        body = response.get_json()
        body["code"] = "password_change_required"
        response.set_data(json.dumps(body))
        return response
    target = url_for("auth.change_password")
    if is_htmx_request():
        response = Response(status=403)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def load_user(session_token: str) -> User | None:
    """The user named by a session token ``<id>.<session version>``, if still valid."""
    user_id, _, version = session_token.partition(".")
    try:
        user = db.session.get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    if user is None or not user.is_active_user or str(user.session_version) != version:
        return None  # deactivated, signed out elsewhere, or password changed
    return user


def answer_unauthorized() -> Response:
    from webapp.api.envelope import error_response

    if is_api_request():
        return error_response(401, "Authentication required", "Sign in to use the API.")
    next_path = request.full_path.rstrip("?") if request.method == "GET" else None
    if is_htmx_request() and request.headers.get("HX-Current-URL"):
        # A fragment (a tile refreshing itself) is no place to land after signing in:
        # come back to the page the browser shows.
        current = urlsplit(request.headers["HX-Current-URL"])
        page = current.path + (f"?{current.query}" if current.query else "")
        next_path = safe_next_url(page) if current.netloc in ("", request.host) else None
    login_url = url_for("auth.login", next=next_path)
    if is_htmx_request():
        # Never swap a login form into a fragment: tell htmx to load the login page.
        response = Response(status=401)
        response.headers["HX-Redirect"] = login_url
        return response
    return redirect(login_url)


def safe_next_url(target: str | None) -> str | None:
    """``target`` when it is a path on this site, else None (no open redirect)."""
    if not target:
        return None
    target = target.strip()
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def actor_from_request() -> Actor:
    user_id = current_user.id if current_user.is_authenticated else None
    return Actor(
        user_id=user_id,
        ip_address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )


def end_request_role(_error: BaseException | None = None) -> None:
    reset_database_role()


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(answer_unauthorized)
    # Cookie-level protection against stolen cookies on top of the session version.
    login_manager.session_protection = "strong"
    app.before_request(guard_request)
    app.before_request(require_password_change)
    app.teardown_request(end_request_role)
