"""An experiment in a real browser, from draft to promoted: create it with the form,
start, pause and resume it, let an application record results, read the drawn chart
and the verdict, and promote the winning prompt version — with no console error."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from webapp.models import Experiment, Prompt
from webapp.services.core.actor import Actor
from webapp.services.experiments import lifecycle as experiments

pytestmark = pytest.mark.browser


@pytest.fixture
def prompts(db):
    feature = factories.feature("chatbot", display_name="AI Chatbot")
    current = factories.prompt("greeting", 1, feature_id=feature.id, is_active=True)
    friendlier = factories.prompt("greeting", 2, feature_id=feature.id, content="Hi {{name}}!")
    db.session.commit()
    return current, friendlier


def batch(variant: str, successes: int, n: int) -> list[dict]:
    return [
        {
            "variant_id": variant,
            "metric_name": "converted",
            "metric_value": 1 if index < successes else 0,
            "session_id": str(uuid.uuid4()),
        }
        for index in range(n)
    ]


def click_and_wait(page, button: str, text: str) -> None:
    page.locator("#lifecycle button", has_text=button).click()
    page.wait_for_selector(f"text={text}")


def test_experiment_from_draft_to_promoted(
    live_server, new_page, page_errors, admin_user, db, prompts
):
    current, friendlier = prompts
    page = new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    sign_in(page, live_server, admin_user.email)

    page.goto(f"{live_server}/experiments")
    page.click("text=New experiment")
    page.fill("#experiment-name", "Greeting v2")
    assert page.locator("#variant_0_prompt_id option").all_inner_texts() == [
        "Choose the feature first"
    ]
    page.select_option("#experiment-feature", label="AI Chatbot")
    # The form comes back offering this feature's prompt versions, the name kept.
    page.wait_for_selector("#variant_0_prompt_id option:has-text('greeting v1')", state="attached")
    assert page.input_value("#experiment-name") == "Greeting v2"
    screenshot(page, "experiment-form-feature-chosen-1440x900.png")
    page.select_option("#experiment-type", "prompt_testing")
    page.fill("#experiment-metric", "converted")
    page.fill("#variant_0_id", "control")
    page.fill("#variant_0_name", "Current")
    page.select_option("#variant_0_prompt_id", label="greeting v1 (active)")
    page.fill("#variant_1_id", "v2")
    page.fill("#variant_1_name", "Friendlier")
    page.select_option("#variant_1_prompt_id", label="greeting v2")
    page.click("text=Save draft")
    page.wait_for_selector("text=Experiment Greeting v2 created as a draft.")
    assert "draft" in page.locator("h1 .status").inner_text()

    click_and_wait(page, "Start", "Greeting v2 is now running.")
    click_and_wait(page, "Pause", "Greeting v2 is now paused.")
    click_and_wait(page, "Resume", "Greeting v2 is now running.")

    # The application records results while the experiment runs.
    experiment = db.session.scalar(select(Experiment))
    experiments.record_results(
        Actor.cli(), experiment.id, batch("control", 50, 500) + batch("v2", 110, 500)
    )
    page.reload()
    page.wait_for_selector(".chart .main-svg")  # the error-bar chart was drawn
    assert "Friendlier beats the control" in page.locator("#verdict").inner_text()
    assert "Traffic split matches" in page.locator("#verdict").inner_text()
    screenshot(page, "experiment-running-1440x900.png")

    page.locator("#lifecycle button", has_text="Promote Friendlier (v2)").click()
    page.wait_for_selector("#promotion")
    assert "completed" in page.locator("h1 .status").inner_text()
    assert "greeting v2 is now the active version" in page.locator("#promotion").inner_text()
    db.session.expire_all()
    assert db.session.get(Prompt, friendlier.id).is_active is True
    assert db.session.get(Prompt, current.id).is_active is False
    screenshot(page, "experiment-promoted-1440x900.png")

    page.goto(f"{live_server}/experiments")
    page.select_option("#experiment-status-filter", "completed")
    page.wait_for_url("**/experiments?status=completed")
    assert "Greeting v2" in page.locator("#experiment-results").inner_text()
    assert page_errors == []
