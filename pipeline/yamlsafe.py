"""A YAML loader for untrusted front matter.

Built on PyYAML's pure-Python ``SafeLoader`` machinery, with four changes, each closing a known trap:

- **no aliases**: ``*ref`` is an error, so a 300-byte "billion laughs" document cannot expand to
  hundreds of megabytes after loading (``safe_load`` does not bound alias expansion);
- **bounded nesting**: more than ``MAX_DEPTH`` nested collections is an error, raised before Python's
  recursion limit. libyaml's ``CSafeLoader`` composes in C and segfaults around 50,000 levels, so we
  never use its composer: when libyaml is available we take only its *event parser* (``CParser``, a
  pull parser with heap stacks) and compose in Python with our checks on top, ~7x faster than the
  pure-Python scanner (0.33 ms vs 2.2 ms for a sample seed);
- **YAML 1.2-style scalars**: only ``true/false``, decimal numbers and ``null`` are typed; ``NO``,
  ``12:30:00`` and ``2021-10-06`` stay strings (YAML 1.1 would give False, 45000 and a date) and the
  validator decides what each field means;
- **duplicate keys are errors** (PyYAML silently keeps the last one), and raw C1 control characters
  (mojibake debris like U+009D) are accepted as text instead of refusing the whole document, so the
  normalizer can repair them.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

MAX_DEPTH = 32


class UnsafeYAMLError(yaml.MarkedYAMLError):
    """The document uses a YAML feature refused for untrusted input (alias, deep nesting, duplicate key)."""


class _Reader(Reader):
    # PyYAML refuses C1 controls (U+0080..U+009F except U+0085); mojibake routinely contains them.
    NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x80-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


class _Composer(Composer):
    def compose_document(self):  # type: ignore[override]
        self._depth = 0
        return super().compose_document()

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise UnsafeYAMLError(
                None, None, f"YAML aliases are not allowed (found *{event.anchor})", event.start_mark
            )
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


class _Constructor(SafeConstructor):
    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise ConstructorError(None, None, "mapping keys must be plain scalars", key_node.start_mark)
            if duplicate:
                raise UnsafeYAMLError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Resolver(BaseResolver):
    pass


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class UntrustedLoader(_Reader, Scanner, Parser, _Composer, _Constructor, _Resolver):
    """Loader for untrusted documents, all pure Python; see the module docstring."""

    def __init__(self, stream: str) -> None:
        _Reader.__init__(self, stream)
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
        """libyaml's event parser + our Python composer (alias/depth checks) and constructor.
        ``_Composer`` comes first in the MRO, so libyaml's C composer is never used."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


_C1 = re.compile("[\x80-\x9f]")  # libyaml refuses these; the pure-Python reader above accepts them


def load(text: str) -> Any:
    """Load one YAML document from untrusted text. Raises ``yaml.YAMLError`` (with a mark) on any problem."""
    use_fast = FastUntrustedLoader is not None and not _C1.search(text)
    loader = FastUntrustedLoader(text) if use_fast else UntrustedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
