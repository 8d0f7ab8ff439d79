"""The OpenAPI 3.1 document of /api/v1/: public, valid, complete, built from the request
models; and schemathesis against it with a real API key (every operation, no 5xx, every
answer conforming to the document)."""

from __future__ import annotations

import contextvars
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import OpenAPIV31SpecValidator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories
from webapp import create_app
from webapp.apps_api import bp
from webapp.apps_api.openapi import OPERATIONS, UndocumentedRoute, build_document

URL = "/api/v1/openapi.json"
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def document(client):
    response = client.get(URL)  # no key, no session: the document is public
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def test_the_document_is_valid_openapi_3_1(document):
    OpenAPIV31SpecValidator(document).validate()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_every_route_of_the_blueprint_is_documented(app, document):
    routes = {
        (rule.rule.replace("<", "{").replace(">", "}"), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith(f"{bp.name}.")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert routes == documented
    for path, item in document["paths"].items():
        for operation in item.values():
            keyed = operation["security"] != []
            assert keyed == (path != URL), path


def test_a_route_without_an_entry_fails_the_build(monkeypatch):
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    entries = dict(OPERATIONS)
    entries.pop("apps_api.whoami")
    monkeypatch.setattr("webapp.apps_api.openapi.OPERATIONS", entries)
    with pytest.raises(UndocumentedRoute, match="whoami"):
        build_document(app)


def test_request_bodies_come_from_the_pydantic_models(document):
    for operation in OPERATIONS.values():
        if operation.body is not None:
            assert operation.body.__name__ in document["components"]["schemas"]


def _keyed(app):
    def wsgi(environ, start_response):
        return contextvars.Context().run(app, environ, start_response)

    return wsgi


@pytest.fixture
def application_api(app, db):
    chatbot = factories.feature("chatbot")
    factories.feature("search")
    _, secret = factories.api_key(features=(chatbot,))
    db.session.commit()
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": secret}}}})
    return schemathesis.openapi.from_wsgi(URL, _keyed(app), config=config)


def _operations() -> list[tuple[str, str]]:
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    paths = build_document(app)["paths"]
    return [(method.upper(), path) for path, item in paths.items() for method in item]


@pytest.mark.schemathesis
@pytest.mark.parametrize("method, path", _operations())
def test_application_api_conforms_to_its_document(method, path, application_api):
    operation = application_api[path][method]
    try:
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )
    except Exception:  # nothing can be invalid (no parameters, no body)
        strategy = operation.as_strategy(GenerationMode.POSITIVE)
    statuses: list[int] = []

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def run(case):
        response = case.call_and_validate(checks=CHECKS)
        statuses.append(response.status_code)

    run()
    # The harness's key must reach the views: not every answer may be a refused key.
    assert any(status != 401 for status in statuses), statuses
