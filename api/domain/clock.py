"""Time as the service sees it: instants in UTC, dates in France (Europe/Paris)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def now() -> datetime:
    return datetime.now(UTC)


def today() -> date:
    """Conventions and deadlines are dated in French time, not the server's."""
    return datetime.now(PARIS).date()
