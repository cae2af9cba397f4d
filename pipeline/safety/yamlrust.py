"""The optional first path of :func:`pipeline.safety.yamlsafe.load`: the Rust parser ``yaml-rs``.

``yaml_rs.loads`` reads ordinary front matter about ten times faster than libyaml's event parser
with our checks on top, but it is not our loader: it speaks YAML 1.2 core (``007``, ``0x1F``,
``1e3``, ``.inf``, ``1_000`` are numbers there), ignores tags, expands aliases, returns a list for
several documents, keeps integers of any size, gives non-string keys, and it **kills the process**
(a stack overflow in native code) on deep block nesting. So it only ever sees text that
:func:`screen` lets through, and :func:`load_rust` only ever returns a value that :func:`_vouch`
(the post-walk) accepts. Everything else, including every error, goes to the loaders in
:mod:`~pipeline.safety.yamlsafe` (``load_fast``, with ``load_pure`` as the reference), so every value,
error type, message and mark stays theirs: this path can only make a success faster.

The screen is deliberately coarse: refusing costs one libyaml parse, accepting wrongly costs a wrong
value. Each rule below names the difference it closes; the differential tests in
``tests/test_yamlrust.py`` check the whole on generated documents against ``load_pure``.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from pipeline.safety.yamllimits import INT_MAX, INT_MIN, MAX_DEPTH, MAX_KEYS, SPECIAL

yaml_rs: Any
try:
    import yaml_rs
except ImportError:  # the optional dependency is missing: yamlsafe.load uses its own loaders only
    yaml_rs = None

FALLBACK: Final = object()
"""What :func:`load_rust` returns when the text must go to the reference loaders instead."""

# ----------------------------------------------------------------------------- nesting bounds
#
# yaml-rs 0.1.6 builds values recursively in native code: measured at about 0.74 KiB of stack per
# nesting level (plus ~10 KiB), it segfaults at ~15,000 block levels on the main thread's 8 MiB
# stack and at ~75 levels on a 64 KiB thread stack (flow nesting stops at 256 with an error, but
# that is past what a 64 KiB stack holds too). The screen bounds nesting BEFORE calling it:
#
# - block collections: a nested block collection starts at a column greater than its parent's, but
#   for a sequence that is a mapping's value, which may share the mapping's column; so a chain of
#   nested block collections is at most 2 x (number of columns they start at) deep. A block
#   collection starts on its line after indentation and compact indicators only (``- a: 1``:
#   tags and anchors are screened out, ``a: - b`` is invalid), so refusing any line that begins with
#   more than MAX_LEAD characters from `` -?:`` bounds the columns to 0..MAX_LEAD and the block
#   depth to 2 x (MAX_LEAD + 1) = 50;
# - flow collections: each level has its own ``[`` or ``{``, and a flow collection cannot hold a
#   block one; refusing text with more than MAX_FLOW_OPENERS of them (quoted or not) bounds the flow
#   depth to 16.
#
# So yaml-rs never sees more than 66 levels: ~150 times below what the main thread survives, within
# even a 64 KiB thread stack, and still twice MAX_DEPTH (deeper documents are errors anyway, raised
# by the reference loaders after the post-walk sends them back).
MAX_LEAD = 24  # most indentation / compact-indicator characters at the start of a line
MAX_FLOW_OPENERS = 16  # most "[" plus "{" characters in the whole text
_LEAD = re.compile(r"\n[ ?:-]{" + str(MAX_LEAD + 1) + "}")

# ----------------------------------------------------------------------------- work bounds
#
# yaml-rs builds Python dicts with Python's hash, where integer keys can be chosen to collide (every
# multiple of 2**61 - 1 hashes alike): 38,000 such keys in 945 KB took 22-77 s, quadratic, before
# the post-walk could refuse them. So the screen bounds the dict entries yaml-rs can build in the
# whole text, whatever their keys: each entry of a block mapping needs a ":" ("?" keys are screened
# out), each entry of a flow mapping a ":" or a "," (but one per "{", at most MAX_FLOW_OPENERS), so
# refusing more than MAX_KEYS of ":" and "," together leaves yaml-rs at most MAX_KEYS + 16 entries:
# even if all collided, ~10^6 probes, about 10 ms. Real front matter has under 100. Beyond it, the
# text goes to libyaml, whose dicts have string keys only, and which refuses a mapping of more than
# MAX_KEYS entries before storing any more of it.
#
# Integers: the reference refuses more than 64 bits, yaml-rs converts any length (a megabyte of
# digits costs quadratic time in the conversion to a Python int): text with a run of more than
# MAX_DIGITS digits anywhere (an integer of 64 bits has at most 19) does not go to it.
MAX_DIGITS = 19
_LONG_DIGITS = re.compile("[0-9]{" + str(MAX_DIGITS + 1) + "}")

# ----------------------------------------------------------------------------- screen rules
#
# The rules are written for speed as much as for precision (the screen must cost far less than the
# parse it saves): each regex starts with a character that is rare or quick to reject, and looks
# behind it with fixed-width lookbehinds; the start of the text is checked separately by prefixing
# it with "\n" (one copy, far cheaper than "^" in every pattern).

# Characters the two parsers read differently, or our loaders treat specially: everything but
# "\n" and printable text. Refused: tab (PyYAML refuses it where libyaml takes it), CR (YAML 1.1 line
# break rules), C0 and DEL, C1 including NEL U+0085 and U+2028/U+2029 (line breaks for PyYAML, text
# for YAML 1.2), the BOM U+FEFF (PyYAML drops it, yaml-rs keeps it in the first key), U+FFFE/U+FFFF,
# lone surrogates, and the private-use stand-ins U+F0080..U+F009F of our C1 swap.
_BAD_CHAR = re.compile(
    "[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U000f007f\U000f00a0-\U0010ffff]"
)
# "---" / "..." at a line start (several documents: yaml-rs returns a list; a lone "..." is null
# there, an error here) and "%" directives.
_DOCUMENT = re.compile(r"\n(?:---|\.\.\.|%)")
# A node starting with: a tag "!" (yaml-rs ignores tags), an anchor "&" or alias "*" (yaml-rs
# expands aliases), a block scalar header "|" ">" (not proven equal), a complex key "?" (tuples in
# yaml-rs; in flow PyYAML reads "[?x]" as a key), or a reserved "%@`" (errors either way). A node
# starts at a line start (after indentation), right after a flow indicator or ":", or after spaces
# that follow an indicator; inside a plain scalar ("Tom & Jerry", "a > b") these characters are text
# after ordinary text. Any of them after two spaces falls back too (lookbehinds have a fixed width).
_NODE_PROPERTY = re.compile(r"[!&*|>?%@`](?:(?<=[\[\]{},:\n].)|(?<=[\[\]{},:?\n -] .))")
# Compact nested block collections ("- - x", "? - x", ": - x", "-  - x"; MAX_LEAD alone bounds their
# depth, they are kept out to be conservative) and a ":" value indicator
# opening a line ("{a\n: b}" is a mapping for yaml-rs, an error for PyYAML; ": x" is a null key there).
_COMPACT = re.compile(r" -(?:(?<=[-?:] -)|(?<=[-?:]  -))(?:[ \n]|\Z)|\n *:(?:[ \n]|\Z)")
# Plain tokens YAML 1.2 core types as numbers and we do not, at a token start (line start, space or
# flow indicator; '"a":007' is JSON-like flow): any with "_" (yaml-rs drops underscores: "_1" is 1;
# "_id" falls back too), a leading zero followed by a digit or letter ("007", "0x1F", "0o17", "0b1",
# "00.5"), digits straight into an exponent ("1e3", "1E-5"; six digits or more before an "e"
# anywhere), and ".inf"/".nan" in any case. Conservative: "1e3 apples" falls back too. Integers beyond
# 64 bits and floats beyond the double range are left to the post-walk.
_T = r"[\s\[\]{},]"  # a token start (the character before the token)
_UNDERSCORE = re.compile(_T + r"[-+]?(?:_|[.0-9][-+.0-9a-zA-Z]*_)|[\"']:[-+]?(?:_|[.0-9][-+.0-9a-zA-Z]*_)")
_LEADING_ZERO = re.compile(rf"0[0-9a-zA-Z](?:(?<={_T}..)|(?<={_T}[-+]..)|(?<=[\"']:..)|(?<=[\"']:[-+]..))")
_EXPONENT = re.compile(
    r"[eE](?<=[0-9][eE])(?:"
    + "|".join(
        [f"(?<={_T}[0-9]{{{n}}}[eE])|(?<={_T}[-+][0-9]{{{n}}}[eE])" for n in range(1, 6)]
        + [r"(?<=[\"':][0-9][eE])", r"(?<=[\"':][-+][0-9][eE])", r"(?<=[0-9]{6}[eE])"]
    )
    + ")"
)
_NOT_FINITE = re.compile(rf"\.(?i:inf|nan)(?:(?<={_T}....)|(?<={_T}[-+]....)|(?<=:....)|(?<=:[-+]....))")
# Flow collections, where PyYAML (YAML 1.1) and yaml-rs (1.2) read ":" and line breaks differently:
# a ":" starting a token is a value indicator for PyYAML ("[:d]", "{a: :b}", "X: [::]" and "{:0}"
# are errors) but starts a plain scalar for yaml-rs (":d"); and an implicit key broken over lines
# ("{l\n:}", "{a\n b: c}", '{"\n":1}' with a real line break) is an error for PyYAML, a key for
# yaml-rs, which refuses some multi-line flow collections PyYAML takes. With a flow collection in the
# text, a ":" after a space, line break, flow indicator or ":" falls back ("a : b" too), and so does
# any line where "[" "{" "]" "}" (quoted or not) do not balance.
_FLOW_COLON = re.compile(r"[\s\[\]{},:]:")
_BRACKETS = re.compile(r"[\[\]{}]")


def _flow_lines_unbalanced(text: str) -> bool:
    """Whether a line holding a "[" or "{" leaves a flow collection open or closes one it did not open."""
    seen = -1
    for opener in re.finditer(r"[\[{]", text):
        start = text.rfind("\n", 0, opener.start()) + 1
        if start <= seen:
            continue  # this line was checked
        end = text.find("\n", start)
        seen = end = len(text) if end < 0 else end
        depth = 0
        for bracket in _BRACKETS.findall(text, start, end):
            depth += 1 if bracket in "[{" else -1
            if depth < 0:
                return True
        if depth:
            return True
    return False


# Backslash escapes (in double-quoted scalars; elsewhere a backslash is text, refused alike): only
# the simple ones, "\xNN" below U+0080 and "\uNNNN" outside the surrogates (yaml-rs joins the pair
# "\uD83D\uDE00" into one character, PyYAML keeps two lone surrogates). No "\U", no "\" at the end.
_BAD_ESCAPE = re.compile(r"\\(?![0abtnvfre \"/\\N_LP\n]|x[0-7][0-9a-fA-F]|u(?![dD][89a-fA-F])[0-9a-fA-F]{4})")


def screen(text: str) -> str | None:
    """Why ``text`` must not go to yaml-rs (a short reason, for tests and curious people), or
    ``None`` when it may. :func:`load_rust` runs the float rules only when yaml-rs returned a float."""
    return _screen_text(text) or _screen_floats(text)


def _screen_text(text: str) -> str | None:
    if _BAD_CHAR.search(text):
        return "character"
    openers = text.count("[") + text.count("{")
    if openers > MAX_FLOW_OPENERS:
        return "flow nesting"
    if openers and "?" in text:  # inside a flow collection PyYAML ends a plain scalar at "?": "[what? x]"
        return "question mark with a flow collection"
    if text.count(":") + text.count(",") > MAX_KEYS:
        return "too many key separators"
    text = "\n" + text  # the start of the text is a line start
    if _LEAD.search(text):
        return "indentation"
    if _DOCUMENT.search(text):
        return "document marker or directive"
    if _NODE_PROPERTY.search(text):
        return "tag, anchor, alias, block scalar or complex key"
    if _COMPACT.search(text):
        return "compact nesting"
    if ("_" in text and _UNDERSCORE.search(text)) or _LEADING_ZERO.search(text):
        return "number spelling"
    if "\\" in text and _BAD_ESCAPE.search(text):
        return "escape"
    if _LONG_DIGITS.search(text):
        return "long digit run"
    if openers and (_FLOW_COLON.search(text) or _flow_lines_unbalanced(text)):
        return "colon or line break in a flow collection"
    return None


def _screen_floats(text: str) -> str | None:
    """The rules whose tokens yaml-rs can only turn into floats ("1e3", ".inf"): needless when the
    result holds no float (most front matter), and the costliest to run."""
    text = "\n" + text
    if _EXPONENT.search(text) or _NOT_FINITE.search(text):
        return "number spelling"
    return None


# ----------------------------------------------------------------------------- post-walk


def _vouch(value: Any, floats: list[float], depth: int = 0) -> bool:
    """Whether ``value`` is one the reference loaders would return as it is: only ``str`` (without
    C1, surrogates or our stand-ins, e.g. from escapes), ``int`` within signed 64 bits, finite
    ``float`` (collected in ``floats``), ``bool``, ``None``, ``list`` and ``dict`` with ``str`` keys and
    at most MAX_KEYS entries (the screen already bounds them), nested at most MAX_DEPTH collections
    deep (deeper is the reference's error to raise)."""
    kind = type(value)
    if kind is str:
        return value.isascii() or SPECIAL.search(value) is None
    if kind is int:
        return INT_MIN <= value <= INT_MAX
    if kind is float:
        floats.append(value)
        return math.isfinite(value)
    if kind is bool or value is None:
        return True
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        if len(value) > MAX_KEYS:
            return False
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or SPECIAL.search(key) is None):
                return False
            if not _vouch(item, floats, depth + 1):
                return False
        return True
    if kind is list:
        return all(_vouch(item, floats, depth + 1) for item in value)
    return False


def load_rust(text: str) -> Any:
    """``text`` loaded by yaml-rs when :func:`screen` lets it through and :func:`_vouch` accepts the
    result; otherwise :data:`FALLBACK` (also when yaml-rs is missing or raises anything)."""
    if yaml_rs is None or _screen_text(text) is not None:
        return FALLBACK
    try:
        value = yaml_rs.loads(text, parse_datetime=False)
    except Exception:  # noqa: BLE001 - any failure, even yaml-rs's own, is the reference loaders' to report
        return FALLBACK
    floats: list[float] = []
    if not _vouch(value, floats) or (floats and _screen_floats(text) is not None):
        return FALLBACK
    return value
