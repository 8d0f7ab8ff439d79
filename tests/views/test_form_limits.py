"""Every length and range rule of the input schemas, refused on its page form: the page
comes back (400) with a message naming the field by its label and saying the limit,
never a bare status (issue 16 item 5)."""

from __future__ import annotations

import html
import re

import pytest

from tests import factories
from tests.conftest import csrf_token

LONG = 10_001


@pytest.fixture
def catalog(db):
    openai = factories.provider("openai", display_name="OpenAI")
    gpt = factories.model(openai, "gpt-4", display_name="GPT-4")
    chatbot = factories.feature("chatbot", display_name="AI Chatbot")
    prompt = factories.prompt("greeting", feature_id=chatbot.id)
    db.session.commit()
    return {"provider": openai, "model": gpt, "feature": chatbot, "prompt": prompt}


def _model_form(catalog, **changes):
    return {
        "name": "gpt-5",
        "display_name": "GPT-5",
        "provider_id": str(catalog["provider"].id),
        "model_type": "llm",
        "status": "active",
        "input_price_per_million": "1",
        "output_price_per_million": "2",
        **changes,
    }


def _provider_form(**changes):
    return {
        "name": "anthropic",
        "display_name": "Anthropic",
        "provider_type": "anthropic",
        "status": "active",
        **changes,
    }


def _budget_form(**changes):
    return {
        "name": "Monthly",
        "period_type": "monthly",
        "budget_amount": "100",
        "alert_threshold": "0.8",
        "start_date": "2026-01-01",
        "end_date": "2026-12-31",
        "enforcement": "observe",
        **changes,
    }


def _experiment_form(catalog, **changes):
    return {
        "name": "Tone",
        "feature_id": str(catalog["feature"].id),
        "experiment_type": "a_b_test",
        "primary_metric": "converted",
        "alpha": "0.05",
        "variant_0_id": "control",
        "variant_0_name": "Control",
        "variant_1_id": "treatment",
        "variant_1_name": "Treatment",
        **changes,
    }


# (case, url, form, the message the page must show)
CASES = [
    (
        "feature name",
        "/features",
        lambda c: {"name": "a" * 101, "display_name": "X"},
        "Name must be at most 100 characters",
    ),
    (
        "feature display name",
        "/features",
        lambda c: {"name": "x", "display_name": "a" * 201},
        "Display name must be at most 200 characters",
    ),
    (
        "feature description",
        "/features",
        lambda c: {"name": "x", "display_name": "X", "description": "a" * LONG},
        "Description must be text of at most 10,000 characters",
    ),
    (
        "user display name",
        "/users",
        lambda c: {"email": "a@example.com", "role": "viewer", "display_name": "a" * 500},
        "Display name must be at most 200 characters",
    ),
    (
        "model name",
        "/models",
        lambda c: _model_form(c, name="a" * 201),
        "Name must be at most 200 characters",
    ),
    (
        "model display name",
        "/models",
        lambda c: _model_form(c, display_name="a" * 201),
        "Display name must be at most 200 characters",
    ),
    ("model type", "/models", lambda c: _model_form(c, model_type="a" * 101), "Type must "),
    (
        "model version",
        "/models",
        lambda c: _model_form(c, version="a" * 51),
        "Version must be at most 50 characters",
    ),
    (
        "model price",
        "/models",
        lambda c: _model_form(c, input_price_per_million="1000000"),
        "Input, per 1M tokens must be below 1,000,000",
    ),
    (
        "model negative price",
        "/models",
        lambda c: _model_form(c, price_per_request="-1"),
        "Per request must not be negative",
    ),
    (
        "model capabilities",
        "/models",
        lambda c: _model_form(c, capabilities="a" * 51),
        "Capabilities must be ",
    ),
    (
        "provider name",
        "/providers",
        lambda c: _provider_form(name="a" * 201),
        "Name must be at most 200 characters",
    ),
    (
        "provider display name",
        "/providers",
        lambda c: _provider_form(display_name="a" * 201),
        "Display name must be at most 200 characters",
    ),
    (
        "provider type",
        "/providers",
        lambda c: _provider_form(provider_type="a" * 101),
        "must be at most 100 characters",
    ),
    (
        "provider endpoint",
        "/providers",
        lambda c: _provider_form(api_endpoint="https://" + "a" * 2000),
        "2,000 characters",
    ),
    (
        "provider check url",
        "/providers",
        lambda c: _provider_form(health_check_url="https://" + "a" * 2000),
        "2,000 characters",
    ),
    (
        "provider check timeout",
        "/providers",
        lambda c: _provider_form(health_check_url="https://x.example", health_check_timeout="31"),
        "at most 30",
    ),
    (
        "prompt name",
        "/prompts",
        lambda c: {"name": "a" * 201, "content": "Hi"},
        "Name must be at most 200 characters",
    ),
    (
        "prompt description",
        "/prompts",
        lambda c: {"name": "p", "content": "Hi", "description": "a" * LONG},
        "Description must be text of at most 10,000 characters",
    ),
    (
        "prompt tags",
        "/prompts",
        lambda c: {"name": "p", "content": "Hi", "tags": "a" * 51},
        "Tags must be at most 30 tags of at most 50 characters",
    ),
    (
        "prompt content",
        "/prompts",
        lambda c: {"name": "p", "content": "a" * 100_001},
        "Content must be at most 100,000",
    ),
    (
        "prompt version content",
        "/prompts/{prompt}/content",
        lambda c: {"content": "a" * 100_001},
        "at most 100,000 characters",
    ),
    (
        "prompt details description",
        "/prompts/{prompt}/details",
        lambda c: {"description": "a" * LONG, "tags": ""},
        "at most 10,000 characters",
    ),
    (
        "prompt details tags",
        "/prompts/{prompt}/details",
        lambda c: {"description": "", "tags": "a" * 51},
        "at most 50 characters",
    ),
    (
        "prompt duplicate name",
        "/prompts/{prompt}/duplicate",
        lambda c: {"name": "a" * 201},
        "200 characters",
    ),
    (
        "budget name",
        "/budgets",
        lambda c: _budget_form(name="a" * 201),
        "Name must be at most 200 characters",
    ),
    (
        "budget description",
        "/budgets",
        lambda c: _budget_form(description="a" * 5001),
        "Description must be at most 5,000 characters",
    ),
    (
        "budget amount",
        "/budgets",
        lambda c: _budget_form(budget_amount="100000000"),
        "Amount must be greater than 0 and at most 99,999,999.99",
    ),
    (
        "budget threshold",
        "/budgets",
        lambda c: _budget_form(alert_threshold="1.5"),
        "Alert threshold must be greater than 0 and at most 1",
    ),
    (
        "api key name",
        "/api-keys",
        lambda c: {"name": "a" * 201, "environment": "production", "scopes": "usage:write"},
        "Name must be at most 200 characters",
    ),
    (
        "experiment name",
        "/experiments",
        lambda c: _experiment_form(c, name="a" * 201),
        "Name must be at most 200 characters",
    ),
    (
        "experiment description",
        "/experiments",
        lambda c: _experiment_form(c, description="a" * LONG),
        "at most 10,000 characters",
    ),
    (
        "experiment metric",
        "/experiments",
        lambda c: _experiment_form(c, primary_metric="a" * 101),
        "Primary metric ",
    ),
    (
        "experiment alpha",
        "/experiments",
        lambda c: _experiment_form(c, alpha="0.5"),
        "Alpha must be a significance level above 0 and at most 0.2",
    ),
    (
        "experiment variant id",
        "/experiments",
        lambda c: _experiment_form(c, variant_0_id="a" * 101),
        "Id must be at most 100 characters",
    ),
    (
        "experiment variant name",
        "/experiments",
        lambda c: _experiment_form(c, variant_0_name="a" * 201),
        "200 characters",
    ),
]


def _visible_text(page: str) -> str:
    """The page as a reader sees it: tags removed, entities decoded, spaces collapsed."""
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize(
    ("url", "form", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_a_refused_form_names_the_field_and_the_limit(
    admin_client, catalog, url, form, message, htmx
):
    headers = {"HX-Request": "true"} if htmx else {}
    target = url.format(prompt=catalog["prompt"].id)
    data = {"csrf_token": csrf_token(admin_client, "/"), **form(catalog)}
    response = admin_client.post(target, data=data, headers=headers)
    if response.status_code == 302:  # an action's refusal: post/redirect/get (item 7)
        response = admin_client.get(response.location)
        assert 'class="flash flash-error" role="alert"' in response.get_data(as_text=True)
    else:
        assert response.status_code in (400, 409), response.status_code
    text = _visible_text(response.get_data(as_text=True))
    assert message in text, text[:3000]
