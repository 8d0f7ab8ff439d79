"""JSON read from requests: strict, so that no body can make the parser or the database
fail with a 500. NaN and Infinity (Python's json accepts them, JSON does not), text that
is not valid Unicode (lone surrogates) and nesting deeper than ``MAX_BODY_DEPTH`` are
refused with a ``JSONRefused`` that names where the problem is."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider

from webapp.services.core.json_values import json_value_problem

# Deeper than any free JSON field (MAX_JSON_FIELD_DEPTH) plus the body's own levels, so the
# field's check names the field; anything deeper is refused here, before any validation.
MAX_BODY_DEPTH = 32


class JSONRefused(ValueError):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path or 'body'} {problem}")
        self.path = path or "body"
        self.problem = problem


def _refuse_constant(name: str) -> Any:
    raise JSONRefused("", f"holds {name}, which is not a JSON number")


def loads_strict(text: str | bytes) -> Any:
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise JSONRefused("", f"must not be nested deeper than {MAX_BODY_DEPTH} levels") from None
    problem = json_value_problem(value, MAX_BODY_DEPTH)
    if problem is not None:
        raise JSONRefused(*problem)
    return value


class StrictJSONProvider(DefaultJSONProvider):
    """``request.get_json()`` everywhere goes through ``loads_strict``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_strict(s)


def request_json() -> Any:
    """The request's JSON body; ``JSONRefused`` (a ValueError) when it is not acceptable,
    plain ``ValueError`` when it is not JSON sent as JSON."""
    if not request.is_json:
        raise ValueError("not sent with Content-Type: application/json")
    return current_app.json.loads(request.get_data(cache=True))


def init_app(app: Flask) -> None:
    app.json = StrictJSONProvider(app)
