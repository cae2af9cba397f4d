"""Facet values analysts can trust: one cleaning rule for every keyword field they facet on, and a
verdict on the human text that repair could not save.

``facet_value`` (topics, provider name and domain, category, type): two spellings that look the same
must be one facet value. So, in this order:

1. ``clean``: Unicode format characters (category ``Cf``: zero-width space U+200B, word joiner U+2060,
   soft hyphen U+00AD, BOM U+FEFF, bidi marks, ZWJ...) are removed, the text is NFC-composed, and every
   kind of space (``Zs`` such as NBSP and the ideographic space, tabs, line/paragraph separators) becomes
   one ASCII space, stripped at both ends. Cleaning first means an invisible character or a decomposed
   accent cannot hide mojibake from the repair (``Ã\\u200b©`` is ``Ã©``).
2. the same mojibake repair as every human text (``pipeline.stages.textfix.fix_text``);
3. ``clean`` again, in ``form``: the repair can decode to a format character or a space (``â€‹`` is a
   zero-width space).

Facet values are not titles: there is no exception for the zero-width joiner of emoji sequences here
(titles and excerpts keep it: they only go through ``fix_text``).

``form`` is NFC for every field but topics, which use NFKC (``canonical_topic``): a topic is a tag from a
small vocabulary, and its compatibility variants (fullwidth ``ＡＩ``, the ligature ``ﬁ``) are the same tag;
names written by someone else (a provider's name) keep their characters. NFKC output is NFC as well.

``damaged`` / ``text_quality``: after repair, text that still holds U+FFFD (bytes lost before we got them),
C1 control characters (U+0080-U+009F: undecoded Windows-1252), or that ftfy's own badness measure
(``ftfy.badness.is_bad``: mojibake-looking character sequences) flags, is *damaged*: nothing here can fix
it, the source has to. A document is ``damaged`` if any of its human texts is, else ``repaired`` if any
was repaired, else ``clean`` (field ``text_quality``; ``text_quality_fields`` names the fields concerned,
without list indexes: ``related.excerpt``).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from ftfy.badness import is_bad

from pipeline.stages.textfix import fix_text

Form = Literal["NFC", "NFKC"]  # the normalisation forms a facet value may take (both compose)
FACET_FORM: Form = "NFC"  # the normalisation form of keyword facet values (topics: NFKC, see canonical_topic)
REPLACEMENT_CHAR = "\ufffd"
C1_CONTROLS = re.compile("[\u0080-\u009f]")
CLEAN, REPAIRED, DAMAGED = "clean", "repaired", "damaged"  # the values of the `text_quality` field
_INDEX = re.compile(r"\[\d+\]")


def clean(text: str, form: Form = FACET_FORM) -> str:
    """Format characters out, ``form``-normalised, every space run one ASCII space, stripped. Pure."""
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    # str.split() with no argument splits on every Unicode space (Zs, Zl, Zp) and on tab/newline/...
    return " ".join(unicodedata.normalize(form, text).split())


def facet_value(value: str, form: Form = FACET_FORM) -> str:
    """The one value a keyword facet shows for ``value`` (see the module docstring). Pure, idempotent."""
    return clean(fix_text(clean(value)).text, form)


def damaged(text: str | None) -> bool:
    """True when ``text`` (already repaired) still looks broken: U+FFFD, a C1 control, or ftfy's badness."""
    if not text or text.isascii():
        return False  # plain ASCII holds neither mojibake, U+FFFD nor C1 controls
    return REPLACEMENT_CHAR in text or bool(C1_CONTROLS.search(text)) or is_bad(text)


def field_name(where: str) -> str:
    """A repair/damage location as a facet value: ``related[1].excerpt`` -> ``related.excerpt``."""
    return _INDEX.sub("", where)


def text_quality(damaged_fields: list[str], repaired_fields: list[str]) -> tuple[str, list[str]]:
    """``(text_quality, text_quality_fields)`` of a document from where its text was damaged/repaired."""
    if damaged_fields:
        return DAMAGED, sorted({field_name(f) for f in damaged_fields})
    if repaired_fields:
        return REPAIRED, sorted({field_name(f) for f in repaired_fields})
    return CLEAN, []
