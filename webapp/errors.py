"""One place that turns errors into answers: JSON envelopes under /api/, pages elsewhere.
Users see a short message; details go to the log."""

from __future__ import annotations

import time
from datetime import timedelta

from flask import Flask, Response, current_app, render_template, request
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from webapp.api.envelope import error_response
from webapp.auth import actor_from_request, is_api_request, is_application_api_path
from webapp.extensions import db, limiter, login_manager
from webapp.login_throttle import LoginThrottled
from webapp.services.core.errors import Conflict, DomainError, NotFound, ValidationFailed
from webapp.services.identity import users
from webapp.views.messages import said

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    429: "Too many requests",
    500: "Something went wrong",
}

MESSAGES = {
    403: "Your role does not allow this action. Ask a platform admin if you need it.",
    404: "There is nothing at this address. It may have been deleted, or the link is wrong.",
    405: "This address does not accept that kind of request.",
    500: "The error has been logged. Try again; if it keeps happening, tell the platform team.",
}


def _page(status: int, message: str) -> tuple[str, int]:
    title = TITLES.get(status, "Error")
    message = message[:1].upper() + message[1:]  # a sentence, whatever it starts with
    return render_template("errors/error.html", status=status, title=title, message=message), status


def repeat_window() -> timedelta:
    return timedelta(minutes=current_app.config["AUDIT_REPEAT_WINDOW_MINUTES"])


def record_refusal() -> None:
    """Audit a 403 in its own transaction (whatever the request did is rolled back)."""
    db.session.rollback()
    users.record_refusal(actor_from_request(), request.method, request.path, repeat_window())


def too_many_requests(retry_in: int) -> Response:
    """429 with Retry-After and a page (or envelope) that says when to retry."""
    minutes = -(-retry_in // 60)
    message = (
        f"Too many sign-in attempts for this account or address. Try again in {minutes} minute"
        f"{'s' if minutes != 1 else ''}."
    )
    if is_api_request():
        response = error_response(429, "Too many requests", message)
    else:
        body, _ = _page(429, message)
        response = Response(body, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(retry_in)
    return response


def handle_rate_limit(error: RateLimitExceeded) -> Response:
    """A Flask-Limiter limit (changing one's password)."""
    db.session.rollback()
    limit = limiter.current_limit
    return too_many_requests(max(1, int(limit.reset_at - time.time())) if limit else 60)


def handle_login_throttled(error: LoginThrottled) -> Response:
    """A sign-in over its limits: audited once per address and window, with a count."""
    db.session.rollback()
    users.record_throttled_login(actor_from_request(), error.email, repeat_window())
    return too_many_requests(error.retry_after)


def handle_http_error(error: HTTPException) -> Response | tuple[str, int]:
    status = error.code or 500
    if is_application_api_path():  # API keys only: the session is never read here
        details = MESSAGES.get(status) if status in (403, 404, 405) else error.description
        return error_response(status, TITLES.get(status, error.name), details)
    if status == 405 and not current_user.is_authenticated:
        # Routing answers 405 before the guard runs: don't tell anonymous callers which
        # addresses exist; send them to sign in like any other protected request.
        return login_manager.unauthorized()
    if status == 403 and current_user.is_authenticated:
        record_refusal()
    if is_api_request():
        details = MESSAGES.get(status) if status in (403, 404, 405) else error.description
        return error_response(status, TITLES.get(status, error.name), details)
    return _page(status, MESSAGES.get(status, error.description or ""))


def handle_csrf_error(error: CSRFError) -> Response | tuple[str, int]:
    message = "The form's security token is missing or expired. Reload the page and try again."
    if is_api_request():
        return error_response(400, "CSRF token missing or invalid", error.description)
    return _page(400, message)


def handle_domain_error(error: DomainError) -> Response | tuple[str, int]:
    db.session.rollback()
    fields = None
    if isinstance(error, ValidationFailed):
        fields = error.errors
    elif isinstance(error, Conflict) and error.field:
        fields = {error.field: error.message}
    if is_api_request():
        title = {NotFound: "Not found", Conflict: "Conflict"}.get(type(error), "Validation failed")
        extra = error.data if isinstance(error, Conflict) else None
        return error_response(error.status_code, title, str(error), fields, extra=extra)
    # A page speaks the fields' labels in words; the JSON answer above keeps the names.
    return _page(error.status_code, said(error))


def handle_unexpected_error(error: Exception) -> Response | tuple[str, int]:
    if isinstance(error, HTTPException):
        return handle_http_error(error)
    db.session.rollback()
    current_app.logger.exception("Unhandled error: %s", error)
    if is_api_request():
        return error_response(500, "Internal server error")
    return _page(500, MESSAGES[500])


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, handle_csrf_error)
    app.register_error_handler(RateLimitExceeded, handle_rate_limit)
    app.register_error_handler(LoginThrottled, handle_login_throttled)
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(InternalServerError, handle_unexpected_error)
    app.register_error_handler(Exception, handle_unexpected_error)
