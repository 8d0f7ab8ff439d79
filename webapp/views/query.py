"""One policy for wrong query parameters on pages and their htmx partials.

A wrong value never costs the reader the page: the page renders with that parameter at
its default (or left out, for a filter) while every other parameter still applies, and it
answers ``400`` so that link checkers, monitoring and scripts see the mistake. Next to the
control the page says which parameter was wrong, the value given, the values it takes and
what is shown instead: ``range=1y: range must be one of 24h, 7d, 30d, custom (showing the
last 7 days instead)``. htmx swaps 400 answers (see the ``htmx-config`` meta tag), so a
partial follows the same policy.

Why not a silent fallback with 200: a shared link with a typo would look right and show
other figures than its sender meant; why not a bare error page: the reader loses the
console for one wrong character, and the API's ``400 with fields`` is the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from flask import request

MAX_SHOWN = 40  # characters of a wrong value repeated on the page


class PageQuery:
    """A page's query parameters read under the policy above; ``problems`` maps each
    wrong parameter to its message, ``given`` to the value as the URL had it."""

    def __init__(self, args: Mapping[str, str] | None = None) -> None:
        self.args = request.args if args is None else args
        self.problems: dict[str, str] = {}
        self.given: dict[str, str] = {}

    def text(self, name: str, default: str = "") -> str:
        return (self.args.get(name) or "").strip() or default

    def refuse(self, name: str, problem: str, instead: str = "", value: str | None = None) -> None:
        """Record a wrong parameter: ``problem`` names what it takes ("must be one of …"),
        ``instead`` ends the sentence with what the page shows in its place
        (" (showing the last 7 days instead)", "; that filter is left out.")."""
        given = self.text(name) if value is None else value
        self.given[name] = given[:MAX_SHOWN] + ("…" if len(given) > MAX_SHOWN else "")
        self.problems.setdefault(name, f"{problem}{instead}")

    def refuse_all(self, errors: Mapping[str, str], instead: str = "") -> None:
        """Record a service's field errors (the fields are the parameters' names)."""
        for name, problem in errors.items():
            self.refuse(name, problem, instead)

    def choice(self, name: str, allowed: Iterable[str], default: str, instead: str = "") -> str:
        """The parameter when it is one of ``allowed``, else ``default`` (and a problem;
        absent or empty is the default without one)."""
        allowed = tuple(allowed)
        value = self.text(name)
        if not value:
            return default
        if value not in allowed:
            self.refuse(name, f"must be one of {', '.join(allowed)}", instead)
            return default
        return value

    def whole_number(self, name: str, low: int, high: int, default: int, instead: str = "") -> int:
        value = self.text(name)
        if not value:
            return default
        number = int(value) if value.isdigit() else None
        if number is None or not low <= number <= high:
            self.refuse(name, f"must be a whole number from {low:,} to {high:,}", instead)
            return default
        return number

    @property
    def status(self) -> int:
        return 400 if self.problems else 200
