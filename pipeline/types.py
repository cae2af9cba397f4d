"""The named types that cross stage boundaries.

Every stage takes and returns these frozen dataclasses (or plain dicts for OpenSearch ``_source``),
so a stage can be tested, replaced or run in another process without knowing its neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SeedFile:
    """A seed file found by discovery. ``rel`` is the path relative to the seed root (used in reports)."""

    path: str
    rel: str
    size: int
    sha256: str
    mtime_ns: int


@dataclass(frozen=True)
class Quarantined:
    """A seed that could not become a document. Nothing is moved or deleted; this is the record of why."""

    path: str
    stage: str  # "discover" | "read" | "decode" | "frontmatter" | "yaml" | "validate" | "normalize"
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.stage}: {self.reason}"


@dataclass(frozen=True)
class SeedRecord:
    """The front matter of one seed, as the file says it (checked for shape, not yet cleaned)."""

    seed: SeedFile
    fields: dict[str, Any]


@dataclass(frozen=True)
class Repair:
    """One text repair made by normalize: which field, and ftfy's explanation of the steps."""

    field: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class Document:
    """A clean document ready for OpenSearch: ``source`` is the ``_source`` body, ``id`` its ``_id``.

    ``version`` orders copies of the same article (see ``pipeline.normalize.seed_version``).
    """

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
    result: str  # "created" | "updated" | "noop" | "superseded" | "failed"
    error: str | None = None
    seed: str | None = None
    retryable: bool = False  # failed for a passing reason (busy, 5xx): retry later, do not dead-letter
