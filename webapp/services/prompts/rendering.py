"""Rendering a prompt template with test values: ``{{name}}`` and ``{{ name }}``
placeholders, typed variable declarations, and estimates of tokens and cost.

One pass of substitution: a value that itself contains ``{{x}}`` is inserted as it is,
never expanded again. Anything else in braces (``{{ 1 + 2 }}``, ``{{{x}}}``'s outer
braces, a lone ``{``) is left untouched.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from webapp.services.core.money import to_micro_dollars
from webapp.services.usage.cost import price_of

# A variable is named like a Python identifier: letters of any alphabet ({{größe}}),
# digits after the first character, underscores.
PLACEHOLDER = re.compile(r"\{\{\s*([^\W\d]\w*)\s*\}\}")
VARIABLE_TYPES = ("string", "number", "boolean")
# A documented approximation (no tokenizer package offline): ~4 characters per token for
# English text with GPT-style tokenizers.
CHARS_PER_TOKEN = 4
# Numbers are written out in full when rendered: keep them to a sane size.
MAX_EXPONENT = 30
# The longest rendered prompt (characters): twice the longest template. A short template
# repeating a long value ({{a}} x 20,000) would otherwise answer hundreds of megabytes.
MAX_RENDERED_CHARS = 200_000


def placeholders(content: str) -> list[str]:
    """Variable names used in ``content``, in order of first appearance."""
    seen: dict[str, None] = {}
    for match in PLACEHOLDER.finditer(content):
        seen.setdefault(match.group(1), None)
    return list(seen)


BRACES = re.compile(r"\{{2,}")  # a run of two or more opening braces
NAME = re.compile(r"[^\W\d]\w*")
MAX_WARNINGS = 20
SNIPPET = 40


def placeholder_warnings(content: str) -> list[str]:
    """What looks meant as a placeholder but is not one, so it would be sent as written:
    ``{{ user name }}`` (not a variable name), an unclosed ``{{``. The editor shows them as
    warnings; saving is not refused (braces may be meant literally)."""
    valid = {match.start() for match in PLACEHOLDER.finditer(content)}
    warnings: list[str] = []
    for run in BRACES.finditer(content):
        opener = run.end() - 2  # ``{{{x}}}``: the inner ``{{x}}`` is the placeholder
        if opener in valid:
            continue
        line = content.count("\n", 0, opener) + 1
        close = content.find("}}", run.end())
        reopen = content.find("{{", run.end())
        if close == -1 or (reopen != -1 and reopen < close):
            snippet = content[opener : opener + SNIPPET].split("\n")[0]
            warnings.append(f"Line {line}: “{snippet}” opens {{{{ but never closes it with }}}}.")
        else:
            inner = content[run.end() : close]
            written = content[opener : close + 2]
            if len(written) > SNIPPET:
                written = written[: SNIPPET - 1] + "…"
            suggestion = "_".join(inner.split())
            hint = f" (did you mean {{{{{suggestion}}}}}?)" if NAME.fullmatch(suggestion) else ""
            warnings.append(
                f"Line {line}: “{written}” is not a placeholder and is sent as written: a "
                f"variable name is letters, digits and _{hint}."
            )
        if len(warnings) == MAX_WARNINGS:
            break
    return warnings


def validate_declarations(variables: Any) -> dict[str, str]:
    """Problems with a ``variables`` declaration ({name: {type, default, description}})."""
    if not isinstance(variables, dict):
        return {"variables": "must be an object mapping each variable name to its declaration"}
    errors: dict[str, str] = {}
    for name, spec in variables.items():
        key = f"variables.{name}"
        if not NAME.fullmatch(str(name)):
            errors[key] = "is not a valid variable name (letters, digits, _)"
            continue
        if spec is None:
            continue
        if not isinstance(spec, dict):
            errors[key] = "must be an object with type, default and description"
            continue
        unknown = set(spec) - {"type", "default", "description"}
        if unknown:
            errors[key] = f"has unknown keys: {', '.join(sorted(unknown))}"
        kind = spec.get("type", "string")
        if kind not in VARIABLE_TYPES:
            errors[key] = f"type must be one of {', '.join(VARIABLE_TYPES)}"
        elif "default" in spec and spec["default"] is not None:
            problem = _type_problem(kind, spec["default"])
            if problem:
                errors[key] = f"default {problem}"
    return errors


def _type_problem(kind: str, value: Any) -> str | None:
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return "must be a number"
        try:
            number = Decimal(str(value).strip())
        except ArithmeticError:
            return "must be a number"
        if not number.is_finite():
            return "must be a number"
        if abs(number.adjusted()) > MAX_EXPONENT:
            return f"must be between 1e-{MAX_EXPONENT} and 1e{MAX_EXPONENT}"
        return None
    if kind == "boolean":
        if isinstance(value, bool) or str(value).strip().lower() in ("true", "false"):
            return None
        return "must be true or false"
    if not isinstance(value, str | int | float | bool):
        return "must be text"
    return None


def _as_text(kind: str, value: Any) -> str:
    if kind == "boolean":
        return "true" if (value is True or str(value).strip().lower() == "true") else "false"
    if kind == "number":
        return format(Decimal(str(value).strip()), "f")  # as typed, never in exponent form
    return str(value)


@dataclass
class RenderResult:
    rendered: str
    variables_used: list[str]
    missing: list[str] = field(default_factory=list)  # errors
    extra: list[str] = field(default_factory=list)  # warnings
    type_errors: dict[str, str] = field(default_factory=dict)  # errors
    # Set when the rendered text would pass MAX_RENDERED_CHARS: then it is not built and
    # ``rendered`` is empty.
    oversize_chars: int | None = None

    @property
    def ok(self) -> bool:
        return not self.missing and not self.type_errors and self.oversize_chars is None

    @property
    def errors(self) -> list[str]:
        found = [f"{name}: no value and no default" for name in self.missing]
        found += [f"{name}: {problem}" for name, problem in self.type_errors.items()]
        if self.oversize_chars is not None:
            found.append(
                f"the rendered prompt would be {self.oversize_chars:,} characters; "
                f"at most {MAX_RENDERED_CHARS:,} are rendered (shorten the values)"
            )
        return found

    @property
    def warnings(self) -> list[str]:
        return [f"{name}: not used by this prompt" for name in self.extra]


def render(
    content: str,
    declarations: dict[str, Any],
    values: dict[str, Any],
    blank_is_missing: bool = False,
) -> RenderResult:
    """Fill the placeholders from ``values`` (then declared defaults). Missing values and
    type errors leave their placeholder in place and are reported. An empty string is a
    value, unless ``blank_is_missing`` (a form's untouched field)."""
    used = placeholders(content)
    specs = {name: (spec or {}) for name, spec in (declarations or {}).items()}
    result = RenderResult(rendered=content, variables_used=used)
    result.extra = sorted(name for name in values if name not in used)
    texts: dict[str, str] = {}
    for name in used:
        spec = specs.get(name, {})
        kind = spec.get("type", "string")
        given = values.get(name)
        if given is not None and not (blank_is_missing and given == ""):
            value = given
        elif spec.get("default") is not None:
            value = spec["default"]
        else:
            result.missing.append(name)
            continue
        problem = _type_problem(kind, value)
        if problem:
            result.type_errors[name] = problem
            continue
        texts[name] = _as_text(kind, value)

    def substitute(match: re.Match[str]) -> str:
        return texts.get(match.group(1), match.group(0))

    size = len(content) + sum(
        len(texts[match.group(1)]) - len(match.group(0))
        for match in PLACEHOLDER.finditer(content)
        if match.group(1) in texts
    )
    if size > MAX_RENDERED_CHARS:
        result.oversize_chars = size  # counted before building: nothing large is allocated
        result.rendered = ""
        return result
    result.rendered = PLACEHOLDER.sub(substitute, content)  # one pass: no re-expansion
    return result


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) if text else 0


def estimate_input_cost(
    tokens: int, input_price_per_million: Decimal, price_per_request: Decimal | None
) -> Decimal:
    """The prompt's part of one call: input tokens at the model's input price, plus its
    per-request price. The answer's output tokens are unknown before the call."""
    return to_micro_dollars(
        price_of(
            tokens, 0, input_price_per_million, Decimal(0), price_per_request=price_per_request
        )
    )
