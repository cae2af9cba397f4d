"""Object keys and prefixes, without a server: which keys are seeds, which are refused (and why, naming
the key), which are passed over; the location URL; the change fingerprint. Pure functions, so
Hypothesis can throw odd keys at them."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import SeedRootError
from pipeline.sources import is_object_url, root_of
from pipeline.sources.s3 import (
    MAX_KEY_BYTES,
    S3Location,
    classify_key,
    etag_fingerprint,
    make_client,
    mtime_ns,
    parse_timestamp,
    parse_url,
    redact_endpoint,
    show_key,
)
from pipeline.types import entry_key

P = "seeds/2026/"


# ----------------------------------------------------------------------------- locations
@pytest.mark.parametrize(
    "url, bucket, prefix",
    [
        ("s3://news/seeds/2026", "news", "seeds/2026/"),
        ("s3://news/seeds/2026/", "news", "seeds/2026/"),
        ("s3://news", "news", ""),
        ("s3://news/", "news", ""),
        ("S3://news/a", "news", "a/"),
        ("s3://my.bucket-1/a b/c?d#e", "my.bucket-1", "a b/c?d#e/"),  # taken literally: keys may hold ? and #
    ],
)
def test_a_location_is_a_bucket_and_a_folder_prefix(url, bucket, prefix):
    loc = parse_url(url)
    assert (loc.bucket, loc.prefix) == (bucket, prefix)
    assert loc.root == f"s3://{bucket}/{prefix}"
    assert root_of(url) == loc.root
    assert is_object_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3:///x",
        "s3://Bad_Bucket/x",
        "s3://ab/x",
        "s3://a..b/x",
        "s3://news//x",
        "s3://news/a//b",
        "s3://news/./a",
        "s3://news/a/../b",
        "s3://news/a\x00b",
        "s3://news/" + "x" * 1100,
        "http://news/x",
    ],
)
def test_an_ambiguous_location_is_refused(url):
    with pytest.raises(SeedRootError):
        parse_url(url)


def test_folders_are_not_object_urls():
    assert not is_object_url("/srv/seeds") and not is_object_url("examples/seeds") and not is_object_url("s3:/x")


# ----------------------------------------------------------------------------- keys
def test_the_prefix_is_a_folder_not_a_string_prefix():
    assert classify_key(P, "seeds/2026-old/a.txt", 10) is None
    assert classify_key(P, "seeds/2026/a.txt", 10) == ("a.txt", None)
    assert classify_key(P, "seeds/2026/sub/b.md", 10) == ("sub/b.md", None)
    assert classify_key(P, "other/a.txt", 10) is None


@pytest.mark.parametrize(
    "key",
    [
        "seeds/2026/",
        "seeds/2026/sub/",
        "seeds/2026/a.json",
        "seeds/2026/.hidden.txt",
        "seeds/2026/a.txt~",
        "seeds/2026/.git/x.txt",
        "seeds/2026/a/.cache/b.txt",
        "seeds/2026/#a.txt#",
        "seeds/2026/a.txt.swp",
    ],
)
def test_markers_non_seed_names_and_hidden_folders_are_passed_over(key):
    assert classify_key(P, key, 0) is None


@pytest.mark.parametrize(
    "key, words",
    [
        ("seeds/2026/sub/", "ends with '/'"),  # a "folder" that holds bytes
        ("seeds/2026/", "ends with '/'"),  # the prefix itself, with content
        ("seeds/2026//a.txt", "empty, '.' or '..'"),  # a leading '/' under the prefix
        ("seeds/2026/a//b.txt", "empty, '.' or '..'"),
        ("seeds/2026/../etc/x.txt", "empty, '.' or '..'"),
        ("seeds/2026/a/./x.txt", "empty, '.' or '..'"),
        ("seeds/2026/a\x01b.txt", "control character"),
        ("seeds/2026/a\nb.txt", "control character"),
        ("seeds/2026/a\x85b.txt", "control character"),  # C1
        ("seeds/2026/caf\ufffd.txt", "not valid UTF-8"),  # bytes that were not UTF-8, after URL decoding
        ("seeds/2026/caf\udce9.txt", "not valid UTF-8"),  # a lone surrogate
        ("seeds/2026/" + "x" * (MAX_KEY_BYTES) + ".txt", "longer than"),
    ],
)
def test_odd_seed_named_keys_are_refused_with_the_key_named(key, words):
    got = classify_key(P, key, 5)
    assert got is not None and got[1] is not None, key
    rel, reason = got
    assert words in reason
    assert show_key(key)[:40] in reason  # the key is named, escaped
    rel.encode("utf-8")  # storable
    entry_key("s3://b/" + P, rel)  # and a ledger id can be made from it


@pytest.mark.parametrize(
    "key",
    [
        "seeds/2026/" + "é" * 400 + ".txt",
        "seeds/2026/日本/記事.md",
        "seeds/2026/a b (1).txt",
        "seeds/2026/a%20b.txt",
        "seeds/2026/a?b#c.txt",
        "seeds/2026/-.txt",
        "seeds/2026/a/b/c/d/e/f/g.txt",
    ],
)
def test_unusual_but_plain_keys_are_seeds(key):
    assert classify_key(P, key, 5) == (key[len(P) :], None)


def test_unicode_normalisation_variants_are_two_objects_with_two_ledger_entries():
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    assert nfc != nfd
    a, b = classify_key(P, P + nfc, 5), classify_key(P, P + nfd, 5)
    assert a == (nfc, None) and b == (nfd, None)
    root = "s3://b/" + P
    assert entry_key(root, nfc) != entry_key(root, nfd)


def test_the_ledger_key_is_bucket_plus_object_key():
    loc = parse_url("s3://news/seeds/2026")
    rel = "sub/a.txt"
    assert loc.root + rel == "s3://news/seeds/2026/sub/a.txt"
    # the same object under the same location always has the same id; another bucket never does
    assert entry_key(loc.root, rel) == entry_key("s3://news/seeds/2026/", "sub/a.txt")
    assert entry_key(loc.root, rel) != entry_key("s3://news2/seeds/2026/", rel)


KEYS = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)


@settings(max_examples=400, deadline=None)
@given(prefix=st.sampled_from(["", "p/", "seeds/2026/"]), tail=KEYS, size=st.integers(0, 10))
def test_any_key_has_one_verdict_and_never_escapes_the_prefix(prefix, tail, size):
    for key in (prefix + tail, prefix + tail + ".txt", "x" + prefix + tail + ".txt"):
        got = classify_key(prefix, key, size)
        if got is None:
            continue
        rel, reason = got
        assert key.startswith(prefix)  # nothing outside the prefix is ever a seed or a refusal
        rel.encode("utf-8")
        if reason is None:  # a seed taken: a plain relative path of plain segments
            assert rel == key[len(prefix) :]
            parts = rel.split("/")
            assert all(p not in ("", ".", "..") for p in parts)
            assert not any(unicodedata.category(c) in ("Cc", "Cs") or c == "\ufffd" for c in rel)
            assert len(key.encode("utf-8")) <= MAX_KEY_BYTES
        else:
            assert "object key" in reason


@settings(max_examples=400, deadline=None)
@given(key=KEYS)
def test_show_key_escapes_exactly_the_characters_it_names(key):
    """A key is shown as it is unless it has a control character, a lone surrogate or U+FFFD (the fast
    answer for ASCII keys agrees with the character-by-character one)."""
    bad = [c for c in key if unicodedata.category(c) in ("Cc", "Cs") or c == "\ufffd"]
    shown = show_key(key)
    assert (shown == key) == (not bad)
    assert not any(unicodedata.category(c) in ("Cc", "Cs") or c == "\ufffd" for c in shown)


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
    millis=st.booleans(),
)
def test_timestamps_of_listings_and_heads_parse_as_botocore_parses_them(when, millis):
    """A listing's ISO 8601 ``LastModified`` (with or without milliseconds) and a HEAD's HTTP date give
    the same instant through ``parse_timestamp`` as through botocore's own parser."""
    from botocore.utils import parse_timestamp as botocore_parse

    when = when.replace(microsecond=when.microsecond // 1000 * 1000 if millis else 0)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond // 1000:03d}" if millis else "") + "Z"
    http = when.strftime("%a, %d %b %Y %H:%M:%S GMT")
    for text in (iso, http, iso.replace("Z", "+00:00")):
        got = parse_timestamp(text)
        assert got.tzinfo is not None and got == botocore_parse(text), text
    assert mtime_ns(parse_timestamp(iso)) == mtime_ns(parse_timestamp(http))


def test_clients_parse_timestamps_with_the_fast_parser():
    """A response's timestamps go through ``parse_timestamp`` (botocore's parser factory default)."""
    client = make_client(endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s")
    parser = client._endpoint._response_parser_factory.create_parser("rest-xml")
    assert parser._timestamp_parser is parse_timestamp


# ----------------------------------------------------------------------------- fingerprint
def test_the_etag_fingerprint_ignores_quotes_and_fits_a_long():
    assert etag_fingerprint('"abc"') == etag_fingerprint("abc") == etag_fingerprint('W/"abc"')
    assert etag_fingerprint('"abc"') != etag_fingerprint('"abd"')
    assert 0 <= etag_fingerprint('"x-3"') < 2**63


def test_last_modified_is_whole_seconds_so_listing_and_head_agree():
    listed = datetime(2026, 11, 25, 8, 0, 1, 345000, tzinfo=UTC)
    head = datetime(2026, 11, 25, 8, 0, 1, tzinfo=UTC)
    assert mtime_ns(listed) == mtime_ns(head) != 0
    assert mtime_ns(None) == 1


def test_endpoints_are_shown_without_credentials():
    assert redact_endpoint("http://key:secret@127.0.0.1:9000/x?y") == "http://127.0.0.1:9000/x"
    assert "secret" not in redact_endpoint("https://a:secret@s3.example")


def test_location_key_joins_prefix_and_rel():
    assert S3Location("b", "p/").key("a/b.txt") == "p/a/b.txt"
