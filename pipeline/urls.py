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

Every function here raises :class:`~pipeline.errors.InvalidURL` (a ``ValueError``), and only that, for a URL
it cannot use: whatever yarl or idna raise on hostile input (``http://[1]@`` made yarl 1.25 raise
``IndexError``) is converted, with the URL quoted, so one bad URL is one refused URL, never a crash.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote_plus

from yarl import URL

from pipeline.errors import InvalidURL

__all__ = [
    "CACHED_URLS",
    "TRACKING_PARAMS",
    "InvalidURL",
    "canonical",
    "canonical_url",
    "identity",
    "ipv6_problem",
    "join",
    "parse",
]

TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.IGNORECASE)
# An A-label host after IDNA: letters, digits, hyphen, underscore (seen in real CDN names), dots.
_HOST = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")


_T = TypeVar("_T")


class _Refused(ValueError):
    """A URL refused by this module's own rules; the text is the whole reason."""


def _guarded(what: str | URL, build: Callable[[], _T]) -> _T:
    """``build()``, with any error of the URL libraries turned into ``InvalidURL`` quoting ``what``."""
    try:
        return build()
    except InvalidURL:
        raise
    except _Refused as exc:
        reason = str(exc)
    except ValueError as exc:  # yarl's and idna's own refusals (UnicodeError is one): their text is the reason
        reason = f"URL cannot be parsed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a parser crash on hostile input (IndexError...) is a refusal too
        reason = f"URL cannot be parsed: the URL parser failed ({type(exc).__name__})"
    try:
        shown = str(what)
    except Exception:  # noqa: BLE001 - a URL yarl built but cannot print is still quoted, as its parts
        shown = repr(getattr(what, "_val", what.__class__.__name__))
    raise InvalidURL(reason, shown)


def _whole(url: URL) -> URL:
    """``url``, once its host and port have been read: yarl splits them lazily, so a URL it built (by
    ``join``, from ``//[gggg::1]``) can raise on first use, far from here."""
    _ = url.raw_host, url.explicit_port
    return url


def parse(text: str) -> URL:
    """Parse a URL as written in a seed (surrounding whitespace ignored): yarl's normalisation (IDNA 2008
    host, dot segments, percent-encoding), nothing dropped. Raises ``InvalidURL`` when it cannot be parsed.
    The image checker requests exactly this URL (minus the fragment)."""
    return _guarded(text, lambda: _whole(URL(text.strip())))


def join(base: str, ref: URL) -> URL:
    """``ref`` resolved against the absolute URL ``base``; raises ``InvalidURL`` when either is unusable."""
    return _guarded(ref, lambda: _whole(URL(base).join(ref)))


CACHED_URLS = 4096
"""Canonical forms remembered per process: a seed's URLs are canonicalized in parse (validation) and again
in normalize (ids, stored URLs); yarl's parsing was a tenth of a run's CPU."""


def canonical(text: str | URL) -> URL:
    """The canonical form of an absolute URL (see the module docstring).

    Raises ``InvalidURL`` (a ``ValueError``) with the reason when the URL cannot be parsed, has no host, or
    its host is not a host name or an IP literal."""
    if isinstance(text, str):
        return _canonical_text(text)
    return _guarded(text, lambda: _canonical(text))


@functools.lru_cache(maxsize=CACHED_URLS)
def _canonical_text(text: str) -> URL:
    # a URL is immutable, so sharing one is safe; errors are not cached
    return _guarded(text, lambda: _canonical(parse(text)))


def _canonical(url: URL) -> URL:
    if not url.absolute or not url.raw_host:
        raise _Refused("URL has no host")
    if not url.scheme:  # "//host/x": the form would be "://host/x", which is no URL
        raise _Refused("URL has no scheme")
    host = url.raw_host.rstrip(".")
    if ":" in host:  # an IPv6 literal
        problem = ipv6_problem(host)
        if problem:
            raise _Refused(problem)
        host = f"[{ipaddress.IPv6Address(host).compressed}]"
    elif not _HOST.match(host):
        raise _Refused(f"host {url.raw_host!r} is not a valid host name")
    port = url.explicit_port
    # yarl knows the default port of more schemes than http(s) (ws: 80...); a default port kept here would
    # print as nothing yet compare unequal to the same URL parsed again
    netloc = host if port is None or url.is_default_port() else f"{host}:{port}"
    query = "&".join(p for p in url.raw_query_string.split("&") if p and not _is_tracking(p))
    return URL(f"{url.scheme}://{netloc}{url.raw_path or '/'}" + (f"?{query}" if query else ""), encoded=True)


def ipv6_problem(host: str) -> str | None:
    """Why the host of a parsed URL that holds a ``:`` is no usable IPv6 literal, or None. yarl lets
    through a zone id (``[fe80::1%eth0]``: an interface of the machine that wrote the URL, with any
    text) and what IDNA made of a literal with non-ASCII digits (``[١::1]`` -> ``xn--::1-95e``)."""
    try:
        ip = ipaddress.IPv6Address(host)
    except ValueError:
        return f"host {host!r} is not a valid IPv6 address"
    if ip.scope_id is not None:
        return f"IPv6 host {host!r} has a zone id (it names a network interface of one machine)"
    return None


def canonical_url(text: str) -> str:
    """:func:`canonical` as a string: the ``url`` field of a document."""
    return str(canonical(text))


def identity(text: str) -> str:
    """What makes two article URLs the same article: the canonical form without its scheme, so the
    ``http`` and ``https`` forms of one URL are one article."""
    return canonical_url(text).split("://", 1)[1]


def _is_tracking(pair: str) -> bool:
    return bool(TRACKING_PARAMS.match(unquote_plus(pair.split("=", 1)[0])))
