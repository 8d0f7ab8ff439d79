"""Free JSON fields and the request JSON parser: sizes, depth, NaN and invalid Unicode
answer 400 naming the field, never 500 (issue 12, item 10), and prompt tests cannot
render unbounded output (item 9)."""

from __future__ import annotations

import pytest

from tests import factories
from tests.conftest import csrf_token
from webapp.services.core.json_values import MAX_JSON_FIELD_DEPTH, json_value_problem
from webapp.services.prompts.rendering import MAX_RENDERED_CHARS, render

API = "/api/platform/ai-management"


def send_raw(client, method, url, raw: str | bytes):
    return client.open(
        url,
        method=method,
        data=raw,
        content_type="application/json",
        headers={"X-CSRFToken": csrf_token(client, "/")},
    )


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "raw, field",
    [
        ('{"name": "x", "display_name": "X", "config": {"a": NaN}}', "body"),
        ('{"name": "x", "display_name": "X", "config": {"a": Infinity}}', "body"),
        ('{"name": "x", "display_name": "X", "config": {"a": -Infinity}}', "body"),
        ('{"name": "x", "display_name": "X", "config": {"a": 1e999}}', "config.a"),
        ('{"name": "x", "display_name": "X", "config": {"a": "\\ud800"}}', "config.a"),
        ('{"name": "x", "display_name": "X", "config": {"\\udfff": 1}}', "config"),
        ('{"name": "x", "config": ' + nested(100_000) + "}", "body"),
        ('{"name": "x", "config": {"a": ' + nested(500) + "}}", "config.a"),
    ],
)
def test_the_parser_refuses_what_json_or_the_database_cannot_hold(admin_client, raw, field):
    response = send_raw(admin_client, "POST", f"{API}/features", raw)
    body = response.get_json()
    assert response.status_code == 400, body
    (named,) = body["fields"]  # one field, named down to where the problem is
    assert named.startswith(field)


def test_results_batch_parser_refuses_nan_too(admin_client, db):
    response = send_raw(
        admin_client, "POST", f"{API}/experiments/{factories.feature().id}/results", "[NaN]"
    )
    assert response.status_code == 400 and response.get_json()["fields"] == {
        "body": "holds NaN, which is not a JSON number"
    }


def deep(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "config, problem",
    [
        ({"blob": "x" * (64 * 1024)}, "must be at most 64 KiB as JSON"),
        (deep(MAX_JSON_FIELD_DEPTH + 1), f"must not be nested deeper than {MAX_JSON_FIELD_DEPTH}"),
    ],
)
def test_feature_config_is_limited_in_size_and_depth(admin_client, db, config, problem):
    response = admin_client.post(
        f"{API}/features",
        json={"name": "x", "display_name": "X", "config": config},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    body = response.get_json()
    assert response.status_code == 400, body
    assert problem in body["fields"]["config"]


def test_a_config_at_the_limits_is_accepted(admin_client, db):
    response = admin_client.post(
        f"{API}/features",
        json={
            "name": "x",
            "display_name": "X",
            "model_type": "llm",
            "config": deep(MAX_JSON_FIELD_DEPTH),
        },
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert response.status_code == 201, response.get_json()


@pytest.mark.parametrize(
    "url, body, field",
    [
        ("/models", {"config": {"a": "x" * 70_000}}, "config"),
        ("/models", {"performance_metrics": deep(30)}, "performance_metrics"),
        ("/providers", {"config": {"a": "x" * 70_000}}, "config"),
        ("/features/{feature}/assignments", {"config_overrides": deep(30)}, "config_overrides"),
    ],
)
def test_every_free_json_field_is_checked(admin_client, db, url, body, field):
    feature = factories.feature()
    provider = factories.provider()
    model = factories.model(provider)
    db.session.commit()
    if url == "/models":
        body = {"name": "m2", "display_name": "M2", "provider_id": str(provider.id), **body}
    elif url == "/providers":
        body = {"name": "p2", "display_name": "P2", "provider_type": "llm", **body}
    else:
        body = {"model_id": str(model.id), **body}
    response = admin_client.post(
        API + url.format(feature=feature.id),
        json=body,
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    answer = response.get_json()
    assert response.status_code == 400, answer
    assert field in answer["fields"], answer


def test_the_validator_walks_without_recursion():
    value: list = []
    for _ in range(100_000):
        value = [value]
    assert json_value_problem(value)[1] == "must not be nested deeper than 20 levels"
    assert json_value_problem({"a": [1, float("nan")]}) == (
        "a.1",
        "must hold finite numbers only (no NaN or Infinity)",
    )
    assert json_value_problem({"a": {1, 2}}) == ("a", "must hold JSON values only")


# --- item 9: rendered prompts are capped --------------------------------------------------


def test_render_counts_before_it_builds():
    result = render("{{a}}" * 20_000, {}, {"a": "x" * 10_000})
    assert not result.ok and result.rendered == ""
    assert result.oversize_chars == 200_000_000
    assert "at most 200,000 are rendered" in result.errors[0]
    fits = render("{{a}}" * 20, {}, {"a": "x" * (MAX_RENDERED_CHARS // 20)})
    assert fits.ok and len(fits.rendered) == MAX_RENDERED_CHARS


@pytest.fixture
def big_prompt(db):
    prompt = factories.prompt("big", content="{{a}}" * 20_000)
    db.session.commit()
    return prompt


def test_the_prompt_test_api_answer_is_bounded(admin_client, big_prompt):
    answer = admin_client.post(
        f"{API}/prompts/{big_prompt.id}/test",
        json={"variables": {"a": "x" * 10_000}},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert answer.status_code == 200
    assert len(answer.get_data()) < 10_000
    assert answer.get_json()["data"]["valid"] is False


def test_the_prompt_test_form_is_bounded(viewer_client, big_prompt):
    page = viewer_client.get(f"/prompts/{big_prompt.id}/test", query_string={"var_a": "x" * 2000})
    assert page.status_code == 200 and len(page.get_data()) < 1_000_000
    assert "at most 200,000 are rendered" in page.get_data(as_text=True)
