"""One's own account: sessions, two-factor authentication, re-authentication; and the
second step of signing in when a second factor is enrolled."""

from __future__ import annotations

import uuid

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from webapp import login_throttle
from webapp.auth import (
    actor_from_request,
    any_role_may_post,
    current_session_record,
    now,
    now_utc,
    public,
    safe_next_url,
    session_limits,
    start_session_clock,
)
from webapp.extensions import db, limiter
from webapp.mfa_gate import mfa_required_for
from webapp.models import User
from webapp.reauth import requires_reauthentication
from webapp.rls import ANONYMOUS, use_database_role
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.identity import mfa, sessions
from webapp.services.identity.reauthentication import confirm_identity

bp = Blueprint("account", __name__)

# Between the password and the second factor: the user id and when the password was
# right, in the (signed) session cookie. Five minutes to type the code.
PENDING_KEY = "mfa_pending"
PENDING_SECONDS = 300
PENDING_SECRET_KEY = "mfa_enrolment_secret"
CODE_WRONG = "The code is wrong or was already used."


class CodeForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired(), Length(max=40)])


class ReauthForm(FlaskForm):
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    code = StringField("Code from your authenticator app", validators=[Length(max=40)])


# --- Signing in: the second step ---------------------------------------------------------


def begin_second_factor(user: User, next_url: str | None) -> Response:
    """The password was right and the user has a second factor: ask for it before the
    session starts (nothing but the pending user id is kept)."""
    session.clear()
    session[PENDING_KEY] = {"user": str(user.id), "at": int(now())}
    return redirect(url_for("account.mfa_login", next=next_url))


def _pending_user() -> User | None:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or now() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    try:
        user_id = uuid.UUID(str(pending.get("user")))
    except ValueError:
        return None
    use_database_role(ANONYMOUS, user_id)  # this user's own rows only (RLS)
    user = db.session.get(User, user_id)
    return user if user is not None and user.is_active_user and user.has_mfa else None


@bp.route("/login/mfa", methods=["GET", "POST"])
@public
@limiter.limit(
    lambda: current_app.config["LOGIN_FAILURES_PER_ADDRESS"],
    key_func=login_throttle.address_key,
    methods=["POST"],
    scope="mfa-address",
)
def mfa_login() -> Response | str | tuple[str, int]:
    next_url = safe_next_url(request.args.get("next"))
    user = _pending_user()
    if user is None:
        session.pop(PENDING_KEY, None)
        flash("Sign in again: the sign-in took too long or was not started.")
        return redirect(url_for("auth.login", next=next_url))
    if request.method == "POST":
        # Per account, shared with re-authentication; counted before anything is checked.
        login_throttle.count_second_factor_attempt(user.id, user.email)
    form = CodeForm()
    if form.validate_on_submit():
        if mfa.verify(actor_from_request_for(user), user, form.code.data or ""):
            session.clear()
            login_user(user)
            start_session_clock()
            response = redirect(next_url or url_for("overview.index"))
            return login_throttle.remember_device(response, user.email)
        form.code.errors = [CODE_WRONG]
        return render_template("account/mfa_login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("account/mfa_login.html", form=form), status


def actor_from_request_for(user: User):
    from webapp.services.core.actor import Actor

    actor = actor_from_request()
    return Actor(user.id, actor.ip_address, actor.user_agent)


# --- Sessions ------------------------------------------------------------------------------


@bp.get("/account/sessions")
def sessions_page() -> str:
    this = current_session_record()
    return render_template(
        "account/sessions.html",
        records=sessions.active_sessions(current_user.id, now_utc(), session_limits()),
        this_id=this.id if this else None,
    )


@bp.post("/account/sessions/<session_id>/end")
@any_role_may_post
def end_session(session_id: str) -> Response:
    target = parse_id(session_id, "session")
    sessions.end_session(actor_from_request(), current_user.id, target)
    this = current_session_record()
    if this is not None and this.id == target:
        session.clear()
        flash("This session is ended.")
        return redirect(url_for("auth.login"))
    flash("The session is ended.")
    return redirect(url_for("account.sessions_page"))


@bp.post("/account/sessions/end-others")
@any_role_may_post
def end_other_sessions() -> Response:
    this = current_session_record()
    assert this is not None  # the guard found it
    ended = sessions.end_other_sessions(actor_from_request(), current_user.id, this.id)
    flash(f"{ended} other session{'s' if ended != 1 else ''} ended.")
    return redirect(url_for("account.sessions_page"))


# --- Two-factor authentication ----------------------------------------------------------


def _mfa_page(status: int = 200, **context) -> tuple[str, int]:
    user = current_user._get_current_object()
    if not user.has_mfa and "recovery_codes" not in context:
        secret = mfa.open_pending_secret(session.get(PENDING_SECRET_KEY))
        if secret is None:
            secret = mfa.new_secret()
            session[PENDING_SECRET_KEY] = mfa.seal_pending_secret(secret)
        uri = mfa.provisioning_uri(secret, user.email)
        context.update(secret=secret, qr_svg=Markup(mfa.qr_code_svg(uri)))
    context.setdefault("form", CodeForm())
    return render_template(
        "account/mfa.html",
        required=mfa_required_for(user),
        remaining=mfa.remaining_recovery_codes(user.id) if user.has_mfa else 0,
        **context,
    ), status


@bp.get("/account/mfa")
def mfa_settings() -> tuple[str, int]:
    return _mfa_page()


@bp.post("/account/mfa/enable")
@any_role_may_post
@requires_reauthentication  # a stolen session must not bind the thief's authenticator
def enable_mfa() -> tuple[str, int]:
    form = CodeForm()
    secret = mfa.open_pending_secret(session.get(PENDING_SECRET_KEY))
    if not form.validate_on_submit() or not secret:
        return _mfa_page(400, form=form)
    try:
        codes = mfa.enable(
            actor_from_request(),
            current_user._get_current_object(),
            secret,
            form.code.data or "",
        )
    except ValidationFailed:
        form.code.errors = ["The code is not the one your app shows now. Check the phone's clock."]
        return _mfa_page(400, form=form)
    except Conflict as error:
        return _mfa_page(409, problem=error.message)
    session.pop(PENDING_SECRET_KEY, None)
    return _mfa_page(201, recovery_codes=codes)


@bp.post("/account/mfa/recovery-codes")
@any_role_may_post
@requires_reauthentication
def regenerate_recovery_codes() -> tuple[str, int]:
    try:
        codes = mfa.regenerate_recovery_codes(
            actor_from_request(), current_user._get_current_object()
        )
    except Conflict as error:
        return _mfa_page(409, problem=error.message)
    return _mfa_page(201, recovery_codes=codes)


@bp.post("/account/mfa/disable")
@any_role_may_post
@requires_reauthentication
def disable_mfa() -> Response | tuple[str, int]:
    user = current_user._get_current_object()
    try:
        mfa.disable(actor_from_request(), user, required=mfa_required_for(user))
    except Conflict as error:
        return _mfa_page(409, problem=error.message)
    flash("Two-factor authentication is off.")
    return redirect(url_for("account.mfa_settings"))


# --- Re-authentication ------------------------------------------------------------------


def reauth_key() -> str:
    return f"reauth:{current_user.id}"  # shared with changing one's password


@bp.route("/account/reauthenticate", methods=["GET", "POST"])
@any_role_may_post
@limiter.limit(
    lambda: current_app.config["LOGIN_FAILURES_PER_ACCOUNT"],
    key_func=reauth_key,
    methods=["POST"],
    scope="reauth",
)
def reauthenticate() -> Response | str | tuple[str, int]:
    next_url = safe_next_url(request.args.get("next")) or url_for("overview.index")
    user = current_user._get_current_object()
    form = ReauthForm()
    if form.validate_on_submit():
        record = current_session_record()
        assert record is not None  # the guard found it
        if user.has_mfa:  # the code's budget is the sign-in's code step's too
            login_throttle.count_second_factor_attempt(user.id, user.email)
        try:
            confirm_identity(
                actor_from_request(),
                user,
                record,
                form.password.data or "",
                form.code.data,
                now_utc(),
            )
        except ValidationFailed as error:
            for name in error.errors:
                getattr(form, name).errors = [
                    "The password is wrong." if name == "password" else CODE_WRONG
                ]
            return render_template("account/reauthenticate.html", form=form, user=user), 401
        flash("Confirmed. You can go on for the next few minutes.")
        return redirect(next_url)
    status = 400 if request.method == "POST" else 200
    return render_template("account/reauthenticate.html", form=form, user=user), status
