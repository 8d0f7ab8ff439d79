"""UTC hour arithmetic shared by the hourly rollup's writers and readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    """The start of the UTC hour ``moment`` (timezone-aware) falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: datetime) -> datetime:
    """The first UTC hour start at or after ``moment``."""
    start = floor_hour(moment)
    return start if start == moment else start + HOUR
