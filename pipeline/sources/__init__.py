"""Where seeds come from: a folder, or a prefix in object storage (``s3://bucket/prefix``).

A ``Source`` is the one thing planning and the workers ask about seeds. It

- ``walk()``s its entries: a ``SeedFile`` per seed it takes (size and a cheap change fingerprint in
  ``size``/``mtime_ns``/``ctime_ns``/``ino``, not yet hashed), a refusal (``SeedOutcome``, quarantined
  at stage ``discover``) per seed-named entry it will not read;
- ``hash()``es one entry for planning: its bytes read once, the size limit enforced before anything
  is read, the content hash computed (the truth, whatever the fingerprint says), and when;
- says whether planning may defer that hash (``deferred_hash``: an object's GET is a round trip and its
  ETag identifies its content, so planning reads an object only when the hash must decide there, and the
  worker hashes the bytes of its one read); ``admit()`` is planning's look at an entry it does not
  read: the size limit only;
- says how far its fingerprint can be trusted (``racy_window_ns``: a file's mtime has a granularity, so
  one edited within the tick of its hash looks unchanged; an object's ETag changes with its bytes);
- ``read()``s one planned entry in the worker: the same bytes (the planned content hash, when planning
  took one), or a ``changed`` outcome;
- ``describe()``s one known entry again (``None`` if it is gone), for articles re-sourced after a delete.

``pipeline.sources.folder.FolderSource`` walks a folder (safe ``O_NOFOLLOW`` reads, links, odd names);
``pipeline.sources.s3.S3Source`` reads objects with boto3 (imported only when an ``s3://`` location is
used: ``pip install 'seednews[s3]'``). The ledger, the vanish guard, the ingest sequence and the
outcomes are the same for both: they only see ``SeedFile`` values whose ``root`` is the location's
identity (a folder's absolute path, or ``s3://bucket/prefix/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Protocol

from pipeline.errors import SeedRootError
from pipeline.sources.folder import DEFAULT_PATTERNS, FolderSource, read_seed, resolve_root
from pipeline.types import SeedFile, SeedOutcome

OBJECT_SCHEMES: tuple[str, ...] = ("s3://",)


class Source(Protocol):
    root: str  # identity in the ledger (``SeedFile.root``)
    real_root: str  # where entries are read from (``SeedFile.real_root``)

    @property
    def racy_window_ns(self) -> int | None:
        """``LedgerEntry.trusts_stat``'s window; None when the fingerprint follows the content."""

    @property
    def deferred_hash(self) -> bool:
        """True: planning reads an entry only when its content hash must decide there (``admit`` the others)."""

    def check(self) -> None: ...
    def walk(self) -> Iterator[SeedFile | SeedOutcome]: ...
    def hash(self, seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome: ...
    def admit(self, seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome: ...
    def read(self, seed: SeedFile, max_bytes: int) -> bytes | SeedOutcome: ...
    def describe(self, rel: str) -> SeedFile | SeedOutcome | None: ...


def is_object_url(location: str | os.PathLike[str]) -> bool:
    """True for ``s3://...`` (the scheme is matched case-insensitively, as S3 tools do)."""
    return isinstance(location, str) and location[:5].lower() in OBJECT_SCHEMES


def open_source(
    location: str | os.PathLike[str], *, s3_client: Any = None, patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> Source:
    """The source for a seed location: ``s3://bucket/prefix`` or a folder.

    ``s3_client`` is a boto3 S3 client (``pipeline.sources.s3.make_client``); ``None`` builds one from
    the environment. Raises ``SeedRootError`` for a location that cannot be a seed location."""
    if is_object_url(location):
        from .s3 import S3Source, parse_url

        return S3Source(parse_url(str(location)), s3_client, patterns)
    return FolderSource(location, patterns)


def root_of(location: str | os.PathLike[str]) -> str:
    """The identity (``SeedFile.root``) of a location, without listing it."""
    if is_object_url(location):
        from .s3 import parse_url

        return parse_url(str(location)).root
    return resolve_root(location)[0]


class Sources:
    """One source per seed root, made once (a worker reads a batch through one S3 client)."""

    def __init__(self, s3_client: Any = None) -> None:
        self.s3_client = s3_client
        self._by_root: dict[str, Source | None] = {}

    def for_root(self, root: str) -> Source | None:
        """The source for ``root`` (a ``SeedFile.root``), or ``None`` if the folder is gone."""
        if root not in self._by_root:
            try:
                self._by_root[root] = open_source(root, s3_client=self.s3_client)
            except SeedRootError:
                self._by_root[root] = None
        return self._by_root[root]

    def read(self, seed: SeedFile, max_bytes: int) -> bytes | SeedOutcome:
        if not is_object_url(seed.root):
            return read_seed(seed, max_bytes)  # uses the real path resolved at planning, not the root now
        return self.for_root(seed.root).read(seed, max_bytes)  # type: ignore[union-attr]

    def describe_and_hash(self, root: str, rel: str, max_bytes: int) -> SeedFile | SeedOutcome | None:
        src = self.for_root(root)
        found = src.describe(rel) if src is not None else None
        return src.hash(found, max_bytes) if isinstance(found, SeedFile) else found  # type: ignore[union-attr]


__all__ = ["Source", "Sources", "is_object_url", "open_source", "root_of"]
