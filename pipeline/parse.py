"""Stage 2, parse: seed file bytes -> ``SeedRecord`` (fields as the file says) or ``Quarantined``.

Steps, each of which can quarantine the file with a reason naming the file and the step:

``read``        at most ``ParseConfig.max_bytes`` bytes are read (a bigger file is refused unread)
``decode``      UTF-8 (a BOM is stripped); a NUL byte means binary junk. Legacy Windows-1252 is accepted
                only when it decodes without control characters (``ParseConfig.allow_cp1252``)
``frontmatter`` the text must open with a ``---`` line and close with a ``---`` (or ``...``) line
``yaml``        ``pipeline.yamlsafe.load`` (no tags, no aliases, bounded nesting); errors give the line
                *in the file*
``validate``    the fields are checked against ``SCHEMA``: required fields present, types right, URLs
                absolute http(s). Unknown fields are kept in ``SeedRecord.fields['_extra']``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

import yaml

from . import yamlsafe
from .types import Quarantined, SeedFile, SeedRecord

MAX_SEED_BYTES = 1 << 20  # 1 MiB: real seeds are ~5 KB; anything this big is not a seed.
UTF8_BOM = b"\xef\xbb\xbf"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class ParseConfig:
    max_bytes: int = MAX_SEED_BYTES
    allow_cp1252: bool = True


class SeedError(ValueError):
    """One seed failed one parse step. ``stage`` names the step; ``str()`` is the reason."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason)
        self.stage = stage


# ----------------------------------------------------------------------------- bytes -> text
def read_bytes(path: str, max_bytes: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise SeedError("read", f"file is larger than the {_human(max_bytes)} limit for a seed")
    if not data.strip():
        raise SeedError("read", "file is empty")
    return data


def decode(data: bytes, allow_cp1252: bool = True) -> tuple[str, str]:
    """Return ``(text, encoding)``. Strips a UTF-8 BOM and normalizes CRLF/CR line ends to LF."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
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
        def at(mark) -> str:  # +2: marks are 0-based and the front matter starts after the '---' line
            return f" at line {mark.line + 2}, column {mark.column + 1}" if mark else ""

        reason = f"{exc.problem or exc.context}{at(exc.problem_mark or exc.context_mark)}"
        if exc.problem and exc.context and exc.context_mark:
            reason = f"{exc.context}{at(exc.context_mark)}: {reason}"
        raise SeedError("yaml", reason) from None
    except yaml.YAMLError as exc:
        raise SeedError("yaml", str(exc).splitlines()[0]) from None
    except RecursionError:  # belt and braces: MAX_DEPTH should stop this first
        raise SeedError("yaml", "nesting too deep") from None
    if not isinstance(data, dict):
        raise SeedError("yaml", f"front matter must be a mapping of fields, got {_kind(data)}")
    return data


# ----------------------------------------------------------------------------- validation
def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__
    )


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SeedError("validate", f"field '{where}' must be a string, got {_kind(value)} {value!r}")
    return value


def _nonempty(value: Any, where: str) -> str:
    if not _str(value, where).strip():
        raise SeedError("validate", f"field '{where}' must not be empty")
    return value


def _url(value: Any, where: str) -> str:
    text = _str(value, where).strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise SeedError("validate", f"field '{where}' must be an absolute http(s) URL, got {value!r}")
    return text


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeedError("validate", f"field '{where}' must be an integer, got {_kind(value)} {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SeedError("validate", f"field '{where}' must be true or false, got {_kind(value)} {value!r}")
    return value


def _datetime(value: Any, where: str) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    text = _str(value, where).strip()
    from .normalize import parse_datetime  # one parser for dates, shared with normalize

    try:
        parse_datetime(text)
    except ValueError:
        raise SeedError("validate", f"field '{where}' is not a date-time: {value!r}") from None
    return text


def _image(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {_kind(value)}")
    out = dict(value)
    if out.get("url") is None:
        raise SeedError("validate", f"required field '{where}.url' is missing")
    _nonempty(out["url"], f"{where}.url")
    for key in ("width", "height"):
        if out.get(key) is not None:
            _int(out[key], f"{where}.{key}")
    if out.get("isCached") is not None:
        _bool(out["isCached"], f"{where}.isCached")
    return out


def _list(value: Any, where: str, item: Callable[[Any, str], Any]) -> list[Any]:
    if not isinstance(value, list):
        raise SeedError("validate", f"field '{where}' must be a list, got {_kind(value)}")
    return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _provider(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {_kind(value)}")
    out = dict(value)
    for key in ("name", "domain"):
        if out.get(key) is not None:
            _str(out[key], f"{where}.{key}")
    if out.get("images") is not None:
        out["images"] = _list(out["images"], f"{where}.images", _image)
    return out


def _related(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SeedError("validate", f"field '{where}' must be a mapping, got {_kind(value)}")
    return _check_fields(value, RELATED_SCHEMA, where, keep_extra=True)


Field = tuple[Callable[[Any, str], Any], bool]  # (checker, required)

SCHEMA: dict[str, Field] = {
    "title": (_nonempty, True),
    "publishedDateTime": (_datetime, True),
    "excerpt": (_str, False),
    "category": (_str, False),
    "type": (_str, False),
    "originalUrl": (_url, False),
    "webUrl": (_url, False),
    "ampWebUrl": (_url, False),
    "cdnAmpWebUrl": (_url, False),
    "quality": (_int, False),
    "heat": (_int, False),
    "published": (_bool, False),
    "provider": (_provider, False),
    "topics": (lambda v, w: _list(v, w, _nonempty), False),
    "images": (lambda v, w: _list(v, w, _image), False),
    "related": (lambda v, w: _list(v, w, _related), False),
    "secured": (_str, False),
}
RELATED_SCHEMA: dict[str, Field] = {
    "title": (_nonempty, True),
    "excerpt": (_str, False),
    "publishedDateTime": (_datetime, False),
    "originalUrl": (_url, False),
    "webUrl": (_url, False),
    "ampWebUrl": (_url, False),
    "cdnAmpWebUrl": (_url, False),
    "type": (_str, False),
    "provider": (_provider, False),
    "quality": (_int, False),
    "heat": (_int, False),
    "images": (lambda v, w: _list(v, w, _image), False),
}


def _check_fields(data: dict[str, Any], schema: dict[str, Field], where: str, keep_extra: bool) -> dict[str, Any]:
    prefix = f"{where}." if where else ""
    out: dict[str, Any] = {}
    for name, (check, required) in schema.items():
        value = data.get(name)
        if value is None:
            if required:
                raise SeedError("validate", f"required field '{prefix}{name}' is missing")
            continue
        out[name] = check(value, f"{prefix}{name}")
    extra = {str(k): v for k, v in data.items() if k not in schema}
    if extra and keep_extra:
        out["_extra"] = extra
    return out


def validate(data: dict[str, Any]) -> dict[str, Any]:
    fields = _check_fields(data, SCHEMA, "", keep_extra=True)
    if "originalUrl" not in fields and "webUrl" not in fields:
        raise SeedError("validate", "the article has no URL: one of 'originalUrl' or 'webUrl' is required")
    return fields


# ----------------------------------------------------------------------------- the stage
def parse_text(text: str) -> dict[str, Any]:
    """Front-matter text -> validated fields (raises ``SeedError``). Pure; handy for tests."""
    return validate(load_yaml(split_front_matter(text)))


def parse_seed(seed: SeedFile, config: ParseConfig = ParseConfig()) -> SeedRecord | Quarantined:
    """One seed file -> ``SeedRecord``, or ``Quarantined`` naming the step and the reason."""
    try:
        if seed.size > config.max_bytes:
            raise SeedError("read", f"file is {_human(seed.size)}, over the {_human(config.max_bytes)} limit for a seed")
        text, encoding = decode(read_bytes(seed.path, config.max_bytes), config.allow_cp1252)
        fields = parse_text(text)
    except SeedError as exc:
        return Quarantined(seed.path, exc.stage, str(exc))
    except OSError as exc:
        return Quarantined(seed.path, "read", f"cannot read file: {exc.strerror or exc}")
    if encoding != "utf-8":
        fields["_encoding"] = encoding
    return SeedRecord(seed=seed, fields=fields)


def _human(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    raise AssertionError  # pragma: no cover
