"""User management: platform admins only, reading included."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from webapp import one_time
from webapp.auth import actor_from_request, admin_only
from webapp.models import ROLE_ADMIN, ROLES
from webapp.reauth import reauthentication_needed, requires_reauthentication
from webapp.services.core.errors import Conflict, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.sorting import Sort
from webapp.services.identity import mfa, sessions, users
from webapp.views.messages import said, with_article
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, read_sort

bp = Blueprint("users", __name__, url_prefix="/users")
PASSWORD_HANDOVER = "generated password"  # shown once by the users page


BY_EMAIL = Sort("email")


def _page(status: int = 200, **context) -> tuple[str, int]:
    context.setdefault("form", {})
    context.setdefault("errors", {})
    query = PageQuery()
    order = read_sort(query, users.USER_SORTS, BY_EMAIL)
    page = users.users_page(
        order, query.whole_number("page", 1, 100_000, 1, " (showing page 1 instead)")
    )
    sorting = Sorting(
        "users.index", order, descending_first=frozenset({"last_sign_in"}), default=BY_EMAIL
    )
    actor_id = actor_from_request().user_id
    refusals = {
        user.id: {
            "role": users.role_change_refusal(actor_id, user),
            "deactivate": users.deactivate_refusal(actor_id, user),
        }
        for user in page.items
    }
    html = render_template(
        "users/index.html",
        users=page.items,
        page=page,
        sorting=sorting,
        query=query,
        roles=ROLES,
        refusals=refusals,
        **context,
    )
    return html, status if status != 200 else query.status


@bp.get("")
@admin_only
def index() -> tuple[str, int]:
    return _page(one_time_password=one_time.take(PASSWORD_HANDOVER))


def _refused(message: str) -> Response:
    """Post/redirect/get for a refusal too: the users page says why, and a reload
    repeats nothing."""
    flash(message, "error")
    return redirect(url_for("users.index"))


@bp.post("")
@admin_only
def create() -> Response | tuple[str, int]:
    form = {key: request.form.get(key, "").strip() for key in ("email", "role", "display_name")}
    # A new admin is as sensitive as making someone admin (change_role).
    if form["role"] == ROLE_ADMIN and (answer := reauthentication_needed()):
        return answer
    password = users.generate_password()
    try:
        user = users.create_user(
            actor_from_request(),
            form["email"],
            password,
            form["role"],
            form["display_name"] or None,
            must_change_password=True,  # the admin saw it: the user chooses their own
        )
    except ValidationFailed as error:
        return _page(400, form=form, errors=error.errors)
    except Conflict:
        return _page(409, form=form, errors={"email": "is already used by another user"})
    # Shown once by the page redirected to: encrypted in the cookie, never stored.
    one_time.hand_over(PASSWORD_HANDOVER, {"email": user.email, "password": password})
    flash(f"{user.email} added as {with_article(user.role)}.")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/role")
@admin_only
@requires_reauthentication
def change_role(user_id: str) -> Response | tuple[str, int]:
    try:
        user = users.change_role(
            actor_from_request(), parse_id(user_id, "user"), request.form.get("role", "")
        )
    except (ValidationFailed, Conflict) as error:
        return _refused(f"Role not changed: {said(error)}.")
    flash(f"{user.email} is now {with_article(user.role)}.")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/deactivate")
@admin_only
@requires_reauthentication
def deactivate(user_id: str) -> Response | tuple[str, int]:
    try:
        user = users.set_active(actor_from_request(), parse_id(user_id, "user"), False)
    except Conflict as error:
        return _refused(f"Not deactivated: {said(error)}.")
    flash(f"{user.email} is deactivated and signed out everywhere.")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/activate")
@admin_only
@requires_reauthentication  # may bring back an admin account
def activate(user_id: str) -> Response:
    user = users.set_active(actor_from_request(), parse_id(user_id, "user"), True)
    flash(f"{user.email} is active again.")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/reset-password")
@admin_only
@requires_reauthentication
def reset_password(user_id: str) -> Response:
    user, password = users.reset_password(actor_from_request(), parse_id(user_id, "user"))
    one_time.hand_over(PASSWORD_HANDOVER, {"email": user.email, "password": password})
    flash(f"The password of {user.email} is reset and their sessions ended.")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/reset-mfa")
@admin_only
@requires_reauthentication
def reset_mfa(user_id: str) -> Response:
    user = mfa.reset_for_user(actor_from_request(), parse_id(user_id, "user"))
    flash(f"Two-factor authentication of {user.email} is removed and their sessions ended.")
    return redirect(url_for("users.index"))


@bp.post("/<user_id>/end-sessions")
@admin_only
def end_sessions(user_id: str) -> Response:
    target = parse_id(user_id, "user")
    ended = sessions.end_sessions_of_user(actor_from_request(), target)
    flash(f"{ended} session{'s' if ended != 1 else ''} of {users.get_user(target).email} ended.")
    return redirect(url_for("users.index"))
