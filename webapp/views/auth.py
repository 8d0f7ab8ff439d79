"""Signing in and out."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from webapp.auth import actor_from_request, any_role_may_post, public, safe_next_url
from webapp.services import users

bp = Blueprint("auth", __name__)

LOGIN_FAILED = "Email or password is wrong."


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Response | str | tuple[str, int]:
    next_url = safe_next_url(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("overview.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(actor_from_request(), form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session at sign-in: nothing carried over from before
            login_user(user)
            return redirect(next_url or url_for("overview.index"))
        form.password.errors = [LOGIN_FAILED]
        return render_template("auth/login.html", form=form), 401
    status = 400 if request.method == "POST" else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@any_role_may_post
def logout() -> Response:
    users.record_logout(actor_from_request())
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("auth.login"))
