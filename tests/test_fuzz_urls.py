"""Fuzz: URL canonicalisation (``pipeline.urls``) and the image checker's URL preparation
(``pipeline.stages.images.urls.prepare_url``) on URLs of every shape (tests/fuzzkit.py): brackets, IPv6
literals valid and broken, user info, escapes, IDNA and Unicode hosts, odd ports, schemes, controls.

- ``canonical`` returns a URL or raises ``InvalidURL``, nothing else (``http://[1]@`` made yarl raise
  ``IndexError``, which stopped whole runs);
- what it returns is a fixed point: an http(s) URL whose canonical form is itself, with an ASCII host;
- ``prepare_url`` gives a request target or a verdict (``invalid``, ``relative``, ``blocked``), never an
  exception, and agrees with ``canonical`` on the host it would connect to.

Budget and the long-run command: tests/fuzzkit.py.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from yarl import URL

from pipeline import urls
from pipeline.stages.images.urls import _Early, prepare_url
from tests.fuzzkit import FUZZ, tally, weird_urls

#: inputs that crashed a URL library once; each must end in InvalidURL, not in the library's own error
CRASHERS = ["http://[1]@", "https://[1]@/a", "//[1]@", "http://u:p@[1]@x/"]


def _canonical(url: str | URL) -> URL | None:
    try:
        got = urls.canonical(url)
    except urls.InvalidURL as exc:
        assert str(exc) and exc.reason, "a refusal says why"
        tally(f"canonical refused: {exc.reason.split(':')[0].split(' got ')[0][:40]}")
        return None
    tally("canonical ok")
    return got


@FUZZ
@given(weird_urls())
@example("http://[1]@")
@example("http://[::ffff:1.2.3.4%eth0]/")
@example("http://a\u3002b/")
@example("ws://example.com:80/")  # found by this test: a default port yarl knows and we did not
@example("http://[fe80::1%\x8525eth0]")  # found by this test: any text as a zone id, kept in the host
@example("http://[\u0661::1]/")  # found by reading yarl: IDNA makes 'xn--::1-95e' of it, taken for IPv6
def test_canonical_raises_only_invalid_url_and_is_a_fixed_point(url):
    once = _canonical(url)
    if once is None:
        return
    text = str(once)
    assert urls.canonical(text) == once, f"{url!r} -> {text!r} -> {urls.canonical(text)!r}"
    assert urls.canonical(once) == once  # the URL object form agrees with the text form
    assert urls.canonical_url(text) == text
    assert once.raw_host and once.raw_host.isascii() and once.raw_host == once.raw_host.lower()
    assert once.fragment == "" and once.user is None and once.password is None
    assert urls.identity(url) == urls.identity(text)


@FUZZ
@given(weird_urls(), st.sampled_from([None, "https://base.example/dir/", "http://[::1]:8080/x"]))
@example("http://[1]@/a.jpg", None)
@example("//[1]@/a.jpg", None)
@example("//[1]@/a.jpg", "https://base.example/")
@example("/[1]@/a.jpg", "https://base.example/")
@example("//[gggg::1]", "https://base.example/")  # found by this test: yarl's join made a URL that raised later
def test_image_url_preparation_gives_a_target_or_a_verdict(url, base):
    try:
        target = prepare_url(url, base)
    except _Early as early:
        assert early.status in ("invalid", "relative", "blocked"), early.status
        assert early.reason
        tally(f"image {early.status}")
        return
    tally("image target")
    assert target.scheme in ("http", "https") and target.raw_host and not target.fragment
    # The host the checker would connect to is the host the document id was made from.
    canon = _canonical(target)
    if canon is not None:
        assert canon.raw_host == target.raw_host.rstrip(".").lower() or ":" in target.raw_host


@pytest.mark.parametrize("url", CRASHERS)
def test_urls_that_crashed_yarl_are_refused_with_the_url_in_the_reason(url):
    with pytest.raises(urls.InvalidURL, match="URL cannot be parsed") as err:
        urls.canonical(url)
    assert repr(url)[:20] in str(err.value)
    with pytest.raises(_Early) as early:
        prepare_url(url, "https://base.example/")
    assert early.value.status == "invalid" and early.value.reason.startswith("URL cannot be parsed")
