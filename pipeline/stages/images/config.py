"""Limits and policy of one image-check run: named defaults, the verdict statuses, ``ImageCheckConfig``."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from yarl import URL

from pipeline.types import ImageHealth, ImageStatus

log = logging.getLogger("pipeline.stages.images")

# --------------------------------------------------------------------------- defaults

DEFAULT_CONCURRENCY = 64
"""Requests in flight at once, over all hosts."""
DEFAULT_PER_HOST = 8
"""Requests in flight at once to one origin (host name and port), as politeness towards CDNs."""
DEFAULT_TIMEOUT = 10.0
"""Whole-request deadline in seconds: connect + send + headers + body read, per HTTP request."""
DEFAULT_MAX_BYTES = 16 * 1024
"""Most body bytes a GET fallback reads (enough to sniff image magic numbers)."""
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_RETRIES = 2
"""Extra attempts after a 429/503."""
DEFAULT_BACKOFF = 0.5
"""First backoff in seconds when 429/503 has no Retry-After; doubles each retry (with jitter)."""
DEFAULT_MAX_RETRY_AFTER = 10.0
"""Longest wait honoured; a longer Retry-After ends the retries at once."""
DEFAULT_OK_TTL = 7 * 24 * 3600.0
"""Cache age limit for definite verdicts (ok, 404, not an image, ...)."""
DEFAULT_TRANSIENT_TTL = 3600.0
"""Cache age limit for transient verdicts (timeouts, 429, 5xx, unreachable, DNS-blocked)."""
DEFAULT_URL_BUDGET = 30.0
"""Most seconds one URL may take in all: every request, redirect hop, backoff and Retry-After wait,
counted from its first request (time queued behind other URLs of the same host is not counted). When it
is spent the verdict is ``timeout`` ("gave up after 30 s (3 redirects, 2 retries): ..."); a Retry-After
longer than what is left is not waited for."""
DEFAULT_HOST_GIVE_UP = 4
"""Consecutive whole-request timeouts from one origin after which its remaining URLs in this run are not
tried (verdict ``timeout``, "not tried: ..."); any answer from the origin resets the count. 0 = never.
A silent host so costs about one ``timeout`` per run (with ``host_give_up <= per_host``), not
``ceil(urls / per_host) * timeout``."""
DEFAULT_MAX_IMAGES_PER_DOC = 50
"""Image URLs checked per document (the first ones, in :func:`collect_image_urls` order); the others are
annotated ``unchecked`` and counted as ``unchecked`` in the run report."""
DEFAULT_USER_AGENT = "seednews-imagecheck/1.0"

MAX_URL_LENGTH = 8192
HEAD_FALLBACK_STATUSES = frozenset({400, 403, 405, 406, 500, 501})
"""HEAD answers that many hosts give wrongly; the check is redone with a short GET."""
RETRY_STATUSES = frozenset({429, 503})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
GENERIC_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream", "application/binary"})

STATUSES: tuple[ImageStatus, ...] = get_args(ImageStatus)
UNCHECKED = "unchecked"  # an image nobody checked (image checks off, beyond max_images_per_doc)
HEALTH_VALUES: tuple[ImageHealth, ...] = get_args(ImageHealth)

# Statuses that say something about the image itself. ``relative`` does not (nothing was fetched).
_JUDGED_STATUSES = frozenset(STATUSES) - {"relative"}


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ImageCheckConfig:
    """Limits and policy of one check run. All durations are seconds."""

    concurrency: int = DEFAULT_CONCURRENCY
    per_host: int = DEFAULT_PER_HOST
    timeout: float = DEFAULT_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = DEFAULT_MAX_REDIRECTS
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    ok_ttl: float = DEFAULT_OK_TTL
    transient_ttl: float = DEFAULT_TRANSIENT_TTL
    url_budget: float = DEFAULT_URL_BUDGET
    host_give_up: int = DEFAULT_HOST_GIVE_UP
    max_images_per_doc: int = DEFAULT_MAX_IMAGES_PER_DOC
    allow_networks: tuple[str, ...] = ()
    """CIDRs exempted from the SSRF block (tests: ``("127.0.0.1/32",)``). Empty = closed."""
    relative_base: str | None = None
    """Absolute URL relative image URLs are joined to; ``None`` reports them ``relative``."""
    user_agent: str = DEFAULT_USER_AGENT
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.per_host < 1:
            raise ValueError("concurrency and per_host must be >= 1")
        if self.timeout <= 0 or self.max_bytes < 0 or self.max_redirects < 0 or self.retries < 0:
            raise ValueError("timeout must be > 0; max_bytes, max_redirects, retries >= 0")
        if self.url_budget <= 0 or self.host_give_up < 0 or self.max_images_per_doc < 0:
            raise ValueError("url_budget must be > 0; host_give_up, max_images_per_doc >= 0")
        for cidr in self.allow_networks:
            ipaddress.ip_network(cidr, strict=False)  # raises ValueError on nonsense
        if self.relative_base is not None:
            base = URL(self.relative_base)
            if not base.is_absolute() or base.scheme not in ("http", "https"):
                raise ValueError(f"relative_base must be an absolute http(s) URL: {self.relative_base!r}")


def _to_epoch(now: datetime | float | None) -> float | None:
    if now is None:
        return None
    if isinstance(now, datetime):
        return (now if now.tzinfo else now.replace(tzinfo=UTC)).timestamp()
    return float(now)
