"""The OpenAPI 3.1 document of the admin API: valid, complete (every route of the
blueprint, found by walking app.url_map) and built from the request models."""

from __future__ import annotations

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from webapp import create_app
from webapp.api import bp
from webapp.api.openapi import OPERATIONS, UndocumentedRoute, build_document
from webapp.api.schemas import FeatureCreate, ModelCreate, PromptCreate
from webapp.services.usage.windows import TIME_RANGES

URL = "/api/platform/ai-management/openapi.json"


@pytest.fixture
def document(viewer_client):
    response = viewer_client.get(URL)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def _api_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(f"{bp.name}."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method


def _openapi_path(rule) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<{name}>", "{" + name + "}")
    return path


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    OpenAPIV31SpecValidator(document).validate()


def test_every_route_of_the_blueprint_is_an_operation(app, document):
    routes = list(_api_routes(app))
    assert len(routes) > 50
    operations = {
        (path, method.upper()) for path, item in document["paths"].items() for method in item
    }
    assert operations == {(_openapi_path(rule), method) for rule, method in routes}
    for rule, method in routes:
        operation = document["paths"][_openapi_path(rule)][method.lower()]
        path_parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert path_parameters == set(rule.arguments), rule.rule
        assert operation["operationId"] == rule.endpoint.removeprefix("api.")


def test_a_route_without_documentation_fails_the_build():
    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    app.add_url_rule("/api/platform/ai-management/undocumented", "api.undocumented", lambda: "x")
    with pytest.raises(UndocumentedRoute, match=r"api\.undocumented"):
        build_document(app)


def test_no_entry_documents_a_route_that_does_not_exist(app):
    assert set(OPERATIONS) == {rule.endpoint for rule, _ in _api_routes(app)}


def test_request_bodies_are_the_models_the_routes_validate_with(document):
    paths = document["paths"]
    schemas = document["components"]["schemas"]
    body = paths["/api/platform/ai-management/features"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/FeatureCreate"
    }
    for model in (FeatureCreate, ModelCreate, PromptCreate):
        documented = schemas[model.__name__]
        assert set(documented["properties"]) == set(model.model_fields)
        assert documented["additionalProperties"] is False  # unknown fields are refused
    # a nested model is a component of its own
    pricing = schemas["ModelCreate"]["properties"]["pricing"]
    reference = {"$ref": "#/components/schemas/Pricing"}
    assert pricing == reference or reference in pricing["anyOf"]


def test_query_parameters_are_the_ones_each_route_reads(document):
    def query(path, method="get"):
        operation = document["paths"]["/api/platform/ai-management" + path][method]
        return {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}

    usage = query("/usage")
    assert {"cursor", "limit", "feature_id", "model_id", "provider_id", "status"} <= set(usage)
    assert usage["limit"]["schema"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 500,
        "default": 50,
    }
    features = query("/features")
    assert set(features) == {"status", "include_metrics", "time_range", "environment"}
    assert features["time_range"]["schema"]["enum"] == list(TIME_RANGES)
    assert features["environment"]["schema"]["enum"] == ["development", "staging", "production"]
    assert query("/prompts/{prompt_id}/diff")["against"]["required"] is True
    assert query("/features/{feature_id}") == {
        "time_range": features["time_range"],
        "environment": features["environment"],
    }
    for path in ("/models", "/models/{model_id}", "/features/{feature_id}/usage", "/spending"):
        assert "environment" in query(path), path


def test_answers_are_the_envelope_with_their_status_codes(document):
    features = document["paths"]["/api/platform/ai-management/features"]
    created = features["post"]["responses"]
    assert set(created) == {"201", "400", "401", "403", "409", "413"}
    envelope = created["201"]["content"]["application/json"]["schema"]
    assert envelope["required"] == ["success", "data"]
    assert set(envelope["properties"]) == {"success", "data", "metadata"}
    assert created["400"] == {"$ref": "#/components/responses/BadRequest"}
    error = document["components"]["schemas"]["ErrorEnvelope"]
    assert {"success", "error", "details", "fields", "code"} <= set(error["properties"])
    item = document["paths"]["/api/platform/ai-management/features/{feature_id}"]
    assert "404" in item["get"]["responses"] and "409" in item["delete"]["responses"]
    assert item["delete"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"
    ]["data"] == {"type": "null"}
    csv = document["paths"]["/api/platform/ai-management/usage.csv"]["get"]["responses"]
    assert list(csv["200"]["content"]) == ["text/csv"]


def test_security_is_the_session_cookie_and_the_csrf_header_for_writes(app, document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["session"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": app.config["SESSION_COOKIE_NAME"],
        "description": schemes["session"]["description"],
    }
    assert schemes["csrf"]["in"] == "header" and schemes["csrf"]["name"] == "X-CSRFToken"
    for item in document["paths"].values():
        for method, operation in item.items():
            expected = [{"session": []}] if method == "get" else [{"session": [], "csrf": []}]
            assert operation["security"] == expected


def test_the_document_needs_a_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 401
    assert response.get_json()["success"] is False
