"""Stage 2, parse: seed file bytes -> ``SeedRecord`` (fields as the file says) or a quarantine outcome.

Steps, each of which can quarantine the file with a reason naming the step (the outcome names the file):

``read``        an empty file is refused (the size limit is checked by discovery, before any read)
``decode``      UTF-8 (a BOM is stripped); a NUL byte means binary junk. Legacy Windows-1252 is accepted
                only when it decodes without control characters (``ParseConfig.allow_cp1252``)
``frontmatter`` the text must open with a ``---`` line and close with a ``---`` (or ``...``) line
``yaml``        ``pipeline.safety.yamlsafe.load`` (JSON-like values only, no aliases, bounded nesting and
                numbers); errors give the line *in the file*
``validate``    the fields are checked against the schema (:mod:`pipeline.stages.validate`): what the
                file says must be what the article mapping can hold, or the file is quarantined

Reasons quote at most a short piece of the offending value (``types.short``), never any of the
``secured`` value (an opaque credential-like blob): its validator names only the type, a YAML error
positioned in a ``secured`` value (at any depth) names only the kind of error and where, and, as a last
net, a reason or warning holding any 8 characters in a row of a ``secured`` value's text is withheld.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline.errors import SeedError
from pipeline.safety import yamlsafe
from pipeline.stages.validate import kind_of, validate
from pipeline.types import SeedFile, SeedOutcome, SeedRecord, quarantine

MAX_SEED_BYTES = 1 << 20  # 1 MiB: real seeds are ~5 KB; anything this big is not a seed.
UTF8_BOM = b"\xef\xbb\xbf"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParseConfig:
    max_bytes: int = MAX_SEED_BYTES
    allow_cp1252: bool = True


# ----------------------------------------------------------------------------- bytes -> text
def decode(data: bytes, allow_cp1252: bool = True) -> tuple[str, str]:
    """Return ``(text, encoding)``. Strips a UTF-8 BOM and normalizes CRLF/CR line ends to LF."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    nul = data.find(b"\x00")
    if nul >= 0:
        raise SeedError("decode", f"binary file (NUL byte at offset {nul})")
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        bad = f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        if not allow_cp1252:
            raise SeedError("decode", bad) from None
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise SeedError("decode", bad + " and not Windows-1252 either") from None
    if _CONTROL.search(text):
        raise SeedError("decode", f"{'binary' if encoding == 'utf-8' else 'undecodable'} content (control characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n"), encoding


def split_front_matter(text: str) -> str:
    """The YAML between the opening ``---`` line and the closing ``---``/``...`` line."""
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        raise SeedError("frontmatter", "file does not start with a '---' front matter line")
    for i in range(1, len(lines)):
        if lines[i].rstrip() in ("---", "..."):
            return "\n".join(lines[1:i])
    raise SeedError("frontmatter", "front matter opened with '---' on line 1 is never closed")


def load_yaml(front: str) -> dict[str, Any]:
    try:
        data = yamlsafe.load(front)
    except yaml.MarkedYAMLError as exc:
        _refuse_secured_yaml(front, exc)

        def at(mark) -> str:  # +2: marks are 0-based and the front matter starts after the '---' line
            return f" at line {mark.line + 2}, column {mark.column + 1}" if mark else ""

        reason = f"{exc.problem or exc.context}{at(exc.problem_mark or exc.context_mark)}"
        if exc.problem and exc.context and exc.context_mark:
            reason = f"{exc.context}{at(exc.context_mark)}: {reason}"
        raise SeedError("yaml", reason) from None
    except yaml.YAMLError as exc:
        raise SeedError("yaml", str(exc).splitlines()[0]) from None
    if not isinstance(data, dict):
        raise SeedError("yaml", f"front matter must be a mapping of fields, got {kind_of(data)}")
    return data


# ----------------------------------------------------------------------------- the secured value
SECRET_FIELD = "secured"
SECRET_WINDOW = 8
"""A reason or warning holding this many characters in a row of a ``secured`` value's text is withheld."""
# YAML's line breaks (decode already made CRLF and CR into LF): the marks of yamlsafe errors count these.
_YAML_LINES = re.compile("[\n\x85\u2028\u2029]")
_SECRET_KEY = re.compile(r"([ \t]*(?:-[ \t]+)*)(?:secured|\"secured\"|'secured')[ \t]*:(?=[ \t]|$)")
_ANY_KEY = re.compile(
    r"([ \t]*(?:-[ \t]+)*)(?:[^\s#'\"\[\]{},:-][^\n]*?|-\S[^\n]*?|\"[^\"]*\"|'[^']*')[ \t]*:(?=[ \t]|$)"
)
_YAML_KINDS = {
    yamlsafe.DisallowedTagError: "a YAML tag that is not allowed",
    yamlsafe.BadValueError: "a value its YAML tag does not fit",
    yamlsafe.UnsafeYAMLError: "a YAML feature refused for untrusted input",
    yamlsafe.BadCharacterError: "a character YAML does not allow",
    yamlsafe.YAMLParseFailure: "YAML that cannot be read",
}


def _secret_spans(front: str) -> list[tuple[int, int, str]]:
    """``(first line, last line, text)`` of each ``secured`` value in ``front`` (0-based YAML lines, as
    yamlsafe's marks count them): from its key's line through every line up to the next key indented
    no deeper than it (so a value running over lines, quoted, block or flow, is all in)."""
    lines = _YAML_LINES.split(front)
    spans = []
    for i, line in enumerate(lines):
        key = _SECRET_KEY.match(line)
        if key is None:
            continue
        column, end = len(key.group(1)), i
        for j in range(i + 1, len(lines)):
            other = _ANY_KEY.match(lines[j])
            if other is not None and len(other.group(1)) <= column:
                break
            end = j
        spans.append((i, end, "\n".join([line[key.end() :], *lines[i + 1 : end + 1]])))
    return spans


def _refuse_secured_yaml(front: str, exc: yaml.MarkedYAMLError) -> None:
    """A YAML error positioned in a ``secured`` value: a reason that names the kind of error and where,
    never the parser's message (which can quote the value, its tag or its anchor)."""
    if SECRET_FIELD not in front:
        return
    marks = [m for m in (exc.context_mark, exc.problem_mark) if m is not None]
    for first, last, _ in _secret_spans(front):
        for mark in marks:
            if first <= mark.line <= last:
                what = next((v for k, v in _YAML_KINDS.items() if isinstance(exc, k)), "a YAML syntax error")
                where = f"line {mark.line + 2}, column {mark.column + 1}"  # +2: see load_yaml
                raise SeedError("yaml", f"field '{SECRET_FIELD}' has {what} at {where} (value not shown: secured)")


def withhold_secured(text: str, data: bytes) -> str:
    """``text`` (a reason or a warning), or a stand-in when it holds :data:`SECRET_WINDOW` characters in
    a row (or all, if shorter, of at least 4) of a ``secured`` value's text in ``data``. The last net
    behind the ``secured`` validator and :func:`_refuse_secured_yaml`."""
    if SECRET_FIELD.encode() not in data:
        return text
    front = data.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for _, _, value in _secret_spans(front):
        for piece in value.split("\n"):
            piece = piece.strip().strip("\"'")
            size = min(SECRET_WINDOW, len(piece))
            if size >= 4 and any(piece[i : i + size] in text for i in range(len(piece) - size + 1)):
                return f"(not shown: it quotes the '{SECRET_FIELD}' value)"
    return text


# ----------------------------------------------------------------------------- the stage
def parse_text(text: str, warnings: list[str] | None = None) -> dict[str, Any]:
    """Front-matter text -> validated fields (raises ``SeedError``). Pure; handy for tests."""
    return validate(load_yaml(split_front_matter(text)), warnings)


def parse_bytes(seed: SeedFile, data: bytes, config: ParseConfig = ParseConfig()) -> SeedRecord | SeedOutcome:
    """The bytes of one seed file -> ``SeedRecord``, or a quarantine naming the step and the reason."""
    warnings: list[str] = []
    try:
        if not data.strip():
            raise SeedError("read", "file is empty")
        text, encoding = decode(data, config.allow_cp1252)
        fields = parse_text(text, warnings)
    except SeedError as exc:
        return quarantine(seed, exc.stage, withhold_secured(str(exc), data))
    if encoding != "utf-8":
        fields["_encoding"] = encoding
    return SeedRecord(seed=seed, fields=fields, warnings=tuple(withhold_secured(w, data) for w in warnings))
