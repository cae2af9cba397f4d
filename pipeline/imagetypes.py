"""Small value types shared by the image checker (:mod:`pipeline.images`) and its verdict cache
(:mod:`pipeline.imagecache`): the verdict of one URL and its timestamp format.

Kept apart so that both modules can import them without importing each other.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any


@dataclass(frozen=True)
class ImageVerdict:
    """The outcome of checking one URL. ``url`` is the URL exactly as given by the caller."""

    url: str
    status: str
    http_code: int | None
    reason: str
    checked_at: str
    final_url: str | None = None

    @property
    def transient(self) -> bool:
        """True when checking again later may well give another answer (cached for less time)."""
        if self.status in ("timeout", "unreachable"):
            return True
        if self.status == "broken" and self.http_code is not None:
            return self.http_code in (408, 425, 429) or self.http_code >= 500
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "http_code": self.http_code,
            "reason": self.reason,
            "checked_at": self.checked_at,
            "final_url": self.final_url,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageVerdict:
        code = d.get("http_code")
        return cls(
            url=str(d["url"]),
            status=str(d["status"]),
            http_code=int(code) if code is not None else None,
            reason=str(d.get("reason") or ""),
            checked_at=str(d["checked_at"]),
            final_url=d.get("final_url"),
        )


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
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.timestamp()


__all__ = ["ImageVerdict", "iso_utc", "parse_iso_utc"]
