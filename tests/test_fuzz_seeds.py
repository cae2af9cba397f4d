"""Fuzz: whole seed files through the whole per-seed path, no node needed.

Each example writes 1-5 seed files into a fresh folder: the two real seeds (examples/seeds/) mutated
line by line (tests/fuzzkit.py has the URL pieces): hostile URLs in every URL field (``related[]`` and
``images[]`` included), odd numbers (``2**63``, ``-0``, ``1e999``, ``.nan``, ``0x..``, ``1_000``), odd keys
(non-string, duplicate, very long, with ``:`` or Unicode), Unicode of every awkward category (format and
control characters, bidi, combining marks, surrogate escapes), YAML tags, anchors and aliases, deep
nesting, broken front matter, odd encodings. Then, as a run does:

- discover (``walk``) and hash the files, and ``pipeline.run.seedpath.build_documents`` (read -> parse ->
  normalize): exactly one document or one outcome per file, no exception escapes, and no outcome that is
  not a verdict on the file (only ``quarantined`` at a parse step; never an internal error);
- each document is JSON, as the bulk request will send it, and its human text holds no control character
  (textfix removes them: a YAML escape such as ``"\\x00"`` must not slip a NUL into a title);
- each document's image URLs (``collect_image_urls``) through the checker's URL preparation
  (``prepare_url``, no network): a request target or an ``invalid``/``relative``/``blocked`` verdict;
  ``annotate_document`` takes those verdicts.

Budget and the long-run command: tests/fuzzkit.py.
"""

from __future__ import annotations

import json
import os
import re
import tempfile

from hypothesis import given
from hypothesis import strategies as st

from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.run.seedpath import build_documents
from pipeline.sources.folder import hash_seed, walk
from pipeline.stages.images import annotate_document, collect_image_urls
from pipeline.stages.images.urls import _Early, prepare_url
from pipeline.types import ImageVerdict, SeedFile, SeedOutcome
from tests.conftest import SAMPLE_SEEDS
from tests.fuzzkit import FUZZ, ODD_CHARS, tally, weird_urls

SKELETONS = [p.read_text(encoding="utf-8").split("\n") for p in sorted(SAMPLE_SEEDS.iterdir())]
TEXT_LINE = re.compile(r"^(\s*(?:- )?)(title|excerpt|name): .*$")
URL_LINE = re.compile(r"^(\s*(?:- )?)(url|webUrl|originalUrl|ampWebUrl|cdnAmpWebUrl|domain): .*$")
VALUE_LINE = re.compile(r"^(\s*(?:- )?)([A-Za-z]+): .*$")
PARSE_STAGES = {"read", "decode", "frontmatter", "yaml", "validate"}
# What ftfy's remove_control_chars takes out of human text (it keeps tab, line feed, form feed, CR)
CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
IMAGE_STATUSES = {"invalid", "relative", "blocked"}

ODD_SCALARS = [
    str(2**63),
    str(-(2**63) - 1),
    "9" * 400,
    "-0",
    "-0.0",
    "1e999",
    "-1e999",
    "1e-999",
    ".nan",
    ".NaN",
    "-.inf",
    ".inf",
    "0x1F",
    "0x",
    "0o17",
    "0b101",
    "017",
    "1_000",
    "+1",
    "1.",
    ".5",
    "1:30",
    "190:20:30",
    "~",
    "null",
    "",
    "yes",
    "no",
    "on",
    "True",
    "2021-02-30",
    "2021-10-06T11:10:00Z",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-14:00",
    "!!binary aGk=",
    "!!binary '!!!'",
    "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system",
    "!!python/tuple [1, 2]",
    "!custom x",
    "!<tag:example.com,2000:x> y",
    "!!str 1",
    "!!int 0x",
    "!!int abc",
    "!!float abc",
    "!!bool maybe",
    "!!timestamp 2021-13-01",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "!!map []",
    "!!seq {}",
    "!!null x",
    "&a 1",
    "*a",
    "*undefined",
    "[]",
    "{}",
    "[a, [b, [c]]]",
    "{a: {b: {c: d}}}",
    "|\n  block\n  text",
    ">-\n  folded",
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\U0010FFFF"',
    '"\\x00"',
    '"\\u202eevil\\u202c"',
    '"a\\u0301\\u0301\\u0301"',
    "'unterminated",
    '"unterminated',
    "a: b: c",
    "- list",
    "@reserved",
    "`reserved",
    "%directive",
    "x #comment",
    "[" * 40 + "]" * 40,
    "{a: " * 40 + "1" + "}" * 40,
]
# YAML's double-quoted escapes: every one puts a character in the text that the file itself does not show
YAML_ESCAPES = [r"\0", r"\a", r"\b", r"\t", r"\v", r"\f", r"\e", r"\x00", r"\x1b[31m", r"\x7f", r"\x85", r"\N"]
YAML_ESCAPES += [r"\_", r"\L", r"\P", r"\u200b", r"\u202e", r"\ufeff", r"\U0001F4A9", r"\ud800", r"\u0301"]
ODD_KEYS = [
    "1: numeric key",
    "1.5: float key",
    "true: bool key",
    "null: null key",
    "~: tilde key",
    "[a, b]: list key",
    "{a: 1}: map key",
    "? [complex]\n: key",
    "'': empty key",
    "a:b: colon in key",
    "'a: b': quoted colon",
    "ключ: unicode key",
    "\u202ekey: bidi key",
    "k\u200bey: zero width key",
    "k" * 5000 + ": very long key",
    "<<: {title: merged}",
    "<<: [{a: 1}, {b: 2}]",
    "anchor: &a {title: T, webUrl: 'https://e.com/'}",
    "alias: *a",
    "title: duplicate title",
    "webUrl: https://example.com/duplicate",
    "images: duplicate",
    "related: [{title: r, webUrl: 'http://[1]@'}]",
    "images: [{url: 'http://[1]@'}, {url: 7}, 7, {}, {url: ''}]",
    "provider: {images: [{url: 'http://[1]@', width: 1e999}]}",
    "topics: [a, ~, [], {}, 1]",
]
# Characters of the awkward Unicode categories: format (Cf), control (Cc), separators (Zs, Zl, Zp),
# combining (Mn, Me), private use (Co), unassigned (Cn), plus right-to-left scripts.
_odd_text = st.lists(
    st.characters(
        codec="utf-8",
        categories=["Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me", "Co", "Cn", "Lo", "Nd", "So", "Sk", "Ll"],
    )
    | st.sampled_from([*ODD_CHARS, "\u05d0", "\u0627", "\u200f", "â€”", "\x1b[31m", "\ud800"]),
    max_size=30,
).map("".join)


@st.composite
def _value(draw) -> str:
    """A YAML value as text."""
    kind = draw(st.sampled_from(["scalar", "scalar", "url", "text", "text_raw"]))
    if kind == "scalar":
        return draw(st.sampled_from(ODD_SCALARS))
    if kind == "url":
        return _quote(draw(weird_urls()), draw(st.sampled_from(["json", "single", "plain"])))
    if kind == "text":
        return _escaped(draw(_odd_text))
    return draw(_odd_text).replace("\n", " ")


def _escaped(text: str) -> str:
    """``text`` as a YAML double-quoted scalar: controls and surrogates as escapes, the rest as is. (Not
    ``json.dumps``: its ``\\ud83d\\udca9`` pairs for astral characters are refused by the YAML loader,
    which would end most files at the yaml step.)"""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _quote(text: str, how: str) -> str:
    if how == "json":  # a double-quoted scalar (lone surrogates come out as escapes the loader refuses)
        return _escaped(text)
    if how == "single":
        return "'" + text.replace("'", "''") + "'"
    return text


@st.composite
def _text_value(draw) -> str:
    """Human text as a YAML double-quoted scalar: words, odd characters and escapes mixed."""
    pieces = (
        st.sampled_from(YAML_ESCAPES)
        | st.sampled_from(["a", "Title", " ", "&amp;", "â€”"])
        | _odd_text.map(lambda t: _escaped(t)[1:-1])
    )
    return '"' + "".join(draw(st.lists(pieces, max_size=6))) + '"'


@st.composite
def mutation(draw, lines: list[str], deep: bool) -> list[str]:
    """One edit of a seed's lines. ``deep`` edits keep the YAML loadable (URLs and text as escaped
    double-quoted scalars), so the file reaches validation and normalize; the others may break anything."""
    deep_kinds = ["url", "url", "url", "url", "text", "text"]
    kinds = deep_kinds + ["value"] * 4 + ["key"] * 2 + ["drop", "dup", "nest", "indent", "frame"]
    kind = draw(st.sampled_from(deep_kinds if deep else kinds))
    url_lines = [i for i, line in enumerate(lines) if URL_LINE.match(line)]
    value_lines = [i for i, line in enumerate(lines) if VALUE_LINE.match(line)]
    lines = list(lines)
    if kind in ("url", "urls") and url_lines:  # one URL field, or every one (related[] and images[] too)
        for i in [draw(st.sampled_from(url_lines))] if kind == "url" else url_lines:
            m = URL_LINE.match(lines[i])
            assert m
            how = "json" if deep else draw(st.sampled_from(["json"] * 6 + ["single", "plain"]))
            lines[i] = f"{m.group(1)}{m.group(2)}: {_quote(draw(weird_urls()), how)}"
    elif kind == "text":
        text_lines = [i for i, line in enumerate(lines) if TEXT_LINE.match(line)]
        if text_lines:
            i = draw(st.sampled_from(text_lines))
            m = TEXT_LINE.match(lines[i])
            assert m
            lines[i] = f"{m.group(1)}{m.group(2)}: {draw(_text_value())}"
    elif kind == "value" and value_lines:
        i = draw(st.sampled_from(value_lines))
        m = VALUE_LINE.match(lines[i])
        assert m
        lines[i] = f"{m.group(1)}{m.group(2)}: {draw(_value())}"
    elif kind == "key":
        at = draw(st.integers(1, max(1, len(lines) - 2)))
        lines.insert(at, draw(st.sampled_from(ODD_KEYS) | _value().map(lambda v: f"{v}: x")))
    elif kind == "drop" and len(lines) > 2:
        del lines[draw(st.integers(1, len(lines) - 2))]
    elif kind == "dup" and value_lines:
        i = draw(st.sampled_from(value_lines))
        lines.insert(draw(st.integers(1, max(1, len(lines) - 2))), lines[i])
    elif kind == "nest":
        depth = draw(st.integers(20, 200))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}"), ("- ", "")]))
        lines.insert(1, "deep: " + opener * depth + "x" + closer * depth)
    elif kind == "indent" and value_lines:
        i = draw(st.sampled_from(value_lines))
        lines[i] = draw(st.sampled_from(["\t", " ", "   ", ""])) + lines[i].lstrip()
    elif kind == "frame":
        what = draw(st.sampled_from(["no_close", "no_open", "dots", "two_docs", "truncate", "leading"]))
        if what == "no_close":
            lines = [line for line in lines[1:] if line.strip() != "---"]
            lines.insert(0, "---")
        elif what == "no_open":
            lines = lines[1:]
        elif what == "dots":
            lines = [("..." if line == "---" and i else line) for i, line in enumerate(lines)]
        elif what == "two_docs":
            lines.insert(draw(st.integers(1, len(lines) - 1)), "--- !!map")
        elif what == "truncate":
            lines = lines[: draw(st.integers(0, len(lines)))]
        else:
            lines.insert(0, draw(st.sampled_from(["", " ", "\ufeff", "#!x", "%YAML 1.1"])))
    return lines


@st.composite
def seed_bytes(draw) -> bytes:
    lines = draw(st.sampled_from(SKELETONS))
    deep = draw(st.booleans())
    for _ in range(1 if deep else draw(st.integers(1, 4))):  # deep: one edit, so it is the one validation meets
        lines = draw(mutation(lines, deep))
    text = "\n".join(lines)
    encodings = ["utf-8"] * 16 + ["utf-8-sig", "cp1252", "utf-16", "crlf", "flip"]
    encoding = "utf-8" if deep else draw(st.sampled_from(encodings))
    if encoding == "flip" and text:
        data = bytearray(text.encode("utf-8", "surrogatepass"))
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if encoding in ("crlf", "flip"):  # (an empty text has no byte to flip)
        return text.replace("\n", "\r\n").encode("utf-8", "surrogatepass")
    return text.encode(encoding, "surrogatepass" if encoding.startswith("utf") else "replace")


def _prepare_images(source: dict) -> dict[str, ImageVerdict]:
    verdicts = {}
    for raw in collect_image_urls(source):
        for base in (None, "https://base.example/dir/"):
            try:
                target = prepare_url(raw, base)
            except _Early as early:
                assert early.status in IMAGE_STATUSES and early.reason, (raw, early.status)
                tally(f"image verdict: {early.status}")
                verdicts[raw] = ImageVerdict(raw, early.status, None, early.reason, "2026-01-01T00:00:00Z")
                continue
            assert target.scheme in ("http", "https") and target.raw_host, (raw, target)
            tally("image verdict: a request target")
    return verdicts


@FUZZ
@given(st.lists(seed_bytes(), min_size=1, max_size=5))
def test_every_seed_file_ends_in_one_document_or_one_verdict(contents):
    with tempfile.TemporaryDirectory(prefix="seednews-fuzz-") as root:
        for i, data in enumerate(contents):
            with open(os.path.join(root, f"seed{i}.txt"), "wb") as fh:
                fh.write(data)
        options = RunOptions(seed_dir=root, check_images=False)
        found = list(walk(root))
        assert all(isinstance(s, SeedFile) for s in found) and len(found) == len(contents)
        seeds = [hash_seed(s, options.parse.max_bytes) for s in found]  # type: ignore[arg-type]
        assert all(isinstance(s, SeedFile) for s in seeds), seeds
        report = RunReport()

        docs, outcomes = build_documents(seeds, options, report)  # any exception here is a bug found

    ended = sorted([d.seed.rel for d in docs] + [o.seed.rel for o in outcomes])
    assert ended == sorted(s.rel for s in seeds), "each file ends exactly once"
    for o in outcomes:
        assert isinstance(o, SeedOutcome)
        assert o.state == "quarantined" and o.stage in PARSE_STAGES and o.reason, o
        tally(f"quarantined at {o.stage}: {_kind_of(o.reason)}")
    for d in docs:
        tally("document" + (" with warnings" if d.source.get("warnings") else ""))
        json.dumps(d.source, allow_nan=False)  # what the bulk request sends
        for where, text in _human_text(d.source):
            assert not CONTROL.search(text), f"a control character left in {where}: {text!r}"
        annotated = annotate_document(d.source, _prepare_images(d.source))
        assert annotated["id"] == d.id


def _human_text(source: dict):
    """(where, text) of every human-text field of a document (the ones textfix repairs)."""
    for i, item in enumerate([source, *source.get("related", [])]):
        for key in ("title", "excerpt"):
            if isinstance(item.get(key), str):
                yield f"{i}.{key}", item[key]
        name = (item.get("provider") or {}).get("name")
        if isinstance(name, str):
            yield f"{i}.provider.name", name


def _kind_of(reason: str) -> str:
    """A reason without its quoted values: 'field 'x' must be ...' -> the shape of the refusal."""
    return re.sub(r"'[^']*'|\"[^\"]*\"|0x[0-9a-f]+|\d+", "_", reason)[:60]
