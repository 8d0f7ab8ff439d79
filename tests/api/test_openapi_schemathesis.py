"""schemathesis against the admin API's own OpenAPI document, loaded from the WSGI app:
every operation, signed in as a platform admin (session cookie + X-CSRFToken), a bounded
number of generated requests each. Checks: no 5xx, and every answer's status code, content
type and body conform to the document.

The database holds the seed and a little demo data, and a path id is, half the time, the
id of a row that exists, so the generated bodies reach the services rather than a 404."""

from __future__ import annotations

import contextvars
import os
from datetime import UTC, datetime

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token
from webapp.api.openapi import build_document
from webapp.cli.demo_data import load_demo_data
from webapp.cli.seed import seed_defaults
from webapp.models import AIModel, ApiKey, Budget, Experiment, Feature, Prompt, Provider
from webapp.services.core.actor import Actor

pytestmark = pytest.mark.schemathesis

DOCUMENT = "/api/platform/ai-management/openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Requests per operation: 25 keeps the run near two minutes on 2 cores; a deeper run:
# SCHEMATHESIS_EXAMPLES=200 pytest tests/api/test_openapi_schemathesis.py
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))

ID_OF = {
    "feature_id": Feature,
    "model_id": AIModel,
    "provider_id": Provider,
    "prompt_id": Prompt,
    "experiment_id": Experiment,
    "budget_id": Budget,
    "key_id": ApiKey,
}


@pytest.fixture
def existing_ids(db) -> dict[str, list[str]]:
    """The seed and some demo usage, health checks, prompts and an experiment."""
    seed_defaults(Actor.cli(), datetime.now(UTC).date())
    load_demo_data(Actor.cli(), datetime.now(UTC), days=3, requests=300)
    factories.api_key(name="demo application")
    db.session.commit()
    return {
        name: [str(row_id) for row_id in db.session.scalars(select(model.id))]
        for name, model in ID_OF.items()
    }


def signed_in(app, cookie: str):
    """The app, with the admin's session cookie on requests that carry none: schemathesis
    fetches the document with
    a fresh werkzeug client, which drops a Cookie header it is given (its own jar wins);
    each request runs in an empty context, as IsolatedClient's do."""

    def wsgi(environ, start_response):
        environ.setdefault("HTTP_COOKIE", cookie)
        return contextvars.Context().run(app, environ, start_response)

    return wsgi


@pytest.fixture
def admin_api(app, admin_client, existing_ids):
    """The schema loaded from the app with schemathesis' WSGI loader, signed in as the
    admin through the document's own security schemes: the session cookie and, for
    writes, the session's CSRF token in X-CSRFToken. (Without them schemathesis would
    generate values for both.)"""
    token = csrf_token(admin_client, "/")  # first: making it changes the session cookie
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = admin_client.get_cookie(name).value
    config = SchemathesisConfig.from_dict(
        {"auth": {"openapi": {"session": {"api_key": cookie}, "csrf": {"api_key": token}}}}
    )
    return schemathesis.openapi.from_wsgi(
        DOCUMENT, signed_in(app, f"{name}={cookie}"), config=config
    )


def _operations() -> list[tuple[str, str]]:
    """(method, path) of every operation of the document, read when collecting."""
    from webapp import create_app

    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    paths = build_document(app)["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


def _strategy(operation):
    """Valid requests and, where the document allows any, invalid ones too."""
    positive = operation.as_strategy(GenerationMode.POSITIVE)
    try:
        return positive | operation.as_strategy(GenerationMode.NEGATIVE)
    except Exception:  # nothing can be invalid (no parameters, no body)
        return positive


# schemathesis' pytest integration (``from_fixture`` + ``parametrize``) does not run on
# this pytest; one test per operation drives Hypothesis with the operation's strategy.
@pytest.mark.parametrize("method, path", _operations())
def test_admin_api_conforms_to_its_document(method, path, admin_api, existing_ids):
    operation = admin_api[path][method]
    positive: list[int] = []  # statuses of the requests sent with the admin's session

    @given(case=_strategy(operation), data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no .hypothesis/ directory in the work tree
        suppress_health_check=list(HealthCheck),
        derandomize=True,  # the same requests on every run: a failure is reproducible
    )
    def run(case, data):
        for name in list(case.path_parameters or {}):
            known = existing_ids.get(name)
            if known and data.draw(st.booleans(), label=f"existing {name}"):
                case.path_parameters[name] = data.draw(st.sampled_from(known), label=name)
        response = case.call_and_validate(checks=CHECKS)
        if case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE:
            positive.append(response.status_code)
            if response.status_code == 400:
                assert "CSRF" not in response.json()["error"], response.text

    run()
    # Negative cases may spoil the cookie or drop the token (401/400 are then right); the
    # others carry the admin's session and token: a 401, a 403 or a CSRF refusal there
    # means the harness lost them.
    assert positive and not {401, 403} & set(positive), positive


def test_the_document_loads_in_schemathesis(admin_api):
    """schemathesis reads the document as OpenAPI 3.1 and sees every operation."""
    operations = [result.ok() for result in admin_api.get_all_operations()]
    assert len(operations) > 50
    assert admin_api.specification.version.startswith("3.1")
