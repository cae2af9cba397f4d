"""devtools.localnode: a REAL single-node OpenSearch started without Docker.

One node is started for this module (independently of the session node in
conftest, because one test stops it). ``OPENSEARCH_URL`` is removed for the
module so that the local start is what gets tested.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import localnode

ROOT = Path(__file__).resolve().parent.parent


def _req(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{method} {url} -> {exc.code}: {exc.read().decode()}") from exc


@pytest.fixture(scope="module")
def node() -> Iterator[localnode.LocalNode]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)
        n = localnode.start(progress=lambda _msg: None)
        try:
            yield n
        finally:
            n.stop()


def test_node_answers_on_loopback(node: localnode.LocalNode) -> None:
    assert node.url.startswith("http://127.0.0.1:")
    assert node.pid is not None and node.home is not None
    info = _req("GET", node.url)
    assert info["version"]["number"] == localnode.OPENSEARCH_VERSION
    assert _req("GET", node.url + "/_cluster/health")["status"] in ("green", "yellow")
    modules = {m["name"] for n in _req("GET", node.url + "/_nodes/plugins")["nodes"].values() for m in n["modules"]}
    assert {"analysis-common", "mapper-extras"} <= modules


def test_english_analyzer_and_folding_normalizer(node: localnode.LocalNode) -> None:
    index = node.url + "/localnode-test"
    _req(
        "PUT",
        index,
        {
            "settings": {
                "number_of_replicas": 0,
                "analysis": {"normalizer": {"folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}}},
            },
            "mappings": {
                "properties": {
                    "title": {"type": "text", "analyzer": "english"},
                    "tag": {"type": "keyword", "normalizer": "folded"},
                    "score": {"type": "scaled_float", "scaling_factor": 100},  # mapper-extras
                }
            },
        },
    )
    _req("PUT", index + "/_doc/1?refresh=true", {"title": "Running the ETL pipelines", "tag": "Économie", "score": 1.5})
    hits = _req(
        "POST",
        index + "/_search",
        {
            "query": {
                "bool": {
                    "must": [
                        {"match": {"title": "pipeline runs"}},  # stemmed by the english analyzer
                        {"term": {"tag": "ECONOMIE"}},  # lowercased + folded by the normalizer
                    ]
                }
            }
        },
    )["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]
    _req("DELETE", index)


def test_opensearch_url_short_circuits(node: localnode.LocalNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(localnode.ENV_OPENSEARCH_URL, node.url + "/")
    external = localnode.start(progress=lambda _msg: None)
    assert (external.url, external.pid, external.home) == (node.url, None, None)
    with external:
        pass  # stopping an external cluster is a no-op
    assert _req("GET", node.url + "/_cluster/health")["status"] in ("green", "yellow")


def test_opensearch_url_that_does_not_answer_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv(localnode.ENV_OPENSEARCH_URL, dead)
    with pytest.raises(RuntimeError, match="does not answer"):
        localnode.start(progress=lambda _msg: None)


def test_busy_port_is_refused(node: localnode.LocalNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)
    busy = int(node.url.rsplit(":", 1)[1])  # the module node already holds this port
    with pytest.raises(RuntimeError, match="already in use"):
        localnode.start(port=busy, progress=lambda _msg: None)


def test_failed_start_reports_the_log_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)
    monkeypatch.setattr(localnode, "HEAP_MAX", "1x")  # the JVM refuses to start
    with pytest.raises(RuntimeError, match=r"(?s)exited with code.*Log tail.*heap size"):
        localnode.start(wait=120, progress=lambda _msg: None)


def test_cli_start_reuse_status_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)
    work = Path(tempfile.mkdtemp(prefix="cli-", dir=localnode.cache_dir() / "nodes"))
    work.chmod(0o755)  # the node user (when root) must reach the data dir
    state = work / "state.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(localnode.ENV_OPENSEARCH_URL, None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "devtools.localnode", *args, "--state-file", str(state)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=300,
            check=False,
        )

    first = cli("start", "--data-dir", str(work / "home"))
    try:
        assert first.returncode == 0, first.stderr
        url = first.stdout.strip()
        pid = json.loads(state.read_text())["pid"]
        # the command has exited, the node keeps running
        assert _req("GET", url + "/_cluster/health")["status"] in ("green", "yellow")
        again = cli("start")
        assert (again.returncode, again.stdout.strip()) == (0, url)
        assert "reusing" in again.stderr
        status = cli("status")
        assert status.returncode == 0 and url in status.stdout
    finally:
        stop = cli("stop")
    assert stop.returncode == 0, stop.stderr
    assert not localnode._pid_alive(pid)
    assert cli("status").returncode == 1
    assert not state.exists()
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def test_stop_ends_the_process(node: localnode.LocalNode) -> None:
    """Runs last in this module: stops the module's node."""
    pid, home = node.pid, node.home
    assert pid is not None and home is not None and localnode._pid_alive(pid)
    node.stop(timeout=60)
    assert not localnode._pid_alive(pid)
    assert not home.exists()  # temporary home removed
    with pytest.raises(OSError):
        urllib.request.urlopen(node.url, timeout=5)
    node.stop()  # idempotent


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_download_verifies_sha1_and_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "served"
    served.mkdir()
    payload = os.urandom(300_000)
    (served / "good.bin").write_bytes(payload)
    (served / "good.bin.sha1").write_text(hashlib.sha1(payload).hexdigest() + "\n")
    (served / "bad.bin").write_bytes(payload)
    (served / "bad.bin.sha1").write_text("0" * 40)
    handler = lambda *a, **kw: _Quiet(*a, directory=str(served), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setattr(localnode, "DOWNLOAD_ATTEMPTS", 1)
    try:
        out = localnode.download(base + "/good.bin", tmp_path / "dl" / "good.bin", lambda _m: None)
        assert out.read_bytes() == payload
        with pytest.raises(RuntimeError, match="sha1 mismatch"):
            localnode.download(base + "/bad.bin", tmp_path / "dl" / "bad.bin", lambda _m: None)
        assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["good.bin"]
    finally:
        server.shutdown()


# --------------------------------------------------------------------------- #
# Started as root: attacks by the node user, against a PRIVATE cache
# (``$SEEDNEWS_CACHE_DIR``), never the shared /var/cache/seednews.
# --------------------------------------------------------------------------- #

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="attacks on a root start need root")
ZIP_NAME = f"opensearch-{localnode.OPENSEARCH_VERSION}.zip"


@pytest.fixture(scope="module")
def private_cache() -> Iterator[Path]:
    """A root-owned cache of our own with the distribution installed (the zip is copied from the
    shared cache when it is there, read only; else downloaded). In /tmp, not tmp_path: pytest's
    basetemp is 0700, and the node user must reach the node homes."""
    cache = Path(tempfile.mkdtemp(prefix="seednews-attacks-", dir="/tmp"))
    cache.chmod(0o755)
    shared_zip = localnode.ROOT_CACHE_DIR / "downloads" / ZIP_NAME
    if shared_zip.is_file():
        (cache / "downloads").mkdir()
        shutil.copyfile(shared_zip, cache / "downloads" / ZIP_NAME)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv(localnode.ENV_CACHE_DIR, str(cache))
            localnode.ensure_installed(progress=lambda _m: None)
        yield cache
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _use_cache(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    monkeypatch.setenv(localnode.ENV_CACHE_DIR, str(cache))
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)


def _decoy(path: Path) -> Path:
    """A root-owned file the node user must never own, change or read through us."""
    path.write_bytes(f"decoy {path.name}: root's, do not touch\n".encode())
    path.chmod(0o600)
    return path


def _snapshot(path: Path) -> tuple[int, int, int, bytes]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), path.read_bytes()


def _node_owned_dirs(home: Path, *subs: str) -> tuple[int, int]:
    """Dirs as a previous start leaves them: owned by the node user, who may plant anything in them."""
    uid, gid = localnode._ensure_node_user()
    for sub in ("", *subs):
        (home / sub).mkdir(exist_ok=True)
        os.chown(home / sub, uid, gid)
    return uid, gid


def _subprocess_env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), localnode.ENV_CACHE_DIR: str(cache)}
    env.pop(localnode.ENV_OPENSEARCH_URL, None)
    return env


@needs_root
def test_root_start_does_not_follow_links_planted_in_the_node_home(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links (and a hard link) to root-owned decoys in config/, logs/, data and the pid file: the next
    root start writes, chowns and opens none of the decoys, and the node still comes up."""
    _use_cache(monkeypatch, private_cache)
    decoys = private_cache / "decoys-links"
    decoys.mkdir(mode=0o755)
    home = private_cache / "node-links"
    uid, gid = _node_owned_dirs(home, "config", "logs")
    planted = {
        home / "config" / "opensearch.yml": _decoy(decoys / "yml"),
        home / "config" / "log4j2.properties": _decoy(decoys / "log4j"),
        home / "logs" / "console.log": _decoy(decoys / "console"),
        home / localnode.PID_FILE_NAME: _decoy(decoys / "pid"),
    }
    for link, target in planted.items():
        link.symlink_to(target)
        os.lchown(link, uid, gid)
    data_decoy = decoys / "data"  # home/data -> a root-owned dir
    data_decoy.mkdir(mode=0o755)
    _decoy(data_decoy / "inside")
    (home / "data").symlink_to(data_decoy)
    os.lchown(home / "data", uid, gid)
    hard = _decoy(decoys / "jvm")  # a hard link (possible where fs.protected_hardlinks=0)
    os.link(hard, home / "config" / "jvm.options")
    watched = [*planted.values(), hard, data_decoy / "inside"]
    before = {p: _snapshot(p) for p in watched}

    node = localnode.start(data_dir=home, progress=lambda _m: None)
    try:
        assert _req("GET", node.url + "/_cluster/health")["status"] in ("green", "yellow")
        pid_file = home / localnode.PID_FILE_NAME
        assert not pid_file.is_symlink() and pid_file.read_text().strip() == str(node.pid)
        for name in ("opensearch.yml", "jvm.options", "log4j2.properties"):
            st = os.lstat(home / "config" / name)
            assert stat.S_ISREG(st.st_mode) and st.st_uid == uid, name
    finally:
        node.stop()
    assert {p: _snapshot(p) for p in watched} == before
    assert sorted(p.name for p in data_decoy.iterdir()) == ["inside"]
    assert os.lstat(data_decoy).st_uid == 0 and os.lstat(decoys).st_uid == 0


@needs_root
def test_failed_root_start_pid_and_console_links_and_fifo_log(private_cache: Path) -> None:
    """A start that fails (bad heap size): the console-log and pid-file links reach no decoy, and a
    FIFO planted as the main log does not hang the log tail in the error message."""
    decoys = private_cache / "decoys-fail"
    decoys.mkdir(mode=0o755)
    home = private_cache / "node-fail"
    uid, gid = _node_owned_dirs(home, "logs")
    console, pid = _decoy(decoys / "console"), _decoy(decoys / "pid")
    for link, target in ((home / "logs" / "console.log", console), (home / localnode.PID_FILE_NAME, pid)):
        link.symlink_to(target)
        os.lchown(link, uid, gid)
    fifo = home / "logs" / f"{localnode.CLUSTER_NAME}.log"
    os.mkfifo(fifo)
    os.chown(fifo, uid, gid)
    before = {p: _snapshot(p) for p in (console, pid)}
    code = (
        "import sys; from pathlib import Path; from devtools import localnode as ln\n"
        "ln.HEAP_MAX = '1x'\n"
        "try:\n    ln.start(data_dir=Path(sys.argv[1]), wait=120, progress=lambda m: None)\n"
        "except RuntimeError as exc:\n    print(exc); sys.exit(3)\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", code, str(home)],
            env=_subprocess_env(private_cache),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the failed start hung (reading a FIFO for the log tail?)")
    assert run.returncode == 3, run.stdout + run.stderr
    assert "heap size" in run.stdout  # the console tail, read from the node's own console.log
    assert "not a regular file" in run.stdout  # the FIFO: named, not read
    assert {p: _snapshot(p) for p in (console, pid)} == before


def test_log_tail_refuses_devices_fifos_and_links_and_is_bounded(tmp_path: Path) -> None:
    """_log_tail (what root reads for error messages) on hostile node homes, in a child with a memory
    limit and a timeout: a link to /dev/zero, a FIFO, a symlinked logs dir, a 5 MiB log."""
    zero = tmp_path / "zero"
    (zero / "logs").mkdir(parents=True)
    (zero / "logs" / "console.log").symlink_to("/dev/zero")
    os.mkfifo(zero / "logs" / f"{localnode.CLUSTER_NAME}.log")
    secret = tmp_path / "root-only"
    secret.mkdir(mode=0o700)
    (secret / "console.log").write_text("SECRET-CONTENT\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "logs").symlink_to(secret)
    big = tmp_path / "big"
    (big / "logs").mkdir(parents=True)
    (big / "logs" / "console.log").write_text("".join(f"line {i}\n" for i in range(600_000)))
    code = (
        "import json, resource, sys; from pathlib import Path; from devtools import localnode as ln\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
        "print(json.dumps([ln._log_tail(Path(h)) for h in sys.argv[1:]]))\n"
    )
    try:
        run = subprocess.run(
            [sys.executable, "-c", code, str(zero), str(linked), str(big)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("_log_tail hung on a FIFO or device")
    assert run.returncode == 0, run.stderr[-2000:]
    zero_tail, linked_tail, big_tail = json.loads(run.stdout)
    assert "not a regular file" in zero_tail and "\0" not in zero_tail
    assert "SECRET-CONTENT" not in linked_tail
    assert big_tail.endswith("line 599999") and len(big_tail) < 64 * 1024


@needs_root
def test_distribution_is_root_owned_and_closed_to_the_node_user(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_cache(monkeypatch, private_cache)
    dist = localnode.distribution_home()
    for root, dirs, files in os.walk(dist):
        for name in [".", *dirs, *files]:
            st = os.lstat(os.path.join(root, name))
            assert st.st_uid == 0 and not st.st_mode & 0o022, (root, name, oct(st.st_mode))


@needs_root
def test_tampered_cached_distribution_is_detected_and_reinstalled(
    private_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A jar changed in place (same size, mtime restored) and a planted extra jar: each is detected
    and the distribution reinstalled from the pinned zip, with a message saying what was wrong."""
    _use_cache(monkeypatch, private_cache)
    dist = localnode.distribution_home()
    jar = dist / "lib" / f"opensearch-{localnode.OPENSEARCH_VERSION}.jar"
    original = jar.read_bytes()
    st = jar.stat()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    jar.write_bytes(bytes(tampered))
    os.utime(jar, ns=(st.st_atime_ns, st.st_mtime_ns))
    messages: list[str] = []
    assert localnode.ensure_installed(progress=messages.append) == dist
    assert jar.read_bytes() == original
    assert any("failed verification" in m and "lib/opensearch-" in m for m in messages), messages

    evil = dist / "lib" / "evil.jar"
    evil.write_bytes(b"PK\x05\x06" + b"\0" * 18)
    evil.chmod(0o644)
    messages.clear()
    localnode.ensure_installed(progress=messages.append)
    assert not evil.exists()
    assert any("unexpected file lib/evil.jar" in m for m in messages), messages


@needs_root
def test_unsafe_distribution_states_fail_verification(private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap checks straight on the verifier (each change is undone): writable by others, owned by the
    node user, a script swapped for a symlink, a missing manifest."""
    _use_cache(monkeypatch, private_cache)
    dist, manifest = localnode.distribution_home(), localnode.manifest_file()
    assert localnode._verify_distribution(dist, manifest) is None
    uid, gid = localnode._ensure_node_user()
    modules = dist / "modules"
    modules.chmod(0o777)
    try:
        assert "writable by other users" in (localnode._verify_distribution(dist, manifest) or "")
    finally:
        modules.chmod(0o755)
    script = dist / "bin" / "opensearch"
    os.chown(script, uid, gid)
    try:
        assert "not root" in (localnode._verify_distribution(dist, manifest) or "")
    finally:
        os.chown(script, 0, 0)
    aside = dist / "bin" / "opensearch.real"
    os.rename(script, aside)
    script.symlink_to(aside)
    try:
        assert localnode._verify_distribution(dist, manifest) is not None
    finally:
        script.unlink()
        os.rename(aside, script)
    saved = manifest.read_bytes()
    manifest.unlink()
    try:
        assert "no manifest" in (localnode._verify_distribution(dist, manifest) or "")
    finally:
        manifest.write_bytes(saved)
    assert localnode._verify_distribution(dist, manifest, refresh=True) is None


@needs_root
def test_node_home_in_a_node_writable_parent_is_refused(private_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node user owns the parent and made ``home`` a link to a root-owned dir: root must neither
    follow it (resolve + chown handed the target to the node user) nor start anything there."""
    _use_cache(monkeypatch, private_cache)
    target = private_cache / "decoys-parent"
    target.mkdir(mode=0o755)
    inside = _decoy(target / "inside")
    parent = private_cache / "node-owned-parent"
    uid, gid = _node_owned_dirs(parent)
    (parent / "home").symlink_to(target)
    os.lchown(parent / "home", uid, gid)
    before = (_snapshot(inside), os.lstat(target).st_uid)
    with pytest.raises(RuntimeError, match="root-owned directory"):
        localnode.start(data_dir=parent / "home", progress=lambda _m: None)
    assert (_snapshot(inside), os.lstat(target).st_uid) == before


def _fake_distribution_zip(path: Path) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo(f"opensearch-{localnode.OPENSEARCH_VERSION}/bin/opensearch")
        info.external_attr = 0o100755 << 16
        zf.writestr(info, "#!/bin/sh\necho not OpenSearch\n")
        for module in localnode.REQUIRED_MODULES:  # complete enough for the old code to install it
            zf.writestr(
                f"opensearch-{localnode.OPENSEARCH_VERSION}/modules/{module}/plugin-descriptor.properties",
                f"name={module}\n",
            )
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_zip_that_does_not_match_the_pin_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server (here: a local fake Maven) serves another zip with matching .sha1/.sha512 files,
    and the same zip sits in the download cache: nothing is installed."""
    cache = tmp_path / "cache"
    cache.mkdir()
    _use_cache(monkeypatch, cache)
    served = tmp_path / "maven"
    rel = localnode.DISTRIBUTION_PATH.format(v=localnode.OPENSEARCH_VERSION)
    (served / rel).parent.mkdir(parents=True)
    payload = _fake_distribution_zip(served / rel)
    (served / (rel + ".sha1")).write_text(hashlib.sha1(payload).hexdigest() + "\n")
    (served / (rel + ".sha512")).write_text(hashlib.sha512(payload).hexdigest() + "\n")
    (cache / "downloads").mkdir()
    (cache / "downloads" / ZIP_NAME).write_bytes(payload)  # a poisoned download cache
    handler = lambda *a, **kw: _Quiet(*a, directory=str(served), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(localnode, "MAVEN_BASE_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setattr(localnode, "DOWNLOAD_ATTEMPTS", 1)
    try:
        with pytest.raises(RuntimeError, match=r"SHA-512 mismatch.*pinned"):
            localnode.ensure_installed(progress=lambda _m: None)
    finally:
        server.shutdown()
    assert not localnode.distribution_home().exists()
    assert not (cache / "downloads" / ZIP_NAME).exists()
