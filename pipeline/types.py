"""The named types that cross stage boundaries.

The path of one seed::

    discover  -> SeedFile                      | SeedOutcome (refused: link out of the folder, odd name...)
    read      -> bytes (re-validated: same file, same content as planned)   | SeedOutcome ("changed")
    parse     -> SeedRecord                    | SeedOutcome ("quarantined")
    normalize -> Document                      | SeedOutcome ("quarantined")
    index     -> ItemResult per bulk item      -> SeedOutcome (indexed, duplicate, failed, dead_letter)

Every seed a run sees ends in exactly one ``SeedOutcome``; ``pipeline.run.outcomes`` is the one place that
turns outcomes into ledger entries and report counts. Stages return values, they do not raise for bad
data. An exception out of a stage while one seed is on its path is a bug: ``pipeline.run.seedpath`` makes
it that seed's ``internal_error`` outcome and the batch goes on (the run fails at its end); an
infrastructure failure (the cluster or object store not answering) fails the task, which is retried.
"""

from __future__ import annotations

import hashlib
import os
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

State = Literal[
    "indexed", "unchanged", "quarantined", "duplicate", "failed", "dead_letter", "changed", "deleted", "internal_error"
]
"""What became of one seed file in a run (see README "What a run leaves behind")."""
STATES: tuple[State, ...] = get_args(State)

Stage = Literal[
    "discover", "read", "decode", "frontmatter", "yaml", "validate", "parse", "normalize", "images", "index", "plan"
]

BulkResult = Literal["created", "updated", "conflict", "failed"]
"""What OpenSearch did with one bulk item: stored it (new or over an older copy), refused it with a
version conflict (a copy ingested later is indexed), or failed it."""

ImageStatus = Literal["ok", "broken", "not_image", "timeout", "unreachable", "blocked", "invalid", "relative"]
"""The verdict on one image URL (README, "Image checks")."""
ImageHealth = Literal["all_ok", "some_broken", "none_ok", "unchecked", "no_images"]
"""A document's ``image_health`` facet."""

MAX_REASON_CHARS = 300
"""Reasons are for people and travel through XCom and logs: a reason never carries a whole value."""


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for reasons that quote what the file said."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def cap_reason(reason: str | None) -> str | None:
    if reason is None or len(reason) <= MAX_REASON_CHARS:
        return reason
    return reason[: MAX_REASON_CHARS - 1] + "…"


def display_path(path: str) -> str:
    """A path as people and JSON can see it: bytes that are not UTF-8 (surrogate escapes from the file
    system) are shown as ``\\xe9``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def entry_key(root: str, rel: str) -> str:
    """The ledger id of one seed file: folder + path, from the raw bytes (so two names that only
    differ in undecodable bytes never share a key)."""
    return hashlib.sha256(os.fsencode(root) + b"\0" + os.fsencode(rel)).hexdigest()


@dataclass(frozen=True, slots=True)
class SeedFile:
    """One seed file as discovery found it, once; later stages never re-derive any of this.

    ``root``       the seed folder as the run named it, made absolute (links in it kept): with ``rel``
                   it is the file's identity in the ledger, however the folder was typed
    ``rel``        the path under ``root`` as found, ``/``-separated
    ``real_root``  ``root`` with links resolved when the run was planned: files are read from here,
                   so a ``current -> 2026-11-22`` link that moves mid-run cannot mix two drops
    ``source``     the path under ``real_root`` that is read (differs from ``rel`` for a link inside
                   the folder)
    ``size``, ``mtime_ns``, ``ctime_ns``, ``ino``: what ``stat`` said (the cheap change filter)
    ``sha256``     the content hash (the truth; empty until hashed)
    ``seq``        the ingest sequence of this content (the document's version: see ``pipeline.run.plan``)
    ``hashed_ns``  when ``sha256`` was taken (wall clock, ns, read before the bytes; 0 until hashed): a
                   fingerprint this close to it may hide a later edit (``LedgerEntry.trusts_stat``)
    """

    root: str
    rel: str
    real_root: str
    source: str
    size: int
    mtime_ns: int = 0
    ctime_ns: int = 0
    ino: int = 0
    sha256: str = ""
    seq: int = 0
    hashed_ns: int = 0
    # the ledger id, computed once (planning asks for it several times per file); not an argument, so
    # ``replace`` computes it again from the new root and rel. Slots, not a __dict__: a plan holds one
    # SeedFile per file of the folder (about 200 bytes less each)
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", entry_key(self.root, self.rel))

    @property
    def path(self) -> str:
        """Where the file is, for messages."""
        return display_path(os.path.join(self.root, self.rel))

    @property
    def read_path(self) -> str:
        return os.path.join(self.real_root, self.source)

    # compact and JSON-able: batches of SeedFiles travel through XCom
    def to_row(self) -> list[Any]:
        return [
            self.rel,
            None if self.source == self.rel else self.source,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
            self.ino,
            self.sha256,
            self.seq,
            self.hashed_ns,
        ]

    @classmethod
    def from_row(cls, row: list[Any], root: str, real_root: str) -> SeedFile:
        rel, source, size, mtime_ns, ctime_ns, ino, sha256, seq, *rest = row  # 8 items: planned before hashed_ns
        return cls(
            root, rel, real_root, source or rel, size, mtime_ns, ctime_ns, ino, sha256, seq, rest[0] if rest else 0
        )


@dataclass(frozen=True)
class SeedOutcome:
    """What became of one seed file. ``stage`` says where it ended, ``reason`` why (for people; at most
    ``MAX_REASON_CHARS``), ``doc_id`` which article it carries (if any)."""

    seed: SeedFile
    state: State
    stage: Stage | None = None
    reason: str | None = None
    doc_id: str | None = None
    http_status: int | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:  # a typo in our own code, not bad data
            raise ValueError(f"unknown outcome state {self.state!r}")
        object.__setattr__(self, "reason", cap_reason(self.reason))

    @property
    def path(self) -> str:
        return self.seed.path

    def brief(self) -> dict[str, Any]:
        """A small JSON-able summary for reports and XCom."""
        out: dict[str, Any] = {"path": display_path(self.seed.rel), "state": self.state}
        for name in ("stage", "reason", "doc_id", "http_status"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def __str__(self) -> str:
        return (
            f"{self.seed.path}: {self.state}"
            + (f": {self.stage}" if self.stage else "")
            + (f": {self.reason}" if self.reason else "")
        )


def quarantine(seed: SeedFile, stage: Stage, reason: str) -> SeedOutcome:
    return SeedOutcome(seed, "quarantined", stage, reason)


def internal_error(seed: SeedFile, stage: Stage, exc: BaseException) -> SeedOutcome:
    """The outcome of a seed whose step raised something that is not a known data error: a bug (ours or a
    library's), not bad data. The reason names the exception type and where it was raised, never its
    message (which may quote the file, ``secured`` included); the traceback goes to the log."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    reason = f"internal error in {stage}: {type(exc).__name__}{where} (a bug, not bad data: traceback in the log)"
    return SeedOutcome(seed, "internal_error", stage, reason)


@dataclass(frozen=True)
class SeedRecord:
    """The front matter of one seed, as the file says it (checked for shape, not yet cleaned).

    ``warnings`` lists what validation dropped (a list element of the wrong type, say) without
    quarantining the article."""

    seed: SeedFile
    fields: dict[str, Any]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Repair:
    """One text repair made by normalize: which field, and ftfy's explanation of the steps."""

    field: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """A clean document ready for OpenSearch: ``source`` is the ``_source`` body, ``id`` its ``_id``.

    ``version`` (OpenSearch's external version) is the seed's ingest sequence: the copy of an article
    ingested last wins, whatever order parallel batches write in."""

    id: str
    source: dict[str, Any]
    seed: SeedFile
    version: int
    repairs: tuple[Repair, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ItemResult:
    """The outcome of one bulk item, as OpenSearch reported it."""

    id: str
    ok: bool
    status: int
    result: BulkResult
    error: str | None = None
    retryable: bool = False  # failed for a passing reason (busy, 5xx): retry later, do not dead-letter


@dataclass(frozen=True)
class ImageVerdict:
    """The outcome of checking one URL. ``url`` is the URL exactly as given by the caller."""

    url: str
    status: ImageStatus
    http_code: int | None
    reason: str
    checked_at: str
    final_url: str | None = None

    @property
    def transient(self) -> bool:
        """True when checking again later may well give another answer (cached for less time)."""
        if self.status in ("timeout", "unreachable"):
            return True
        if self.status == "broken" and self.http_code is not None:
            return self.http_code in (408, 425, 429) or self.http_code >= 500
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "http_code": self.http_code,
            "reason": self.reason,
            "checked_at": self.checked_at,
            "final_url": self.final_url,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ImageVerdict:
        code = d.get("http_code")
        status = d["status"]
        if status not in get_args(ImageStatus):  # a stored verdict from another version: not usable
            raise ValueError(f"unknown image status {status!r}")
        return cls(
            url=str(d["url"]),
            status=status,
            http_code=int(code) if code is not None else None,
            reason=str(d.get("reason") or ""),
            checked_at=str(d["checked_at"]),
            final_url=d.get("final_url"),
        )
