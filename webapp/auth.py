"""Who may do what: every request needs a signed-in user unless its view is marked
``public``; every write (non-GET/HEAD/OPTIONS) needs the ``platform_admin`` role unless its
view is marked ``any_role_may_post`` (sign-out). Default-deny: a new route is protected
without anyone remembering to decorate it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, redirect, request, url_for
from flask_login import current_user

from webapp.extensions import db, login_manager
from webapp.models import User
from webapp.services.audit import Actor

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_ENDPOINTS = frozenset({"static"})

View = TypeVar("View", bound=Callable[..., Any])


def public(view: View) -> View:
    """Reachable without signing in (the login page)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def any_role_may_post(view: View) -> View:
    """A write every signed-in user may make (signing out)."""
    view.any_role_may_post = True  # type: ignore[attr-defined]
    return view


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def is_htmx_request() -> bool:
    return request.headers.get("HX-Request") == "true"


def view_for_request() -> Callable[..., Any] | None:
    if request.endpoint is None:
        return None
    return current_app.view_functions.get(request.endpoint)


def guard_request() -> Response | None:
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None  # unknown URL: the 404 handler answers, revealing nothing
    view = view_for_request()
    if getattr(view, "is_public", False):
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if (
        request.method not in SAFE_METHODS
        and not current_user.is_admin
        and not getattr(view, "any_role_may_post", False)
    ):
        abort(403)
    return None


def load_user(user_id: str) -> User | None:
    try:
        user = db.session.get(User, uuid.UUID(user_id))
    except ValueError:
        return None
    # A deactivated user is signed out on their next request.
    return user if user is not None and user.is_active_user else None


def answer_unauthorized() -> Response:
    from webapp.api.envelope import error_response

    if is_api_request():
        return error_response(401, "Authentication required", "Sign in to use the API.")
    next_path = request.full_path.rstrip("?") if request.method == "GET" else None
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


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(load_user)
    login_manager.unauthorized_handler(answer_unauthorized)
    login_manager.session_protection = "strong"
    app.before_request(guard_request)
