"""The image checker's memory between runs, as the checker sees it: the :class:`VerdictCache` protocol,
an in-memory cache (tests, one process), and the age rule (:func:`is_fresh`).

Only network-derived verdicts are stored (:data:`CACHEABLE_STATUSES`). A stored verdict is reused
while younger than ``transient_ttl`` when it is transient (timeout, unreachable, 429, 5xx) or
``blocked`` (a name's DNS answer may change), and while younger than ``ok_ttl`` otherwise. The age
limit is applied when reading, so changing the TTLs takes effect immediately. The cache kept in
OpenSearch is ``pipeline.stores.imagecache.OpenSearchVerdictCache``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from pipeline.times import parse_iso_utc
from pipeline.types import ImageVerdict

CACHEABLE_STATUSES = frozenset({"ok", "broken", "not_image", "timeout", "unreachable", "blocked"})
"""Statuses worth storing. ``invalid`` and ``relative`` need no network and are recomputed every run."""


@runtime_checkable
class VerdictCache(Protocol):
    """Where verdicts outlive a run. Keys are the absolute URLs checked (after relative resolution).

    Implementations store and return verdicts as given; the age limit is applied by the caller
    (:func:`pipeline.stages.images.check_images`, with :func:`is_fresh`), so changing the TTLs takes effect
    immediately.
    """

    def get_many(self, keys: Sequence[str]) -> dict[str, ImageVerdict]: ...

    def put_many(self, verdicts: Mapping[str, ImageVerdict]) -> None: ...


class InMemoryVerdictCache:
    """A dict. For unit tests and single-process use."""

    def __init__(self) -> None:
        self.data: dict[str, ImageVerdict] = {}
        self.gets = 0
        self.puts = 0

    def get_many(self, keys: Sequence[str]) -> dict[str, ImageVerdict]:
        self.gets += 1
        return {k: self.data[k] for k in keys if k in self.data}

    def put_many(self, verdicts: Mapping[str, ImageVerdict]) -> None:
        self.puts += 1
        self.data.update(verdicts)

    def __len__(self) -> int:
        return len(self.data)


def is_fresh(v: ImageVerdict, now: float, *, ok_ttl: float, transient_ttl: float) -> bool:
    """True when cached verdict ``v`` may be reused at epoch time ``now`` (see the module docstring)."""
    if v.status not in CACHEABLE_STATUSES:
        return False
    try:
        age = now - parse_iso_utc(v.checked_at)
    except (ValueError, OverflowError):
        return False
    ttl = transient_ttl if (v.transient or v.status == "blocked") else ok_ttl
    return age < ttl
