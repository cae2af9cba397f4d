"""Stage 1, discover: find the seed files under a folder, and read one back safely later.

``walk`` yields a ``SeedFile`` (stat information, not yet hashed) for every seed it takes, and a
``SeedOutcome`` (quarantined at stage ``discover``) for every seed-named path it refuses. Rules, each a
trap somebody fell into:

- only seed-named files (``*.txt``, ``*.md``); no hidden files or folders, no editor droppings
  (``foo~``, ``.foo.swp``, ``#foo#``);
- the folder's identity is its absolute path as given (``os.path.abspath``: relative names made
  absolute, links kept), so ``examples/seeds`` and ``/work/x/examples/seeds`` are one folder and a
  ``current -> 2026-11-22`` link that moves to the next drop stays the same folder. Files are read
  from the folder's real path, resolved once when the run is planned;
- a symbolic link to a file is taken only if it resolves to a regular file *inside* the folder; links
  out of it, broken links and link loops are refused with a reason, never read; links to folders are
  not followed (a folder reached twice through bind mounts is walked once);
- a name that is not valid UTF-8 (``caf\\xe9.txt`` from an old share) is refused with the name shown
  escaped: it cannot be stored, logged or searched as text;
- FIFOs, devices and sockets are refused without being opened;
- the walk is sorted (by the names' bytes), so batches and reports are stable from run to run;
- a folder that cannot be listed (permissions, I/O error) is refused as ``cannot read folder`` under its
  own path; planning then keeps the articles of the files the ledger knows under it (they are not gone).

``read_seed`` re-opens a planned file for the worker without trusting the path: every component is
opened relative to the real folder with ``O_NOFOLLOW``, ``O_NONBLOCK`` (a FIFO swapped in cannot hang
the task), ``fstat`` must say regular file, the read is bounded, and the content hash must equal what
was planned. Anything else ends as a ``changed`` outcome, which the next run picks up.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import replace

from pipeline.errors import SeedRootError
from pipeline.types import SeedFile, SeedOutcome, display_path, quarantine

DEFAULT_PATTERNS: tuple[str, ...] = ("*.txt", "*.md")
EDITOR_SUFFIXES: tuple[str, ...] = ("~", ".swp", ".swo", ".swx", ".tmp", ".part", ".bak", ".orig")
READ_CHUNK = 1 << 16
UNREADABLE_FOLDER = "cannot read folder"
"""How a refusal of a folder the walk cannot list starts (planning keeps the articles of the files in it)."""
RACY_WINDOW_NS = 3_000_000_000
"""How close to its hash a file's mtime/ctime may be before its stat fingerprint proves nothing: FAT's
2 s timestamps, plus the kernel's coarse file clock (a jiffy behind the wall clock) and about a second
of clock skew between this host and a network file server."""
_O_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def is_seed_name(name: str, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> bool:
    """True if ``name`` looks like a seed file and not like a hidden or editor file."""
    if name.startswith((".", "#", "~")) or name.endswith(EDITOR_SUFFIXES) or name.endswith("#"):
        return False
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def resolve_root(seed_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """``(root, real_root)``: the folder's identity (absolute, links kept) and where it really is."""
    root = os.path.abspath(os.fspath(seed_dir))
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        raise SeedRootError(f"seed folder {display_path(root)!r} does not exist or is not a folder")
    try:
        root.encode("utf-8")
    except UnicodeEncodeError:
        raise SeedRootError(f"seed folder name {display_path(root)!r} is not valid UTF-8; rename it") from None
    return root, real


def _kind(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def walk(
    seed_dir: str | os.PathLike[str], patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> Iterator[SeedFile | SeedOutcome]:
    """Every seed-named file under ``seed_dir``: a ``SeedFile`` (hash not computed) or a refusal.

    Raises ``SeedRootError`` when the folder itself is unusable."""
    root, real_root = resolve_root(seed_dir)
    seen_dirs: set[tuple[int, int]] = set()
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        here = os.path.join(real_root, rel_dir) if rel_dir else real_root
        try:
            st = os.stat(here)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            with os.scandir(here) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            yield quarantine(
                SeedFile(root, rel_dir, real_root, rel_dir, 0),
                "discover",
                f"{UNREADABLE_FOLDER}: {exc.strerror or exc}",
            )
            continue
        subdirs = []
        for entry in entries:
            name = entry.name
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                if entry.is_dir(follow_symlinks=False):
                    if not name.startswith("."):
                        subdirs.append(rel)
                    continue
                if not is_seed_name(name, patterns):
                    continue
                yield _describe_entry(root, real_root, rel, entry.path, entry.stat(follow_symlinks=False))
            except OSError as exc:  # vanished or unreadable while we looked
                yield quarantine(
                    SeedFile(root, rel, real_root, rel, 0), "discover", f"cannot stat: {exc.strerror or exc}"
                )
        stack.extend(reversed(subdirs))  # depth first, in sorted order


def _describe_entry(root: str, real_root: str, rel: str, full: str, lst: os.stat_result) -> SeedFile | SeedOutcome:
    seed = SeedFile(root, rel, real_root, rel, lst.st_size, lst.st_mtime_ns, lst.st_ctime_ns, lst.st_ino)
    if not _is_utf8(rel):
        return quarantine(seed, "discover", f"file name '{display_path(rel)}' is not valid UTF-8; rename it")
    if stat.S_ISLNK(lst.st_mode):
        try:
            target_st = os.stat(full)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return quarantine(seed, "discover", "symbolic link loop")
            if exc.errno == errno.ENOENT:
                return quarantine(seed, "discover", "broken symbolic link (its target does not exist)")
            return quarantine(seed, "discover", f"cannot follow symbolic link: {exc.strerror or exc}")
        target = os.path.realpath(full)
        if os.path.commonpath([target, real_root]) != real_root:
            return quarantine(seed, "discover", "symbolic link points outside the seed folder")
        if not stat.S_ISREG(target_st.st_mode):
            return quarantine(seed, "discover", f"symbolic link to {_kind(target_st.st_mode)}, not a regular file")
        source = os.path.relpath(target, real_root).replace(os.sep, "/")
        return replace(
            seed,
            source=source,
            size=target_st.st_size,
            mtime_ns=target_st.st_mtime_ns,
            ctime_ns=target_st.st_ctime_ns,
            ino=target_st.st_ino,
        )
    if not stat.S_ISREG(lst.st_mode):
        return quarantine(seed, "discover", f"{_kind(lst.st_mode)}, not a regular file")
    return seed


def discover(
    seed_dir: str | os.PathLike[str], patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> tuple[list[SeedFile], list[SeedOutcome]]:
    """``walk`` split in two: the seeds taken (sorted, not hashed) and the refusals."""
    seeds: list[SeedFile] = []
    refused: list[SeedOutcome] = []
    for item in walk(seed_dir, patterns):
        (refused if isinstance(item, SeedOutcome) else seeds).append(item)  # type: ignore[arg-type]
    return seeds, refused


def describe(root: str, rel: str, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> SeedFile | SeedOutcome | None:
    """Look at one known file again (``root`` as stored in the ledger). ``None`` if it is gone."""
    try:
        _, real_root = resolve_root(root)
        full = os.path.join(real_root, rel)
        return _describe_entry(root, real_root, rel, full, os.lstat(full))
    except (OSError, SeedRootError):
        return None


# ----------------------------------------------------------------------------- reading safely
class _Changed(Exception):
    pass


def _open_under(real_root: str, source: str) -> int:
    """Open ``real_root/source`` for reading, refusing a symbolic link at any step."""
    parts = source.split("/")
    dir_fd = os.open(real_root, _O_READ | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, _O_READ | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        return os.open(parts[-1], _O_READ | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)


def _read_bounded(seed: SeedFile, max_bytes: int) -> tuple[bytes, os.stat_result]:
    try:
        fd = _open_under(seed.real_root, seed.source)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise _Changed("the file disappeared") from None
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise _Changed("a symbolic link now stands in its path") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Changed(f"it is now {_kind(st.st_mode)}")
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(fd, min(READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks), st
    finally:
        os.close(fd)


def _read_or_outcome(seed: SeedFile, max_bytes: int, changed: str) -> tuple[bytes, os.stat_result] | SeedOutcome:
    """``_read_bounded``, with its failures as outcomes: ``changed`` (``changed`` formats the reason)
    or a quarantine for a file that cannot be read."""
    try:
        return _read_bounded(seed, max_bytes)
    except _Changed as exc:
        return SeedOutcome(seed, "changed", "read", changed.format(exc))
    except OSError as exc:
        return quarantine(seed, "read", f"cannot read file: {exc.strerror or exc}")


def hash_seed(seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome:
    """``seed`` with its content hash, read safely; a quarantine (too big, unreadable) or a ``changed``
    outcome (it vanished or turned into something else while the run looked) otherwise."""
    if seed.size > max_bytes:
        return quarantine(
            seed, "read", f"file is {human_size(seed.size)}, over the {human_size(max_bytes)} limit for a seed"
        )
    hashed_ns = time.time_ns()  # before the read: an edit after it is racy if its tick is this one or later
    got = _read_or_outcome(seed, max_bytes, "{} while the run was planned")
    if isinstance(got, SeedOutcome):
        return got
    data, st = got
    if len(data) > max_bytes:
        return quarantine(seed, "read", f"file is over the {human_size(max_bytes)} limit for a seed")
    return replace(
        seed,
        size=len(data),
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
        ino=st.st_ino,
        sha256=hashlib.sha256(data).hexdigest(),
        hashed_ns=hashed_ns,
    )


def read_seed(seed: SeedFile, max_bytes: int) -> bytes | SeedOutcome:
    """The bytes of a planned seed, if it is still the same regular file with the same content."""
    got = _read_or_outcome(seed, max_bytes, "changed since it was planned: {}")
    if isinstance(got, SeedOutcome):
        return got
    data = got[0]
    if len(data) > max_bytes or hashlib.sha256(data).hexdigest() != seed.sha256:
        return SeedOutcome(seed, "changed", "read", "changed since it was planned: its content is different")
    return data


def human_size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


class FolderSource:
    """Seed files under a local folder: the ``Source`` (``pipeline.sources``) over this module's functions."""

    kind = "folder"
    racy_window_ns = RACY_WINDOW_NS
    deferred_hash = False  # planning hashes every file it looks at: a local read is cheap

    def __init__(self, location: str | os.PathLike[str], patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> None:
        self.location = location
        self.patterns = patterns
        self.root, self.real_root = resolve_root(location)  # raises SeedRootError

    def check(self) -> None:
        pass  # the constructor already refused a missing folder

    def walk(self) -> Iterator[SeedFile | SeedOutcome]:
        return walk(self.location, self.patterns)

    def hash(self, seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome:
        return hash_seed(seed, max_bytes)

    def admit(self, seed: SeedFile, max_bytes: int) -> SeedFile | SeedOutcome:
        return hash_seed(seed, max_bytes)  # never deferred: the same as ``hash``

    def read(self, seed: SeedFile, max_bytes: int) -> bytes | SeedOutcome:
        return read_seed(seed, max_bytes)

    def describe(self, rel: str) -> SeedFile | SeedOutcome | None:
        return describe(self.root, rel, self.patterns)
