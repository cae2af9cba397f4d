"""Reading a host's answer: image magic bytes, reason phrases, ``Retry-After``, safe reason text."""

from __future__ import annotations

import email.utils
import logging
import math
import re
from collections.abc import Iterable
from datetime import UTC

log = logging.getLogger("pipeline.stages.images")

# --------------------------------------------------------------------------- sniffing and reasons

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
    (b"\x00\x00\x01\x00", 0, "ICO"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
)


def sniff_image(data: bytes) -> str | None:
    """Image format name from magic bytes, or ``None``."""
    for magic, off, name in _MAGIC:
        if data[off : off + len(magic)] == magic:
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return "AVIF/HEIF"
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in data[:2048].lower()):
        return "SVG"
    return None


def _phrase(code: int) -> str:
    try:
        from http import HTTPStatus

        return HTTPStatus(code).phrase
    except ValueError:
        return ""


def _http_reason(code: int, extra: str = "") -> str:
    phrase = _phrase(code)
    return f"HTTP {code}{' ' + phrase if phrase else ''}{extra}"


MAX_RETRY_AFTER_SECONDS = 86400.0
"""Longest wait :func:`parse_retry_after` reports (a day); anything beyond is clamped to it."""
_DELTA_SECONDS = re.compile(r"[0-9]+")  # ASCII digits only: str.isdigit() is true for '²', '١'...


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or ``None`` when the value is not usable.

    Only ASCII delta-seconds (``^[0-9]+$``) or an HTTP-date are understood; a date in the past is
    0, anything above :data:`MAX_RETRY_AFTER_SECONDS` is clamped to it. Never raises: the value comes
    from a host we know nothing about."""
    if not value or not isinstance(value, str):
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        return MAX_RETRY_AFTER_SECONDS if len(digits) > 9 else min(float(int(digits)), MAX_RETRY_AFTER_SECONDS)
    if len(value) > 64:  # an HTTP-date is 29 characters
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        wait = when.timestamp() - now
    except Exception:  # noqa: BLE001 - TypeError, ValueError, IndexError, OverflowError... all mean "not a date"
        return None
    if not math.isfinite(wait):
        return None
    return min(max(0.0, wait), MAX_RETRY_AFTER_SECONDS)


MAX_REASON_CHARS = 400
"""Longest ``ImageVerdict.reason``; the index keeps reasons up to 512 characters."""


def _show(value: str, limit: int = 80) -> str:
    """A host-supplied value for a reason: ``repr`` (lone surrogates from undecodable bytes are
    escaped), cut to about ``limit`` characters."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value):,} characters)"


def _clean(text: str) -> str:
    """Make a reason safe to store: no lone surrogates (header bytes that are not UTF-8 reach us as
    surrogate escapes and would fail JSON/UTF-8 encoding later), at most :data:`MAX_REASON_CHARS`."""
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if "\n" in text or "\r" in text:  # aiohttp's parser errors span lines; a reason is one line
        text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def _exc_chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack.extend([e.__cause__, e.__context__, getattr(e, "os_error", None)])
