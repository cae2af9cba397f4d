"""Stage 1, discover: list the seed files under a root folder.

Rules (each one a trap somebody fell into):
- only regular files whose name matches the seed pattern (``*.txt`` and ``*.md`` by default);
- no hidden files or folders (``.foo``), no editor droppings (``foo~``, ``.foo.swp``, ``#foo#``);
- a symbolic link is followed only if it resolves to a file *inside* the root; a link that points
  out of the root is skipped and reported, never read;
- the walk is deterministic (sorted), so batches and reports are stable from run to run.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .types import Quarantined, SeedFile

DEFAULT_PATTERNS: tuple[str, ...] = ("*.txt", "*.md")
EDITOR_SUFFIXES: tuple[str, ...] = ("~", ".swp", ".swo", ".swx", ".tmp", ".part", ".bak", ".orig")
HASH_CHUNK = 1 << 16


class SeedRootError(ValueError):
    """The seed root itself is unusable (missing, not a folder). Raised: the whole run cannot start."""


@dataclass(frozen=True)
class Skipped:
    """A path discovery saw and deliberately did not take, with the reason (for the report)."""

    path: str
    reason: str


def is_seed_name(name: str, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> bool:
    """True if ``name`` looks like a seed file and not like a hidden or editor file."""
    if name.startswith((".", "#", "~")) or name.endswith(EDITOR_SUFFIXES) or name.endswith("#"):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def walk(
    root: str | os.PathLike[str], patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> Iterator[SeedFile | Skipped]:
    """Yield a ``SeedFile`` for every seed under ``root`` and a ``Skipped`` for every link refused.

    Raises ``SeedRootError`` when ``root`` is not a readable folder.
    """
    root_path = Path(root)
    if not root_path.is_dir():
        raise SeedRootError(f"seed folder {str(root_path)!r} does not exist or is not a folder")
    real_root = root_path.resolve()
    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not is_seed_name(name, patterns):
                continue
            full = Path(dirpath) / name
            rel = str(full.relative_to(root_path))
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(real_root):
                    yield Skipped(str(full), "symbolic link points outside the seed folder")
                    continue
            try:
                st = full.stat()
            except OSError as exc:
                yield Skipped(str(full), f"cannot stat: {exc.strerror}")
                continue
            if not full.is_file():
                yield Skipped(str(full), "not a regular file")
                continue
            try:
                digest = file_sha256(full)
            except OSError as exc:
                yield Skipped(str(full), f"cannot read: {exc.strerror}")
                continue
            yield SeedFile(path=str(full), rel=rel, size=st.st_size, sha256=digest, mtime_ns=st.st_mtime_ns)


def discover(
    root: str | os.PathLike[str], patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> tuple[list[SeedFile], list[Quarantined]]:
    """All seeds under ``root`` (sorted by relative path) and the refused paths as ``Quarantined``."""
    seeds: list[SeedFile] = []
    refused: list[Quarantined] = []
    for item in walk(root, patterns):
        if isinstance(item, SeedFile):
            seeds.append(item)
        else:
            refused.append(Quarantined(item.path, "discover", item.reason))
    return seeds, refused


def seed_from_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> SeedFile:
    """Re-describe one known path (a batch worker gets paths, not ``SeedFile`` objects, via XCom)."""
    p = Path(path)
    st = p.stat()
    rel = str(p.relative_to(root)) if root is not None and p.is_relative_to(root) else p.name
    return SeedFile(path=str(p), rel=rel, size=st.st_size, sha256=file_sha256(p), mtime_ns=st.st_mtime_ns)


def make_batches(paths: list[str], max_batches: int, min_batch: int = 1) -> list[list[str]]:
    """Split ``paths`` into at most ``max_batches`` contiguous, near-equal batches (never an empty one).

    Airflow maps one task per batch: a few big batches, not one task per file.
    """
    if not paths:
        return []
    if max_batches < 1:
        raise ValueError("max_batches must be at least 1")
    n = max(1, min(max_batches, len(paths) // max(1, min_batch)))
    size, extra = divmod(len(paths), n)
    batches, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        batches.append(paths[start:end])
        start = end
    return batches
