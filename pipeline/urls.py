"""One canonical form of a URL, shared by seed validation (``stages.parse``), document ids and stored URLs
(``stages.normalize``) and the image checker (``stages.images.urls``), so that they can never disagree.

The work is done by `yarl <https://github.com/aio-libs/yarl>`_ (aio-libs; already the HTTP client's URL type),
which gives, per RFC 3986 and UTS #46:

- scheme and host lower-cased; an internationalised host as its IDNA 2008 A-label (``straße.de`` ->
  ``xn--strae-oqa.de``; the standard library's ``idna`` codec is IDNA 2003 and would say ``strasse.de``,
  which is another domain);
- dot segments removed (``/a/../b`` -> ``/b``);
- percent-encoding normalised: unreserved characters decoded (``%7e`` -> ``~``), hex digits upper-case,
  anything else (non-ASCII included) percent-encoded as UTF-8; reserved escapes such as ``%2F`` are kept;
- the default port of the scheme dropped.

On top of that, :func:`canonical` drops what never identifies an article: user info (credentials never
belong in an id or the index), the fragment, tracking parameters (``utm_*``, ``fbclid``...), a trailing
dot on the host, and writes an empty path as ``/``. Path case, repeated slashes and the order of the
remaining query parameters are kept: servers treat them as different resources.

Since ids derive from this form, upgrading from the hand-written canonicaliser changes the id of URLs it
handled differently (IDN hosts, dot segments, escaped unreserved characters): run a full rebuild once
(README, "Upgrading").
"""

from __future__ import annotations

import functools
import re
from urllib.parse import unquote_plus

from yarl import URL

TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.IGNORECASE)
# An A-label host after IDNA: letters, digits, hyphen, underscore (seen in real CDN names), dots.
_HOST = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


def parse(text: str) -> URL:
    """Parse a URL as written in a seed (surrounding whitespace ignored): yarl's normalisation (IDNA 2008
    host, dot segments, percent-encoding), nothing dropped. Raises ``ValueError`` when it cannot be parsed.
    The image checker requests exactly this URL (minus the fragment)."""
    return URL(text.strip())


CACHED_URLS = 4096
"""Canonical forms remembered per process: a seed's URLs are canonicalized in parse (validation) and again
in normalize (ids, stored URLs); yarl's parsing was a tenth of a run's CPU."""


def canonical(text: str | URL) -> URL:
    """The canonical form of an absolute URL (see the module docstring).

    Raises ``ValueError`` with the reason when the URL cannot be parsed, has no host, or its host is
    not a host name or an IP literal."""
    if isinstance(text, str):
        return _canonical_text(text)
    return _canonical(text)


@functools.lru_cache(maxsize=CACHED_URLS)
def _canonical_text(text: str) -> URL:
    return _canonical(parse(text))  # a URL is immutable, so sharing one is safe; errors are not cached


def _canonical(url: URL) -> URL:
    if not url.absolute or not url.raw_host:
        raise ValueError("URL has no host")
    host = url.raw_host.rstrip(".")
    if ":" in host:  # an IPv6 literal, validated by yarl
        host = f"[{host}]"
    elif not _HOST.match(host):
        raise ValueError(f"host {url.raw_host!r} is not a valid host name")
    port = url.explicit_port
    netloc = host if port is None or port == _default_port(url.scheme) else f"{host}:{port}"
    query = "&".join(p for p in url.raw_query_string.split("&") if p and not _is_tracking(p))
    return URL(f"{url.scheme}://{netloc}{url.raw_path or '/'}" + (f"?{query}" if query else ""), encoded=True)


def canonical_url(text: str) -> str:
    """:func:`canonical` as a string: the ``url`` field of a document."""
    return str(canonical(text))


def identity(text: str) -> str:
    """What makes two article URLs the same article: the canonical form without its scheme, so the
    ``http`` and ``https`` forms of one URL are one article."""
    return canonical_url(text).split("://", 1)[1]


def _is_tracking(pair: str) -> bool:
    return bool(TRACKING_PARAMS.match(unquote_plus(pair.split("=", 1)[0])))


def _default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)
