"""pipeline.safety.yamlrust: the yaml-rs path of ``yamlsafe.load`` only ever answers what the reference
loader (``load_pure``) answers, and otherwise falls back.

- example cases (``tests/data/yamlrust_cases.json``): inputs that must take the Rust path, and inputs
  that must fall back, with the screen's reason and the reference's value or error;
- the nesting that segfaults yaml-rs 0.1.6 never reaches it (run in a subprocess: a segfault fails
  the test instead of killing pytest), nor do mappings big enough to make its dict building
  quadratic (keys that collide in Python's hash; timed in ``bench/bench_yaml.py``);
- differential Hypothesis tests: ``load_rust`` falls back or returns exactly (type for type) what
  ``load_pure`` returns; ``load`` gives exactly what it gave without the Rust path (``load_fast``:
  the same value, or the same error type, message and mark).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from pipeline.safety import yamllimits, yamlrust, yamlsafe
from tests.conftest import DATA, ROOT
from tests.test_yamlsafe import BUDGET, documents, yamlish_text

pytestmark = pytest.mark.skipif(yamlrust.yaml_rs is None, reason="yaml-rs is not installed")

CASES = json.loads((DATA / "yamlrust_cases.json").read_text(encoding="utf-8"))


def typed(value):
    """``value`` with every scalar tagged by its type: 1, 1.0 and True differ, so do -0.0 and 0.0."""
    if isinstance(value, dict):
        return {k: typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [typed(v) for v in value]
    if isinstance(value, float):
        return ["float", value.hex()]
    return [type(value).__name__, value]


def same(a, b) -> bool:
    return json.dumps(typed(a), sort_keys=True) == json.dumps(typed(b), sort_keys=True)


def detail(loader, text):
    try:
        return ("value", json.dumps(typed(loader(text)), sort_keys=True))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        return (type(exc).__name__, exc.problem, exc.context, mark and (mark.line, mark.column))


# --------------------------------------------------------------------------- examples


def test_the_worktree_code_is_under_test():
    assert yamlrust.__file__.startswith(str(ROOT))


@pytest.mark.parametrize("case", CASES["rust"], ids=lambda c: c["name"])
def test_ordinary_front_matter_takes_the_rust_path(case):
    got = yamlrust.load_rust(case["text"])
    assert got is not yamlrust.FALLBACK
    assert same(got, case["value"]) and same(got, yamlsafe.load_pure(case["text"]))
    assert same(yamlsafe.load(case["text"]), case["value"])


@pytest.mark.parametrize("case", CASES["fallback"], ids=lambda c: c["name"])
def test_what_yaml_rs_reads_differently_falls_back(case, monkeypatch):
    text = case["text"]
    assert yamlrust.screen(text) == case["reason"]
    assert yamlrust.load_rust(text) is yamlrust.FALLBACK
    if "error" in case:
        with pytest.raises(yaml.MarkedYAMLError) as info:
            yamlsafe.load(text)
        assert (type(info.value).__name__, info.value.problem) == (case["error"], case["problem"])
    else:
        assert same(yamlsafe.load(text), case["value"])
    calls = []
    monkeypatch.setattr(yamlrust.yaml_rs, "loads", lambda *a, **k: calls.append(a) or {})
    yamlrust.load_rust(text)
    if yamlrust._screen_text(text) is not None:  # the float rules ("1e3", ".inf") run after the call
        assert calls == [], "screened text must never reach yaml-rs"


def test_every_screen_rule_has_an_example():
    reasons = {c["reason"] for c in CASES["fallback"]}
    assert reasons >= {
        "character",
        "flow nesting",
        "question mark with a flow collection",
        "indentation",
        "document marker or directive",
        "tag, anchor, alias, block scalar or complex key",
        "compact nesting",
        "number spelling",
        "escape",
        "too many key separators",
        "long digit run",
        "colon or line break in a flow collection",
        None,  # the post-walk: non-string keys, beyond 64 bits, too deep for MAX_DEPTH
    }


def test_float_rules_run_only_when_yaml_rs_returned_a_float():
    # a hex hash with 6+ digits before an "e" trips the conservative exponent rule, but yields no float
    text = 'url: "https://x.example/a.jpg?h=4362216e&b=1"\nn: 3\n'
    assert yamlrust.screen(text) == "number spelling"
    assert yamlrust.load_rust(text) == {"url": "https://x.example/a.jpg?h=4362216e&b=1", "n": 3}
    assert yamlrust.load_rust(text + "f: 1.5\n") is yamlrust.FALLBACK  # a float: the rule applies


def test_without_yaml_rs_load_is_load_fast(monkeypatch):
    monkeypatch.setattr(yamlrust, "yaml_rs", None)
    assert yamlrust.load_rust("a: 1") is yamlrust.FALLBACK
    assert yamlsafe.load("a: 1") == {"a": 1}


def test_yaml_rs_failing_in_any_way_falls_back(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("native failure")

    monkeypatch.setattr(yamlrust.yaml_rs, "loads", boom)
    assert yamlrust.load_rust("a: 1") is yamlrust.FALLBACK
    assert yamlsafe.load("a: 1") == {"a": 1}


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {("a",): 1},
        {"a": 1 << 63},
        {"a": -(1 << 63) - 1},
        {"a": math.inf},
        {"a": math.nan},
        {"a": "x\x9dy"},
        {"a": "\ud800"},
        {"a": b"x"},
        ("a",),
        {"a\x9d": 1},
    ],
    ids=repr,
)
def test_post_walk_refuses_what_the_reference_would_not_return(value):
    assert not yamlrust._vouch(value, [])


def test_post_walk_depth_is_the_references():
    def nest(n):
        v: object = 1
        for _ in range(n):
            v = [v]
        return v

    assert yamlrust._vouch(nest(yamllimits.MAX_DEPTH), [])
    assert not yamlrust._vouch(nest(yamllimits.MAX_DEPTH + 1), [])


# --------------------------------------------------------------------------- segfaults

SEGFAULTS = {
    "compact block sequence": "'- ' * 100000 + 'x'",
    "indented mappings": "''.join(' ' * i + 'a:\\n' for i in range(20000)) + ' ' * 20000 + 'x'",
    "sequence of mappings": "''.join(' ' * i + '- a:\\n' for i in range(0, 40000, 2)) + 'x'",
    "deep flow": "'[' * 100000",
}


@pytest.mark.parametrize("expr", SEGFAULTS.values(), ids=list(SEGFAULTS))
def test_nesting_that_kills_yaml_rs_never_reaches_it(expr):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from pipeline.safety import yamlrust, yamlsafe\n"
        f"text = {expr}\n"
        "assert yamlrust.screen(text) is not None, 'not screened'\n"
        "try:\n"
        "    yamlsafe.load(text)\n"
        "except yamlsafe.yaml.MarkedYAMLError as exc:\n"
        "    print('error', exc.problem)\n"
        "else:\n"
        "    print('value')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=300, cwd=ROOT
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.startswith("error"), proc.stdout


# --------------------------------------------------------------------------- work bounds

COLLIDING = "''.join(f'{k * ((1 << 61) - 1)}: 1\\n' for k in range(38000))"  # 1 MB, every key hashes alike


def test_colliding_integer_keys_never_reach_yaml_rs_and_are_refused(monkeypatch):
    text = "".join(f"{k * ((1 << 61) - 1)}: 1\n" for k in range(38000))  # COLLIDING
    assert yamlrust.screen(text) == "too many key separators"
    monkeypatch.setattr(yamlrust.yaml_rs, "loads", lambda *a, **k: pytest.fail("reached yaml-rs"))
    for loader in (yamlsafe.load, yamlsafe.load_fast, yamlsafe.load_pure):
        with pytest.raises(yamlsafe.UnsafeYAMLError) as info:
            loader(text)
        assert info.value.problem == "a mapping has more than 1,000 keys"
        assert (info.value.problem_mark.line, info.value.problem_mark.column) == (1000, 0)


def test_colliding_integer_keys_do_not_hang_the_loader():
    """A hang guard, not a benchmark: 22-77 s before the bound, about 0.1 s now (bench/bench_yaml.py)."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from pipeline.safety import yamlsafe\n"
        f"text = {COLLIDING}\n"
        "for loader in (yamlsafe.load, yamlsafe.load_fast, yamlsafe.load_pure):\n"
        "    try:\n"
        "        loader(text)\n"
        "    except yamlsafe.UnsafeYAMLError as exc:\n"
        "        print(exc.problem)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=20, cwd=ROOT)
    assert proc.stdout.splitlines() == ["a mapping has more than 1,000 keys"] * 3, proc.stderr[-2000:]


@pytest.mark.parametrize(
    "text",
    [
        "".join(f"k{i}: 1\n" for i in range(yamllimits.MAX_KEYS // 2 + 1)) + "x: " + "a," * (yamllimits.MAX_KEYS // 2),
        "{" + ", ".join(f"k{i}: {i}" for i in range(yamllimits.MAX_KEYS // 2 + 1)) + "}",
    ],
)
def test_yaml_rs_never_sees_more_key_separators_than_max_keys(text):
    assert yamlrust.screen(text) == "too many key separators"
    assert yamlsafe.load(text) == yamlsafe.load_pure(text)


def test_mappings_of_max_keys_still_take_the_rust_path():
    text = "".join(f"k{i}: {i}\n" for i in range(yamllimits.MAX_KEYS))
    assert yamlrust.load_rust(text) == {f"k{i}": i for i in range(yamllimits.MAX_KEYS)}


# --------------------------------------------------------------------------- differential


def check_agrees(text: str) -> None:
    got = yamlrust.load_rust(text)
    ref = detail(yamlsafe.load_pure, text)
    if got is not yamlrust.FALLBACK:
        assert ref == ("value", json.dumps(typed(got), sort_keys=True)), (text, got, ref)
    # load: the reference's value, and exactly today's error (load_fast: libyaml words some syntax
    # errors differently from the pure parser, which test_yamlsafe accepts; the Rust path changes none)
    assert detail(yamlsafe.load, text) == detail(yamlsafe.load_fast, text)
    assert detail(yamlsafe.load, text)[0] == ref[0] or ref[0] != "value"


NUMBER_CHARS = st.sampled_from(
    [*"0123456789", *"0011", ".", "e", "E", "+", "-", "_", "x", "o", "b", "i", "n", "f", "a"]
)
numbers = st.one_of(
    st.text(NUMBER_CHARS, min_size=1, max_size=12),
    st.integers(min_value=-(1 << 70), max_value=1 << 70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats().map(lambda f: f"{f:.17e}"),
    st.floats(min_value=-1e6, max_value=1e6).map(lambda f: f"{f:.6f}"),
    st.sampled_from([".inf", "-.Inf", "+.INF", ".nan", ".NaN", "1.", ".5", "-.5e3", "007", "0x1F", "1_000", "_1"]),
)
ESCAPES = [
    *'0abtnvfre "/\\N_LP',
    "x41",
    "x7f",
    "x9d",
    "u00e9",
    "u009d",
    "ud800",
    "uD83D\\uDE00",
    "U0001F600",
    "q",
    "\n",
]
dq = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters='"\\'), max_size=6),
        st.sampled_from(ESCAPES).map(lambda e: "\\" + e),
        st.sampled_from(["\n", "\n\n", "\n  ", " \n "]),
    ),
    max_size=6,
).map(lambda parts: '"' + "".join(parts) + '"')
sq = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12).map(lambda s: "'" + s.replace("'", "''") + "'")
plain_words = st.sampled_from(
    ["a", "title", "Tom & Jerry", "x > y", "what? why", "a:b", "https://x.example/p?w=1&h=2", "R&amp;D", "caf\u00e9",
     "\u6b27\u5dde", "\u00a0x", "a -b", "x #not", "1 2", "- x", "12:30:00", "2021-10-06T11:10:00Z", "true", "Null", "~", ""]
)  # fmt: skip
scalar = st.one_of(numbers, dq, sq, plain_words)
key = st.one_of(plain_words.filter(bool), numbers, dq, sq, st.sampled_from(["a:b", "key with spaces", "k"]))


def _block_map(pairs, indent=0):
    pad = " " * indent
    return "".join(f"{pad}{k}: {v}\n" for k, v in pairs)


stress_docs = st.one_of(
    st.builds(_block_map, st.lists(st.tuples(key, scalar), min_size=1, max_size=6)),
    st.builds(
        lambda pairs, comment: _block_map(pairs) + comment,
        st.lists(st.tuples(key, scalar), min_size=1, max_size=4),
        st.sampled_from(["", "# c\n", "  # indented comment\n", "x: 1 # trailing\n"]),
    ),
    st.builds(
        lambda k, lines, ind: f"{k}: " + ("\n" + " " * ind).join(lines) + "\n",
        key,
        st.lists(st.one_of(plain_words, numbers), min_size=1, max_size=4),
        st.integers(min_value=0, max_value=3),
    ),  # multi-line plain scalars (folding; at indentation 0 an error)
    st.builds(
        lambda k, items: f"{k}:\n" + "".join(f"  - {i}\n" for i in items),
        key,
        st.lists(scalar, max_size=4),
    ),
    st.builds(lambda items: "[" + ", ".join(items) + "]", st.lists(scalar, max_size=5)),
    st.builds(
        lambda pairs: "{" + ", ".join(f"{k}: {v}" for k, v in pairs) + "}",
        st.lists(st.tuples(key, scalar), max_size=4),
    ),
)


# Flow collections with ":" "#" and line breaks where tokens start: finds "[:d]", "{:0}", "{:#}",
# "X: [::]" and "s: {l\n:}\ne:" (yaml-rs values, PyYAML errors) within the default budget.
flow_piece = st.sampled_from(
    [":", "::", ":d", ":0", ":#", "#", " #", "a", "d", "l\n", "\n", "\n ", '"\n"', '""', "''", "[]", "{}", ": ", " ", "0"]
)  # fmt: skip
flow_stress = st.builds(
    lambda before, opener, items, sep, after: before + opener + sep.join(items) + "]}"[opener == "{"] + after,
    st.sampled_from(["", "X: ", "s: ", "- "]),
    st.sampled_from("[{"),
    st.lists(st.lists(flow_piece, max_size=3).map("".join), max_size=3),
    st.sampled_from([", ", ",", ": ", ",\n"]),
    st.sampled_from(["", "\n", "\ne:", " # c"]),
)


@BUDGET
@given(flow_stress)
def test_rust_path_agrees_with_the_reference_on_flow_punctuation(doc):
    check_agrees(doc)


@BUDGET
@given(st.one_of(documents, yamlish_text))
def test_rust_path_agrees_with_the_reference_on_the_yamlsafe_strategies(doc):
    check_agrees(doc)


@BUDGET
@given(stress_docs)
def test_rust_path_agrees_with_the_reference_on_stress_documents(doc):
    check_agrees(doc)


@BUDGET
@given(st.lists(st.tuples(key, scalar), min_size=1, max_size=8), st.sampled_from(["", "\n", "\n\n"]))
def test_seed_shaped_documents_mostly_take_the_rust_path_and_agree(pairs, tail):
    text = _block_map(pairs) + tail
    check_agrees(text)
