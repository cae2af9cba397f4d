"""Which URL to check: parse with ``pipeline.urls.parse`` (yarl, the HTTP client's own parser; the same
parser and host form as document ids), join relative URLs, refuse hosts and schemes before any network
traffic (``_Early`` carries that verdict)."""

from __future__ import annotations

import logging
import re

from yarl import URL

from pipeline import urls
from pipeline.safety.netsafe import (
    is_canonical_ipv4,
    parse_legacy_ipv4,
)
from pipeline.stages.images.config import MAX_URL_LENGTH
from pipeline.types import ImageStatus

log = logging.getLogger("pipeline.stages.images")

# --------------------------------------------------------------------------- URL preparation

_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


class _Early(Exception):
    """A verdict reached without any network traffic (or a hop refused)."""

    def __init__(self, status: ImageStatus, reason: str, http_code: int | None = None, cacheable: bool = False):
        super().__init__(reason)
        self.status, self.reason, self.http_code, self.cacheable = status, reason, http_code, cacheable


def _host_problem(url: URL) -> _Early | None:
    """Static checks of scheme and host of an absolute URL; no DNS."""
    scheme = url.scheme.lower()
    if scheme not in ("http", "https"):
        return _Early("blocked", f"scheme {scheme!r} is not allowed (only http and https)")
    host = url.raw_host
    if not host:
        return _Early("invalid", "URL has no host")
    try:
        port = url.port
    except ValueError:
        return _Early("invalid", "URL has an invalid port")
    if port is not None and not 0 < port < 65536:
        return _Early("invalid", f"URL has an invalid port {port}")
    if ":" in host:  # an IPv6 literal
        problem = urls.ipv6_problem(host)
        return _Early("invalid", problem) if problem else None
    bare = host.rstrip(".").lower()
    if is_canonical_ipv4(bare):
        return None
    legacy = parse_legacy_ipv4(bare)
    if legacy is not None:
        return _Early("blocked", f"numeric host {host!r} is a non-canonical form of {legacy}; refused")
    if bare.replace(".", "").isdigit():
        return _Early("invalid", f"host {host!r} is not a valid IP address or name")
    if len(bare) > 253 or not all(_HOST_LABEL.match(label) for label in bare.split(".")):
        return _Early("invalid", f"host {host!r} is not a valid host name")
    return None


def prepare_url(raw: str, relative_base: str | None) -> URL:
    """Turn a URL as found in a document into the absolute URL to check, or raise ``_Early``."""
    if not isinstance(raw, str):
        raise _Early("invalid", "URL is not a string")
    text = raw.strip()
    if not text:
        raise _Early("invalid", "URL is empty")
    if len(text) > MAX_URL_LENGTH:
        raise _Early("invalid", f"URL is longer than {MAX_URL_LENGTH} characters")
    try:  # pipeline.urls raises only InvalidURL, whatever yarl or idna make of the text
        url = urls.parse(text)
        if text.startswith("//"):
            url = urls.join(relative_base, url) if relative_base else urls.parse("https:" + text)
        elif not url.scheme:
            if url.raw_host:
                raise _Early("invalid", "URL has a host but no scheme")
            if not relative_base:
                raise _Early("relative", "relative URL and no relative_base configured; not checked")
            url = urls.join(relative_base, url)
        problem = _host_problem(url)
        if problem is not None:
            raise problem
        return url.with_fragment(None)
    except urls.InvalidURL as exc:
        raise _Early("invalid", exc.reason) from None
