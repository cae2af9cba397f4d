"""May we connect to this address? The SSRF guard of the image checker (:mod:`pipeline.stages.images`).

Image URLs come from documents, so their hosts are chosen by whoever wrote the documents. Only
addresses on the public internet may be connected to:

* A host must be a valid name or a *canonical* IP literal. Numeric tricks that ``inet_aton`` /
  ``getaddrinfo`` would still read as an address (``0x7f000001``, ``2130706433``, ``127.1``,
  ``0177.0.0.1``) are recognised by :func:`parse_legacy_ipv4` and refused by the checker.
* :func:`address_category` names why an address is unsafe: loopback, private, link-local
  (169.254.169.254, the cloud metadata endpoint, included), CGNAT, multicast, reserved,
  unspecified, other special-purpose ranges, or an IPv4-mapped / 6to4 / NAT64 form of any of these.
  :class:`AddressPolicy` applies it, with ``allow_networks`` exempting CIDRs (closed by default;
  tests use ``127.0.0.1/32``).
* Names are resolved once per run by :class:`GuardedResolver` and the whole host is refused if
  *any* of its addresses is refused; the client then connects only to the addresses validated here
  (no second lookup can return something else).
* :func:`guarded_socket_factory` re-checks the exact address of every ``connect()``: the address
  actually connected to is checked, on every redirect hop, even for IP literals (which bypass
  resolvers in aiohttp). :func:`make_connector` puts resolver and socket factory together.

Refusals raise :class:`BlockedAddressError`, failed lookups :class:`DNSLookupError` (both
``OSError``). Not handled here, because they are about HTTP rather than addresses: the http/https
scheme rule, hop-by-hop redirect re-validation and ignoring proxy environment variables (all in
:mod:`pipeline.stages.images`).

The address part (:func:`address_category`, :class:`AddressPolicy`, :func:`parse_legacy_ipv4`,
:func:`is_canonical_ipv4`) uses the standard library only; aiohttp is imported because
:class:`GuardedResolver` must subclass its ``AbstractResolver``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

# --------------------------------------------------------------------------- address categories and policy

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_NAT64_WKP = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_METADATA = ipaddress.ip_address("169.254.169.254")
# Special-purpose ranges the ``ipaddress`` module of Python 3.11 still calls global.
_EXTRA_SPECIAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHIDv2, ...)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
    )
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _v4_category(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip == _METADATA:
        return "link-local (cloud metadata endpoint)"
    if ip.is_link_local:
        return "link-local"
    if ip in _CGNAT:
        return "shared address space (CGNAT 100.64.0.0/10)"
    if ip.is_multicast:
        return "multicast"
    if any(ip in n for n in _RFC1918):
        return "private"
    if ip.is_reserved or ip == ipaddress.IPv4Address("255.255.255.255"):
        return "reserved"
    if ip.is_private or not ip.is_global or any(ip in n for n in _EXTRA_SPECIAL[:2]):
        return "special-purpose (not globally routable)"
    return None


def _v6_category(ip: ipaddress.IPv6Address) -> str | None:
    mapped = ip.ipv4_mapped
    if mapped is not None:
        cat = _v4_category(mapped)
        return f"an IPv4-mapped form of {cat} address {mapped}" if cat else None
    if ip in _NAT64_WKP:
        v4 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        cat = _v4_category(v4)
        return f"a NAT64 form of {cat} address {v4}" if cat else None
    if ip.sixtofour is not None:
        cat = _v4_category(ip.sixtofour)
        return f"a 6to4 form of {cat} address {ip.sixtofour}" if cat else None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_site_local:
        return "site-local"
    if ip.is_multicast:
        return "multicast"
    if ip in _NAT64_LOCAL:
        return "local-use NAT64"
    if ip in ipaddress.ip_network("fc00::/7"):
        return "private (unique local)"
    if ip.teredo is not None:
        return "Teredo (embeds another address)"
    if ip in ipaddress.ip_network("::/96"):
        return "an IPv4-compatible form (deprecated)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private or not ip.is_global or any(ip in n for n in _EXTRA_SPECIAL[2:]):
        return "special-purpose (not globally routable)"
    return None


def address_category(ip: str | IPAddress) -> str | None:
    """Why an address is unsafe to fetch from (``"loopback"``, ``"private"``, ...), or ``None``.

    Ignores any allow-list; see :class:`AddressPolicy` for that.
    """
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_category(addr)
    return _v6_category(addr)


class AddressPolicy:
    """Which addresses may be connected to. Closed by default; ``allow_networks`` opens CIDRs."""

    __slots__ = ("_allow", "_memo")

    def __init__(self, allow_networks: Iterable[str] = ()) -> None:
        self._allow = tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks)
        self._memo: dict[str, str | None] = {}

    def block_reason(self, ip: str) -> str | None:
        """A sentence a person understands, or ``None`` when ``ip`` may be connected to."""
        try:
            return self._memo[ip]
        except KeyError:
            pass
        try:
            addr = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            reason: str | None = f"{ip!r} is not an IP address"
        else:
            if any(addr.version == n.version and addr in n for n in self._allow):
                reason = None
            else:
                cat = address_category(addr)
                reason = f"address {addr} is {cat}" if cat else None
        if len(self._memo) < 65536:
            self._memo[ip] = reason
        return reason

    def allows(self, ip: str) -> bool:
        return self.block_reason(ip) is None


# --------------------------------------------------------------------------- numeric host tricks

_LEGACY_V4_PART = re.compile(r"^(0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*)$")
_CANONICAL_V4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")


def parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """What ``inet_aton``/``getaddrinfo`` would make of a numeric host: ``127.1``, ``0x7f000001``,
    ``2130706433``, ``0177.0.0.1`` -> ``127.0.0.1``. ``None`` when ``host`` is not such a form."""
    host = host.rstrip(".")
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_LEGACY_V4_PART.match(p) for p in parts):
        return None
    try:
        nums = [
            int(p, 16) if p[:2].lower() == "0x" else int(p, 8) if len(p) > 1 and p[0] == "0" else int(p)
            for p in (p if p.lower() != "0x" else "0x0" for p in parts)
        ]
    except ValueError:
        return None
    *head, last = nums
    if any(n > 255 for n in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    value = value << (8 * (4 - len(head))) | last
    return ipaddress.IPv4Address(value)


def is_canonical_ipv4(host: str) -> bool:
    return bool(_CANONICAL_V4.match(host))


# --------------------------------------------------------------------------- resolver and connector

HostResolver = Callable[[str], Awaitable[Sequence[str]]]
"""``async (host) -> [ip, ...]``. Swap in tests to map names onto loopback without real DNS."""


class BlockedAddressError(OSError):
    """Raised inside the connector when an address is refused by the :class:`AddressPolicy`."""


class DNSLookupError(OSError):
    pass


async def system_resolve(host: str) -> list[str]:
    """Resolve with the system resolver (``getaddrinfo`` in a thread), TCP addresses only."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DNSLookupError(f"DNS lookup failed for {host!r}: {exc.strerror or exc}") from None
    out: list[str] = []
    for _family, _t, _p, _c, sockaddr in infos:
        ip = str(sockaddr[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise DNSLookupError(f"DNS lookup for {host!r} returned no address")
    return out


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever hands out addresses the policy allows.

    Lookups are memoised for the run (one DNS query per host; the addresses validated are the
    addresses connected to: no second lookup can return something else). A host is refused when
    *any* of its addresses is refused.
    """

    def __init__(self, policy: AddressPolicy, resolve: HostResolver = system_resolve) -> None:
        self._policy = policy
        self._resolve = resolve
        self._memo: dict[str, asyncio.Future[list[str]]] = {}

    async def lookup(self, host: str) -> list[str]:
        """Validated addresses of ``host`` (a name or an IP literal); raises ``BlockedAddressError``
        or ``DNSLookupError``."""
        host = host.rstrip(".").lower() or host
        fut = self._memo.get(host)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._memo[host] = fut
            try:
                fut.set_result(await self._lookup_uncached(host))
            except BaseException as exc:  # noqa: BLE001 - re-raised to every waiter
                fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError(str(exc)))
                fut.exception()  # mark retrieved
        return list(await asyncio.shield(fut))

    async def _lookup_uncached(self, host: str) -> list[str]:
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
            addrs = [host]
        except ValueError:
            addrs = list(await self._resolve(host))
            if not addrs:
                raise DNSLookupError(f"DNS lookup for {host!r} returned no address") from None
        for ip in addrs:
            reason = self._policy.block_reason(ip)
            if reason:
                if addrs == [host]:
                    raise BlockedAddressError(reason)
                raise BlockedAddressError(f"host {host!r} resolves to {ip}: {reason}")
        return addrs

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for ip in await self.lookup(host):
            fam = socket.AF_INET6 if ":" in ip else socket.AF_INET
            results.append(
                {"hostname": host, "host": ip, "port": port, "family": fam, "proto": 0, "flags": socket.AI_NUMERICHOST}
            )
        return results

    async def close(self) -> None:
        self._memo.clear()


def guarded_socket_factory(policy: AddressPolicy) -> Callable[[tuple[Any, ...]], socket.socket]:
    """Socket factory for aiohttp/aiohappyeyeballs: refuses to even create a socket for an address
    the policy blocks. This sees the exact address passed to ``connect()``, whatever path led there
    (IP literals bypass resolvers in aiohttp)."""

    def factory(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _canon, sockaddr = addr_info
        reason = policy.block_reason(str(sockaddr[0]))
        if reason:
            raise BlockedAddressError(reason)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def make_connector(
    policy: AddressPolicy, resolver: AbstractResolver | None = None, *, verify_tls: bool = True, limit: int = 0
) -> aiohttp.TCPConnector:
    """A TCPConnector that connects only to addresses ``policy`` allows (resolver + socket factory)."""
    return aiohttp.TCPConnector(
        resolver=resolver or GuardedResolver(policy),
        use_dns_cache=False,  # GuardedResolver memoises per run
        socket_factory=guarded_socket_factory(policy),
        limit=limit,
        limit_per_host=0,  # per-host limits are enforced by the checker's semaphores
        ssl=bool(verify_tls),  # True: aiohttp's default verifying context
        keepalive_timeout=30,
        enable_cleanup_closed=False,
    )


__all__ = [
    "AddressPolicy",
    "BlockedAddressError",
    "DNSLookupError",
    "GuardedResolver",
    "HostResolver",
    "IPAddress",
    "address_category",
    "guarded_socket_factory",
    "is_canonical_ipv4",
    "make_connector",
    "parse_legacy_ipv4",
    "system_resolve",
]
