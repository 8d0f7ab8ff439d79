"""The playground in a real browser (issue 18): type a variable, run, watch the answer
stream in, compare two versions side by side, see the runs in the history; the CSP
stays intact (no console errors)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests import factories
from tests.browser.conftest import screenshot
from tests.browser.test_console import sign_in
from tests.provider_server import ANSWER, ProviderServer
from tests.services.test_playground import private_urls, world  # noqa: F401  (fixtures)
from webapp.models import UsageLog

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server():
    # Each piece of the answer a little apart, so the page shows it arriving.
    running = ProviderServer(piece_delay=0.4).start()
    yield running
    running.stop()


def test_run_stream_compare_and_history(live_server, new_page, page_errors, admin_user, db, world):  # noqa: F811
    factories.prompt(
        "greeting",
        2,
        feature_id=world.feature.id,
        content="Greet {{name}} warmly",
        variables={"name": {"type": "string"}},
    )
    db.session.commit()
    page = new_page()
    sign_in(page, live_server, admin_user.email)
    page.goto(f"{live_server}/prompts/{world.prompt.id}")
    page.fill("#pg-var-name", "Ada")
    page.click('[data-playground="run"]')
    # While the run is going, neither button starts another (paid) run.
    assert page.locator('[data-playground="run"]').is_disabled()
    assert page.locator('[data-playground="compare"]').is_disabled()
    output = page.locator("#pane-a .pane-output")
    figures = page.locator("#pane-a .pane-figures")
    # Part of the answer is on the page while the run is still going.
    page.wait_for_function(
        "() => { const o = document.querySelector('#pane-a .pane-output').textContent;"
        " const f = document.querySelector('#pane-a .pane-figures').textContent;"
        " return o.length > 0 && f === 'Running…'; }"
    )
    assert output.inner_text() != ANSWER
    page.wait_for_function(
        "() => document.querySelector('#pane-a .pane-figures').textContent.includes('tokens')"
    )
    assert output.inner_text() == ANSWER
    assert page.locator('[data-playground="run"]').is_enabled()
    assert "12 in / 9 out tokens" in figures.inner_text() and "first token" in figures.inner_text()
    page.wait_for_selector("#run-history tbody tr")

    page.select_option("#pg-compare-version", label="v2")
    page.click('[data-playground="compare"]')
    for pane in ("a", "b"):
        page.wait_for_function(
            f"() => document.querySelector('#pane-{pane} .pane-figures')"
            ".textContent.includes('tokens')"
        )
    assert "v2" in page.locator("#pane-b .pane-title").inner_text()
    page.wait_for_function("() => document.querySelectorAll('#run-history tbody tr').length === 3")
    history = page.locator("#run-history").inner_text()
    assert "v2" in history and "admin@example.com" in history
    screenshot(page, "playground-1440.png")
    sources = [row.event_metadata.get("source") for row in db.session.scalars(select(UsageLog))]
    assert sources == ["playground"] * 3  # counted in spending

    # A refused run speaks the form's labels, not the API's field names.
    errors_before = len(page_errors)
    page.fill("#pg-temperature", "7")
    page.fill("#pg-var-name", "")
    page.click('[data-playground="run"]')
    page.wait_for_selector("#pane-a.run-error")
    refusal = figures.inner_text()
    assert "Temperature: must be between 0 and 2" in refusal, refusal
    assert "params" not in refusal
    page.fill("#pg-temperature", "")
    page.click('[data-playground="run"]')
    page.wait_for_selector("#pane-a.run-error")
    assert figures.inner_text().startswith("name: has no value"), figures.inner_text()
    # The browser logs each refusal's 400; nothing else went wrong meanwhile.
    refused = "Failed to load resource: the server responded with a status of 400 (BAD REQUEST)"
    assert page_errors[errors_before:] == [refused, refused]
    del page_errors[errors_before:]

    phone = new_page(width=390, height=844)
    sign_in(phone, live_server, admin_user.email)
    phone.goto(f"{live_server}/prompts/{world.prompt.id}")
    phone.fill("#pg-var-name", "Grace")
    phone.select_option("#pg-compare-version", label="v2")
    phone.click('[data-playground="compare"]')
    phone.wait_for_function(
        "() => document.querySelector('#pane-b .pane-figures').textContent.includes('tokens')"
    )
    screenshot(phone, "playground-390.png")
    assert page_errors == []


def test_the_provider_form_sets_a_key_it_never_shows_again(
    live_server, new_page, page_errors, admin_user, db
):
    provider = factories.provider("openai", display_name="OpenAI", provider_type="openai")
    db.session.commit()
    for width in (1440, 390):
        page = new_page(width=width, height=900)
        sign_in(page, live_server, admin_user.email)
        page.goto(f"{live_server}/providers/{provider.id}")
        page.fill("#provider-api_key", f"sk-browser-secret-{width}")
        page.fill("#provider-credential_headers", "OpenAI-Organization: org-1")
        page.click(f'form[action="/providers/{provider.id}"] button[type="submit"]')
        page.wait_for_selector(f"text=Set, ending …{str(width)[-4:].rjust(4, '-')}")
        html = page.content()
        assert f"sk-browser-secret-{width}" not in html and "org-1" not in html
        assert page.input_value("#provider-api_key") == ""
        screenshot(page, f"provider-credentials-{width}.png")
    assert page_errors == []
