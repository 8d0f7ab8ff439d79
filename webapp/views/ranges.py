"""The time ranges pages offer, their labels, and the one range control every page with
figures over a range uses (overview, features, models, providers, spending): the
``range_control`` macro of templates/_macros.html draws a ``RangeControl``.

What a range *means* is the usage engine's (webapp.services.usage.windows: ``1h`` and
``24h`` rolling, ``7d``/``30d`` whole UTC days with today; its ``RANGE_CAPTIONS`` say so on
every page). This module only says which page offers which ranges, how they are labelled,
and reads the page's range from its query under the policy of webapp.views.query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import url_for

from webapp.models import ENVIRONMENTS
from webapp.services.usage.windows import RANGE_CAPTIONS
from webapp.views.query import PageQuery

LABELS = {
    "1h": "1 hour",
    "24h": "24 hours",
    "7d": "7 days",
    "30d": "30 days",
    "90d": "90 days",
    "month": "This month",
    "custom": "Custom",
}


@dataclass(frozen=True)
class Offer:
    """The ranges a page offers and its default; ``custom`` takes start_date/end_date."""

    ranges: tuple[str, ...]
    default: str

    @property
    def custom(self) -> bool:
        return "custom" in self.ranges

    @property
    def instead(self) -> str:
        """How a page says what it shows in place of a wrong range."""
        return f" (showing the last {LABELS[self.default]} instead)"


# Per-feature/model/provider figures: the usage engine's named windows.
METRICS = Offer(("1h", "24h", "7d", "30d"), "24h")
OVERVIEW = Offer(("24h", "7d", "30d", "custom"), "7d")
SPENDING = Offer(("7d", "30d", "90d", "month", "custom"), "30d")


@dataclass(frozen=True)
class TimeRange:
    name: str
    start_date: str = ""  # custom only: the dates as given (the service parses them)
    end_date: str = ""

    @property
    def args(self) -> dict[str, str]:
        """The range as URL arguments (links, the tiles' refresh)."""
        if self.name == "custom":
            return {"range": "custom", "start_date": self.start_date, "end_date": self.end_date}
        return {"range": self.name}


def read_range(query: PageQuery, offer: Offer, old_name: str | None = None) -> TimeRange:
    """The range a page's URL asks for: ``range`` (or ``old_name``, the parameter older
    links used), one of ``offer``; dates without a range mean ``custom`` where the page
    offers it, one date alone the range of that day. A wrong name is a problem of the
    query and the default range instead."""
    name = "range"
    if old_name and not query.text("range") and query.text(old_name):
        name = old_name
    start, end = query.text("start_date"), query.text("end_date")
    if offer.custom and not query.text(name) and (start or end):
        return TimeRange("custom", start or end, end or start)
    chosen = query.choice(name, offer.ranges, offer.default, offer.instead)
    if chosen == "custom":
        return TimeRange("custom", start or end, end or start)
    return TimeRange(chosen)


ALL_ENVIRONMENTS = " (showing all environments instead)"


def read_environment(query: PageQuery) -> str:
    """The environment a page's URL asks for: one of ENVIRONMENTS, or "" for all of them
    (absent, empty, or wrong: a wrong one is a problem of the query)."""
    return query.choice("environment", ENVIRONMENTS, "", ALL_ENVIRONMENTS)


@dataclass
class RangeControl:
    """What the range control draws: a link per range (``href`` and ``hx-get`` alike,
    swapping ``target`` and pushing the URL), the custom dates where offered, the caption
    of what the range means and the query's problems with the range."""

    endpoint: str
    offer: Offer
    current: TimeRange
    target: str
    query: PageQuery
    keep: dict[str, Any] = field(default_factory=dict)  # ids and other filters
    labels: dict[str, str] = field(default_factory=lambda: LABELS)
    # The environment filter beside the range: None where the page has none, "" for all
    # environments. Both controls keep the other's state in their links and fields.
    environment: str | None = None
    environments: tuple[str, ...] = ENVIRONMENTS

    @property
    def kept(self) -> dict[str, Any]:
        """The other filters every link and form of the control carries on."""
        kept = {key: value for key, value in self.keep.items() if value not in (None, "")}
        if self.environment:
            kept["environment"] = self.environment
        return kept

    def url(self, name: str) -> str:
        return url_for(self.endpoint, **self.kept, range=name)

    @property
    def action(self) -> str:
        return url_for(self.endpoint, **self.kept)

    @property
    def environment_action(self) -> str:
        """Where the environment select goes: the page without an environment (the
        select's own field adds it) and with the range shown."""
        kept = {key: value for key, value in self.keep.items() if value not in (None, "")}
        return url_for(self.endpoint, **kept)

    @property
    def environment_fields(self) -> dict[str, Any]:
        """The hidden fields of the environment form: the other filters and the range."""
        kept = {key: value for key, value in self.keep.items() if value not in (None, "")}
        return kept | self.current.args

    @property
    def presets(self) -> list[str]:
        return [name for name in self.offer.ranges if name != "custom"]

    @property
    def caption(self) -> str | None:
        """What the range means, as a sentence ("Last 7 UTC days, today included")."""
        caption = RANGE_CAPTIONS.get(self.current.name)
        return caption[:1].upper() + caption[1:] if caption else None

    @property
    def problems(self) -> dict[str, str]:
        names = ("range", "preset", "start_date", "end_date")
        return {name: p for name, p in self.query.problems.items() if name in names}

    @property
    def environment_problems(self) -> dict[str, str]:
        return {name: p for name, p in self.query.problems.items() if name == "environment"}

    def date_value(self, name: str, shown: str) -> str:
        """A date input's value: as given when it was wrong, else the range shown."""
        return self.query.given.get(name, shown) if name in self.query.problems else shown
