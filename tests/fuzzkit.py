"""Helpers for the fuzz tests (tests/test_fuzz_urls.py, tests/test_fuzz_seeds.py): the example budget and
Hypothesis strategies for hostile URLs.

Budget: ``FUZZ`` runs ``FUZZ_EXAMPLES`` examples per test, derandomized (the same inputs on every CI run,
so a red build is reproducible). A long, random fuzz run sets the count in the environment::

    SEEDNEWS_FUZZ_EXAMPLES=20000 nice -n 10 .venv/bin/python -m pytest tests/test_fuzz_urls.py tests/test_fuzz_seeds.py -q

With more than ``CI_EXAMPLES`` examples the inputs are random (a new search each run).
``SEEDNEWS_FUZZ_STATS=<file.json>`` writes what the tests tried (outcome kinds, counted) to that file.
"""

from __future__ import annotations

import atexit
import json
import os
import string
from collections import Counter

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CI_EXAMPLES = 200
"""Examples per fuzz test in CI: together the fuzz tests take well under a minute on 2 cores."""
FUZZ_EXAMPLES = int(os.environ.get("SEEDNEWS_FUZZ_EXAMPLES") or CI_EXAMPLES)
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=FUZZ_EXAMPLES <= CI_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
STATS_FILE = os.environ.get("SEEDNEWS_FUZZ_STATS", "")
#: what the fuzz tests saw, written to STATS_FILE when the session ends
STATS: Counter[str] = Counter()


def tally(key: str) -> None:
    if STATS_FILE:
        STATS[key] += 1


def _write_stats() -> None:
    with open(STATS_FILE, "w", encoding="utf-8") as fh:
        json.dump(dict(STATS.most_common()), fh, indent=1, ensure_ascii=False)


if STATS_FILE:
    atexit.register(_write_stats)


# ----------------------------------------------------------------------------- URL pieces
SCHEMES = ["http", "https", "HTTPS", "hTtP", "ftp", "file", "javascript", "data", "mailto", "ws", "", "h t", "1x", "é"]
SEPARATORS = ["://"] * 6 + [":/", ":", "//", ":///", ":\\\\", ":////", ""]
# whitespace and invisible characters: ASCII controls, NBSP, zero-width, BOM, bidi overrides, line separators
ODD_CHARS = [" ", "\t", "\n", "\r", "\x00", "\x01", "\x7f", "\x85", "\xa0", "\u200b", "\u200d", "\u2028"]
ODD_CHARS += ["\u202e", "\u2066", "\ufeff", "\u3000", "\ufffd", "\u0301", "\U0001f4a9"]

_ascii_label = st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=0, max_size=12)
_any_label = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("aé-ß_ℌﬁ٣"), max_size=8
)
HOST_SAMPLES = [
    "example.com",
    "EXAMPLE.com.",
    "straße.de",
    "bücher.example",
    "xn--strae-oqa.de",
    "xn--a.com",  # invalid punycode
    "xn--.com",
    "xn--zz-.com",
    "💩.la",
    "раураl.com",  # mixed Cyrillic and Latin
    "ａｂｃ.com",  # full-width
    "a\u3002b\uff0ec\uff61d",  # ideographic and full-width dots
    "a..b",
    ".a",
    "-a.com",
    "a-.com",
    "a" * 63 + ".com",
    "a" * 64 + ".com",
    ".".join(["a" * 63] * 5),
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "0177.0.0.1",
    "2130706433",
    "999.1.1.1",
    "1.2.3.4.5",
    "localhost",
    "%41.com",
    "a%2Fb",
    "exa mple.com",
    "[::1]",
    "[2001:DB8::1]",
    "[::ffff:1.2.3.4]",
    "[fe80::1%25eth0]",
    "[fe80::1%eth0]",
    "[1]",
    "[]",
    "[::1",
    "::1]",
    "[:::]",
    "[v1.x]",
    "[v7.]",
    "[1::2::3]",
    "[::1]]",
    "[[::1]]",
    "[::1]x",
    "[gggg::1]",
    "[\u0661::1]",
    "",
]
USERINFO_SAMPLES = ["", "", "", "u@", "u:p@", ":@", "@", "@@", "a@b@", "u:p:q@", "[1]@", "u%40x@", "ü:ö@", "a b@"]
PORT_SAMPLES = ["", "", "", ":", ":0", ":80", ":443", ":65535", ":65536", ":99999999999999999999", ":abc", ":-1"]
PORT_SAMPLES += [":８０", ": 80", ":80:80", ":0x50", ":+80", ":1_0", ":\u0668\u0660"]
PATH_SAMPLES = ["", "/", "/a", "/a/../b", "/./.", "/..", "//x", "/%", "/%G1", "/%2F", "/%2f", "/%00", "/%C3%A9", "/%C3"]
PATH_SAMPLES += ["/é", "/a b", "/\\x", "/%25", "/;p", "/a?b", "/@", "/:"]
QUERY_SAMPLES = ["", "?", "?a=1", "?utm_source=x", "?a=%", "?&&", "?a=1&utm_%6Dedium=y", "?é=ü", "?a=1#", "?=", "?a+b"]
FRAG_SAMPLES = ["", "#", "#top", "#é", "#%", "##", "#a#b"]


@st.composite
def hosts(draw) -> str:
    kind = draw(st.sampled_from(["sample", "sample", "labels", "any", "ipv6", "ipv4"]))
    if kind == "sample":
        return draw(st.sampled_from(HOST_SAMPLES))
    if kind == "labels":
        dot = draw(st.sampled_from([".", ".", "\u3002", "\uff0e", "\uff61"]))
        return dot.join(draw(st.lists(_ascii_label | _any_label, min_size=1, max_size=4)))
    if kind == "ipv6":
        addr = str(draw(st.ip_addresses(v=6)))
        return f"[{addr}]" if draw(st.booleans()) else addr
    if kind == "ipv4":
        return str(draw(st.ip_addresses(v=4)))
    return draw(st.text(max_size=15))


#: pieces of an authority (user info, host, port) that parsers split on; a soup of them finds the splits'
#: corner cases (``[1]@`` is two of them)
NETLOC_TOKENS = ["[", "]", "@", ":", "1", "::1", "a", "%25", ".", "xn--a", "é", "80", "[::1]", "[1]", "u:p@", "\u3002"]


#: a dictionary of authority corners (brackets and '@' around an empty part), as fuzzers such as AFL take one:
#: inside a whole seed file Hypothesis draws small soups, and these shapes would be rare there
NETLOC_CORNERS = [
    "[1]@",
    "[::1]@",
    "[]@",
    "]@",
    "[@",
    "@[",
    "@]",
    "[::1]@@",
    "a@[",
    "[a@b]",
    "[:@]",
    "@[::1]",
    "[::1]:@",
]
NETLOC_CORNERS += ["u@[1]", "[1]:80@", "[::1]@:80", "[%25]@", "[v1.x]@"]


def _piece(samples: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(samples) | st.text(alphabet=st.sampled_from("%/?#@:[].aZ9-_~é\\ "), max_size=6)


@st.composite
def weird_urls(draw) -> str:
    """A URL of any shape: mostly built from parts (scheme, user info, host, port, path, query, fragment),
    each of which may be broken; sometimes with odd characters slipped in; sometimes any text at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=40))
    soup = st.lists(st.sampled_from(NETLOC_TOKENS), max_size=4).map("".join)
    shape = draw(st.sampled_from(["parts", "parts", "soup", "soup@soup", "soup@soup", "corner"]))
    if shape == "parts":
        netloc = draw(st.sampled_from(USERINFO_SAMPLES)) + draw(hosts()) + draw(st.sampled_from(PORT_SAMPLES))
    elif shape == "soup":
        netloc = draw(soup)
    elif shape == "soup@soup":  # user info and host split on the last '@'
        netloc = draw(soup) + "@" + draw(soup)
    else:
        netloc = draw(st.sampled_from(NETLOC_CORNERS)) + draw(st.sampled_from(["", "", "example.com", ":80"]))
    url = (
        draw(st.sampled_from(SCHEMES))
        + draw(st.sampled_from(SEPARATORS))
        + netloc
        + draw(_piece(PATH_SAMPLES))
        + draw(_piece(QUERY_SAMPLES))
        + draw(st.sampled_from(FRAG_SAMPLES))
    )
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(url)))
        url = url[:at] + draw(st.sampled_from(ODD_CHARS)) + url[at:]
    return url
