"""A YAML loader for untrusted front matter.

(Over 400 lines on purpose: every safety rule, its error type and both load paths, libyaml and the
pure-Python reference, are read and reviewed together; split, the rules would drift apart. The third,
optional path, the Rust parser, lives in :mod:`pipeline.safety.yamlrust`: it adds no rule of its own,
it only has to stay inside these.)

Built on PyYAML's parsing machinery, with these changes, each closing a known trap:

- **JSON-compatible values only**: the result is built from ``str``, ``int`` (signed 64-bit, what
  OpenSearch calls ``long``), finite ``float``, ``bool``, ``None``, ``list`` and ``dict`` with ``str``
  keys, by our own constructor; PyYAML's constructors are never called. Explicit tags are limited to
  ``!!str !!int !!float !!bool !!null !!seq !!map`` and the non-specific ``!``; any other tag
  (``!!binary``, ``!!set``, ``!!timestamp``, ``!!python/...``, ``!custom``) is an error, and so is
  a value its tag does not fit (``!!int abc``, ``!!bool maybe``, ``!!float .inf``, a 5,000-digit
  integer). Every such error is a ``yaml.MarkedYAMLError`` with the node's position, and shows at most
  :data:`SHOW_CHARS` characters of the offending value;
- **scalar mapping keys become strings**: ``1: x`` / ``true: y`` / ``null: z`` give the keys ``"1"``,
  ``"true"``, ``"null"`` (their source text); a sequence or mapping used as a key is an error;
- **duplicate keys are errors** (PyYAML silently keeps the last one), checked after the key
  conversion above, so ``1:`` and ``"1":`` in one mapping are duplicates;
- **no aliases**: ``*ref`` is an error, so a 300-byte "billion laughs" document cannot expand to
  hundreds of megabytes after loading (``safe_load`` does not bound alias expansion);
- **bounded mappings**: a mapping with more than ``MAX_KEYS`` entries is an error, raised at the first
  entry too many, before any of it is stored (see :data:`MAX_KEYS` for why and for the parse budget);
- **bounded nesting**: more than ``MAX_DEPTH`` nested collections is an error, raised before Python's
  recursion limit. libyaml's ``CSafeLoader`` composes in C and segfaults around 50,000 levels, so we
  never use its composer: when libyaml is available we take only its *event parser* (``CParser``, a
  pull parser with heap stacks) and turn its events into values in one Python loop with our checks on
  top (``FastUntrustedLoader.get_single_data``: no node tree; the pure-Python composer and constructor
  stay the reference it must agree with, error for error);
- **YAML 1.2-style scalars**: only ``true/false``, decimal numbers and ``null`` are typed; ``NO``,
  ``12:30:00`` and ``2021-10-06`` stay strings (YAML 1.1 would give False, 45000 and a date) and the
  validator decides what each field means;
- **C1 control characters are text**: raw U+0080..U+009F (mojibake debris like U+009D) are accepted
  instead of refusing the whole document, so the normalizer can repair them. libyaml refuses them, so
  :func:`load` swaps each for a private-use code point before parsing and swaps it back in every
  resulting string; a document that already holds one of those private-use code points takes the
  (slower, equivalent) pure-Python path.

:func:`load` raises nothing but ``yaml.YAMLError`` (in practice always a ``MarkedYAMLError``); a
failure of PyYAML itself on hostile input is reported as :class:`YAMLParseFailure`.

Three paths, fastest first, one set of answers: :func:`load` first offers the text to the Rust parser
``yaml-rs`` (optional; :func:`pipeline.safety.yamlrust.load_rust`, about ten times faster on ordinary
front matter) behind a conservative screen of the text and a post-walk of the result; whatever they
cannot vouch for, and every error, goes to :func:`load_fast` (libyaml's event parser), which hands
what it cannot take to :func:`load_pure`, the reference both must agree with.

**Parse budget per seed** (``bench/bench_yaml.py``; a front matter is at most ``parse.MAX_SEED_BYTES``, 1
MiB): every loader is linear in the text (``MAX_KEYS`` and the yaml-rs screen's bounds remove the quadratic
dict building; integers are never converted beyond 19 digits). Measured on the shared 2-core machine (figures
vary 2-4x with its load), 1 MiB through ``load``: a realistic seed 0.11-0.35 s; with a tab in a quoted scalar,
a comment or block plain text 0.2-1.0 s (it was 2-21 s: the whole text went to the pure parser); the costliest
shapes (3-byte flow items, one-character keys) 0.55-2.9 s; the 38,000 colliding keys refused in 0.02-0.05 s
(it was 22-77 s). Text only the pure parser reads (a private-use stand-in of the C1 swap, ``:`` before a flow
indicator, ``>#``, a BOM after the start; up to its line's end, a refused tab after a tag, after a "[" or "{"
or after an error libyaml finds first) costs what :func:`load_pure` costs: 1-5 s for a realistic 1 MiB seed
and 7-23 s for 1 MiB of the costliest shapes (some 20 us per token): the worst case of one seed.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import BaseConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner, ScannerError
from yaml.tokens import DirectiveToken, ScalarToken, StreamEndToken, TagToken

from pipeline.safety import yamlrust
from pipeline.safety.yamllimits import INT_MAX, INT_MIN, MAX_DEPTH, MAX_KEYS, SPECIAL

SHOW_CHARS = 60
"""Most characters of a value (or tag) an error message shows; values can be a megabyte long."""

TOO_MANY_KEYS = f"a mapping has more than {MAX_KEYS:,} keys"
_NO_KEY = object()  # a mapping frame waiting for its next key


class UnsafeYAMLError(yaml.MarkedYAMLError):
    """The document uses a YAML feature refused for untrusted input (alias, deep nesting, duplicate key,
    a non-scalar mapping key)."""


class DisallowedTagError(UnsafeYAMLError):
    """An explicit tag other than ``!!str !!int !!float !!bool !!null !!seq !!map`` and ``!``."""


class BadValueError(yaml.MarkedYAMLError):
    """A value its (explicit or implicit) tag does not fit: ``!!int abc``, an integer beyond 64 bits,
    an infinite float, a string holding a lone surrogate, ``!!str`` on a mapping..."""


class BadCharacterError(yaml.MarkedYAMLError):
    """A character YAML does not allow in a document (a C0 control, a lone surrogate...): PyYAML's
    ``ReaderError`` with a line and column instead of an offset."""


class YAMLParseFailure(yaml.MarkedYAMLError):
    """PyYAML itself failed on the document with something other than a ``YAMLError`` (e.g. the
    pure-Python scanner's ``ValueError`` on ``"\\U00110000"``). Never expected, always caught."""


def show(value: str, limit: int = SHOW_CHARS) -> str:
    """``repr`` of ``value`` cut to about ``limit`` characters, saying how long the whole value is."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"


_TAG_PREFIX = "tag:yaml.org,2002:"


def show_tag(tag: str) -> str:
    """A tag the way a person wrote it: ``!!binary``, ``!custom``, ``!<urn:x>``; cut if long."""
    if tag.startswith(_TAG_PREFIX):
        text = "!!" + tag[len(_TAG_PREFIX) :]
    elif tag.startswith("!"):
        text = tag
    else:
        text = f"!<{tag}>"
    return text if len(text) <= SHOW_CHARS else text[:SHOW_CHARS] + "..."


# ----------------------------------------------------------------------------- reading and composing


class _Reader(Reader):
    # PyYAML refuses C1 controls (U+0080..U+009F except U+0085); mojibake routinely contains them.
    NON_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x80-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class _Composer(Composer):
    def compose_document(self):
        self._depth = 0
        return super().compose_document()

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            event = self.peek_event()
            anchor = event.anchor if len(event.anchor) <= SHOW_CHARS else event.anchor[:SHOW_CHARS] + "..."
            raise UnsafeYAMLError(None, None, f"YAML aliases are not allowed (found *{anchor})", event.start_mark)
        if index is None and parent is not None and len(parent.value) >= MAX_KEYS:  # a key: one entry too many
            raise UnsafeYAMLError(None, None, TOO_MANY_KEYS, self.peek_event().start_mark)
        nested = self.check_event(MappingStartEvent) or self.check_event(SequenceStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise UnsafeYAMLError(
                    None, None, f"nesting deeper than {MAX_DEPTH} levels", self.peek_event().start_mark
                )
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def compose_scalar_node(self, anchor):
        # The non-specific tag "!" makes a scalar a string (YAML 1.2, 6.9.1). libyaml's events say so;
        # PyYAML's pure parser marks an empty "!" scalar implicit, which would resolve it to null.
        event = self.peek_event()
        node = super().compose_scalar_node(anchor)
        if event.tag == "!":
            node.tag = _TAG_PREFIX + "str"
        return node


# ----------------------------------------------------------------------------- constructing

_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP = (
    _TAG_PREFIX + t for t in ("str", "int", "float", "bool", "null", "seq", "map")
)
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})
_KIND = {ScalarNode: "a scalar", SequenceNode: "a sequence", MappingNode: "a mapping"}

# YAML 1.2 core schema forms (the implicit resolvers below accept a subset of these).
_INT_FORMS = (
    (re.compile(r"([-+]?)([0-9]+)"), 10, 19),  # 2**63 has 19 decimal digits
    (re.compile(r"([-+]?)0x([0-9a-fA-F]+)"), 16, 16),
    (re.compile(r"([-+]?)0o([0-7]+)"), 8, 21),
)
_FLOAT_FORM = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_SURROGATE = re.compile("[\ud800-\udfff]")


def _to_int(text: str) -> int | None:
    """``text`` as a signed 64-bit integer; ``None`` when it is not an integer; ``OverflowError``
    when it is one but out of range. Never calls ``int()`` on more than a few dozen digits."""
    for form, base, max_digits in _INT_FORMS:
        m = form.fullmatch(text)
        if m is None:
            continue
        sign, digits = m.groups()
        digits = digits.lstrip("0") or "0"
        if len(digits) > max_digits:
            raise OverflowError
        value = int(digits, base)
        if sign == "-":
            value = -value
        if not INT_MIN <= value <= INT_MAX:
            raise OverflowError
        return value
    return None


class _Constructor(BaseConstructor):
    """Builds JSON-compatible values from the composed node tree (see the module docstring).

    The composer bounds the tree's depth at ``MAX_DEPTH``, so plain recursion is safe here."""

    _restore: dict[int, int] | None = None
    """Private-use -> C1 translation table when :func:`load` substituted C1 characters."""

    def construct_document(self, node):
        return self._build(node)

    def _text(self, node: ScalarNode) -> str:
        value = node.value
        if self._restore is not None and not value.isascii() and _PUA_USED.search(value):
            value = value.translate(self._restore)
        return value

    def _build(self, node: Any) -> Any:
        tag = node.tag
        if isinstance(node, ScalarNode):
            return self._scalar(node, tag, self._text(node))
        if isinstance(node, SequenceNode):
            if tag != _SEQ:
                self._bad_collection_tag(node)
            return [self._build(item) for item in node.value]
        if tag != _MAP:
            self._bad_collection_tag(node)
        return self._mapping(node)

    def _bad_collection_tag(self, node: Any) -> None:
        if node.tag in _SCALAR_TAGS or node.tag in (_SEQ, _MAP):
            raise BadValueError(
                None, None, f"YAML tag {show_tag(node.tag)} cannot be used on {_KIND[type(node)]}", node.start_mark
            )
        self._refuse_tag(node)

    def _refuse_tag(self, node: Any) -> None:
        tag = node.tag.translate(self._restore) if self._restore is not None else node.tag
        raise DisallowedTagError(
            None, None, f"YAML tag {show_tag(tag)} is not allowed (only plain JSON-like values)", node.start_mark
        )

    def _scalar(self, node: ScalarNode, tag: str, text: str) -> Any:
        if tag == _STR:
            if node.style == '"' and _SURROGATE.search(text):  # only escapes can make one
                raise BadValueError(
                    None, None, f"string {show(text)} holds a lone surrogate (invalid Unicode)", node.start_mark
                )
            return text
        if tag == _INT:
            try:
                value = _to_int(text)
            except OverflowError:
                raise BadValueError(
                    None, None, f"integer {show(text)} out of range (more than 64 bits)", node.start_mark
                ) from None
            if value is None:
                raise BadValueError(None, None, f"!!int value {show(text)} is not an integer", node.start_mark)
            return value
        if tag == _FLOAT:
            if _NOT_FINITE.fullmatch(text):
                raise BadValueError(
                    None, None, f"number {show(text)} is not finite (inf and nan are refused)", node.start_mark
                )
            if not _FLOAT_FORM.fullmatch(text):
                raise BadValueError(None, None, f"!!float value {show(text)} is not a number", node.start_mark)
            number = float(text)
            if not math.isfinite(number):
                raise BadValueError(None, None, f"number {show(text)} is out of range (not finite)", node.start_mark)
            return number
        if tag == _BOOL:
            try:
                return _BOOLS[text]
            except KeyError:
                raise BadValueError(
                    None, None, f"!!bool value {show(text)} is not true or false", node.start_mark
                ) from None
        if tag == _NULL:
            if text not in _NULLS:
                raise BadValueError(None, None, f"!!null value {show(text)} is not null", node.start_mark)
            return None
        if tag in (_SEQ, _MAP):
            raise BadValueError(None, None, f"YAML tag {show_tag(tag)} cannot be used on a scalar", node.start_mark)
        self._refuse_tag(node)

    def _mapping(self, node: MappingNode) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise UnsafeYAMLError(
                    None,
                    None,
                    f"mapping keys must be plain scalars (found {_KIND[type(key_node)]})",
                    key_node.start_mark,
                )
            text = self._text(key_node)
            key = self._scalar(key_node, key_node.tag, text)  # validates: '!!int abc: x' is still an error
            if not isinstance(key, str):
                key = text  # 1 -> "1", true -> "true", null -> "null": keys stay as written
            if key in out:
                raise UnsafeYAMLError(None, None, f"duplicate key {show(key)}", key_node.start_mark)
            out[key] = self._build(value_node)
        return out


class _Resolver(BaseResolver):
    pass


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class UntrustedLoader(_Reader, Scanner, Parser, _Composer, _Constructor, _Resolver):
    """Loader for untrusted documents, all pure Python; see the module docstring."""

    def __init__(self, stream: str) -> None:
        _Reader.__init__(self, stream)  # type: ignore[call-arg]  # mypy loses PyYAML's untyped Reader here
        Scanner.__init__(self)
        Parser.__init__(self)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)


try:
    from yaml._yaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None
    FastUntrustedLoader = None
else:

    class FastUntrustedLoader(_Composer, CParser, _Constructor, _Resolver):  # type: ignore[no-redef]
        """libyaml's event parser, its events turned straight into values by :meth:`get_single_data`.
        ``_Composer`` comes first in the MRO, so libyaml's C composer is never used; the composer and
        the constructor above stay the reference (``UntrustedLoader``), which this must agree with."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)

        def get_single_data(self) -> Any:
            """Events -> values in one loop, without a node tree (the composer's recursion and the
            tree walk were most of the load time). The same checks in the same order as
            composing, then constructing: composition errors (aliases, depth, duplicate anchors, a
            second document, and the parser's own) are raised as they come; the first construction
            error is kept and raised once the whole document has been read, as the reference does."""
            get, check, resolve = self.get_event, self.check_event, self.resolve
            get()  # stream start
            if check(StreamEndEvent):
                get()
                return None
            get()  # document start
            stack: list[list[Any]] = []  # frames: [container, start mark, pending key | _NO_KEY, entries]
            anchors: dict[str, Any] = {}
            error: yaml.MarkedYAMLError | None = None
            root: Any = None
            root_mark = None
            while True:
                event = get()
                kind = type(event)
                if kind is SequenceEndEvent or kind is MappingEndEvent:
                    value = stack.pop()[0]
                elif kind is AliasEvent:
                    anchor = event.anchor if len(event.anchor) <= SHOW_CHARS else event.anchor[:SHOW_CHARS] + "..."
                    raise UnsafeYAMLError(
                        None, None, f"YAML aliases are not allowed (found *{anchor})", event.start_mark
                    )
                else:
                    key_slot = bool(stack) and type(stack[-1][0]) is dict and stack[-1][2] is _NO_KEY
                    if key_slot:  # entries are counted, not stored ones: after an error none are stored
                        if stack[-1][3] >= MAX_KEYS:
                            raise UnsafeYAMLError(None, None, TOO_MANY_KEYS, event.start_mark)
                        stack[-1][3] += 1
                    if kind is not ScalarEvent and len(stack) >= MAX_DEPTH:
                        raise UnsafeYAMLError(None, None, f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
                    anchor = event.anchor
                    if anchor is not None:
                        if anchor in anchors:
                            raise ComposerError(
                                f"found duplicate anchor {anchor!r}; first occurrence",
                                anchors[anchor],
                                "second occurrence",
                                event.start_mark,
                            )
                        anchors[anchor] = event.start_mark
                    tag = event.tag
                    if kind is ScalarEvent:
                        if tag is None or tag == "!":
                            tag = _STR if tag == "!" else resolve(ScalarNode, event.value, event.implicit)
                        value = None
                        if error is None:
                            node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
                            try:
                                text = self._text(node)
                                value = self._scalar(node, tag, text)
                                if key_slot:
                                    if not isinstance(value, str):
                                        value = text  # keys stay as written (see _Constructor._mapping)
                                    if value in stack[-1][0]:
                                        raise UnsafeYAMLError(
                                            None, None, f"duplicate key {show(value)}", event.start_mark
                                        )
                            except yaml.MarkedYAMLError as exc:
                                error = exc
                        if stack == [] and root_mark is None:
                            root_mark = event.start_mark
                    else:
                        seq = kind is SequenceStartEvent
                        if tag is None or tag == "!":
                            tag = _SEQ if seq else _MAP
                        if error is None and key_slot:
                            what = "a sequence" if seq else "a mapping"
                            error = UnsafeYAMLError(
                                None, None, f"mapping keys must be plain scalars (found {what})", event.start_mark
                            )
                        if error is None and tag != (_SEQ if seq else _MAP):
                            shell = (SequenceNode if seq else MappingNode)(tag, [], event.start_mark, None)
                            try:
                                self._bad_collection_tag(shell)
                            except yaml.MarkedYAMLError as exc:
                                error = exc
                        if not stack and root_mark is None:
                            root_mark = event.start_mark
                        stack.append([[] if seq else {}, event.start_mark, _NO_KEY, 0])
                        continue
                if not stack:
                    root = value
                    break
                frame = stack[-1]
                container = frame[0]
                if type(container) is list:
                    container.append(value)
                elif frame[2] is _NO_KEY:
                    frame[2] = value
                else:
                    if error is None:
                        container[frame[2]] = value
                    frame[2] = _NO_KEY
            get()  # document end
            if not check(StreamEndEvent):
                event = get()
                raise ComposerError(
                    "expected a single document in the stream",
                    root_mark,
                    "but found another document",
                    event.start_mark,
                )
            get()
            if error is not None:
                raise error
            return root


# ----------------------------------------------------------------------------- entry point

_C1 = re.compile("[\x80-\x9f]")  # libyaml refuses these (but U+0085, NEL, which it reads as a line break)
_PUA_BASE = 0xF0000  # Supplementary Private Use Area-A: U+F0080..U+F009F stand in for U+0080..U+009F
_C1_SWAP = re.compile("[\x80-\x84\x86-\x9f]")
_FROM_PUA = {_PUA_BASE + c: c for c in range(0x80, 0xA0) if c != 0x85}


def _to_pua(m: re.Match[str]) -> str:
    return chr(_PUA_BASE + ord(m.group()))


_PUA_USED = re.compile("[\U000f0080-\U000f009f]")


def _mark_at(text: str, index: int) -> yaml.Mark:
    line = text.count("\n", 0, index)
    return yaml.Mark("<unicode string>", index, line, index - (text.rfind("\n", 0, index) + 1), None, None)


def _run(make_loader: Any, text: str, restore: dict[int, int] | None = None) -> Any:
    loader = None
    try:
        loader = make_loader(text if restore is None else _C1_SWAP.sub(_to_pua, text))
        loader._restore = restore
        return loader.get_single_data()
    except ReaderError as exc:  # not a MarkedYAMLError: give it a line and column
        if make_loader is not UntrustedLoader:  # libyaml counts bytes: let the pure reader say where
            return load_pure(text)
        problem = (
            f"unacceptable character #x{exc.character:04x}: {exc.reason}"
            if isinstance(exc.character, int)
            else f"unacceptable byte {exc.character!r}: {exc.reason}"
        )
        raise BadCharacterError(None, None, problem, _mark_at(text, min(exc.position, len(text)))) from None
    except yaml.YAMLError:
        raise
    except Exception as exc:  # noqa: BLE001 - PyYAML itself failing on hostile input; never let it escape
        mark = None
        try:
            mark = loader.get_mark() if loader is not None else None
        except Exception:  # noqa: BLE001 - CParser has no get_mark
            pass
        raise YAMLParseFailure(
            None, None, f"YAML cannot be read ({type(exc).__name__}: {show(str(exc))})", mark
        ) from None
    finally:
        if loader is not None:
            loader.dispose()


def load_pure(text: str) -> Any:
    """:func:`load` with the pure-Python parser only (the reference the fast path must agree with)."""
    return _run(UntrustedLoader, text)


#: Text libyaml's scanner accepts and PyYAML's refuses: a block scalar indicator (with its chomping
#: and indentation indicators) followed at once by ``#``.
_LIBYAML_ONLY = re.compile(r"[|>][-+0-9]*#")
#: Text PyYAML accepts and libyaml's scanner refuses: ":" right before a flow indicator in a flow
#: collection (``[a:]``, ``{a:}``, ``[a:,b]`` are ``{'a': None}`` entries for PyYAML, "found unexpected
#: ':'" for libyaml; found by the Rust path's differential test). Looked for only with a "[" or "{".
_PYYAML_ONLY = re.compile(r":[,\[\]{}]")


def load_fast(text: str) -> Any:
    """:func:`load` through libyaml's event parser, C1 characters swapped out and back.
    Text it cannot take (lone surrogates, our private-use stand-ins already present) goes to
    :func:`load_pure`, as does everything when PyYAML has no libyaml. Likewise a block scalar header
    running into a comment (``>#``), which PyYAML refuses, ``[a:]``, which only PyYAML takes, and a
    BOM after the start (``# x\n\ufeff``: ``'\ufeff'`` for PyYAML, null for libyaml; found by the tab
    differential test). Text with a tab takes
    :func:`_load_with_tabs`: libyaml takes tabs where PyYAML refuses them."""
    if FastUntrustedLoader is None or _LIBYAML_ONLY.search(text):
        return load_pure(text)
    if (("[" in text or "{" in text) and _PYYAML_ONLY.search(text)) or text.find("\ufeff", 1) >= 0:
        return load_pure(text)
    if "\t" in text:
        return _load_with_tabs(text)
    return _load_libyaml(text)


def _load_libyaml(text: str) -> Any:
    if SPECIAL.search(text) is None:
        return _run(FastUntrustedLoader, text)
    if _SURROGATE.search(text) or _PUA_USED.search(text):
        return load_pure(text)
    return _run(FastUntrustedLoader, text, restore=_FROM_PUA)


# PyYAML's line breaks ("\r\n" is one), for marks it would give.
_BREAKS = re.compile("\r\n|[\n\r\x85\u2028\u2029]")
# libyaml's words when its scanner stops at a tab where PyYAML says TAB_PROBLEM (not "a tab character
# that violates indentation": that stops libyaml while it still reads the plain scalar before the tab).
_LIBYAML_TAB_STOP = "found character that cannot start any token"
TAB_PROBLEM = "found character '\\t' that cannot start any token"
PURE_TAB_PREFIX = 32 * 1024
"""A refused tab within this many characters of the start: the pure parser reads up to it (about
50 ms at most), giving the reference's own error without a libyaml pass over the whole text."""


def _load_with_tabs(text: str) -> Any:
    """:func:`load_fast` for text with a tab, without handing all of it to the pure parser (which
    took 2-21 s on a 1 MiB front matter with one tab at its end; see ``bench/bench_yaml.py``).

    libyaml reads a tab as a space between tokens, PyYAML refuses it there (``a: 0<TAB>`` is
    ``{'a': 0}`` for libyaml, an error for PyYAML; found by the differential property test); both
    read tabs inside quoted scalars, block scalar content and comments alike. So libyaml's tokens
    place every tab (:func:`_first_refused_tab`): when all are where both agree, libyaml loads the text.
    At the first other tab PyYAML stops with ``found character '\\t' that cannot start any token``
    (the error is raised here, with that position, when libyaml finds nothing wrong before it and
    no "[" or "{" comes before it), or
    earlier with an error of its own: then, and for tabs in rarer places (a tag, a block scalar
    header), the pure parser reads the text up to that tab's line end only, where its answer is
    decided."""
    if (
        _SURROGATE.search(text)
        or _PUA_USED.search(text)
        or _Reader.NON_PRINTABLE.search(text)  # the pure reader refuses the whole text at once
    ):
        return load_pure(text)
    try:
        found = _first_refused_tab(_C1_SWAP.sub(_to_pua, text))
    except yaml.YAMLError:  # libyaml's scanner fails: the reference finds its own error
        return load_pure(text)
    if found is None:
        return _load_libyaml(text)
    tab, between_tokens = found
    # in flow collections the two parsers part ways too often ("{0\n?\t": PyYAML stops at "?")
    in_flow = text.find("[", 0, tab) >= 0 or text.find("{", 0, tab) >= 0
    if between_tokens and tab >= PURE_TAB_PREFIX and not in_flow:
        try:
            _load_libyaml(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark
            earlier = mark is None or mark.index < tab
        else:
            earlier = False
        if not earlier:
            raise ScannerError("while scanning for the next token", None, TAB_PROBLEM, _pyyaml_mark(text, tab))
    line_end = text.find("\n", tab)
    try:  # the pure scanner looks ahead no further than the line's end (scanning a tag) before it stops
        load_pure(text if line_end < 0 else text[: line_end + 1])
    except yaml.MarkedYAMLError as exc:
        if exc.problem_mark is not None and exc.problem_mark.index <= tab:
            raise
    return load_pure(text)  # not refused there after all: the whole text, to be exact


def _pyyaml_mark(text: str, index: int) -> yaml.Mark:
    """The mark PyYAML's reader gives at ``index``: its line breaks, and a BOM takes no column."""
    line, line_start = 0, 0
    for found in _BREAKS.finditer(text, 0, index):
        line, line_start = line + 1, found.end()
    column = index - line_start - text.count("\ufeff", line_start, index)
    return yaml.Mark("<unicode string>", index, line, column, None, None)


def _first_refused_tab(text: str) -> tuple[int, bool] | None:
    """``None`` when every tab in ``text`` lies in a quoted scalar, a block scalar's content (below
    its header line) or a comment, by libyaml's tokens; otherwise the first other tab's index, and
    whether it lies between tokens or in a plain scalar (where PyYAML ends the scalar at the tab and
    refuses it as the start of a token; but after a tag or directive on its line, where its error is
    another). When libyaml's scanner stops at the first tab not placed
    yet, that tab, between tokens; before it, ``None``: libyaml's error is the answer, as without tabs."""
    tabs = [m.start() for m in re.finditer("\t", text)]
    parser = CParser(text)
    i, previous_end, previous = 0, 0, None

    def after_tag(tab: int) -> bool:  # PyYAML scans a tag to the line's end: its own error
        return type(previous) in (TagToken, DirectiveToken) and text.rfind("\n", 0, tab) < previous_end

    try:
        while i < len(tabs):
            try:
                token = parser.get_token()
            except yaml.MarkedYAMLError as exc:
                stop = exc.problem_mark.index if exc.problem_mark is not None else -1
                if stop < tabs[i]:
                    return None
                tab = tabs[i]
                return tab, stop == tab and exc.problem == _LIBYAML_TAB_STOP and not after_tag(tab)
            start, end = token.start_mark.index, token.end_mark.index
            if type(token) is StreamEndToken:
                start = end = len(text) + 1
            while i < len(tabs) and tabs[i] < start:  # between tokens: only in a comment
                tab = tabs[i]
                line = max(previous_end, *(text.rfind(b, 0, tab) + 1 for b in "\n\r\x85\u2028\u2029"))
                if text.find("#", line, tab) < 0:
                    return tab, not after_tag(tab)
                i += 1
            while i < len(tabs) and tabs[i] < end:  # in this token
                tab = tabs[i]
                if type(token) is not ScalarToken:
                    return tab, False
                if token.plain:
                    return tab, True
                if token.style in ("|", ">") and text.find("\n", start, tab) < 0:
                    return tab, False  # in the header line
                i += 1
            if end > start:
                previous_end, previous = max(previous_end, end), token
        return None
    finally:
        parser.dispose()


def load(text: str) -> Any:
    """Load one YAML document from untrusted text into JSON-compatible values (see the module
    docstring). Raises only ``yaml.YAMLError`` (a ``MarkedYAMLError`` with a position) on any problem.
    The Rust path only ever answers with a value; errors always come from :func:`load_fast`."""
    value = yamlrust.load_rust(text)
    return load_fast(text) if value is yamlrust.FALLBACK else value
