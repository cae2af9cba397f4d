"""pipeline.localnode: a REAL single-node OpenSearch started without Docker.

One node is started for this module (independently of the session node in
conftest, because one test stops it). ``OPENSEARCH_URL`` is removed for the
module so that the local start is what gets tested.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
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

from pipeline import localnode

ROOT = Path(__file__).resolve().parent.parent


def _req(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
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
    modules = {m["name"] for n in _req("GET", node.url + "/_nodes/plugins")["nodes"].values()
               for m in n["modules"]}
    assert {"analysis-common", "mapper-extras"} <= modules


def test_english_analyzer_and_folding_normalizer(node: localnode.LocalNode) -> None:
    index = node.url + "/localnode-test"
    _req("PUT", index, {
        "settings": {"number_of_replicas": 0, "analysis": {"normalizer": {
            "folded": {"type": "custom", "filter": ["lowercase", "asciifolding"]}}}},
        "mappings": {"properties": {
            "title": {"type": "text", "analyzer": "english"},
            "tag": {"type": "keyword", "normalizer": "folded"},
            "score": {"type": "scaled_float", "scaling_factor": 100},  # mapper-extras
        }},
    })
    _req("PUT", index + "/_doc/1?refresh=true",
         {"title": "Running the ETL pipelines", "tag": "Économie", "score": 1.5})
    hits = _req("POST", index + "/_search", {"query": {"bool": {"must": [
        {"match": {"title": "pipeline runs"}},  # stemmed by the english analyzer
        {"term": {"tag": "ECONOMIE"}},           # lowercased + folded by the normalizer
    ]}}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["1"]
    _req("DELETE", index)


def test_opensearch_url_short_circuits(node: localnode.LocalNode,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
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


def test_busy_port_is_refused(node: localnode.LocalNode,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)
    busy = int(node.url.rsplit(":", 1)[1])  # the module node already holds this port
    with pytest.raises(RuntimeError, match="already in use"):
        localnode.start(port=busy, progress=lambda _msg: None)


def test_failed_start_reports_the_log_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)
    monkeypatch.setattr(localnode, "HEAP_MAX", "1x")  # the JVM refuses to start
    with pytest.raises(RuntimeError, match="(?s)exited with code.*Log tail.*heap size"):
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
            [sys.executable, "-m", "pipeline.localnode", *args, "--state-file", str(state)],
            capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)

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


def test_download_verifies_sha1_and_is_atomic(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
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
