"""The playground on the prompt page (issue 18): the streamed run, refusals as one line,
the history partial; viewers see the history but no Run form."""

from __future__ import annotations

import json

import pytest

from tests.conftest import csrf_token
from tests.provider_server import ANSWER_PIECES
from tests.services.test_playground import (  # noqa: F401  (fixtures)
    KEY,
    private_urls,
    server,
    world,
)


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data(as_text=True).splitlines() if line]


def test_the_page_streams_a_run_and_refreshes_the_history(
    admin_client,
    db,
    world,  # noqa: F811
):
    page = admin_client.get(f"/prompts/{world.prompt.id}").get_data(as_text=True)
    assert 'id="playground-form"' in page and "js/playground.js" in page
    answer = admin_client.post(
        f"/prompts/{world.prompt.id}/playground/run",
        data={"var_name": "Ada", "environment": "development", "max_tokens": "30"},
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert answer.status_code == 200 and answer.mimetype == "application/x-ndjson"
    messages = lines(answer)
    assert [m["text"] for m in messages if m["type"] == "delta"] == ANSWER_PIECES
    done = messages[-1]
    assert done["type"] == "done" and done["status"] == "success" and done["cost_usd"]
    assert KEY not in answer.get_data(as_text=True)
    history = admin_client.get(f"/prompts/{world.prompt.id}/playground/history")
    assert "Hello, Ada" in history.get_data(as_text=True)


@pytest.mark.parametrize(
    "form, words",
    [
        ({"environment": "development"}, "variables.name"),
        ({"var_name": "A", "temperature": "hot"}, "temperature"),
    ],
)
def test_refusals_come_back_as_one_line(
    admin_client,
    db,
    world,  # noqa: F811
    form,
    words,
):
    answer = admin_client.post(
        f"/prompts/{world.prompt.id}/playground/run",
        data=form,
        headers={"X-CSRFToken": csrf_token(admin_client, "/")},
    )
    assert answer.status_code == 400
    (message,) = lines(answer)
    assert message["type"] == "refused" and words in json.dumps(message)


def test_viewers_see_the_history_without_the_run_form(
    viewer_client,
    db,
    world,  # noqa: F811
):
    page = viewer_client.get(f"/prompts/{world.prompt.id}").get_data(as_text=True)
    assert "Run history" in page and 'id="playground-form"' not in page
    refused = viewer_client.post(
        f"/prompts/{world.prompt.id}/playground/run",
        data={"var_name": "A"},
        headers={"X-CSRFToken": csrf_token(viewer_client, "/")},
    )
    assert refused.status_code == 403
