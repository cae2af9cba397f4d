"""Stage 2b, validate: the fields of one front matter against ``SCHEMA`` (a part of parse: its
``validate`` step; ``pipeline.stages.parse`` calls :func:`validate`).

Required fields present, types right, URLs absolute http(s), dates real and within
``times.MIN_YEAR..MAX_YEAR``. One bad element of a list (``topics: [AI, ~]``) is dropped with a warning
instead of losing the article. Unknown fields are kept in ``fields['_extra']``.

What the article mapping (``mappings/articles.template.json``) or OpenSearch would refuse is refused
here, naming the field, so it is a quarantine and not a dead letter: integers outside the mapped
``integer`` type (``INTEGER_MIN..INTEGER_MAX``), keyword values over Lucene's term limit
(``MAX_KEYWORD_BYTES``), unknown field names longer than the JSON parser accepts (``MAX_KEY_BYTES``) and
more unknown field names than ``MAX_EXTRA_KEYS``. Keyword lengths are measured as written: in rare cases
normalize's repairs lengthen a label (an HTML entity or a compatibility character expanding past the
limit); such a document is a dead letter, which is listed and does not hold a full rebuild back.

Reasons quote at most a short piece of the offending value (``types.short``); the ``secured`` value's
checker names only its type (the value is an opaque credential-like blob, and reasons are indexed).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from typing import Any

from pipeline import urls
from pipeline.errors import SeedError
from pipeline.times import parse_datetime
from pipeline.types import short

# What mappings/articles.template.json and OpenSearch accept (validation refuses the rest, naming the field):
INTEGER_MIN, INTEGER_MAX = -(1 << 31), (1 << 31) - 1  # mapping type "integer": quality, heat, image width/height
MAX_KEYWORD_BYTES = 32766  # Lucene's largest term and doc value: URLs and labels mapped as keyword
MAX_KEY_BYTES = 50_000  # the node's JSON parser refuses longer field names (Jackson's maxNameLength, UTF-8 bytes)
# Unknown fields go to `extra` (stored, not indexed): a seed with more names than this is not an article
MAX_EXTRA_KEYS = 1000


def _got(value: Any) -> str:
    return kind_of(value) if value is None else f"{kind_of(value)} {short(value)}"


def kind_of(value: Any) -> str:
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
        what = kind_of(value)
        raise SeedError("validate", f"field '{where}' must be a string, got {what} (value not shown: {where})")
    return value


def _nonempty(value: Any, where: str, warn: Warn) -> str:
    """A string with something to read: not only spaces, control or invisible (format) characters, which
    repair removes (a title of ``"\\x00"`` or of a zero-width space became an empty or invisible title)."""
    if not any(unicodedata.category(c)[0] not in _NOTHING_TO_READ for c in _str(value, where, warn)):
        raise SeedError("validate", f"field '{where}' must not be empty")
    return value


_NOTHING_TO_READ = frozenset("CZ")  # Unicode categories C* (control, format, unassigned...) and Z* (spaces)


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
        raise SeedError("validate", f"field '{where}' must be a mapping, got {kind_of(value)}")
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
        raise SeedError("validate", f"field '{where}' must be a list, got {kind_of(value)}")
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
        raise SeedError("validate", f"field '{where}' must be a mapping, got {kind_of(value)}")
    out = dict(value)
    for key in ("name", "domain"):
        if out.get(key) is not None:
            _keyword(out[key], f"{where}.{key}", warn)
    if out.get("images") is not None:
        out["images"] = _list(out["images"], f"{where}.images", warn, _image)
    return out


def _related(value: Any, where: str, warn: Warn) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {kind_of(value)}")
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
