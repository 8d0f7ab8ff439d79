"""The prompt editor: a searchable list of prompt families, and a page per version with
the content editor, versions (activate / roll back), what is live in each environment
(promote development → staging → production, roll back per environment, history),
side-by-side diff, duplicate, delete and an inline test form."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from webapp.auth import actor_from_request, admin_only, is_htmx_request
from webapp.json_input import loads_strict
from webapp.models import ENVIRONMENTS
from webapp.responses import go_to, render_page
from webapp.services.catalog import features
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.playground import runs
from webapp.services.prompts import environments
from webapp.services.prompts import versions as prompts
from webapp.services.prompts.rendering import placeholder_warnings, placeholders
from webapp.views.messages import said
from webapp.views.query import PageQuery
from webapp.views.sorting import Sorting, read_sort

bp = Blueprint("prompts", __name__, url_prefix="/prompts")


@bp.get("")
def index() -> tuple[str, int]:
    query = PageQuery()
    left_out = "; that filter is left out."
    args = {key: query.text(key) for key in ("q", "feature", "tag", "active")}
    feature_id = None
    if args["feature"]:
        try:
            feature_id = parse_id(args["feature"], "feature")
        except NotFound:
            query.refuse("feature", "is not a feature's id (choose one from the list)", left_out)
    active = {"yes": True, "no": False, "": None}[
        query.choice("active", ("yes", "no"), "", left_out)
    ]
    page_number = query.whole_number("page", 1, 10_000, 1, " (showing page 1 instead)")
    order = read_sort(query, prompts.FAMILY_SORTS, prompts.BY_NAME)
    result = prompts.list_families(
        search=args["q"] or None,
        feature_id=feature_id,
        tag=args["tag"] or None,
        active=active,
        page=page_number,
        sort=order,
    )
    kept = {k: v for k, v in args.items() if v}
    sorting = Sorting(
        "prompts.index",
        order,
        "#prompt-results",
        kept,
        descending_first=frozenset({"versions", "changed", "active_version"}),
        default=prompts.BY_NAME,
    )
    html = render_page(
        "prompts/index.html",
        "results",
        result=result,
        sorting=sorting,
        args=sorting.args,
        query=query,
        feature_rows=features.list_features(),
        tags=prompts.all_tags(),
    )
    return html, query.status


def _new_page(form: dict[str, Any], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    html = render_page(
        "prompts/new.html", "form", form=form, errors=errors, feature_rows=features.list_features()
    )
    return html, status


@bp.get("/new")
@admin_only
def new() -> tuple[str, int]:
    return _new_page({}, {})


@bp.post("")
def create() -> Response | tuple[str, int]:
    form = {
        key: request.form.get(key, "")
        for key in ("name", "feature_id", "description", "content", "tags")
    }
    fields = {
        **form,
        "description": form["description"].strip() or None,
        "feature_id": form["feature_id"] or None,
    }
    try:
        prompt = prompts.create_prompt(actor_from_request(), fields)
    except ValidationFailed as error:
        return _new_page(form, error.errors, 400)
    flash(f"{prompt.name} v{prompt.version} saved.{_warned(prompt.content)}")
    return go_to(url_for("prompts.detail", prompt_id=prompt.id))


def _warned(content: str) -> str:
    """What the flash adds when the saved content has malformed placeholders."""
    count = len(placeholder_warnings(content))
    if not count:
        return ""
    return f" Check {count} placeholder{'s' if count != 1 else ''}: see the warnings below."


def _detail_context(prompt_id, **extra: Any) -> dict[str, Any]:
    prompt = prompts.get_prompt(prompt_id)
    all_versions = prompts.versions(prompt.id)
    live = environments.live_by_environment(prompt.id)
    context = {
        "prompt": prompt,
        "versions": all_versions,
        "environments": ENVIRONMENTS,
        "live": live,
        "promotion_targets": {
            version.id: environments.promotion_target(version, live) for version in all_versions
        },
        "can_roll_back": {env: environments.can_roll_back(prompt, env) for env in ENVIRONMENTS},
        "activations": environments.history(prompt.feature_id, prompt.name),
        "detected": placeholders(prompt.content),
        "placeholder_warnings": placeholder_warnings(prompt.content),
        "feature": features.get_feature(prompt.feature_id) if prompt.feature_id else None,
        "usage": prompts.usage(prompt.id, days=30),
        "delete_refusal": prompts.delete_refusal(prompt),
        "diff": None,
        "trial": None,
        "values": {},
        "content_errors": {},
        "draft": None,
        "problem": None,
        "variables_draft": None,
        "query": PageQuery({}),
        # The playground (webapp/views/playground.py): models to run on, the run history.
        "playground_models": runs.models_to_run(prompt),
        "run_history": runs.run_history(prompt.id),
    }
    context.update(extra)
    return context


def _refused(target, problem: str, status: int) -> Response | tuple[str, int]:
    """The prompt page again with the reason nothing changed: htmx swaps #prompt-page
    (the address stays the page's); a plain form is redirected to it (post/redirect/get,
    so a reload repeats nothing)."""
    if not is_htmx_request():
        flash(problem, "error")
        return redirect(url_for("prompts.detail", prompt_id=target))
    html = render_page("prompts/detail.html", "page", **_detail_context(target, problem=problem))
    return html, status


@bp.get("/<prompt_id>")
def detail(prompt_id: str) -> tuple[str, int]:
    target = parse_id(prompt_id, "prompt")
    query = PageQuery()
    diff = None
    against = query.text("against")
    if against:
        problem = None
        try:
            diff = prompts.diff(target, parse_id(against, "prompt"))
        except NotFound:
            problem = "is not a prompt version's id"
        except ValidationFailed as error:
            problem = error.errors.get("against", str(error))
        if problem:
            query.refuse("against", problem, " (no comparison shown)")
    html = render_page(
        "prompts/detail.html",
        "diff" if against else "content",
        **_detail_context(target, diff=diff, query=query),
    )
    return html, query.status


@bp.post("/<prompt_id>/content")
def save_content(prompt_id: str) -> Response | tuple[str, int]:
    """Saving new content creates the next version and shows it."""
    target = parse_id(prompt_id, "prompt")
    content = request.form.get("content", "")
    try:
        prompt = prompts.update_prompt(actor_from_request(), target, {"content": content})
    except ValidationFailed as error:
        html = render_page(
            "prompts/detail.html",
            "workspace",
            **_detail_context(
                target,
                content_errors=error.errors,
                draft=content,
                placeholder_warnings=placeholder_warnings(content),
            ),
        )
        return html, 400
    if prompt.id == target:
        flash("Nothing changed: the content is the same as this version's.")
    else:
        flash(f"Saved as version {prompt.version}.{_warned(prompt.content)}")
    return go_to(url_for("prompts.detail", prompt_id=prompt.id))


@bp.post("/<prompt_id>/details")
def save_details(prompt_id: str) -> Response | tuple[str, int]:
    target = parse_id(prompt_id, "prompt")
    fields: dict[str, Any] = {
        "description": request.form.get("description", "").strip() or None,
        "tags": request.form.get("tags", ""),
    }
    raw_variables = request.form.get("variables", "").strip()
    if raw_variables:
        try:
            fields["variables"] = loads_strict(raw_variables)
        except ValueError as error:
            html = render_page(
                "prompts/detail.html",
                "page",
                **_detail_context(
                    target,
                    problem=f"Not saved: Variables must be valid JSON ({error}).",
                    variables_draft=raw_variables,
                ),
            )
            return html, 400
    before = _details_of(prompts.get_prompt(target))
    try:
        prompt = prompts.update_prompt(actor_from_request(), target, fields)
    except ValidationFailed as error:
        return _refused(target, f"Not saved: {said(error, DETAIL_LABELS)}.", 400)
    after = _details_of(prompt)
    changed = [label for key, label in DETAIL_LABELS.items() if before[key] != after[key]]
    flash(f"{_listed(changed)} saved." if changed else "Nothing changed.")
    return go_to(url_for("prompts.detail", prompt_id=target))


# The details form's fields, as its labels name them in messages.
DETAIL_LABELS = {"description": "Description", "tags": "Tags", "variables": "Variables"}


def _details_of(prompt: Any) -> dict[str, Any]:
    # Copies: the service may change the loaded prompt's values in place.
    return {key: copy.deepcopy(getattr(prompt, key)) for key in DETAIL_LABELS}


def _listed(labels: list[str]) -> str:
    """ "Description", "Description and tags", "Description, tags and variables"."""
    words = [labels[0]] + [label.lower() for label in labels[1:]]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _environment_change(
    target, change: Callable[[], environments.ActivationResult], success: Callable[[Any], str]
) -> Response | tuple[str, int]:
    """Run ``change``; flash what it did and show the prompt again, or show why not."""
    try:
        result = change()
    except (ValidationFailed, Conflict) as error:
        return _refused(target, f"Nothing changed: {_why(error)}.", error.status_code)
    flash(success(result) if result.changed else f"Nothing changed: {result.message}.")
    return go_to(url_for("prompts.detail", prompt_id=target))


def _why(error: ValidationFailed | Conflict) -> str:
    """The refusal in words, naming the field for bad input."""
    return said(error)


def _form_environment() -> str:
    return request.form.get("environment") or environments.PRODUCTION


@bp.post("/<prompt_id>/activate")
def activate(prompt_id: str) -> Response | tuple[str, int]:
    """Make this version live in the form's environment (none given: production)."""
    target = parse_id(prompt_id, "prompt")
    environment = _form_environment()

    def said(result: environments.ActivationResult) -> str:
        if environment == environments.PRODUCTION:
            return f"Version {result.prompt.version} is now the active one."
        return f"Version {result.prompt.version} is now live in {environment}."

    return _environment_change(
        target,
        lambda: environments.activate_prompt(actor_from_request(), target, environment),
        said,
    )


@bp.post("/<prompt_id>/deactivate")
def deactivate(prompt_id: str) -> Response | tuple[str, int]:
    target = parse_id(prompt_id, "prompt")
    environment = _form_environment()

    def said(result: environments.ActivationResult) -> str:
        where = "active" if environment == environments.PRODUCTION else f"live in {environment}"
        return (
            f"Version {result.prompt.version} is no longer {where}; "
            f"no version of {result.prompt.name} is."
        )

    return _environment_change(
        target,
        lambda: environments.deactivate_prompt(actor_from_request(), target, environment),
        said,
    )


@bp.post("/<prompt_id>/promote")
def promote(prompt_id: str) -> Response | tuple[str, int]:
    target = parse_id(prompt_id, "prompt")
    to_environment = request.form.get("to_environment", "")
    return _environment_change(
        target,
        lambda: environments.promote_prompt(actor_from_request(), target, to_environment),
        lambda result: f"{result.message}.",
    )


@bp.post("/<prompt_id>/rollback")
def rollback(prompt_id: str) -> Response | tuple[str, int]:
    """Roll back this prompt's family in the form's environment; show the version now live
    there (it may not be this one)."""
    target = parse_id(prompt_id, "prompt")
    family = prompts.get_prompt(target)
    environment = request.form.get("environment", "")
    try:
        result = environments.rollback_prompt(
            actor_from_request(), family.feature_id, family.name, environment
        )
    except (ValidationFailed, Conflict) as error:
        return _refused(target, f"Nothing changed: {_why(error)}.", error.status_code)
    flash(f"{result.message}.")
    return go_to(url_for("prompts.detail", prompt_id=result.prompt.id))


@bp.post("/<prompt_id>/duplicate")
def duplicate(prompt_id: str) -> Response | tuple[str, int]:
    target = parse_id(prompt_id, "prompt")
    try:
        copy = prompts.duplicate(actor_from_request(), target, request.form.get("name", ""))
    except (ValidationFailed, Conflict) as error:
        return _refused(
            target, f"Not duplicated: {said(error, {'name': 'New name'})}.", error.status_code
        )
    flash(f"Duplicated as {copy.name}.")
    return go_to(url_for("prompts.detail", prompt_id=copy.id))


@bp.post("/<prompt_id>/delete")
def delete(prompt_id: str) -> Response | tuple[str, int]:
    target = parse_id(prompt_id, "prompt")
    prompt = prompts.get_prompt(target)
    others = [v for v in prompts.versions(target) if v.id != target]
    try:
        prompts.delete_prompt(actor_from_request(), target)
    except Conflict as error:
        return _refused(target, f"Not deleted: {error.message}.", 409)
    flash(f"{prompt.name} v{prompt.version} deleted.")
    if others:
        return go_to(url_for("prompts.detail", prompt_id=others[0].id))
    return go_to(url_for("prompts.index"))


@bp.get("/<prompt_id>/test")
def test(prompt_id: str) -> tuple[str, int]:
    """Render with the form's values (a read: nothing is saved, viewers may use it too);
    htmx swaps in only the result."""
    target = parse_id(prompt_id, "prompt")
    prompt = prompts.get_prompt(target)
    values = {name: request.args.get(f"var_{name}", "") for name in placeholders(prompt.content)}
    extra = request.args.get("extra_name", "").strip()
    if extra:
        values[extra] = request.args.get("extra_value", "")
    trial = prompts.try_render(target, values, blank_is_missing=True)
    html = render_page(
        "prompts/detail.html", "test_result", **_detail_context(target, trial=trial, values=values)
    )
    return html, 200


from webapp.views import playground as _playground  # noqa: E402,F401  (its routes)
