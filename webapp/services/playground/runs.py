"""Running a prompt version on a model (the prompt page's playground and
``POST /prompts/<id>/run``), and the run history.

A run is two steps, so a page can stream the answer while it arrives:

1. ``prepare_run`` validates the input, renders the version (400 naming the variables),
   picks the model (given, or the feature's in the environment), refuses a run a hard
   budget denies, decrypts the provider's credentials and merges the parameters (model
   ``config`` < assignment ``config_overrides`` < the run's ``params``). It only reads,
   and ends its transaction: no connection is held while the provider answers.
2. ``execute`` calls the adapter of the provider's protocol, yields the answer's pieces,
   then records the run — success or provider failure alike — in one transaction: a
   usage row through the one write path of usage rows (``store_usage_rows``: the daily
   rollup moves with it, so spending and budgets count it), the ``prompt_runs`` row and
   the audit row. The last thing it yields is the ``RunOutcome``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from flask import current_app
from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import (
    ENVIRONMENTS,
    AIModel,
    Feature,
    FeatureModelAssignment,
    Prompt,
    PromptRun,
    Provider,
    User,
)
from webapp.services.audit.records import add_audit_row
from webapp.services.catalog import ai_models, assignments
from webapp.services.catalog.credentials import unseal
from webapp.services.catalog.providers import key_destination
from webapp.services.core.actor import Actor
from webapp.services.core.errors import Conflict, NotFound, ValidationFailed
from webapp.services.core.validation import Id, Input, OneOf, problem, validated
from webapp.services.playground import anthropic_messages, gemini, openai_chat
from webapp.services.playground.calls import (
    PARAMETERS,
    CallFailed,
    CallRequest,
    Delta,
    Event,
    Finished,
)
from webapp.services.prompts.rendering import render
from webapp.services.spending.enforcement import budget_guard
from webapp.services.usage.cost import request_cost
from webapp.services.usage.recording import store_usage_rows

HISTORY_LIMIT = 50
SOURCE = "playground"
Adapter = Callable[[CallRequest], Iterator[Event]]
# provider_type → (adapter, default base URL); any other type speaks the OpenAI API at
# its api_endpoint (vLLM, Ollama, LiteLLM, OpenRouter, Azure OpenAI's v1 endpoint, …).
PROTOCOLS: dict[str, tuple[Adapter, str | None]] = {
    "openai": (openai_chat.call, openai_chat.DEFAULT_BASE_URL),
    "anthropic": (anthropic_messages.call, anthropic_messages.DEFAULT_BASE_URL),
    "google": (gemini.call, gemini.DEFAULT_BASE_URL),
    "gemini": (gemini.call, gemini.DEFAULT_BASE_URL),
}


class RunInput(Input):
    unknown_field: ClassVar[str] = (
        "is not a field of a run (variables, model_id, environment, params)"
    )

    variables: dict[str, Any] = Field(default_factory=dict)
    model_id: Annotated[uuid.UUID | None, Id("must be the id of a model", optional=True)] = None
    environment: Annotated[str, OneOf(ENVIRONMENTS)] = "development"
    params: dict[str, Any] = Field(default_factory=dict)
    compare_group: Annotated[uuid.UUID | None, Id("must be a UUID", optional=True)] = None

    @field_validator("variables", mode="before")
    @classmethod
    def _variables(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise problem('must be an object of variable values, e.g. {"name": "Ada"}')
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _params(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise problem('must be an object such as {"temperature": 0.2, "max_tokens": 256}')
        return check_params(value)


def check_params(value: Mapping[str, Any]) -> dict[str, Any]:
    """The run parameters, each checked (one message naming the first wrong one)."""
    found: dict[str, Any] = {}
    for key, given in value.items():
        if key not in PARAMETERS:
            raise problem(f"{key} is not a run parameter ({', '.join(PARAMETERS)})")
        if given is None or given == "":
            continue
        if key in ("temperature", "top_p"):
            number = _number(given, key)
            if not 0 <= number <= 2:
                raise problem(f"{key} must be between 0 and 2")
            found[key] = number
        elif key in ("max_tokens", "top_k", "seed"):
            number = _number(given, key)
            if number != int(number) or not 1 <= number <= 1_000_000:
                raise problem(f"{key} must be a whole number from 1")
            found[key] = int(number)
        else:  # stop
            if isinstance(given, str):
                given = [given]
            if not isinstance(given, list) or not all(isinstance(s, str) for s in given):
                raise problem("stop must be text or a list of texts")
            found[key] = given[:4]
    return found


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool):
        raise problem(f"{key} must be a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise problem(f"{key} must be a number") from None


@dataclass(frozen=True, repr=False)
class PreparedRun:
    """Everything ``execute`` needs, as plain values (no ORM object outlives step 1)."""

    actor: Actor
    prompt_id: uuid.UUID
    feature_id: uuid.UUID | None
    prompt_name: str
    prompt_version: int
    model_id: uuid.UUID
    model_name: str
    provider_id: uuid.UUID
    environment: str
    variables: dict[str, Any]
    params: dict[str, Any]
    compare_group: uuid.UUID | None
    adapter: Adapter
    request: CallRequest


@dataclass(frozen=True)
class RunOutcome:
    run_id: uuid.UUID
    usage_id: uuid.UUID | None  # None: nothing was sent (NOT_SENT)
    status: str
    output: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    time_to_first_token_ms: int | None
    cost_usd: Decimal
    model_name: str
    failure: CallFailed | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "usage_id": self.usage_id,
            "status": self.status,
            "model": self.model_name,
            "output": self.output,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "latency_ms": self.latency_ms,
            "time_to_first_token_ms": self.time_to_first_token_ms,
            "cost_usd": self.cost_usd,
        }


def prepare_run(actor: Actor, prompt_id: uuid.UUID, fields: Mapping[str, Any]) -> PreparedRun:
    body = validated(RunInput, fields)
    prompt = db.session.get(Prompt, prompt_id)
    if prompt is None:
        raise NotFound(f"prompt {prompt_id} does not exist")
    rendered = render(prompt.content, prompt.variables, body.variables)
    if not rendered.ok:
        errors = {f"variables.{name}": "has no value and no default" for name in rendered.missing}
        errors |= {f"variables.{name}": kind for name, kind in rendered.type_errors.items()}
        if rendered.oversize_chars is not None:
            errors["variables"] = rendered.errors[-1]
        raise ValidationFailed(
            errors, "The prompt could not be rendered: " + "; ".join(rendered.errors)
        )
    model, provider, assignment = _model_for(prompt, body.model_id, body.environment)
    if prompt.feature_id is not None:
        _refuse_denied(prompt.feature_id, body.environment)
    adapter, default_url = PROTOCOLS.get(provider.provider_type, (openai_chat.call, None))
    base_url = key_destination(provider.api_endpoint, provider.config) or default_url
    if not base_url:
        raise Conflict(
            f"{provider.display_name} ({provider.provider_type}) has no API endpoint: set one "
            "on the provider page (an OpenAI-compatible server's base URL, e.g. …/v1)",
            field="model_id",
        )
    credentials = unseal(provider)
    if credentials is None and not provider.api_endpoint:
        raise Conflict(
            f"{provider.display_name} has no API key: set one on the provider page",
            field="model_id",
        )
    params = {k: v for k, v in (model.config or {}).items() if k in PARAMETERS}
    if assignment is not None:
        params |= {k: v for k, v in (assignment.config_overrides or {}).items() if k in PARAMETERS}
    try:
        params = check_params(params) | body.params
    except PydanticCustomError as wrong:
        raise Conflict(
            f"The configuration of {model.display_name} has a parameter the run cannot use: "
            f"{wrong.message()}; fix it on the model or assignment, or override it here",
            field="params",
        ) from None
    config = current_app.config
    request = CallRequest(
        base_url=str(base_url),
        # A self-hosted server without a key still gets one: the SDKs require a value.
        api_key=credentials.api_key if credentials else "no-key",
        headers=credentials.headers if credentials else {},
        model=model.name,
        model_type=model.model_type,
        prompt=rendered.rendered,
        params=params,
        timeout_seconds=float(config.get("PROVIDER_CALL_TIMEOUT_SECONDS") or 60),
        allow_private=bool(config.get("ALLOW_PRIVATE_PROVIDER_URLS")),
        extra_ports=frozenset(config.get("PROVIDER_URL_PORTS") or ()),
    )
    prepared = PreparedRun(
        actor=actor,
        prompt_id=prompt.id,
        feature_id=prompt.feature_id,
        prompt_name=prompt.name,
        prompt_version=prompt.version,
        model_id=model.id,
        model_name=model.name,
        provider_id=provider.id,
        environment=body.environment,
        variables=dict(body.variables),
        params=params,
        compare_group=body.compare_group,
        adapter=adapter,
        request=request,
    )
    db.session.rollback()  # read only: release the connection while the provider answers
    return prepared


def models_to_run(prompt: Prompt) -> list[tuple[AIModel, Provider]]:
    """The models the playground offers for ``prompt``: those of the type its feature
    needs (any model for a prompt of no feature), as assignments allow."""
    feature = db.session.get(Feature, prompt.feature_id) if prompt.feature_id else None
    return ai_models.list_models(model_type=feature.model_type if feature else None)


def _model_for(
    prompt: Prompt, model_id: uuid.UUID | None, environment: str
) -> tuple[AIModel, Provider, FeatureModelAssignment | None]:
    assignment = None
    if prompt.feature_id is not None:
        assignment = db.session.scalar(
            select(FeatureModelAssignment).where(
                FeatureModelAssignment.feature_id == prompt.feature_id,
                FeatureModelAssignment.environment == environment,
                FeatureModelAssignment.is_active.is_(True),
            )
        )
    if model_id is None:
        if assignment is None:
            raise ValidationFailed(
                {
                    "model_id": f"is required: the prompt's feature has no model in {environment}"
                    if prompt.feature_id
                    else "is required: the prompt belongs to no feature"
                }
            )
        model_id = assignment.model_id
    row = db.session.execute(
        select(AIModel, Provider)
        .join(Provider, Provider.id == AIModel.provider_id)
        .where(AIModel.id == model_id)
    ).first()
    if row is None:
        raise ValidationFailed({"model_id": "does not exist"})
    model, provider = row
    feature = db.session.get(Feature, prompt.feature_id) if prompt.feature_id else None
    mismatch = assignments.type_mismatch(model, feature) if feature is not None else None
    if mismatch:
        raise ValidationFailed({"model_id": mismatch})
    if assignment is not None and assignment.model_id != model.id:
        assignment = None  # its overrides are for another model
    return model, provider, assignment


def _refuse_denied(feature_id: uuid.UUID, environment: str) -> None:
    guard = budget_guard(feature_id, environment, datetime.now(UTC))
    if guard is not None and guard.action == "deny":
        name = db.session.scalar(select(Feature.display_name).where(Feature.id == feature_id))
        raise Conflict(
            f"A hard budget covering {name} is exhausted ({guard.state}): runs are denied "
            f"until {guard.resets_at:%Y-%m-%d %H:%M} UTC, as for the application."
        )


def execute(prepared: PreparedRun) -> Iterator[Delta | RunOutcome]:
    """Call the model, yield each piece of the answer, record the run, yield its outcome.
    A provider failure is recorded too (an error run) and carried in the outcome."""
    started = time.perf_counter()
    first_token: int | None = None
    pieces: list[str] = []
    input_tokens = output_tokens = 0
    failure: CallFailed | None = None
    try:
        for event in prepared.adapter(prepared.request):
            if isinstance(event, Delta):
                if first_token is None:
                    first_token = _ms_since(started)
                pieces.append(event.text)
                yield event
            elif isinstance(event, Finished):
                input_tokens, output_tokens = event.input_tokens, event.output_tokens
    except CallFailed as failed:
        failure = failed
    except Exception as unexpected:  # an SDK's own surprise: an error run, never a 500
        # The type alone is logged: an exception's text may quote the request.
        current_app.logger.warning(
            "Playground run on %s failed unexpectedly: %s",
            prepared.model_name,
            type(unexpected).__name__,
        )
        failure = CallFailed(
            f"The provider's answer could not be read ({type(unexpected).__name__}).",
            kind="invalid_answer",
        )
    latency = _ms_since(started)
    yield record_run(
        prepared, "".join(pieces), input_tokens, output_tokens, latency, first_token, failure
    )


def _ms_since(started: float) -> int:
    return max(0, int((time.perf_counter() - started) * 1000))


# Failures raised before a byte left for the provider (webapp.services.playground.calls).
NOT_SENT = frozenset({"url_not_allowed"})


def record_run(
    prepared: PreparedRun,
    output: str,
    input_tokens: int,
    output_tokens: int,
    latency_ms: int,
    first_token_ms: int | None,
    failure: CallFailed | None,
) -> RunOutcome:
    """The usage row, the run row and the audit row: one transaction. A run refused before
    anything was sent (the endpoint's address is not allowed) is no request to the
    provider: it gets a run row and an audit row, but no usage row, so it never counts in
    the provider's health, error rates or spend."""
    model = db.session.get(AIModel, prepared.model_id)
    cost = request_cost(model, input_tokens, output_tokens) if model else Decimal("0")
    now = datetime.now(UTC)
    sent = failure is None or failure.kind not in NOT_SENT
    run_id, usage_id = uuid.uuid4(), (uuid.uuid4() if sent else None)
    status = "error" if failure else "success"
    error_message = failure.reason if failure else None
    usage = {
        "id": usage_id,
        "feature_id": prepared.feature_id,
        "model_id": prepared.model_id if model else None,
        "model_name": None if model else prepared.model_name,
        "prompt_id": prepared.prompt_id,
        "user_id": prepared.actor.user_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "tokens_used": input_tokens + output_tokens,
        "response_time_ms": latency_ms,
        "cost_usd": cost,
        "cost_source": "catalog" if model else "unpriced",
        "status": status,
        "error_message": error_message,
        "environment": prepared.environment,
        "created_at": now,
        "metadata": {
            "source": SOURCE,
            "run_id": str(run_id),
            "prompt_version": prepared.prompt_version,
            "console_user_id": str(prepared.actor.user_id) if prepared.actor.user_id else None,
        },
    }
    if sent:
        store_usage_rows([usage], {prepared.model_id: prepared.provider_id} if model else {})
    db.session.add(
        PromptRun(
            id=run_id,
            prompt_id=prepared.prompt_id,
            feature_id=prepared.feature_id,
            prompt_name=prepared.prompt_name,
            prompt_version=prepared.prompt_version,
            model_id=prepared.model_id if model else None,
            model_name=prepared.model_name,
            environment=prepared.environment,
            user_id=prepared.actor.user_id,
            compare_group=prepared.compare_group,
            variables=prepared.variables,
            params=prepared.params,
            status=status,
            output=output,
            error_status=failure.status if failure else None,
            error_message=error_message,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            latency_ms=latency_ms,
            time_to_first_token_ms=first_token_ms,
            cost_usd=cost,
            usage_id=usage_id,
            created_at=now,
        )
    )
    add_audit_row(
        prepared.actor,
        "prompt.run",
        "prompt",
        prepared.prompt_id,
        new_values={
            "run_id": str(run_id),
            "model": prepared.model_name,
            "environment": prepared.environment,
            "status": status,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost_usd": str(cost),
            "variables": sorted(prepared.variables),
        },
    )
    db.session.commit()
    return RunOutcome(
        run_id,
        usage_id,
        status,
        output,
        input_tokens,
        output_tokens,
        latency_ms,
        first_token_ms,
        cost,
        prepared.model_name,
        failure,
    )


def run_to_end(prepared: PreparedRun) -> RunOutcome:
    """``execute`` without streaming (the JSON API)."""
    outcome = None
    for item in execute(prepared):
        if isinstance(item, RunOutcome):
            outcome = item
    assert outcome is not None
    return outcome


@dataclass(frozen=True)
class HistoryEntry:
    run: PromptRun
    user_email: str | None

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "id": run.id,
            "prompt_id": run.prompt_id,
            "version": run.prompt_version,
            "model": run.model_name,
            "environment": run.environment,
            "user": self.user_email,
            "variables": run.variables,
            "params": run.params,
            "status": run.status,
            "output": run.output,
            "error_status": run.error_status,
            "error_message": run.error_message,
            "input_tokens": run.input_tokens,
            "output_tokens": run.output_tokens,
            "latency_ms": run.latency_ms,
            "time_to_first_token_ms": run.time_to_first_token_ms,
            "cost_usd": run.cost_usd,
            "compare_group": run.compare_group,
            "usage_id": run.usage_id,
            "created_at": run.created_at,
        }


def run_history(prompt_id: uuid.UUID, limit: int = HISTORY_LIMIT) -> list[HistoryEntry]:
    """The last ``limit`` runs of the prompt's family (every version), newest first."""
    prompt = db.session.get(Prompt, prompt_id)
    if prompt is None:
        raise NotFound(f"prompt {prompt_id} does not exist")
    family = (
        PromptRun.feature_id.is_(None)
        if prompt.feature_id is None
        else PromptRun.feature_id == prompt.feature_id
    )
    rows = db.session.execute(
        select(PromptRun, User.email)
        .outerjoin(User, User.id == PromptRun.user_id)
        .where(family, PromptRun.prompt_name == prompt.name)
        .order_by(PromptRun.created_at.desc(), PromptRun.id)
        .limit(limit)
    ).all()
    return [HistoryEntry(run, email) for run, email in rows]
