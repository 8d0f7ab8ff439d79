"""Every route's authorization, found by walking app.url_map: a new route that forgets
its decision fails here."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import csrf_token

SAFE = {"GET", "HEAD", "OPTIONS"}
PUBLIC = {"static", "auth.login"}
ANY_ROLE_WRITES = {"auth.logout"}


def routes(app):
    """(endpoint, method, url) for every rule, with a placeholder for each argument."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        values = {arg: str(uuid.uuid4()) for arg in rule.arguments}
        url = rule.build(values, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def all_routes():
    from webapp import create_app

    app = create_app({"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    return routes(app)


ROUTES = all_routes()


def test_the_walk_finds_pages_api_and_writes():
    endpoints = {endpoint for endpoint, _, _ in ROUTES}
    assert {"overview.index", "api.list_features", "api.put_feature", "auth.logout"} <= endpoints
    assert any(method == "PUT" for _, method, _ in ROUTES)


@pytest.mark.parametrize("endpoint, method, url", ROUTES)
def test_anonymous_requests_are_refused(client, endpoint, method, url):
    response = client.open(url, method=method)
    if url.startswith("/api/"):
        assert response.status_code == 401
        assert response.get_json()["success"] is False
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


PAGE_ROUTES = [r for r in ROUTES if not r[2].startswith("/api/")]


@pytest.mark.parametrize("endpoint, method, url", PAGE_ROUTES)
def test_anonymous_htmx_requests_get_a_client_redirect(client, endpoint, method, url):
    response = client.open(url, method=method, headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")
    assert b"<form" not in response.data  # never a login form swapped into a fragment


WRITES = [r for r in ROUTES if r[1] not in SAFE and r[0] not in ANY_ROLE_WRITES]


@pytest.mark.parametrize("endpoint, method, url", WRITES)
def test_viewers_cannot_write(viewer_client, endpoint, method, url):
    token = csrf_token(viewer_client, "/")
    response = viewer_client.open(url, method=method, json={}, headers={"X-CSRFToken": token})
    assert response.status_code == 403
    if url.startswith("/api/"):
        body = response.get_json()
        assert body["success"] is False and body["error"] == "Forbidden"


# Pages and collections without an id in the URL: each must render for both roles.
UUID_IN_URL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")
LISTINGS = [r for r in ROUTES if r[1] == "GET" and not UUID_IN_URL.search(r[2])]


@pytest.mark.parametrize("endpoint, method, url", LISTINGS)
@pytest.mark.parametrize("who", ["admin_client", "viewer_client"])
def test_signed_in_users_can_read_every_page(request, endpoint, method, url, who):
    client = request.getfixturevalue(who)
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)


def test_unknown_url_is_404_for_everyone(client):
    assert client.get("/no-such-page").status_code == 404
    response = client.get("/api/platform/ai-management/no-such-thing")
    assert response.status_code == 404 and response.get_json()["success"] is False
