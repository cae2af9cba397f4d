"""Repair encoding damage (mojibake) in human text with ftfy, without restyling correct text.

ftfy's defaults do more than repair: ``uncurl_quotes`` straightens “curly” quotes, ``fix_latin_ligatures``
expands ﬁ, ``fix_character_width`` turns fullwidth ＡＢ into AB. Those are style changes, not repairs, so
they are off here: a correct title comes out exactly as written. What stays on is what undoes damage:
re-decoding UTF-8 read as Windows-1252/Latin-1 (``â€”`` -> ``—``), mixed damage
(``decode_inconsistent_utf8``), C1 controls, lossy sequences, and HTML entities (``&amp;`` -> ``&``) only
when the text has no ``<`` (ftfy's "auto").

Only human text goes through here. URLs, ids, hashes and the ``secured`` blob never do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import ftfy

# One config for all human-text fields (titles, excerpts, names, topics).
HUMAN_TEXT = ftfy.TextFixerConfig(
    uncurl_quotes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    fix_line_breaks=False,
    normalization="NFC",
    explain=True,
)


# The ASCII control characters ftfy's remove_control_chars takes out (it keeps tab, LF, form feed, CR).
# YAML escapes ("\x00", "\e") put them in ASCII text, which must not skip the repair for that.
_ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class Fixed:
    text: str
    steps: tuple[str, ...]  # ftfy's explanation, e.g. ("decode_inconsistent_utf8",); empty if unchanged

    @property
    def changed(self) -> bool:
        return bool(self.steps)


def fix_text(text: str, config: ftfy.TextFixerConfig = HUMAN_TEXT) -> Fixed:
    """Repair ``text``. Pure. Plain ASCII with no ``&`` and no control character cannot hold mojibake,
    entities or anything else ftfy removes: returned as is (cheap gate; ftfy costs ~0.5 ms on a
    200-character excerpt)."""
    if text.isascii() and "&" not in text and not _ASCII_CONTROL.search(text):
        return Fixed(text, ())
    fixed, explanation = ftfy.fix_and_explain(text, config)
    if fixed == text:
        return Fixed(text, ())
    return Fixed(fixed, tuple(f"{action}:{arg}" for action, arg in (explanation or [])))
