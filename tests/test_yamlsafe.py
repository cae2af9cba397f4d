"""pipeline.safety.yamlsafe: whatever a seed holds, ``load`` gives JSON-compatible values or a ``yaml.YAMLError``.

The example tests each pin one case that used to escape as a stray exception (or as a value JSON
cannot hold); the Hypothesis tests check the two promises on generated text and documents:
(a) a value ``json.dumps`` accepts (str keys, finite floats, valid UTF-8) or a ``MarkedYAMLError``;
(b) the libyaml path and the pure-Python loader agree, also on text with tabs (which libyaml's tokens
now place, instead of handing the whole text to the pure loader) and whatever the size bounds refuse.
"""

from __future__ import annotations

import json
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.safety import yamllimits, yamlsafe
from pipeline.safety.yamlsafe import load


def refused(text: str) -> yaml.MarkedYAMLError:
    with pytest.raises(yaml.MarkedYAMLError) as info:
        load(text)
    exc = info.value
    assert exc.problem_mark is not None, "every refusal names a position"
    return exc


def assert_json_compatible(value) -> None:
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")

    def keys_are_str(v) -> None:
        if isinstance(v, dict):
            assert all(isinstance(k, str) for k in v), v
            for x in v.values():
                keys_are_str(x)
        elif isinstance(v, list):
            for x in v:
                keys_are_str(x)
        else:
            assert v is None or type(v) in (str, int, float, bool), type(v)

    keys_are_str(value)


# --------------------------------------------------------------------------- tags


def test_bad_int_is_a_marked_error():
    exc = refused("title: x\nquality: !!int abc\n")
    assert exc.problem == "!!int value 'abc' is not an integer"
    assert (exc.problem_mark.line, exc.problem_mark.column) == (1, 9)


def test_bad_bool_is_a_marked_error():
    assert refused("published: !!bool maybe").problem == "!!bool value 'maybe' is not true or false"


def test_bad_null_is_a_marked_error():
    assert refused("x: !!null nothing").problem == "!!null value 'nothing' is not null"


@pytest.mark.parametrize("value", ["2021-02-30", "foo", "2021-10-06", "0001-01-01T00:00:00+01:00"])
def test_timestamp_tag_is_refused(value):
    exc = refused(f"publishedDateTime: !!timestamp {value}")
    assert exc.problem == "YAML tag !!timestamp is not allowed (only plain JSON-like values)"
    assert isinstance(exc, yamlsafe.DisallowedTagError)
    assert (exc.problem_mark.line, exc.problem_mark.column) == (0, 19)


@pytest.mark.parametrize(
    "doc, shown",
    [
        ("x: !!binary aGVsbG8=", "!!binary"),
        ("x: !!set {a, b}", "!!set"),
        ("x: !!omap [a: 1, b: 2]", "!!omap"),
        ("x: !!pairs [a: 1]", "!!pairs"),
        ("x: !!merge y", "!!merge"),
        ("x: !!python/object/apply:os.system [echo]", "!!python/object/apply:os.system"),
        ("x: !!python/name:os.system ''", "!!python/name:os.system"),
        ("x: !foo bar", "!foo"),
        ("x: !<urn:example:thing> bar", "!<urn:example:thing>"),
        ("%TAG !e! tag:example.com,2000:\n---\nx: !e!thing bar", "!<tag:example.com,2000:thing>"),
        ("!!binary aGVsbG8=: x", "!!binary"),  # on a key
    ],
)
def test_other_tags_are_refused_with_the_tag_named(doc, shown):
    exc = refused(doc)
    assert isinstance(exc, yamlsafe.DisallowedTagError)
    assert exc.problem == f"YAML tag {shown} is not allowed (only plain JSON-like values)"


def test_long_custom_tag_is_shown_truncated():
    exc = refused("x: !" + "t" * 5000 + " y")
    assert len(exc.problem) < 150


@pytest.mark.parametrize(
    "doc, problem",
    [
        ("x: !!str {a: 1}", "YAML tag !!str cannot be used on a mapping"),
        ("x: !!int [1]", "YAML tag !!int cannot be used on a sequence"),
        ("x: !!map [1]", "YAML tag !!map cannot be used on a sequence"),
        ("x: !!seq abc", "YAML tag !!seq cannot be used on a scalar"),
    ],
)
def test_allowed_tag_on_the_wrong_kind_of_node(doc, problem):
    assert refused(doc).problem == problem


def test_allowed_tags_give_plain_values():
    doc = (
        "a: !!str 12\nb: !!int '42'\nc: !!float 1\nd: !!bool true\ne: !!null ''\n"
        "f: !!seq [1]\ng: !!map {k: v}\nh: ! 12\ni: !!int 0x1F\nj: !!int -0o17\nk: ! [x]\n"
    )
    assert load(doc) == {
        "a": "12",
        "b": 42,
        "c": 1.0,
        "d": True,
        "e": None,
        "f": [1],
        "g": {"k": "v"},
        "h": "12",
        "i": 31,
        "j": -15,
        "k": ["x"],
    }
    assert type(load(doc)["c"]) is float


# --------------------------------------------------------------------------- numbers


def test_five_thousand_digit_integer_is_refused_and_message_is_short():
    exc = refused("quality: " + "7" * 5000)
    assert exc.problem.startswith("integer '7777")
    assert exc.problem.endswith("(5,000 characters) out of range (more than 64 bits)")
    assert len(exc.problem) < 150


def test_huge_integer_is_refused_without_converting_it(monkeypatch):
    import builtins

    real_int = builtins.int

    def guarded(x=0, *a):
        assert not isinstance(x, str) or len(x) < 64, "int() called on a long digit string"
        return real_int(x, *a)

    monkeypatch.setattr(yamlsafe, "int", guarded, raising=False)  # the module's int() lookups
    refused("a: !!int " + "1" * 100_000)
    refused("a: -" + "1" * 100_000)
    refused("a: !!int 0x" + "f" * 100_000)


@pytest.mark.parametrize(
    "text, value",
    [("9223372036854775807", 2**63 - 1), ("-9223372036854775808", -(2**63)), ("000000000000000000000000042", None)],
)
def test_64_bit_boundaries_are_accepted(text, value):
    if value is None:
        assert load(f"a: !!int {text}") == {"a": 42}  # leading zeros are not digits that count
    else:
        assert load(f"a: {text}") == {"a": value}


@pytest.mark.parametrize("text", ["9223372036854775808", "-9223372036854775809", "!!int 0x10000000000000000"])
def test_beyond_64_bits_is_refused(text):
    assert refused(f"a: {text}").problem.endswith("out of range (more than 64 bits)")


@pytest.mark.parametrize("text", ["1.0e999", "-1.5e400", "!!float 1e999", "!!float " + "9" * 400])
def test_float_overflow_is_refused(text):
    assert refused(f"a: {text}").problem.endswith("is out of range (not finite)")


@pytest.mark.parametrize("text", [".inf", "-.inf", "+.INF", ".nan", ".NaN"])
def test_explicit_inf_and_nan_are_refused(text):
    assert refused(f"a: !!float {text}").problem.endswith("is not finite (inf and nan are refused)")


def test_untagged_inf_nan_and_yaml11_numbers_stay_strings():
    assert load("a: .inf\nb: .nan\nc: 1e999\nd: 0x1F\ne: 1_000\nf: 12:30:00") == {
        "a": ".inf",
        "b": ".nan",
        "c": "1e999",
        "d": "0x1F",
        "e": "1_000",
        "f": "12:30:00",
    }


def test_bad_float_text_is_refused():
    assert refused("a: !!float abc").problem == "!!float value 'abc' is not a number"
    assert refused("a: !!float infinity").problem == "!!float value 'infinity' is not a number"


# --------------------------------------------------------------------------- keys


def test_scalar_keys_become_their_source_text():
    out = load("1: x\ntrue: y\nnull: z\n~: w\n1.50: v\n-0: u\n")
    assert out == {"1": "x", "true": "y", "null": "z", "~": "w", "1.50": "v", "-0": "u"}
    assert_json_compatible(out)


def test_empty_key_is_the_empty_string():
    assert load("? \n: x\n") == {"": "x"}  # an empty (null) key


@pytest.mark.parametrize("doc", ['1: x\n"1": y\n', "true: a\n'true': b\n", "null: a\n'null': b\n"])
def test_duplicates_are_checked_after_key_conversion(doc):
    exc = refused(doc)
    assert exc.problem.startswith("duplicate key ")
    assert exc.problem_mark.line == 1


@pytest.mark.parametrize(
    "doc, kind, line",
    [("? [a, b]\n: c\n", "a sequence", 0), ("x: 1\n? {a: 1}\n: c\n", "a mapping", 1), ("[a]: b", "a sequence", 0)],
)
def test_non_scalar_keys_are_refused_with_a_mark(doc, kind, line):
    exc = refused(doc)
    assert isinstance(exc, yamlsafe.UnsafeYAMLError)
    assert exc.problem == f"mapping keys must be plain scalars (found {kind})"
    assert exc.problem_mark.line == line


def test_bad_tagged_key_is_still_refused():
    assert refused("!!int abc: x").problem == "!!int value 'abc' is not an integer"


def test_long_duplicate_key_is_shown_truncated():
    key = "k" * 10_000  # explicit '?' keys: plain simple keys are limited to 1,024 characters
    exc = refused(f"? {key}\n: 1\n? {key}\n: 2\n")
    assert exc.problem.startswith("duplicate key 'kkk") and len(exc.problem) < 150


# --------------------------------------------------------------------------- characters


def test_lone_surrogate_escape_is_refused_on_both_paths():
    for loader in (yamlsafe.load_fast, yamlsafe.load_pure):
        with pytest.raises(yaml.MarkedYAMLError):
            loader('a: "\\ud800"')


def test_escape_beyond_unicode_is_a_yaml_error_on_the_pure_path_too():
    # the pure-Python scanner raised ValueError from chr(); a C1 character used to route text there
    for doc in ('a: "\\U00110000"', 'a: "\\U00110000 \x9d"'):
        for loader in (load, yamlsafe.load_pure):
            with pytest.raises(yaml.MarkedYAMLError):
                loader(doc)


@pytest.mark.parametrize("doc", ["a: b\ud800", "\udcff", "a: \x9d\ud800"])
def test_lone_surrogate_in_the_text_is_a_yaml_error(doc):
    exc = refused(doc)
    assert isinstance(exc, yamlsafe.BadCharacterError)
    assert "#xd" in exc.problem


def test_control_character_is_refused_with_line_and_column():
    exc = refused("a: 1\nb: caf\u00e9\x01\n")
    assert isinstance(exc, yamlsafe.BadCharacterError)
    assert (exc.problem_mark.line, exc.problem_mark.column) == (1, 7)


C1_DOC = (
    'title: "Surveillance\u00e2\u0080\u0094a \u00e2\u0080\u009cquote\u00e2\u0080\u009d"\n'
    "excerpt: plain \x81 text \x9f\n"
    "caf\u00c3\u0083\u00c2\u00a9\x8d: key with C1\n"
    "list: [\x80, '\x9d', \"\\x9d \x90\"]\n"
    "block: |\n  line \x9d one\n  line two \x8f\n"
    "nel: a\x85  b\n"
)


def test_c1_text_takes_the_libyaml_path_and_matches_the_pure_loader(monkeypatch):
    expected = yamlsafe.load_pure(C1_DOC)
    assert expected["excerpt"] == "plain \x81 text \x9f"
    assert "caf\u00c3\u0083\u00c2\u00a9\x8d" in expected

    def no_pure(text):
        raise AssertionError("C1 text must not need the pure-Python loader")

    monkeypatch.setattr(yamlsafe, "load_pure", no_pure)
    assert repr(load(C1_DOC)) == repr(expected)


def test_c1_with_private_use_stand_ins_already_present_falls_back_and_stays_exact():
    doc = "a: \U000f0081 and \x81\n\U000f009d: \x9d\n"
    assert load(doc) == yamlsafe.load_pure(doc) == {"a": "\U000f0081 and \x81", "\U000f009d": "\x9d"}


def test_c1_error_marks_match_the_pure_loader():
    doc = "a: \x9d ok\nb: [\x81, c\n"
    fast, pure = (pytest.raises(yaml.MarkedYAMLError), pytest.raises(yaml.MarkedYAMLError))
    with fast as f:
        yamlsafe.load_fast(doc)
    with pure as p:
        yamlsafe.load_pure(doc)
    assert f.value.problem_mark.line == p.value.problem_mark.line


# --------------------------------------------------------------------------- properties kept


def test_existing_safety_properties_are_kept():
    assert refused("a: &a [1]\nb: *a\n").problem == "YAML aliases are not allowed (found *a)"
    assert refused("a: " + "[" * 40 + "]" * 40).problem == f"nesting deeper than {yamllimits.MAX_DEPTH} levels"
    assert refused("a: 1\na: 2\n").problem == "duplicate key 'a'"
    assert load("a: NO\nb: 12:30:00\nc: 2021-10-06\nd: yes\ne: ~\nf: 1.5\ng: -3\n") == {
        "a": "NO",
        "b": "12:30:00",
        "c": "2021-10-06",
        "d": "yes",
        "e": None,
        "f": 1.5,
        "g": -3,
    }
    assert load("a: x\x9dy") == {"a": "x\x9dy"}


def test_long_alias_name_is_shown_truncated():
    exc = refused("a: &" + "n" * 5000 + " 1\nb: *" + "n" * 5000 + "\n")
    assert len(exc.problem) < 150


# --------------------------------------------------------------------------- Hypothesis

# YAML_EXAMPLES=20000 for a longer hunt (test_yamlsafe and test_yamlrust); 300 in CI.
BUDGET = settings(
    max_examples=int(os.environ.get("YAML_EXAMPLES", "300")),
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

TAGS = [
    "",
    "",
    "",
    "",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!seq ",
    "!!map ",
    "! ",
    "!!binary ",
    "!!set ",
    "!!omap ",
    "!!pairs ",
    "!!timestamp ",
    "!!merge ",
    "!!python/object:os.system ",
    "!!python/tuple ",
    "!foo ",
    "!<tag:yaml.org,2002:str> ",
    "!<urn:x> ",
    "&anchor ",
]
ODD_SCALARS = [
    "a",
    "title",
    "NO",
    "yes",
    "on",
    "12:30:00",
    "2021-10-06",
    "2021-02-30",
    "0001-01-01T00:00:00+01:00",
    "1",
    "-0",
    "007",
    "0x1F",
    "0o17",
    "1_000",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "9" * 5000,
    "1.5",
    "1.0e999",
    "-1.0e999",
    "1e999",
    ".inf",
    "-.inf",
    ".nan",
    "1.",
    ".5",
    "~",
    "null",
    "NULL",
    "",
    "true",
    "False",
    "maybe",
    "abc",
    "aGVsbG8=",
    "*anchor",
    "caf\u00c3\u00a9",
    "x\x9dy",
    "\x81",
    "\x85",
    "\U000f0081",
    "\u2028",
    "\ufeff",
    "'quoted'",
    "'it''s'",
    '"double"',
    '"\\ud800"',
    '"\\U00110000"',
    '"\\x9d"',
    '"\\u00e9"',
    '"\\N"',
    "'\x9d'",
    '"a\x85b"',
]

scalars = st.builds(lambda tag, s: tag + s, st.sampled_from(TAGS), st.sampled_from(ODD_SCALARS))


def _flow_map(pairs):
    return "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}"


flow_nodes = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda t, xs: t + "[" + ", ".join(xs) + "]", st.sampled_from(TAGS), st.lists(inner, max_size=4)),
        st.builds(
            lambda t, ps: t + _flow_map(ps),
            st.sampled_from(TAGS),
            st.lists(st.tuples(st.one_of(scalars, inner), inner), max_size=4),
        ),
    ),
    max_leaves=12,
)


def _block(pairs):
    return "\n".join(f"{k}: {v}" for k, v in pairs) + "\n"


deep = st.integers(min_value=28, max_value=40).map(lambda n: "x: " + "[" * n + "1" + "]" * n)
documents = st.one_of(
    flow_nodes,
    st.builds(_block, st.lists(st.tuples(st.one_of(scalars, flow_nodes), flow_nodes), min_size=1, max_size=6)),
    st.builds(lambda items: "".join(f"- {i}\n" for i in items), st.lists(flow_nodes, min_size=1, max_size=4)),
    deep,
)
YAMLISH = [
    *":-?[]{},#&*!|>'\"%@`\\ \n\t",
    "a",
    "1",
    "0",
    ".",
    "e",
    "x",
    "\x85",
    "\x81",
    "\x9d",
    "\U000f0081",
    "\ud800",
    "\u00e9",
    "\ufeff",
    "\x00",
    "\x7f",
]
yamlish_text = st.text(alphabet=st.sampled_from(YAMLISH), max_size=80)


def outcome(loader, text):
    try:
        value = loader(text)
    except yaml.YAMLError as exc:
        assert isinstance(exc, yaml.MarkedYAMLError), type(exc)
        assert len(str(exc.problem)) < 300, exc.problem  # never a megabyte of value in a message
        return ("error",)
    assert_json_compatible(value)
    return ("value", repr(value))  # repr: 1, 1.0 and True must not compare equal


@BUDGET
@given(st.one_of(st.text(max_size=200), yamlish_text))
def test_any_text_gives_json_values_or_a_yaml_error(text):
    outcome(load, text)


@BUDGET
@given(documents)
def test_any_document_gives_json_values_or_a_yaml_error(doc):
    outcome(load, doc)


@BUDGET
@given(st.one_of(documents, yamlish_text))
def test_fast_path_agrees_with_pure_loader(doc):
    assert outcome(yamlsafe.load_fast, doc) == outcome(yamlsafe.load_pure, doc)


# The fast path builds values straight from libyaml's events; the reference composes a node tree, then
# constructs. Composition errors must still win over an earlier construction error, and every message
# and position must be the reference's.
ORDER_CASES = [
    "a: !!binary x\nb: *ref\n",  # a bad tag first, an alias later: the alias is the error
    "a: !!int x\nb: &k 1\nc: &k 2\n",  # ... a duplicate anchor later
    "a: 1\na: 2\nb: " + "[" * 40 + "\n",  # a duplicate key, then nesting too deep
    "a: !!float .inf\n--- 2\n",  # a bad value, then a second document
    "? [a]\n: 1\n",
    "{a: !!str [1], b: !foo x}",
    "!!map [1]\n",
    "- !!seq x\n- 1\n",
    "'1': a\n1: b\n",
    "a: !!bool maybe\nb: !!null x\n",
    "k: &a v\n",
    "- [1, {a: !x y}]\n",
]


@pytest.mark.parametrize("doc", ORDER_CASES)
def test_fast_path_reports_the_reference_error(doc):
    def detail(loader):
        try:
            return ("value", repr(loader(doc)))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            return (type(exc).__name__, exc.problem, exc.context, mark and (mark.line, mark.column))

    assert detail(yamlsafe.load_fast) == detail(yamlsafe.load_pure)


# --------------------------------------------------------------------------- tabs and bounds
#
# libyaml reads a tab as a space between tokens, PyYAML (the reference) refuses it there; a tab used
# to send the whole text to the pure parser (2-21 s for 1 MiB). Now libyaml's tokens place each tab.

BIG = "related:\n" + "".join(
    f'  - title: "Item {i} with a title of some length"\n    quality: {i}\n' for i in range(800)
)
assert len(BIG) > yamlsafe.PURE_TAB_PREFIX


def detail(loader, text):
    try:
        return ("value", repr(loader(text)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        return (type(exc).__name__, exc.problem, exc.context, mark and (mark.index, mark.line, mark.column))


def spy_on_pure(monkeypatch) -> list[int]:
    """The lengths of the texts the pure parser is given from now on."""
    calls: list[int] = []
    real = yamlsafe.load_pure
    monkeypatch.setattr(yamlsafe, "load_pure", lambda text: calls.append(len(text)) or real(text))
    return calls


@pytest.mark.parametrize("tail", ['z: "a\tb"\n', "z: 'a\tb'\n", "# a\tb\n", "z: 1 # a\tb\n", "z: |\n  a\tb\n"])
def test_tabs_both_parsers_read_alike_do_not_need_the_pure_parser(tail, monkeypatch):
    text = BIG + tail
    expected = detail(yamlsafe.load_pure, text)
    assert expected[0] == "value"
    calls = spy_on_pure(monkeypatch)
    assert detail(yamlsafe.load_fast, text) == expected
    assert calls == []


@pytest.mark.parametrize("tail", ["z: a\tb\n", "z: 0\t\n", "z: 'a'\t# c\n", "z:\n-\tx\n", "z: 1 # c\r\ty: 2\n"])
def test_a_refused_tab_far_in_is_the_references_error_without_the_pure_parser(tail, monkeypatch):
    text = BIG + tail
    expected = detail(yamlsafe.load_pure, text)
    calls = spy_on_pure(monkeypatch)
    assert detail(yamlsafe.load_fast, text) == expected
    assert expected[1] == yamlsafe.TAB_PROBLEM or expected[1] == "could not find expected ':'"
    assert calls == []


def test_a_refused_tab_near_the_start_is_read_by_the_pure_parser_up_to_it(monkeypatch):
    text = "z: a\tb\n" + BIG
    expected = detail(yamlsafe.load_pure, text)
    calls = spy_on_pure(monkeypatch)
    assert (
        detail(yamlsafe.load_fast, text) == expected == ("ScannerError", yamlsafe.TAB_PROBLEM, ANY_CONTEXT, (4, 0, 4))
    )
    assert calls == [len("z: a\tb\n")]  # the tab's line, to its end


@pytest.mark.parametrize("tail", ["\tz: 1\n", "z: !!str\tx\n", "z: |\t\n  x\n", "z: [a,\tb]\n"])
def test_other_refused_tabs_are_read_by_the_pure_parser_up_to_their_line_end(tail, monkeypatch):
    # libyaml stops at "\tz" while reading the plain scalar before it; PyYAML words a tab after a tag
    # or in a block scalar header its own way; in flow collections the two parsers differ too often
    text = BIG + tail + "more: 2\n"
    expected = detail(yamlsafe.load_pure, text)
    calls = spy_on_pure(monkeypatch)
    assert detail(yamlsafe.load_fast, text) == expected and expected[0] != "value"
    assert calls == [len(BIG) + tail.index("\n") + 1]


ANY_CONTEXT = "while scanning for the next token"


@pytest.mark.parametrize("error", ["bad: *alias\n", "bad: x: y\n", "a:\n  - 1\n b: 2\n"])
def test_an_error_before_a_refused_tab_is_still_the_references(error, monkeypatch):
    text = BIG + error + "z: a\tb\n"
    expected = detail(yamlsafe.load_pure, text)
    assert expected[1] != yamlsafe.TAB_PROBLEM
    calls = spy_on_pure(monkeypatch)
    got = detail(yamlsafe.load_fast, text)
    assert got[0] == expected[0] and got[3] == expected[3]  # libyaml may word a syntax error its own way
    assert len(calls) <= 2  # the prefix up to the tab, then (if that read no error) the whole text


def test_a_mapping_of_more_than_max_keys_is_refused_at_the_first_key_too_many():
    ok = "".join(f"k{i}: {i}\n" for i in range(yamllimits.MAX_KEYS))
    assert len(load(ok)) == yamllimits.MAX_KEYS
    for text, mark in [
        (ok + "x: 1\n", (yamllimits.MAX_KEYS, 0)),
        ("a:\n" + ok.replace("k", "  k") + "  x: 1\n", (1001, 2)),
    ]:
        for loader in (yamlsafe.load_fast, yamlsafe.load_pure, load):
            with pytest.raises(yamlsafe.UnsafeYAMLError) as info:
                loader(text)
            assert info.value.problem == "a mapping has more than 1,000 keys"
            assert (info.value.problem_mark.line, info.value.problem_mark.column) == mark


def test_a_flow_colon_only_pyyaml_takes_goes_to_the_reference():
    for text, value in [("[a:]", [{"a": None}]), ("{a:}", {"a": None}), ("x: [a:,b]", {"x": [{"a": None}, "b"]})]:
        assert yamlsafe.load_fast(text) == yamlsafe.load_pure(text) == load(text) == value


def test_a_bom_after_the_start_goes_to_the_reference():
    for text, value in [("# x\n\ufeff", "\ufeff"), ("a: 1\n\ufeffc: 2\n", {"a": 1, "\ufeffc": 2})]:
        assert yamlsafe.load_fast(text) == yamlsafe.load_pure(text) == load(text) == value


@st.composite
def tabbed(draw):
    doc = draw(
        st.one_of(
            documents,
            yamlish_text,
            st.sampled_from([BIG[:300], "a: 1\nb:\n  - x\n  - 'y z'\n", "a: 1\r\nb: 'x\r\n y'\r\n\ufeffc: \u2028d\r"]),
        )
    )
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(doc)))
        doc = doc[:i] + draw(st.sampled_from(["\t", " \t", "\t#", "# \t", "'\t'", '"\t"'])) + doc[i:]
    return doc


@BUDGET
@given(tabbed())
def test_with_tabs_the_fast_path_agrees_with_the_pure_loader(doc):
    # PURE_TAB_PREFIX = 0: every refused tab takes the libyaml route that large texts take
    saved, yamlsafe.PURE_TAB_PREFIX = yamlsafe.PURE_TAB_PREFIX, 0
    try:
        fast, pure = detail(yamlsafe.load_fast, doc), detail(yamlsafe.load_pure, doc)
    finally:
        yamlsafe.PURE_TAB_PREFIX = saved
    assert fast == pure if pure[0] == "value" else fast[0] != "value"
    if fast[1] == yamlsafe.TAB_PROBLEM:  # raised without the pure parser: at the reference's position
        assert fast[3] == pure[3], (fast, pure)
