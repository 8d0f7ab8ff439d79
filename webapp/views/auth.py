"""Signing in and out, and changing one's own password."""

from __future__ import annotations

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
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from webapp import login_throttle
from webapp.auth import (
    actor_from_request,
    any_role_may_post,
    current_session_record,
    public,
    safe_next_url,
    start_session_clock,
)
from webapp.errors import repeat_window
from webapp.extensions import limiter
from webapp.services.core.errors import ValidationFailed
from webapp.services.identity import sessions, users
from webapp.views.account import begin_second_factor

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Email or password is wrong."


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class PasswordForm(FlaskForm):
    """The fields only: ``change_own_password`` checks them, every problem at once."""

    current_password = PasswordField("Current password")
    new_password = PasswordField("New password")
    confirm_password = PasswordField("Repeat the new password")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str | tuple[str, int]:
    next_url = safe_next_url(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("overview.index"))
    form = LoginForm()
    if request.method == "POST":
        # Counted on arrival, before any hashing (see webapp/login_throttle.py).
        attempt = login_throttle.count_attempt(form.email.data)
    if form.validate_on_submit():
        user = users.authenticate(
            actor_from_request(),
            form.email.data or "",
            form.password.data or "",
            failure_window=repeat_window(),
        )
        if user is not None:
            attempt.succeeded()
            if user.has_mfa:
                return begin_second_factor(user, next_url)
            session.clear()  # a fresh session at sign-in: nothing carried over from before
            login_user(user)
            start_session_clock()
            response = redirect(next_url or url_for("overview.index"))
            return login_throttle.remember_device(response, user.email)
        form.password.errors = [LOGIN_FAILED]
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@any_role_may_post
def logout() -> Response:
    record = current_session_record()
    users.record_logout(
        actor_from_request(), current_user._get_current_object(), record.id if record else None
    )
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))


def signed_in_key() -> str:
    return f"reauth:{current_user.id}"


@bp.route("/account/password", methods=["GET", "POST"])
@any_role_may_post
@limiter.limit(
    lambda: current_app.config["LOGIN_FAILURES_PER_ACCOUNT"],
    key_func=signed_in_key,
    methods=["POST"],
    scope="reauth",
)
def change_password() -> Response | str | tuple[str, int]:
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        record = current_session_record()
        assert record is not None  # the guard found it
        # Read before the change deletes the record: this session goes on under a new
        # token, still as (un)recently authenticated as before — a password alone is no
        # second factor (re-authentication asks for both).
        times = sessions.SessionTimes.of(record)
        try:
            users.change_own_password(
                actor_from_request(),
                user,
                form.current_password.data or "",
                form.new_password.data or "",
                form.confirm_password.data or "",
            )
        except ValidationFailed as error:
            for name, problem in error.errors.items():
                field = getattr(form, name)
                field.errors = [f"{field.label.text} {problem}."]
            return render_template("auth/password.html", form=form), 400
        # Other sessions ended with the old version; keep this one, with a fresh id.
        session.clear()
        login_user(user)
        start_session_clock(continues=times)
        flash("Your password is changed. Other sessions were signed out.")
        return redirect(url_for("overview.index"))
    status = 400 if request.method == "POST" else 200
    return render_template("auth/password.html", form=form), status
