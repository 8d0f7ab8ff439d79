"""Response-wide behaviour: security headers, ``Vary: HX-Request`` and page-or-fragment
rendering for HTMX (template filters: ``webapp.views.filters``)."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, redirect, render_template, request
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response as BaseResponse

from webapp.auth import is_htmx_request

# No inline script and no eval anywhere; Plotly and htmx are served from /static.
# Styles allow 'unsafe-inline' because plotly.js sets element styles at run time.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)


def render_page(template: str, block: str, **context: Any) -> str:
    """The whole page, or only ``block`` when htmx asks (HX-Request) for a fragment."""
    if is_htmx_request():
        return render_block(template, block, **context)
    return render_template(template, **context)


def go_to(target: str) -> BaseResponse:
    """Redirect after a successful form: for htmx an ``HX-Redirect`` (a full load of the
    target page), otherwise a plain 302."""
    if is_htmx_request():
        response = Response(status=204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def add_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.is_secure or current_app.config["PRODUCTION"]:
        # Production is served over HTTPS only, whether or not a proxy says so.
        response.headers.setdefault(
            "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
        )
    # Pages and fragments share URLs: caches must keep them apart.
    response.vary.add("HX-Request")
    if request.endpoint != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_headers)
