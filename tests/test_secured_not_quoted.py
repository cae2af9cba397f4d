"""The ``secured`` value is never quoted: not in a quarantine reason (indexed text in the ledger), not in a
warning (kept in the document), whatever the value's type and however the YAML around it fails."""

from __future__ import annotations

import json
import re

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from pipeline.errors import SeedError
from pipeline.stages.parse import SECRET_WINDOW, parse_bytes, parse_text, withhold_secured
from pipeline.types import SeedFile, SeedOutcome, SeedRecord

SEED = SeedFile("/seeds", "a.txt", "/seeds", "local", 1)
FIELDS = ["title: T", "publishedDateTime: 2021-10-06T11:10:00Z", "webUrl: https://example.com/a"]
KINDS = "integer|number|boolean|list|mapping"
YAML_KINDS = (
    "a YAML tag that is not allowed|a value its YAML tag does not fit|a YAML feature refused for untrusted input|"
    "a character YAML does not allow|YAML that cannot be read|a YAML syntax error"
)
SECURED_REASON = re.compile(
    rf"field 'secured' must be a string, got (?:{KINDS}) \(value not shown: secured\)"
    rf"|field 'secured' has (?:{YAML_KINDS}) at line \d+, column \d+ \(value not shown: secured\)"
)
# Text the fixed reasons above hold: a piece of a value that is also in here proves nothing.
FIXED = SECURED_REASON.pattern + " binary content (control characters) 0123456789"

# Any Unicode but the line breaks (a value that holds one is another field: see the multi-line forms).
atoms = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x85\u2028\u2029"), min_size=4, max_size=40
)
tags = st.from_regex(r"[A-Za-z0-9_./:-]{4,20}", fullmatch=True)


@st.composite
def secured_values(draw) -> tuple[str, list[str]]:
    """``(YAML text after 'secured: ', pieces of it that must never be quoted)``."""
    a = draw(atoms)
    form = draw(st.sampled_from(range(20)))
    if form == 0:
        return json.dumps(a, ensure_ascii=False), [a]  # a proper string: parses, nothing quoted anywhere
    if form == 1:
        return a, [a]  # raw: whatever YAML makes of it (often broken)
    if form == 2:
        n = draw(st.integers(min_value=-(10**30), max_value=10**30))  # past 64 bits: a YAML error quoting it
        return str(n), [str(n)]
    if form == 3:
        x = draw(st.floats(allow_nan=False))
        return repr(x), [repr(x)]
    if form == 4:
        b = draw(atoms)
        return f"[{json.dumps(a, ensure_ascii=False)}, {json.dumps(b, ensure_ascii=False)}]", [a, b]
    if form == 5:
        return f"{{k: {json.dumps(a, ensure_ascii=False)}}}", [a]
    if form == 6:
        return f"\n  - {a}\n  - x", [a]  # block list, raw element
    if form == 7:
        return f"\n  key: {a}", [a]  # block mapping, raw value
    if form == 8:
        tag = draw(st.sampled_from(["!!binary", "!!int", "!!float", "!!bool", "!!null", "!!set", "!!timestamp"]))
        return f"{tag} {a}", [a]
    if form == 9:
        t = draw(tags)
        return f"!{t} {a}", [t, a]  # a local tag: "could not determine a constructor for the tag ..."
    if form == 10:
        t = draw(tags)
        return f"!<{t}> {a}", [t, a]
    if form == 11:
        return f'"{a}', [a]  # an unclosed quoted scalar
    if form == 12:
        return f"[{a}", [a]  # an unclosed flow sequence
    if form == 13:
        t = draw(tags)
        return f"*{t}", [t]  # an alias (refused)
    if form == 14:
        t = draw(tags)
        return f"&{t} {a}\nother: &{t} y", [t, a]  # a duplicate anchor: "found duplicate anchor ..."
    if form == 15:
        return f"|\n  {a}", [a]  # a block scalar
    if form == 16:
        return f'"\\U00110000{a}"', [a]  # an escape beyond Unicode (PyYAML's own ValueError)
    if form == 17:
        return f"{a}: {a}", [a]  # a mapping value where a scalar was started
    if form == 18:
        return f"!!str\n  - {a}", [a]  # a tag its value does not fit
    return f"{a} \x07", [a]  # a control character after the value


def _pieces(value: str) -> list[str]:
    """Every run of ``SECRET_WINDOW`` characters of ``value`` (all of it if shorter), stripped."""
    value = value.strip()
    size = min(SECRET_WINDOW, len(value))
    if size < 4:
        return []
    return [value[i : i + size] for i in range(len(value) - size + 1) if value[i : i + size] not in FIXED]


def _quoted(pieces: list[str], text: str) -> list[str]:
    return [p for piece in pieces for p in _pieces(piece) if p in text or p in repr(text)]


@hsettings(max_examples=400, deadline=None)
@given(value=secured_values(), where=st.sampled_from(["first", "last", "related"]))
def test_no_reason_or_warning_quotes_the_secured_value(value, where):
    text, pieces = value
    if where == "related":  # a related article's secured value (kept aside in its '_extra'), indented deeper
        nested = text.replace("\n", "\n    ")
        lines = [*FIELDS, "related:", "  - title: r", f"    secured: {nested}", "topics: [a]"]
    else:
        lines = [f"secured: {text}", *FIELDS] if where == "first" else [*FIELDS, f"secured: {text}"]
    out = parse_bytes(SEED, ("---\n" + "\n".join(lines) + "\n---\nbody\n").encode("utf-8", "surrogatepass"))
    said = [out.reason or ""] if isinstance(out, SeedOutcome) else list(out.warnings)
    for line in said:
        assert not _quoted(pieces, line), line
    if isinstance(out, SeedOutcome) and out.stage in ("yaml", "validate"):
        assert SECURED_REASON.fullmatch(out.reason or ""), out.reason  # only secured can be at fault here
    if isinstance(out, SeedRecord) and "secured" in out.fields:
        assert isinstance(out.fields["secured"], str)


def test_the_validator_names_the_type_only():
    doc = "---\n" + "\n".join(FIELDS) + "\nsecured: [vZCMnpXVNE7tAe2w, 12345]\n---\n"
    try:
        parse_text(doc)
    except SeedError as exc:
        assert str(exc) == "field 'secured' must be a string, got list (value not shown: secured)"
    else:
        raise AssertionError("a list as 'secured' was accepted")


def test_a_tag_on_the_secured_line_is_not_quoted():
    data = ("---\n" + "\n".join(FIELDS) + "\nsecured: !vZCMnpXVNE7tAe2w x\n---\n").encode()
    out = parse_bytes(SEED, data)
    assert isinstance(out, SeedOutcome)
    assert (out.stage, out.reason) == (
        "yaml",
        "field 'secured' has a YAML tag that is not allowed at line 5, column 10 (value not shown: secured)",
    )


def test_the_last_net_withholds_a_reason_quoting_a_piece_of_the_secured_value():
    data = b"---\ntitle: T\nsecured: 'vZCMnpXVNE7tAe2wzAP4loemqrkurmsE4xdC2PXruMfhmqZE'\n---\n"
    withheld = "(not shown: it quotes the 'secured' value)"
    assert withhold_secured("bad value 'rkurmsE4' here", data) == withheld  # 8 characters of it, anywhere
    assert withhold_secured("bad value 'rkurmsE' here", data) == "bad value 'rkurmsE' here"  # 7: a coincidence
    assert withhold_secured("required field 'webUrl' is missing", data) == "required field 'webUrl' is missing"
    nested = b"---\nrelated:\n  - title: r\n    secured: |\n      vZCMnpXVNE7tAe2w\n---\n"  # any depth, any line
    assert withhold_secured("x 'vZCMnpXV' y", nested) == withheld


SECRET = "vZCMnpXVNE7tAe2wzAP4loemqrkurmsE4xdC2PXruMfhmqZE"
BAD_SECURED = {
    "int.txt": "secured: 9876543210987\n",
    "tag.txt": f"secured: !{SECRET} x\n",
    "binary.txt": f"secured: !!binary {SECRET}\n",
    "list.txt": f"secured: [{SECRET}]\n",
    "map.txt": f"secured:\n  blob: {SECRET}\n",
    "unclosed.txt": f'secured: "{SECRET}\n',
    "alias.txt": f"secured: *{SECRET}\n",
}


def test_a_bad_secured_value_is_quarantined_and_no_query_on_the_ledger_finds_it(settings, client, tmp_path):
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions

    for i, (name, extra) in enumerate(BAD_SECURED.items()):
        (tmp_path / name).write_text(
            f"---\ntitle: t{i}\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: https://example.com/s{i}\n{extra}---\n",
            encoding="utf-8",
        )
    report = run(settings, RunOptions(seed_dir=str(tmp_path), check_images=False), client=client, emit=lambda _: None)
    assert report.counts == {"quarantined": len(BAD_SECURED)}
    reasons = {q["path"]: q["reason"] for q in report.quarantined}
    assert reasons["int.txt"] == "field 'secured' must be a string, got integer (value not shown: secured)"
    assert reasons["tag.txt"] == (
        "field 'secured' has a YAML tag that is not allowed at line 5, column 10 (value not shown: secured)"
    )
    client.indices.refresh(index=settings.ledger_index)
    root = {"term": {"root": str(tmp_path)}}
    stored = client.search(index=settings.ledger_index, body={"query": root, "size": 100})["hits"]["hits"]
    assert sorted(h["_source"]["path"] for h in stored) == sorted(BAD_SECURED)  # the entries are there...
    assert all("value not shown: secured" in h["_source"]["reason"] for h in stored)
    for phrase in (SECRET, SECRET[:12], "9876543210987"):  # ...and nothing in them finds the value
        # the reason is stored, not analysed: its doc values are matched anywhere in the text
        query = {"bool": {"filter": [root], "must": [{"wildcard": {"reason.keyword": f"*{phrase}*"}}]}}
        assert client.search(index=settings.ledger_index, body={"query": query})["hits"]["total"]["value"] == 0
        query = {"bool": {"filter": [root], "must": [{"query_string": {"query": f'"{phrase}"'}}]}}
        assert client.search(index=settings.ledger_index, body={"query": query})["hits"]["total"]["value"] == 0
