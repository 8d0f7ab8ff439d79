"""Platform admins without a second factor are sent to enrolment (MFA_REQUIRED_FOR_ADMINS).

Password first, then enrolment: while a user must replace a console-generated password
(``must_change_password``), the password gate (webapp/auth.py) sends everything to
/account/password and this gate waits; otherwise the two would redirect each other.
"""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from webapp.auth import (
    PUBLIC_ENDPOINTS,
    is_api_request,
    is_application_api_view,
    send_browser_to,
    view_for_request,
)

# What an admin may still do before enrolling: enrol (after confirming their password when
# the sign-in is no longer recent: enrolling needs re-authentication), and sign out.
ENROLMENT_ENDPOINTS = frozenset(
    {"account.mfa_settings", "account.enable_mfa", "account.reauthenticate", "auth.logout"}
)
MFA_ENROLMENT_REQUIRED = "mfa_enrolment_required"


def mfa_required_for(user) -> bool:
    return bool(current_app.config["MFA_REQUIRED_FOR_ADMINS"]) and user.is_admin


def require_mfa_enrolment() -> BaseResponse | None:
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC_ENDPOINTS or endpoint in ENROLMENT_ENDPOINTS:
        return None
    view = view_for_request()
    if getattr(view, "is_public", False) or is_application_api_view():
        return None  # (API-key views never read the session)
    if not current_user.is_authenticated:
        return None
    if current_user.has_mfa or not mfa_required_for(current_user):
        return None
    if current_user.must_change_password:
        return None  # the password gate answers first: password, then enrolment
    if is_api_request():
        from webapp.api.envelope import error_response

        return error_response(
            403,
            "Two-factor authentication required",
            "Platform admins must set up two-factor authentication at /account/mfa first.",
            code=MFA_ENROLMENT_REQUIRED,
        )
    return send_browser_to(url_for("account.mfa_settings"), htmx_status=403)
