"""The prompt page's playground (issue 18): run a version on a model and stream the
answer into the page (newline-delimited JSON read by static/js/playground.js), and the
run history partial. Routes on the prompts blueprint: they are part of the prompt page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, render_template, request, stream_with_context
from flask_login import current_user

from webapp.auth import actor_from_request
from webapp.rls import use_database_role
from webapp.services.core.errors import DomainError, ValidationFailed
from webapp.services.core.ids import parse_id
from webapp.services.core.serialization import to_jsonable
from webapp.services.playground import runs
from webapp.services.playground.calls import PARAMETERS, Delta
from webapp.services.prompts import versions as prompts
from webapp.views.prompts import bp

NDJSON = "application/x-ndjson"


def _line(item: dict[str, Any]) -> str:
    return json.dumps(to_jsonable(item), ensure_ascii=False) + "\n"


def _run_fields() -> dict[str, Any]:
    """The form as the run's input: ``var_<name>`` fields, the model, the environment,
    the parameters given, the compare group."""
    form = request.form
    fields: dict[str, Any] = {
        "variables": {
            key[4:]: value for key, value in form.items() if key.startswith("var_") and value != ""
        },
        "environment": form.get("environment") or "development",
        "params": {key: form[key] for key in PARAMETERS if form.get(key, "").strip()},
    }
    for key in ("model_id", "compare_group"):
        if form.get(key):
            fields[key] = form[key]
    return fields


@bp.post("/<prompt_id>/playground/run")
def playground_run(prompt_id: str) -> Response:
    target = parse_id(prompt_id, "prompt")
    try:
        prepared = runs.prepare_run(actor_from_request(), target, _run_fields())
    except DomainError as error:
        fields = error.errors if isinstance(error, ValidationFailed) else None
        body = {"type": "refused", "message": str(error), "fields": fields}
        return Response(_line(body), status=error.status_code, mimetype=NDJSON)
    # The request's teardown resets the database role before the body streams; the
    # generator takes the signed-in role up again (as the CSV export does).
    role, user_id = current_user.role, current_user.id

    def lines() -> Iterator[str]:
        use_database_role(role, user_id)
        for item in runs.execute(prepared):
            if isinstance(item, Delta):
                yield _line({"type": "delta", "text": item.text})
            else:
                done = {"type": "done", **item.as_dict()}
                if item.failure is not None:
                    done |= {"error": item.failure.reason, "details": item.failure.details()}
                yield _line(done)

    return Response(
        stream_with_context(lines()),
        mimetype=NDJSON,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@bp.get("/<prompt_id>/playground/history")
def playground_history(prompt_id: str) -> str:
    target = parse_id(prompt_id, "prompt")
    prompt = prompts.get_prompt(target)
    return render_template(
        "prompts/_run_history.html", prompt=prompt, history=runs.run_history(target)
    )
