"""Playground runs (issue 18): each protocol's adapter on its official SDK against a local
server that speaks it (tests/provider_server.py), every provider failure in plain words,
and POST /prompts/<id>/run recording usage, the run and the audit row."""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests import factories
from tests.conftest import csrf_token
from tests.provider_server import ANSWER, INPUT_TOKENS, OUTPUT_TOKENS, ProviderServer
from webapp.models import AuditLog, PromptRun, UsageDailyRollup, UsageLog
from webapp.services.catalog import providers
from webapp.services.core.actor import Actor
from webapp.services.playground import anthropic_messages, gemini, openai_chat
from webapp.services.playground.calls import CallFailed, CallRequest, Delta, Finished

API = "/api/platform/ai-management"
KEY = "sk-playground-secret-0042"


@pytest.fixture(scope="module")
def server():
    running = ProviderServer().start()
    yield running
    running.stop()


@pytest.fixture
def private_urls(app, monkeypatch):
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_URLS", True)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call_request(base_url: str, model: str = "model-a", **fields) -> CallRequest:
    fields.setdefault("allow_private", True)
    fields.setdefault("timeout_seconds", 5)
    return CallRequest(
        base_url=base_url,
        api_key=KEY,
        headers=fields.pop("headers", {"X-Org": "org-7"}),
        model=model,
        model_type=fields.pop("model_type", "llm"),
        prompt="Hello Ada",
        params=fields.pop("params", {"temperature": 0.3, "max_tokens": 50}),
        **fields,
    )


ADAPTERS = {
    "openai": (openai_chat.call, "/v1"),
    "anthropic": (anthropic_messages.call, ""),
    "gemini": (gemini.call, ""),
}


@pytest.mark.parametrize("protocol", sorted(ADAPTERS))
def test_each_adapter_streams_the_answer_and_its_usage(server, protocol):
    adapter, suffix = ADAPTERS[protocol]
    server.requests.clear()
    events = list(adapter(call_request(server.url + suffix)))
    pieces = [event.text for event in events if isinstance(event, Delta)]
    assert len(pieces) >= 4 and "".join(pieces) == ANSWER
    assert events[-1] == Finished(INPUT_TOKENS, OUTPUT_TOKENS)
    sent = server.requests[-1]
    headers = {name.lower(): value for name, value in sent["headers"].items()}
    assert headers["x-org"] == "org-7"
    if protocol == "openai":
        assert headers["authorization"] == f"Bearer {KEY}"
        assert sent["body"]["stream"] is True and sent["body"]["temperature"] == 0.3
        assert sent["body"]["max_tokens"] == 50
    elif protocol == "anthropic":
        # This SDK version sends the key as a bearer token (older ones as x-api-key).
        assert KEY in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
        assert sent["body"]["max_tokens"] == 50 and sent["body"]["temperature"] == 0.3
    else:
        assert headers["x-goog-api-key"] == KEY and KEY not in sent["path"]
        assert sent["path"].endswith(":streamGenerateContent?alt=sse")
        assert sent["body"]["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 50}


def test_embeddings_answer_the_vector_size(server):
    events = list(openai_chat.call(call_request(server.url + "/v1", model_type="embedding")))
    assert events[0] == Delta(
        "16 dimensions: [0.0000, 0.0100, 0.0200, 0.0300, 0.0400, 0.0500, 0.0600, 0.0700, …]"
    )
    assert events[-1] == Finished(INPUT_TOKENS, 0)


@pytest.mark.parametrize("protocol", sorted(ADAPTERS))
@pytest.mark.parametrize(
    "status, words",
    [
        (401, "refused the API key (401)"),
        (403, "may not use this model or endpoint (403)"),
        (404, "does not know the model fail-404"),
        (429, "rate limiting this key (429). Retry after 7 s."),
        (500, "failed to answer (500)"),
        (503, "failed to answer (503)"),
    ],
)
def test_provider_errors_in_plain_words_with_the_providers_message(server, protocol, status, words):
    adapter, suffix = ADAPTERS[protocol]
    with pytest.raises(CallFailed) as failed:
        list(adapter(call_request(server.url + suffix, model=f"fail-{status}")))
    error = failed.value
    assert error.status == status and words in error.reason
    assert error.message and error.message in error.reason  # the provider's own words
    assert KEY not in error.reason
    if status == 429:
        assert error.retry_after == "7"


@pytest.mark.parametrize("protocol", sorted(ADAPTERS))
def test_connection_refused_and_timeouts(server, protocol):
    adapter, suffix = ADAPTERS[protocol]
    with pytest.raises(CallFailed) as refused:
        list(adapter(call_request(f"http://127.0.0.1:{closed_port()}{suffix}")))
    assert refused.value.kind == "connection_refused" and refused.value.status is None
    assert "connection refused" in refused.value.reason
    with pytest.raises(CallFailed) as slow:
        list(adapter(call_request(server.url + suffix, model="slow", timeout_seconds=0.5)))
    assert slow.value.kind == "timeout" and "within 0.5 s" in slow.value.reason


@pytest.mark.parametrize("protocol", sorted(ADAPTERS))
def test_private_addresses_are_refused_at_call_time_too(server, protocol):
    adapter, suffix = ADAPTERS[protocol]
    with pytest.raises(CallFailed) as refused:
        list(adapter(call_request(server.url + suffix, allow_private=False)))
    assert refused.value.kind == "url_not_allowed"
    assert "ALLOW_PRIVATE_PROVIDER_URLS" in refused.value.reason
    with pytest.raises(CallFailed) as metadata:
        list(adapter(call_request("http://169.254.169.254" + suffix)))
    assert metadata.value.kind == "url_not_allowed"


@pytest.mark.parametrize("protocol", sorted(ADAPTERS))
def test_tls_failure_is_named(server, protocol):
    # A TLS handshake with a plain-HTTP server fails as a broken TLS setup does.
    adapter, suffix = ADAPTERS[protocol]
    with pytest.raises(CallFailed) as failed:
        list(adapter(call_request(server.url.replace("http:", "https:") + suffix)))
    assert failed.value.kind == "tls_error" and failed.value.status is None
    assert "TLS connection to 127.0.0.1 failed" in failed.value.reason


# --- POST /prompts/<id>/run ----------------------------------------------------------


@pytest.fixture
def world(db, server, private_urls):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    openai = factories.provider("openai", api_endpoint=server.url + "/v1")
    claude = factories.provider("anthropic", api_endpoint=server.url)
    gpt = factories.model(
        openai,
        "gpt-test",
        input_price_per_million=Decimal("2"),
        output_price_per_million=Decimal("8"),
        config={"temperature": 0.9, "max_tokens": 100},
    )
    sonnet = factories.model(claude, "claude-test")
    broken = factories.model(openai, "fail-429")
    factories.assignment(
        feature, gpt, environment="development", config_overrides={"temperature": 0.1}
    )
    prompt = factories.prompt(
        "greeting",
        1,
        feature_id=feature.id,
        content="Say hello to {{name}}",
        variables={"name": {"type": "string"}},
    )
    db.session.commit()
    for provider in (openai, claude):
        providers.update_provider(Actor.cli(), provider.id, {"credentials": {"api_key": KEY}})
    return type(
        "World",
        (),
        {
            "feature": feature,
            "gpt": gpt,
            "sonnet": sonnet,
            "broken": broken,
            "prompt": prompt,
            "openai": openai,
        },
    )


def post(client, url, body):
    return client.post(url, json=body, headers={"X-CSRFToken": csrf_token(client, "/")})


def test_a_run_answers_figures_and_is_recorded_as_usage_run_and_audit(
    admin_client, admin_user, db, world, server
):
    server.requests.clear()
    answer = post(
        admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "Ada"}}
    )
    assert answer.status_code == 200, answer.get_json()
    data = answer.get_json()["data"]
    assert data["output"] == ANSWER
    assert (data["input_tokens"], data["output_tokens"]) == (INPUT_TOKENS, OUTPUT_TOKENS)
    # 12 × $2/M + 9 × $8/M = $0.000096
    assert data["cost_usd"] == "0.000096"
    assert data["latency_ms"] >= 0 and data["time_to_first_token_ms"] <= data["latency_ms"]
    sent = server.requests[-1]["body"]
    assert sent["messages"] == [{"role": "user", "content": "Say hello to Ada"}]
    assert sent["temperature"] == 0.1 and sent["max_tokens"] == 100  # overrides < config
    usage = db.session.scalars(
        select(UsageLog).where(UsageLog.id == uuid.UUID(data["usage_id"]))
    ).one()
    assert usage.event_metadata["source"] == "playground"
    assert usage.event_metadata["prompt_version"] == 1
    assert usage.user_id == admin_user.id and usage.prompt_id == world.prompt.id
    assert usage.environment == "development" and usage.feature_id == world.feature.id
    assert usage.cost_usd == Decimal("0.000096") and usage.status == "success"
    rollup = db.session.scalar(select(func.sum(UsageDailyRollup.cost_usd)))
    assert rollup == Decimal("0.000096")  # counted in spending and budgets
    run = db.session.get(PromptRun, uuid.UUID(data["run_id"]))
    assert (
        run.output == ANSWER and run.variables == {"name": "Ada"} and run.user_id == admin_user.id
    )
    audit = db.session.scalars(select(AuditLog).where(AuditLog.action == "prompt.run")).one()
    assert audit.new_values["run_id"] == data["run_id"] and KEY not in str(audit.new_values)
    history = admin_client.get(f"{API}/prompts/{world.prompt.id}/runs").get_json()["data"]
    assert [h["id"] for h in history] == [data["run_id"]] and history[0]["user"] == admin_user.email


def test_the_form_chooses_the_model_and_parameters(admin_client, db, world, server):
    server.requests.clear()
    answer = post(
        admin_client,
        f"{API}/prompts/{world.prompt.id}/run",
        {
            "variables": {"name": "Ada"},
            "model_id": str(world.sonnet.id),
            "params": {"max_tokens": 20, "temperature": "0.5"},
        },
    )
    assert answer.status_code == 200, answer.get_json()
    sent = server.requests[-1]
    assert sent["path"] == "/v1/messages" and sent["body"]["max_tokens"] == 20
    assert sent["body"]["temperature"] == 0.5


def test_a_provider_failure_is_a_502_with_its_status_and_message_and_an_error_run(
    admin_client, db, world
):
    answer = post(
        admin_client,
        f"{API}/prompts/{world.prompt.id}/run",
        {"variables": {"name": "Ada"}, "model_id": str(world.broken.id)},
    )
    assert answer.status_code == 502
    body = answer.get_json()
    assert "rate limiting" in body["error"]
    details = body["details"]
    assert details["provider_status"] == 429 and details["retry_after"] == "7"
    assert details["provider_message"] == "Rate limit reached for requests."
    run = db.session.get(PromptRun, uuid.UUID(details["run_id"]))
    assert run.status == "error" and run.error_status == 429
    usage = db.session.scalars(
        select(UsageLog).where(UsageLog.id == uuid.UUID(details["usage_id"]))
    ).one()
    assert usage.status == "error" and usage.event_metadata["source"] == "playground"


def test_a_run_refused_before_sending_is_no_usage_and_no_provider_outcome(
    admin_client, db, world, app, monkeypatch
):
    # The endpoint (a loopback address) became disallowed after it was saved: the call
    # is refused before a byte leaves, so the provider's health and spend never see it.
    monkeypatch.setitem(app.config, "ALLOW_PRIVATE_PROVIDER_URLS", False)
    before = db.session.scalar(select(func.count()).select_from(UsageLog))
    answer = post(
        admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "Ada"}}
    )
    assert answer.status_code == 502
    details = answer.get_json()["details"]
    assert details["kind"] == "url_not_allowed" and details["usage_id"] is None
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == before
    run = db.session.get(PromptRun, uuid.UUID(details["run_id"]))
    assert run.status == "error" and run.usage_id is None


def test_only_models_of_the_features_type_are_offered_and_run(admin_client, db, world):
    from webapp.services.playground.runs import models_to_run

    embed = factories.model(world.openai, "embed-test", model_type="embedding")
    db.session.commit()
    offered = {model.name for model, _ in models_to_run(world.prompt)}
    assert "embed-test" not in offered and "gpt-test" in offered
    before = db.session.scalar(select(func.count()).select_from(UsageLog))
    refused = post(
        admin_client,
        f"{API}/prompts/{world.prompt.id}/run",
        {"variables": {"name": "Ada"}, "model_id": str(embed.id)},
    )
    assert refused.status_code == 400
    assert "embedding" in refused.get_json()["fields"]["model_id"]
    assert db.session.scalar(select(func.count()).select_from(UsageLog)) == before


def test_a_render_error_is_400_naming_the_variables(admin_client, db, world):
    answer = post(admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {}})
    assert answer.status_code == 400
    assert "variables.name" in answer.get_json()["fields"]
    assert db.session.scalar(select(func.count()).select_from(PromptRun)) == 0


@pytest.mark.parametrize(
    "body, field",
    [
        ({"variables": "x"}, "variables"),
        ({"variables": {"name": "A"}, "environment": "qa"}, "environment"),
        ({"variables": {"name": "A"}, "params": {"temperature": 9}}, "params"),
        ({"variables": {"name": "A"}, "params": {"api_key": "x"}}, "params"),
        ({"variables": {"name": "A"}, "model_id": "nope"}, "model_id"),
        ({"variables": {"name": "A"}, "model_id": str(uuid.uuid4())}, "model_id"),
        ({"variables": {"name": "A"}, "environment": "production"}, "model_id"),
        ({"variables": {"name": "A"}, "colour": 1}, "colour"),
    ],
)
def test_wrong_input_names_the_field(admin_client, db, world, body, field):
    answer = post(admin_client, f"{API}/prompts/{world.prompt.id}/run", body)
    assert answer.status_code == 400, answer.get_json()
    assert field in answer.get_json()["fields"]


def test_a_hard_budget_that_denies_the_feature_denies_runs(admin_client, db, world):
    today = datetime.now(UTC).date()
    factories.budget(
        feature_id=world.feature.id,
        budget_amount=Decimal("0.01"),
        enforcement="hard",
        start_date=today - timedelta(days=1),
        end_date=today + timedelta(days=30),
    )
    db.session.add(
        UsageLog(
            feature_id=world.feature.id,
            model_id=world.gpt.id,
            status="success",
            cost_usd=Decimal("1"),
            created_at=datetime.now(UTC),
        )
    )
    db.session.commit()
    from webapp.services.usage.rollup import rebuild_rollup

    rebuild_rollup(Actor.cli(), None)
    answer = post(
        admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "A"}}
    )
    assert answer.status_code == 409, answer.get_json()
    assert "hard budget covering AI Chatbot is exhausted" in answer.get_json()["details"]
    assert db.session.scalar(select(func.count()).select_from(PromptRun)) == 0


def test_viewers_see_the_history_but_cannot_run(viewer_client, db, world):
    answer = post(
        viewer_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "A"}}
    )
    assert answer.status_code == 403
    assert viewer_client.get(f"{API}/prompts/{world.prompt.id}/runs").status_code == 200


def test_no_credentials_and_unreadable_credentials_are_clear(
    admin_client, app, db, world, monkeypatch
):
    providers.update_provider(
        Actor.cli(), world.openai.id, {"credentials": None, "api_endpoint": None}
    )
    answer = post(
        admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "A"}}
    )
    assert answer.status_code == 409 and "has no API key" in answer.get_json()["details"]
    from cryptography.fernet import Fernet

    providers.update_provider(Actor.cli(), world.openai.id, {"credentials": {"api_key": KEY}})
    monkeypatch.setitem(app.config, "CREDENTIALS_KEY", Fernet.generate_key().decode())
    answer = post(
        admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "A"}}
    )
    assert answer.status_code == 409 and "cannot be decrypted" in answer.get_json()["details"]
    assert KEY not in answer.get_data(as_text=True)


def test_the_csv_export_never_carries_the_key(admin_client, db, world):
    post(admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "Ada"}})
    answer = admin_client.get(f"{API}/usage.csv")
    assert answer.status_code == 200
    exported = answer.get_data(as_text=True)
    assert "playground" in exported or ANSWER not in exported  # the row is there
    assert KEY not in exported


def test_an_unexpected_sdk_error_is_an_error_run_not_a_500(admin_client, db, world, monkeypatch):
    from webapp.services.playground import runs

    def broken(request):
        yield Delta("partial")
        raise KeyError(KEY)  # text that must not reach the answer or the log

    monkeypatch.setitem(runs.PROTOCOLS, "openai", (broken, None))
    answer = post(
        admin_client, f"{API}/prompts/{world.prompt.id}/run", {"variables": {"name": "A"}}
    )
    assert answer.status_code == 502
    body = answer.get_json()
    assert "could not be read (KeyError)" in body["error"] and KEY not in answer.get_data(
        as_text=True
    )
    run = db.session.get(PromptRun, uuid.UUID(body["details"]["run_id"]))
    assert run.status == "error" and run.output == "partial"
