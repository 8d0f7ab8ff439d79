"""Free JSON values (feature and model configs, assignment overrides, experiment params,
prompt variables, result metadata): the one check they all pass before being stored.

A value is refused when it is larger than ``MAX_JSON_FIELD_BYTES`` once serialized, nested
deeper than ``MAX_JSON_FIELD_DEPTH``, holds a number that is not finite (NaN, Infinity:
not JSON, and PostgreSQL's JSONB refuses them), text that is not valid Unicode (a lone
surrogate cannot be stored as UTF-8), NUL characters (PostgreSQL text refuses them) or
anything that is not a JSON type. Each value is copied into audit rows, so the limits keep
one request from writing megabytes twice.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_FIELD_BYTES = 64 * 1024
MAX_JSON_FIELD_DEPTH = 20


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "must not contain NUL characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains text that is not valid Unicode (an unpaired surrogate)"
    return None


def json_value_problem(value: Any, max_depth: int = MAX_JSON_FIELD_DEPTH) -> tuple[str, str] | None:
    """``(path, problem)`` for the first thing that makes ``value`` unfit to store as JSON,
    or None. ``path`` is dotted (``a.b.0``), empty for the value itself. Iterative, so no
    nesting can exhaust the stack."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict | list):
            if depth + 1 > max_depth:
                return path, f"must not be nested deeper than {max_depth} levels"
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        return path, "must have text keys"
                    problem = _text_problem(key)
                    if problem:  # the key itself is not named: it may not be encodable
                        return path, f"has a key that {problem.removeprefix('must ')}"
                    stack.append((child, depth + 1, f"{path}.{key}" if path else key))
            else:
                stack.extend(
                    (child, depth + 1, f"{path}.{index}" if path else str(index))
                    for index, child in enumerate(item)
                )
        elif isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return path, problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                return path, "must hold finite numbers only (no NaN or Infinity)"
        elif item is not None and not isinstance(item, bool | int):
            return path, "must hold JSON values only"
    return None


def check_json_field(
    fields: dict[str, Any],
    key: str,
    errors: dict[str, str],
    *,
    max_bytes: int = MAX_JSON_FIELD_BYTES,
    max_depth: int = MAX_JSON_FIELD_DEPTH,
) -> None:
    """Record in ``errors[key]`` what makes ``fields[key]`` unfit to store (shape checks,
    such as "must be a JSON object", stay with the caller)."""
    if key not in fields or fields[key] is None or key in errors:
        return
    problem = json_value_problem(fields[key], max_depth)
    if problem is not None:
        path, message = problem
        errors[key] = f"{message} (at {path})" if path else message
        return
    size = len(json.dumps(fields[key], ensure_ascii=False).encode("utf-8"))
    if size > max_bytes:
        errors[key] = f"must be at most {max_bytes // 1024} KiB as JSON (this is {size} bytes)"
