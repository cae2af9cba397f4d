"""Property tests of pipeline.safety.netsafe: which addresses the SSRF guard refuses (in every embedded
form), what the allow-list opens, and how numeric host tricks are read.

Nothing here sends traffic: the one ``check_images`` call uses non-canonical numeric hosts, which are
refused before any DNS lookup or connection.
"""

from __future__ import annotations

import ipaddress
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.safety import netsafe as ns
from pipeline.safety.netsafe import AddressPolicy
from pipeline.stages.images.checker import check_images
from pipeline.stages.images.config import ImageCheckConfig

# --------------------------------------------------------------------------- address policy properties

BLOCKED_V4 = [
    "0.0.0.0/8",
    "192.88.99.0/24",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
GLOBAL_V4 = ["1.1.1.0/24", "8.8.0.0/16", "23.0.0.0/12", "93.184.0.0/16", "151.101.0.0/16", "185.0.0.0/8"]


def addr_in(cidrs):
    nets = [ipaddress.ip_network(c) for c in cidrs]
    return st.sampled_from(nets).flatmap(
        lambda n: st.integers(int(n.network_address), int(n.broadcast_address)).map(type(n.network_address))
    )


def embedded_forms(v4: ipaddress.IPv4Address) -> list[str]:
    n = int(v4)
    return [
        str(v4),
        f"::ffff:{v4}",
        str(ipaddress.IPv6Address((0x2002 << 112) | (n << 80))),  # 6to4
        str(ipaddress.IPv6Address((0x64FF9B << 96) | n)),  # NAT64 well-known prefix
    ]


@settings(max_examples=300, deadline=None)
@given(addr_in(BLOCKED_V4))
def test_blocked_ipv4_and_all_embedded_forms(v4):
    policy = AddressPolicy()
    for form in embedded_forms(v4):
        assert policy.block_reason(form), form


@settings(max_examples=300, deadline=None)
@given(addr_in(GLOBAL_V4))
def test_global_ipv4_and_embedded_forms_allowed(v4):
    policy = AddressPolicy()
    for form in embedded_forms(v4):
        assert policy.block_reason(form) is None, form


@settings(max_examples=200, deadline=None)
@given(addr_in(["2600::/12", "2a00::/12", "2400::/12"]))
def test_global_ipv6_allowed(v6):
    assert AddressPolicy().block_reason(str(v6)) is None


@settings(max_examples=200, deadline=None)
@given(
    addr_in(
        [
            "::1/128",
            "fc00::/7",
            "fe80::/10",
            "ff00::/8",
            "::/128",
            "64:ff9b:1::/48",
            "2001:db8::/32",
            "fec0::/10",
            "2001::/23",
            "3fff::/20",
            "5f00::/16",
            "100::/64",
        ]
    )
)
def test_blocked_ipv6(v6):
    assert AddressPolicy().block_reason(str(v6))


@settings(max_examples=200, deadline=None)
@given(addr_in(["127.0.0.0/8"]))
def test_allow_list_opens_only_what_it_names(v4):
    policy = AddressPolicy(["127.0.0.1/32"])
    assert (policy.block_reason(str(v4)) is None) == (str(v4) == "127.0.0.1")
    assert policy.block_reason(f"::ffff:{v4}")  # the mapped form is not named, so not opened


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["dec", "hex", "octal", "short2", "short3", "hexparts"]))
def test_numeric_tricks_parse_like_inet_aton_and_are_refused(n, style):
    v4 = ipaddress.IPv4Address(n)
    b = v4.packed
    host = {
        "dec": str(n),
        "hex": hex(n),
        "octal": ".".join("0" + oct(x)[2:] for x in b),
        "short2": f"{b[0]}.{n & 0xFFFFFF}",
        "short3": f"{b[0]}.{b[1]}.{n & 0xFFFF}",
        "hexparts": ".".join(hex(x) for x in b),
    }[style]
    assert ns.parse_legacy_ipv4(host) == v4
    assert socket.inet_aton(host) == b  # the same reading the C library makes
    if not ns.is_canonical_ipv4(host):
        v = check_images([f"http://{host}/a.jpg"], ImageCheckConfig(allow_networks=("0.0.0.0/0",)))
        assert v[f"http://{host}/a.jpg"].status == "blocked"


def test_canonical_forms_are_not_tricks():
    assert ns.is_canonical_ipv4("8.8.8.8") and not ns.is_canonical_ipv4("08.8.8.8")
    assert ns.parse_legacy_ipv4("example.com") is None and ns.parse_legacy_ipv4("1.2.3.4.5") is None
    assert ns.parse_legacy_ipv4("256.1.1.1") is None
