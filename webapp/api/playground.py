"""``POST /prompts/<id>/run`` (issue 18): run a prompt version on a model and answer the
output, tokens, latency and cost; ``GET /prompts/<id>/runs``: the run history."""

from __future__ import annotations

from flask import Response

from webapp.api import bp
from webapp.api.envelope import error_response, success_response
from webapp.api.parsing import json_object_body, parse_uuid
from webapp.auth import actor_from_request
from webapp.services.playground import runs


@bp.post("/prompts/<prompt_id>/run")
def run_prompt(prompt_id: str) -> Response:
    prepared = runs.prepare_run(
        actor_from_request(), parse_uuid(prompt_id, "prompt"), json_object_body()
    )
    outcome = runs.run_to_end(prepared)
    if outcome.failure is not None:
        # Recorded as an error run; the provider's own status and message in details.
        return error_response(
            502,
            outcome.failure.reason,
            extra={
                "details": outcome.failure.details()
                | {"run_id": outcome.run_id, "usage_id": outcome.usage_id}
            },
        )
    data = outcome.as_dict()
    return success_response(
        {
            key: data[key]
            for key in (
                "output",
                "input_tokens",
                "output_tokens",
                "latency_ms",
                "time_to_first_token_ms",
                "cost_usd",
                "usage_id",
                "run_id",
                "model",
            )
        }
    )


@bp.get("/prompts/<prompt_id>/runs")
def prompt_runs(prompt_id: str) -> Response:
    entries = runs.run_history(parse_uuid(prompt_id, "prompt"))
    data = [entry.as_dict() for entry in entries]
    return success_response(data, metadata={"count": len(data), "limit": runs.HISTORY_LIMIT})
