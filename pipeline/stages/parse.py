"""Stage 2, parse: seed file bytes -> ``SeedRecord`` (fields as the file says) or a quarantine outcome.

Steps, each of which can quarantine the file with a reason naming the step (the outcome names the file):

``read``        an empty file is refused (the size limit is checked by discovery, before any read)
``decode``      UTF-8 (a BOM is stripped); a NUL byte means binary junk. Legacy Windows-1252 is accepted
                only when it decodes without control characters (``ParseConfig.allow_cp1252``)
``frontmatter`` the text must open with a ``---`` line and close with a ``---`` (or ``...``) line
``yaml``        ``pipeline.safety.yamlsafe.load`` (JSON-like values only, no aliases, bounded nesting and
                numbers); errors give the line *in the file*
``validate``    the fields are checked against ``SCHEMA``: required fields present, types right, URLs
                absolute http(s), dates real and within ``times.MIN_YEAR..MAX_YEAR``. One bad element
                of a list (``topics: [AI, ~]``) is dropped with a warning instead of losing the article.
                Unknown fields are kept in ``SeedRecord.fields['_extra']``.
                What the article mapping (``mappings/articles.template.json``) or OpenSearch would refuse
                is refused here, naming the field, so it is a quarantine and not a dead letter: integers
                outside the mapped ``integer`` type (``INTEGER_MIN..INTEGER_MAX``), keyword values over
                Lucene's term limit (``MAX_KEYWORD_BYTES``), unknown field names longer than the JSON
                parser accepts (``MAX_KEY_BYTES``) and more unknown field names than ``MAX_EXTRA_KEYS``.
                Keyword lengths are measured as written: in rare cases normalize's repairs lengthen a
                label (an HTML entity or a compatibility character expanding past the limit); such a
                document is a dead letter, which is listed and does not hold a full rebuild back.

Reasons quote at most a short piece of the offending value (``types.short``), never any of the
``secured`` value (an opaque credential-like blob): its validator names only the type, a YAML error
positioned in a ``secured`` value (at any depth) names only the kind of error and where, and, as a last
net, a reason or warning holding any 8 characters in a row of a ``secured`` value's text is withheld.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline import urls
from pipeline.errors import SeedError
from pipeline.safety import yamlsafe
from pipeline.stages.discover import hash_seed, read_seed
from pipeline.times import parse_datetime
from pipeline.types import SeedFile, SeedOutcome, SeedRecord, quarantine, short

MAX_SEED_BYTES = 1 << 20  # 1 MiB: real seeds are ~5 KB; anything this big is not a seed.
UTF8_BOM = b"\xef\xbb\xbf"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# What mappings/articles.template.json and OpenSearch accept (validation refuses the rest, naming the field):
INTEGER_MIN, INTEGER_MAX = -(1 << 31), (1 << 31) - 1  # mapping type "integer": quality, heat, image width/height
MAX_KEYWORD_BYTES = 32766  # Lucene's largest term and doc value: URLs and labels mapped as keyword
MAX_KEY_BYTES = 50_000  # the node's JSON parser refuses longer field names (Jackson's maxNameLength, UTF-8 bytes)
# Unknown fields go to `extra` (stored, not indexed): a seed with more names than this is not an article
MAX_EXTRA_KEYS = 1000


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
        raise SeedError("yaml", f"front matter must be a mapping of fields, got {_kind(data)}")
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


# ----------------------------------------------------------------------------- validation
def _got(value: Any) -> str:
    return _kind(value) if value is None else f"{_kind(value)} {short(value)}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


Warn = Callable[[str], None]


def _str(value: Any, where: str, warn: Warn) -> str:
    if not isinstance(value, str):
        raise SeedError("validate", f"field '{where}' must be a string, got {_got(value)}")
    return value


def _secret(value: Any, where: str, warn: Warn) -> str:
    """:func:`_str` whose reason names the type only: the value is a secret and reasons are indexed."""
    if not isinstance(value, str):
        raise SeedError("validate", f"field '{where}' must be a string, got {_kind(value)} (value not shown: {where})")
    return value


def _nonempty(value: Any, where: str, warn: Warn) -> str:
    if not _str(value, where, warn).strip():
        raise SeedError("validate", f"field '{where}' must not be empty")
    return value


def _keyword(value: Any, where: str, warn: Warn) -> str:
    """A string the mapping indexes as a keyword (a term: at most ``MAX_KEYWORD_BYTES`` of UTF-8)."""
    _too_long(_str(value, where, warn), where)
    return value


def _too_long(text: str, where: str, form: str = "") -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_KEYWORD_BYTES:
        raise SeedError(
            "validate", f"field '{where}' is too long: {form}{size:,} bytes of UTF-8, at most {MAX_KEYWORD_BYTES:,}"
        )


def _url(value: Any, where: str, warn: Warn) -> str:
    text = _str(value, where, warn).strip()
    try:  # what validates here is what normalize can give an id (one URL parser for both)
        canonical = urls.canonical(text)
        ok = canonical.scheme in ("http", "https")
    except ValueError:  # no host, an invalid port or host name, a broken IPv6 literal
        ok = False
    if not ok:
        raise SeedError("validate", f"field '{where}' must be an absolute http(s) URL, got {short(value)}")
    _too_long(text, where)  # kept as written (``urls.*``) and
    _too_long(
        str(canonical), where, "its canonical form is "
    )  # canonical (``url``, percent-encoded: can be longer), both keywords
    return text


def _int(value: Any, where: str, warn: Warn) -> int:
    """An integer the mapping stores as ``integer`` (32-bit)."""
    if isinstance(value, bool) or not isinstance(value, int) or not INTEGER_MIN <= value <= INTEGER_MAX:
        raise SeedError(
            "validate", f"field '{where}' must be an integer between {INTEGER_MIN} and {INTEGER_MAX}, got {_got(value)}"
        )
    return value


def _bool(value: Any, where: str, warn: Warn) -> bool:
    if not isinstance(value, bool):
        raise SeedError("validate", f"field '{where}' must be true or false, got {_got(value)}")
    return value


def _datetime(value: Any, where: str, warn: Warn) -> str:
    text = _str(value, where, warn).strip()  # yamlsafe never builds date objects: dates stay text
    try:
        parse_datetime(text)
    except ValueError as exc:
        detail = str(exc) if str(exc).startswith(("year", "date-time is out")) else ""
        raise SeedError(
            "validate", f"field '{where}' is not a date-time: {short(value)}" + (f" ({detail})" if detail else "")
        ) from None
    return text


def _image(value: Any, where: str, warn: Warn) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {_kind(value)}")
    out = dict(value)
    if out.get("url") is None:
        raise SeedError("validate", f"required field '{where}.url' is missing")
    _nonempty(out["url"], f"{where}.url", warn)
    for key in ("width", "height"):
        if out.get(key) is not None:
            _int(out[key], f"{where}.{key}", warn)
    if out.get("isCached") is not None:
        _bool(out["isCached"], f"{where}.isCached", warn)
    return out


def _list(value: Any, where: str, warn: Warn, item: Callable[[Any, str, Warn], Any]) -> list[Any]:
    """A list whose bad elements are dropped (each with a warning), not the whole article."""
    if not isinstance(value, list):
        raise SeedError("validate", f"field '{where}' must be a list, got {_kind(value)}")
    out = []
    for i, v in enumerate(value):
        try:
            out.append(item(v, f"{where}[{i}]", warn))
        except SeedError as exc:
            warn(f"dropped {where}[{i}]: {exc}")
    return out


def _list_of(item: Callable[[Any, str, Warn], Any]) -> Callable[[Any, str, Warn], list[Any]]:
    return lambda v, w, warn: _list(v, w, warn, item)


def _provider(value: Any, where: str, warn: Warn) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {_kind(value)}")
    out = dict(value)
    for key in ("name", "domain"):
        if out.get(key) is not None:
            _keyword(out[key], f"{where}.{key}", warn)
    if out.get("images") is not None:
        out["images"] = _list(out["images"], f"{where}.images", warn, _image)
    return out


def _related(value: Any, where: str, warn: Warn) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {_kind(value)}")
    return _check_fields(value, RELATED_SCHEMA, where, warn)


def _topic(value: Any, where: str, warn: Warn) -> str:
    _nonempty(value, where, warn)
    return _keyword(value, where, warn)


def _check_extra(extra: dict[str, Any], where: str) -> None:
    """Unknown fields (stored under ``extra``, not indexed; ``where`` is their parent, ``""`` at the top):
    every name, at any depth, short enough for the node's JSON parser, and at most ``MAX_EXTRA_KEYS``
    names in all."""
    names = 0
    todo: list[tuple[Any, str]] = [(extra, where)]
    while todo:
        value, at = todo.pop()
        if isinstance(value, list):
            todo += [(v, f"{at}[{i}]") for i, v in enumerate(value)]
        elif isinstance(value, dict):
            names += len(value)
            if names > MAX_EXTRA_KEYS:
                place = f" in '{where}'" if where else ""
                raise SeedError(
                    "validate", f"too many unknown fields{place}: more than {MAX_EXTRA_KEYS:,} field names at any depth"
                )
            for key, v in value.items():
                size = len(key.encode("utf-8", "surrogatepass"))
                if size > MAX_KEY_BYTES:
                    place = f" in '{at}'" if at else ""
                    raise SeedError(
                        "validate",
                        f"field name {short(key)}{place} is too long: "
                        f"{size:,} bytes of UTF-8, at most {MAX_KEY_BYTES:,}",
                    )
                todo.append((v, f"{at}.{key}" if at else key))


Field = tuple[Callable[[Any, str, Warn], Any], bool]  # (checker, required)

SCHEMA: dict[str, Field] = {
    "title": (_nonempty, True),
    "publishedDateTime": (_datetime, True),
    "excerpt": (_str, False),
    "category": (_keyword, False),
    "type": (_keyword, False),
    "originalUrl": (_url, False),
    "webUrl": (_url, False),
    "ampWebUrl": (_url, False),
    "cdnAmpWebUrl": (_url, False),
    "quality": (_int, False),
    "heat": (_int, False),
    "published": (_bool, False),
    "provider": (_provider, False),
    "topics": (_list_of(_topic), False),
    "images": (_list_of(_image), False),
    "related": (_list_of(_related), False),
    "secured": (_secret, False),
}
RELATED_SCHEMA: dict[str, Field] = {
    "title": (_nonempty, True),
    "excerpt": (_str, False),
    "publishedDateTime": (_datetime, False),
    "originalUrl": (_url, False),
    "webUrl": (_url, False),
    "ampWebUrl": (_url, False),
    "cdnAmpWebUrl": (_url, False),
    "type": (_keyword, False),
    "provider": (_provider, False),
    "quality": (_int, False),
    "heat": (_int, False),
    "images": (_list_of(_image), False),
}


def _check_fields(data: dict[str, Any], schema: dict[str, Field], where: str, warn: Warn) -> dict[str, Any]:
    prefix = f"{where}." if where else ""
    out: dict[str, Any] = {}
    for name, (check, required) in schema.items():
        value = data.get(name)
        if value is None:
            if required:
                raise SeedError("validate", f"required field '{prefix}{name}' is missing")
            continue
        out[name] = check(value, f"{prefix}{name}", warn)
    extra = {k: v for k, v in data.items() if k not in schema}
    if extra:
        _check_extra(extra, where)
        out["_extra"] = extra
    return out


def validate(data: dict[str, Any], warnings: list[str] | None = None) -> dict[str, Any]:
    """Check ``data`` against ``SCHEMA``; what is dropped is appended to ``warnings``."""
    sink = warnings if warnings is not None else []
    fields = _check_fields(data, SCHEMA, "", sink.append)
    if "originalUrl" not in fields and "webUrl" not in fields:
        raise SeedError("validate", "the article has no URL: one of 'originalUrl' or 'webUrl' is required")
    return fields


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
        return quarantine(seed, exc.stage, withhold_secured(str(exc), data))  # type: ignore[arg-type]
    if encoding != "utf-8":
        fields["_encoding"] = encoding
    return SeedRecord(seed=seed, fields=fields, warnings=tuple(withhold_secured(w, data) for w in warnings))


def parse_seed(seed: SeedFile, config: ParseConfig = ParseConfig()) -> SeedRecord | SeedOutcome:
    """Hash, read and parse one discovered file in one call (tests, benchmarks, one-off tools)."""
    hashed = hash_seed(seed, config.max_bytes) if not seed.sha256 else seed
    if isinstance(hashed, SeedOutcome):
        return hashed
    data = read_seed(hashed, config.max_bytes)
    if isinstance(data, SeedOutcome):
        return data
    return parse_bytes(hashed, data, config)
