"""Who may do what, and for how long.

- Every request needs a signed-in user unless its view is marked ``public``.
- Every write (non-GET/HEAD/OPTIONS) needs ``platform_admin`` unless its view is marked
  ``any_role_may_post`` (sign-out, changing one's own password).
- Views marked ``admin_only`` (user management) refuse viewers even for reading.
Default-deny: a new route is protected without anyone remembering to decorate it.

Sessions: the signed session cookie names the user, their session version and a random
session token; the token's hash names a server-side record (webapp/services/identity/sessions.py)
holding when the session started, was last used (by the person: background polling does
not count) and last authenticated, and from where. Deleting the record (sign-out, the
sessions page, an admin) ends that session; bumping the version or deleting all records
(password change or reset, deactivation) ends them all, copies of cookies included.
Sessions also end after an idle period and after an absolute lifetime, measured on the
record.

Sessions are not bound to the client's address or user agent (Flask-Login's session
protection is off): addresses change on mobile networks and behind proxies, and a thief
can copy a user agent. Instead each record shows the address and user agent it was last
used from, and the user or an admin can end it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, request, session, url_for
from flask_login import current_user, logout_user
from werkzeug.wrappers import Response as BaseResponse

from webapp.extensions import db, login_manager
from webapp.models import User, UserSession
from webapp.rls import ANONYMOUS, current_database_role, reset_database_role, use_database_role
from webapp.services.core.actor import Actor
from webapp.services.identity import sessions

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


def now_utc() -> datetime:
    return datetime.fromtimestamp(now(), UTC)


# Polling elements (the overview's tiles and alerts) send this header: their requests are
# no sign of a person at the keyboard and must not keep the session alive.
BACKGROUND_HEADER = "X-Background-Poll"


def is_background_request() -> bool:
    return request.headers.get(BACKGROUND_HEADER) == "1"


def session_limits() -> sessions.SessionLimits:
    return sessions.SessionLimits(
        idle=timedelta(minutes=current_app.config["SESSION_IDLE_MINUTES"]),
        absolute=timedelta(hours=current_app.config["SESSION_ABSOLUTE_HOURS"]),
    )


def current_session_record() -> UserSession | None:
    """The server-side record of this request's session (found by load_user)."""
    return g.get("user_session")


def start_session_clock(continues: sessions.SessionTimes | None = None) -> None:
    """Called right after sign-in (login_user): a new session record, its token in the
    cookie. ``continues``: the times of the session this one replaces (password change)."""
    record, token = sessions.start_session(
        current_user._get_current_object(),
        now_utc(),
        request.remote_addr,
        request.headers.get("User-Agent"),
        continues=continues,
    )
    g.user_session = record
    session["session_token"] = token
    session["signed_in_at"] = int(now())
    session.permanent = True


def session_expired() -> bool:
    record = current_session_record()
    return record is None or sessions.is_expired(record, now_utc(), session_limits())


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


def is_application_api_path() -> bool:
    """Under /api/v1/ (the application API): API keys only, the session is never read,
    not even to answer a wrong address or method."""
    return request.path.startswith("/api/v1/")


def is_application_api_view() -> bool:
    """A view of /api/v1/: it authenticates API keys itself and never reads the session."""
    return is_application_api_path() or getattr(view_for_request(), "application_api", False)


def guard_request() -> Response | None:
    use_database_role(ANONYMOUS)
    if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
        return None  # unknown URL: the 404 handler answers, revealing nothing
    view = view_for_request()
    if is_application_api_view() and not getattr(view, "is_public", False):
        return None  # @requires_key answers; a browser session opens nothing here
    if getattr(view, "is_public", False):
        refuse_nul()
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if session_expired():
        record = current_session_record()
        if record is not None:
            sessions.end_expired(record)
        logout_user()
        session.clear()
        return login_manager.unauthorized()
    use_database_role(current_user.role, current_user.id)
    record = current_session_record()  # not expired: load_user found it
    if record is not None and not is_background_request():
        sessions.touch(
            record,
            now_utc(),
            request.remote_addr,
            request.headers.get("User-Agent"),
        )
    if not current_user.is_admin and (
        getattr(view, "admin_only", False)
        or (request.method not in SAFE_METHODS and not getattr(view, "any_role_may_post", False))
    ):
        abort(403)
    refuse_nul()  # only now is the body read: never for anonymous or refused requests
    return None


# Where a user who must replace a generated password may still go.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout"})


def require_password_change() -> BaseResponse | None:
    """A signed-in user whose password the console generated must choose their own
    before anything else: pages redirect to /account/password, htmx gets HX-Redirect,
    the API answers 403 with the code ``password_change_required``."""
    if is_application_api_view():
        return None
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
        return error_response(
            403,
            "Password change required",
            "Choose your own password at /account/password before using the API.",
            code="password_change_required",
        )
    return send_browser_to(url_for("auth.change_password"), htmx_status=403)


def send_browser_to(url: str, *, htmx_status: int, status: int = 302) -> BaseResponse:
    """Send the browser to another page: a redirect, or for htmx an ``HX-Redirect`` (a
    fragment is no place for a whole page such as a sign-in or enrolment form)."""
    if is_htmx_request():
        response = Response(status=htmx_status)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, code=status)


def load_user(session_token: str) -> User | None:
    """The user named by a session token ``<id>.<session version>``, if still valid and
    the session's server-side record still exists."""
    user_id, _, version = session_token.partition(".")
    try:
        uid = uuid.UUID(user_id)
    except ValueError:
        return None
    # The cookie is signed: until the role is known the database may show this user's
    # own rows (their session records) and nobody else's.
    use_database_role(current_database_role() or ANONYMOUS, uid)
    user = db.session.get(User, uid)
    if user is None or not user.is_active_user or str(user.session_version) != version:
        return None  # deactivated, or password changed
    record = sessions.find_session(uid, session.get("session_token", ""))
    if record is None:
        return None  # signed out, ended on the sessions page or by an admin
    g.user_session = record
    return user


def answer_unauthorized() -> BaseResponse:
    from webapp.api.envelope import error_response

    if is_api_request():
        return error_response(401, "Authentication required", "Sign in to use the API.")
    next_path = page_to_return_to()
    # Never swap a login form into a fragment: htmx is told to load the login page.
    return send_browser_to(url_for("auth.login", next=next_path), htmx_status=401)


def page_to_return_to(*, use_referrer: bool = False) -> str | None:
    """Where to come back to after signing in (or confirming one's password): this page
    for a GET; for a fragment (a tile refreshing itself) the page the browser shows; for a
    form post, with ``use_referrer``, the page the form was on."""
    next_path = request.full_path.rstrip("?") if request.method == "GET" else None
    shown = request.headers.get("HX-Current-URL") if is_htmx_request() else None
    if shown is None and use_referrer and request.method != "GET":
        shown = request.referrer
    if shown:
        current = urlsplit(shown)
        page = current.path + (f"?{current.query}" if current.query else "")
        next_path = safe_next_url(page) if current.netloc in ("", request.host) else None
    return next_path


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
    # Off: Flask-Login's "strong" mode does nothing for permanent sessions, and binding a
    # session to address or user agent is not worth its false sign-outs (see the module
    # docstring). Sessions are server-side records the user and admins can end instead.
    login_manager.session_protection = None
    app.before_request(guard_request)
    app.before_request(require_password_change)
    from webapp.mfa_gate import require_mfa_enrolment

    app.before_request(require_mfa_enrolment)
    app.teardown_request(end_request_role)
