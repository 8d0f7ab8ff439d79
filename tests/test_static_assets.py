"""Static assets: hashed URLs everywhere, a year's immutable cache for the hashed URL, a
short one for any other; the hash follows the content."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from webapp import static_assets
from webapp.config import PROJECT_ROOT

STATIC = PROJECT_ROOT / "static"


def digest(relative: str) -> str:
    return hashlib.sha256((STATIC / relative).read_bytes()).hexdigest()[:16]


def test_pages_link_every_asset_with_its_content_hash(admin_client):
    html = admin_client.get("/spending").get_data(as_text=True)
    links = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(links) >= 4  # favicon, css, htmx, confirm.js, plotly, charts.js …
    for link in links:
        path, _, query = link.partition("?")
        assert query == f"v={digest(path.removeprefix('/static/'))}", link
    assert any("plotly" in link for link in links)


def test_hashed_url_is_immutable_for_a_year(client):
    url = f"/static/css/app.css?v={digest('css/app.css')}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_plain_and_stale_urls_still_work_with_a_short_cache(client):
    for url in ("/static/css/app.css", "/static/css/app.css?v=0123456789abcdef"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Cache-Control"] == "public, max-age=300, must-revalidate"
        assert "immutable" not in response.headers["Cache-Control"]
    missing = client.get("/static/css/none.css")
    assert missing.status_code == 404
    assert "immutable" not in missing.headers.get("Cache-Control", "")


def test_hash_is_computed_once_per_file(app, monkeypatch):
    opened: list[str] = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(static_assets, "_digests", {})
    monkeypatch.setattr("builtins.open", counting_open)
    with app.test_request_context():
        first = static_assets.asset_digest("js/charts.js")
        second = static_assets.asset_digest("js/charts.js")
    assert first == second == digest("js/charts.js")
    assert len([p for p in opened if p.endswith("charts.js")]) == 1


def test_debug_mode_follows_a_changed_file(app, tmp_path, monkeypatch):
    asset = tmp_path / "x.js"
    asset.write_text("one")
    monkeypatch.setattr(app, "static_folder", str(tmp_path))
    monkeypatch.setattr(app, "debug", True)
    monkeypatch.setattr(static_assets, "_digests", {})
    with app.test_request_context():
        before = static_assets.asset_digest("x.js")
        asset.write_text("two, longer")
        Path(asset).touch()
        after = static_assets.asset_digest("x.js")
        assert static_assets.asset_digest("../etc/passwd") is None
    assert before != after
