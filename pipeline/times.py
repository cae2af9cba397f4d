"""Time helpers: one parser and one formatter for the UTC timestamps the pipeline writes.

Every timestamp the pipeline writes is UTC, seconds precision, ``2021-10-06T11:10:00Z``.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import UTC, date, datetime

MIN_YEAR = 1800
MAX_YEAR = 2200
"""Article dates outside these years are refused: they are typos or placeholders (``0001-01-01``),
and they would stretch every date histogram analysts draw."""

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utc_now() -> str:
    return datetime.now(UTC).strftime(UTC_FORMAT)


def parse_datetime(value: str | datetime | date) -> datetime:
    """Parse an ISO-8601 date or date-time into an aware UTC datetime (no offset: taken as UTC).

    Raises ``ValueError`` for anything else, including dates outside ``MIN_YEAR``..``MAX_YEAR``
    (before or after the move to UTC)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime(value.year, value.month, value.day)
    else:
        text = value.strip()
        if _DATE_ONLY.match(text):
            text += "T00:00:00"
        text = re.sub(r"(?i)z$", "+00:00", text.replace(" ", "T", 1) if "T" not in text else text)
        dt = datetime.fromisoformat(text)
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise ValueError(f"year {dt.year} is outside {MIN_YEAR}..{MAX_YEAR}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    try:
        dt = dt.astimezone(UTC)
    except OverflowError:
        raise ValueError("date-time is out of range") from None
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise ValueError(f"year {dt.year} (in UTC) is outside {MIN_YEAR}..{MAX_YEAR}")
    return dt


def utc_iso(value: str | datetime | date) -> str:
    """``2021-10-06T13:10:00+02:00`` -> ``2021-10-06T11:10:00Z`` (seconds precision)."""
    return parse_datetime(value).replace(microsecond=0).strftime(UTC_FORMAT)


def iso_utc(ts: float) -> str:
    """``1700000000.0`` -> ``"2023-11-14T22:13:20Z"``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_iso_utc(s: str) -> float:
    """Inverse of :func:`iso_utc` (also accepts offsets and fractions)."""
    try:
        return float(calendar.timegm(time.strptime(s, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.timestamp()
