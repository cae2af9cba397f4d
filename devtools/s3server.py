"""A real S3-compatible server on loopback for tests and benchmarks: SeaweedFS (Apache-2.0).

    python -m devtools.s3server build     # build the pinned server into the cache (once; minutes)
    python -m devtools.s3server serve     # run one in the foreground, print the env to use it

Why SeaweedFS: it is Apache-2.0 (MinIO's server is AGPL-3.0, which this project does not use), it is a
Go module the Go module proxy serves, and ``weed mini`` runs master, volume, filer and the S3 gateway in
one process. Seen with the pinned version: MD5 ETags, ListObjectsV2 pagination, ranged GETs (416 for
an empty object, like AWS), HEAD, If-Match, SigV4 signatures checked against the configured keys.
What it does not do like AWS (it stores objects in a file tree): it refuses keys with a ``..`` segment
and folds ``a//b`` into ``a/b``; ``pipeline.sources.s3`` refuses such keys on its own (unit tests).

How it is built: ``go mod download`` of the pinned module version, whose go.sum hash (``h1:``) must
equal ``SEAWEEDFS_SUM`` (the pin, like the OpenSearch zip's SHA-512), then ``go build ./weed`` inside
that module (a plain ``go install module@version`` is refused: its go.mod has a ``replace``). The
module cache, the build cache and the binary live in the seednews cache folder
(``devtools.localnode.cache_dir()``: ``/var/cache/seednews`` as root, ``SEEDNEWS_CACHE_DIR`` to choose),
never in the checkout. The Go toolchain of the machine is used (``go`` on PATH or /usr/local/go).

How it runs: as the calling user, bound to 127.0.0.1 only, every port chosen free (no fixed port, so
parallel test runs do not collide), telemetry off, WebDAV/Iceberg/Lance off, a fresh data folder,
one identity with random keys. A watchdog process holds a pipe from the process that started the
server: when that process ends (even by SIGKILL) the server is stopped and its data folder removed;
folders left by a killed watchdog are swept at the next start.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.localnode import _WATCHDOG_CODE, cache_dir

SEAWEEDFS_MODULE = "github.com/seaweedfs/seaweedfs"
SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"  # `weed version`: 30GB 4.53
SEAWEEDFS_SUM = "h1:LOYZFToHq9F7pSR6lkPGfkM8RmHlVFrzndKdhmNZjrU="  # go.sum hash of that module's zip
BIND_HOST = "127.0.0.1"
REGION = "us-east-1"
BUILD_TIMEOUT = 3600.0  # a cold build on 2 busy cores took ~20 min (downloads included)
PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)

Progress = Callable[[str], object]

# the server is stopped and its data dir removed by localnode's watchdog (same contract: EOF on a pipe
# held by this process, then SIGTERM, SIGKILL, rmtree of the ephemeral home)


# ----------------------------------------------------------------------------- build
def go_dir() -> Path:
    return cache_dir() / "go"


def binary_path() -> Path:
    return cache_dir() / "bin" / f"weed-{SEAWEEDFS_VERSION}"


def _go() -> str:
    found = shutil.which("go") or ("/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None)
    if not found:
        raise RuntimeError("building the S3 test server (SeaweedFS) needs the Go toolchain (go >= 1.26) on PATH")
    return found


def _go_env() -> dict[str, str]:
    base = go_dir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GOFLAGS"))}
    env.update(
        {
            "GOPATH": str(base / "gopath"),
            "GOCACHE": str(base / "cache"),
            "GOFLAGS": "-mod=readonly -buildvcs=false",
            "CGO_ENABLED": "0",
        }
    )
    return env


@contextlib.contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_built(progress: Progress = print) -> Path:
    """The pinned ``weed`` binary, built into the cache if it is not there yet."""
    target = binary_path()
    marker = target.with_name(target.name + ".sum")
    with _lock(cache_dir() / "s3server.lock"):
        if target.is_file() and marker.is_file() and marker.read_text().strip() == SEAWEEDFS_SUM:
            return target
        go, env = _go(), _go_env()
        progress(f"building SeaweedFS {SEAWEEDFS_VERSION} into {target} (once; several minutes)")
        started = time.monotonic()
        out = subprocess.run(
            [go, "mod", "download", "-json", f"{SEAWEEDFS_MODULE}@{SEAWEEDFS_VERSION}"],
            env=env,
            cwd=tempfile.gettempdir(),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if out.returncode != 0:
            what = f"go mod download {SEAWEEDFS_MODULE}@{SEAWEEDFS_VERSION}"
            raise RuntimeError(f"{what} failed: {out.stdout[-2000:]}{out.stderr[-2000:]}")
        info = json.loads(out.stdout)
        if info.get("Sum") != SEAWEEDFS_SUM:
            raise RuntimeError(
                f"{SEAWEEDFS_MODULE}@{SEAWEEDFS_VERSION} has hash {info.get('Sum')!r}, not the pinned "
                f"{SEAWEEDFS_SUM!r}: refusing to build it"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        built = subprocess.run(
            [go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(part), "./weed"],
            env=env,
            cwd=info["Dir"],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
        )
        if built.returncode != 0:
            part.unlink(missing_ok=True)
            raise RuntimeError(f"go build ./weed failed:\n{built.stdout[-3000:]}{built.stderr[-3000:]}")
        os.replace(part, target)
        marker.write_text(SEAWEEDFS_SUM + "\n")
        progress(f"built {target} in {time.monotonic() - started:.0f}s")
        return target


# ----------------------------------------------------------------------------- run
def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports on loopback whose gRPC twin (port + 10000, SeaweedFS's default offset)
    is free too."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind((BIND_HOST, 0))
            held.append(s)
            port = s.getsockname()[1]
            if port + 10000 < 65536 and port not in ports:
                ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


def _sweep(base: Path) -> None:
    """Remove data folders whose server is gone (a killed watchdog cannot clean up after itself)."""
    for home in base.glob("s3-*"):
        try:
            pid = int((home / "server.pid").read_text())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(home).encode() in f.read():
                    continue
        except (OSError, ValueError):
            if time.time() - home.stat().st_mtime < 60:  # being started right now
                continue
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    home: Path
    region: str = REGION
    pid: int | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _watchdog: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """What the CLI needs to use this server (``pipeline.sources.s3.make_client`` reads it)."""
        return {
            "SEEDNEWS_S3_ENDPOINT": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }

    def client(self, **config: Any):
        from pipeline.sources.s3 import make_client

        return make_client(
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            **config,
        )

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 20) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        if self._watchdog is not None:
            with contextlib.suppress(OSError):
                self._watchdog.stdin.close()  # type: ignore[union-attr]
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(10)
            self._watchdog = None
        shutil.rmtree(self.home, ignore_errors=True)

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def start(progress: Progress = print, wait: float = 90, attempts: int = 2) -> S3Server:
    """Build (if needed) and start a SeaweedFS S3 server on 127.0.0.1; wait until a signed request
    succeeds. Stopped (and its data removed) by ``stop()``, at exit, or when this process dies."""
    binary = ensure_built(progress)
    base = cache_dir() / "s3"
    base.mkdir(exist_ok=True)
    _sweep(base)
    for attempt in range(1, attempts + 1):
        try:
            return _start_once(binary, base, progress, wait)
        except _PortTaken as exc:  # another process took a port between the probe and the bind
            if attempt == attempts:
                raise RuntimeError(str(exc)) from None
    raise AssertionError  # pragma: no cover


class _PortTaken(RuntimeError):
    pass


def _start_once(binary: Path, base: Path, progress: Progress, wait: float) -> S3Server:
    home = Path(tempfile.mkdtemp(prefix="s3-", dir=base))
    (home / "data").mkdir()
    access, secret = "seednews" + secrets.token_hex(6), secrets.token_urlsafe(30)
    config = {
        "identities": [
            {
                "name": "seednews",
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    cfg = home / "s3.json"
    cfg.write_text(json.dumps(config))
    cfg.chmod(0o600)
    ports = dict(zip(PORTS, _free_ports(len(PORTS)), strict=True))
    argv = [
        str(binary),
        "mini",
        f"-dir={home / 'data'}",
        f"-ip={BIND_HOST}",
        f"-ip.bind={BIND_HOST}",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-admin.port.legacy=0",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={cfg}",
        f"-filer.localSocket={home / 'filer.sock'}",
        f"-s3.localSocket={home / 's3.sock'}",
        "-s3.iam=false",
    ]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}
    with open(home / "server.log", "ab") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            argv,
            cwd=home,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (home / "server.pid").write_text(str(process.pid))
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG_CODE, str(process.pid), str(home), "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    server = S3Server(
        f"http://{BIND_HOST}:{ports['s3.port']}",
        access,
        secret,
        home,
        pid=process.pid,
        _process=process,
        _watchdog=watchdog,
    )
    atexit.register(server.stop)
    client = server.client(connect_timeout=1, read_timeout=5, max_attempts=1)
    started = time.monotonic()
    while True:
        if process.poll() is not None:
            tail = _tail(server.log_file)
            server.stop()
            if "address already in use" in tail:
                raise _PortTaken(f"SeaweedFS could not bind a port:\n{tail}")
            raise RuntimeError(f"SeaweedFS exited with code {process.returncode} during startup:\n{tail}")
        try:
            client.list_buckets()
            break
        except Exception:  # noqa: BLE001 -- any failure means "not up yet" until the deadline
            if time.monotonic() - started > wait:
                tail = _tail(server.log_file)
                server.stop()
                raise RuntimeError(
                    f"SeaweedFS S3 did not answer within {wait:.0f}s at {server.endpoint}:\n{tail}"
                ) from None
            time.sleep(0.3)
    progress(f"SeaweedFS S3 is up at {server.endpoint} (pid {process.pid}, {time.monotonic() - started:.1f}s)")
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.s3server", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the pinned SeaweedFS into the cache")
    sub.add_parser("serve", help="run a server in the foreground until Ctrl-C")
    args = parser.parse_args(argv)
    if args.command == "build":
        print(ensure_built())
        return 0
    server = start()
    for k, v in server.env.items():
        print(f"export {k}={v}")
    try:
        while server.is_running():
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
