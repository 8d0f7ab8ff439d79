"""Static assets with their content's hash in the URL, cached for a year.

``url_for("static", filename="vendor/plotly….js")`` — in every template and in Python —
builds ``/static/vendor/plotly….js?v=<hash>``: a URL-defaults hook adds the first 16 hex
digits of the file's SHA-256, computed once per file per process (again when the file
changes, in debug mode only). A request whose ``v`` is the hash of the file it names is
answered ``Cache-Control: public, max-age=31536000, immutable``: a new version of the file
has a new URL, so a browser never needs to ask again. Any other request for a static file
(no ``v``: an old bookmark or a hand-written URL; a ``v`` of an earlier version) still
works and is cached for ``SHORT_MAX_AGE`` seconds only, then revalidated by its ETag.

Why a query argument and not a renamed file (``app.3f2a….css``): Flask's own static route
serves it unchanged, no build step writes renamed copies, and a stale URL still finds
the file. Browsers and standard HTTP caches key on the whole URL, query included.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from flask import Flask, Response, current_app, request

VERSION_ARG = "v"
DIGEST_LENGTH = 16
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT_MAX_AGE = 300
SHORT = f"public, max-age={SHORT_MAX_AGE}, must-revalidate"

_digests: dict[tuple[str, int | None], str | None] = {}


def _path(filename: str) -> str | None:
    folder = current_app.static_folder
    if folder is None:
        return None
    path = os.path.realpath(os.path.join(folder, filename))
    if not path.startswith(os.path.realpath(folder) + os.sep) or not os.path.isfile(path):
        return None
    return path


def asset_digest(filename: str) -> str | None:
    """The hash of the static file's content (None for a file that does not exist)."""
    path = _path(filename)
    if path is None:
        return None
    stamp = os.stat(path).st_mtime_ns if current_app.debug else None
    key = (path, stamp)
    if key not in _digests:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 16), b""):
                digest.update(chunk)
        _digests[key] = digest.hexdigest()[:DIGEST_LENGTH]
    return _digests[key]


def add_version(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint == "static" and "filename" in values and VERSION_ARG not in values:
        digest = asset_digest(values["filename"])
        if digest is not None:
            values[VERSION_ARG] = digest


def cache_headers(response: Response) -> Response:
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    filename = (request.view_args or {}).get("filename", "")
    given = request.args.get(VERSION_ARG)
    fresh = given is not None and given == asset_digest(filename)
    response.headers["Cache-Control"] = IMMUTABLE if fresh else SHORT
    return response


def init_app(app: Flask) -> None:
    app.url_defaults(add_version)
    app.after_request(cache_headers)
