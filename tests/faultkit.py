"""Helpers for the fault-injection tests (tests/test_faults.py).

- ``write_seeds``: N minimal, valid seed files with distinct article URLs (and their document ids).
- ``BulkFaultProxy``: a loopback HTTP proxy (127.0.0.1 only) in front of an OpenSearch node that
  forwards every request, except that it can answer chosen ``_bulk`` requests for the article index
  with a request-level error (429, 503...) or refuse some of their items with per-item 429s.
- ``Cli``: the pipeline CLI as a subprocess in its own process group, output to files.
- ``refused_by_mapping`` / ``busy_for``: one file's document refused for good (a dead letter) or answered
  503 every time (``failed``), by a real node's real answers.
- small read helpers talking to OpenSearch over urllib (loopback only).

Everything here talks to 127.0.0.1 and nothing else.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pipeline.stages.normalize import document_id

ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = ("127.0.0.1", "localhost")

SEED = '---\ntitle: "T {i}"\npublishedDateTime: 2021-10-06T11:10:00Z\nwebUrl: "https://example.com/a/{tag}/{i}"\ntopics: [AI]\n---\n'


def write_seeds(folder: Path, n: int, tag: str = "x") -> list[str]:
    """Write ``n`` seed files ``s00000.txt``... into ``folder``; return their document ids (in order)."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        (folder / f"s{i:05d}.txt").write_text(SEED.format(i=i, tag=tag), encoding="utf-8")
        ids.append(document_id(f"https://example.com/a/{tag}/{i}"))
    return ids


def _check_loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"tests talk to loopback only, not {host!r}")


# ----------------------------------------------------------------------------- OpenSearch reads
def http_json(method: str, url: str, body: Any = None, timeout: float = 30) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request; HTTP errors are returned, not raised."""
    _check_loopback(url)
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw) if raw else None
        except ValueError:
            return exc.code, raw.decode(errors="replace")


def indexing_total(url: str, index: str) -> int:
    """Documents the index has accepted so far (``index_total``: no refresh needed); 0 if the index
    does not exist yet or the node does not answer."""
    try:
        status, body = http_json("GET", f"{url}/{index}/_stats/indexing", timeout=5)
    except OSError:
        return 0
    if status != 200:
        return 0
    return int(body["_all"]["primaries"]["indexing"]["index_total"])


# ----------------------------------------------------------------------------- the CLI
class Cli:
    """``python -m pipeline run SEED_DIR --skip-images --batches N --index INDEX`` against ``url``, in its
    own process group. Output goes to files (a pipe would fill up and stall the CLI while a test polls)."""

    def __init__(self, seed_dir: Path, url: str, index: str, logs: Path, batches: int = 4, *extra: str) -> None:
        _check_loopback(url)
        env = {**os.environ, "OPENSEARCH_URL": url, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
        env.pop("SEEDNEWS_INDEX", None)
        logs.mkdir(parents=True, exist_ok=True)
        stamp = f"{time.monotonic_ns()}"
        self.out_path, self.err_path = logs / f"cli-{stamp}.out", logs / f"cli-{stamp}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pipeline",
                    "run",
                    str(seed_dir),
                    "--skip-images",
                    "--batches",
                    str(batches),
                    "--index",
                    index,
                    *extra,
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started = time.monotonic()

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float) -> int:
        """The exit code; raises ``subprocess.TimeoutExpired`` (after killing it) if it runs longer."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the whole process group and reap it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(encoding="utf-8", errors="replace")


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# ----------------------------------------------------------------------------- the proxy
#: a fault for the n-th (1-based) article bulk request: None = forward untouched; an int = answer the
#: whole request with that HTTP status; "items429" = refuse every other item with a per-item 429.
Fault = int | str | None

_ERROR_TYPES = {
    429: "rejected_execution_exception",
    502: "bad_gateway",
    503: "unavailable_shards_exception",
    504: "gateway_timeout",
}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
    "accept-encoding",
}


class BulkFaultProxy:
    """A threaded loopback proxy in front of ``upstream``.

    ``fault(n)`` decides what happens to the n-th ``_bulk`` request whose actions target ``index``
    (the article alias); every other request (ledger bulk writes included) is forwarded untouched.
    ``injected`` records each injected fault as ``(n, status)``."""

    def __init__(self, upstream: str, index: str, fault: Callable[[int], Fault]) -> None:
        _check_loopback(upstream)
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 80)
        self.index = index
        self.fault = fault
        self.lock = threading.Lock()
        self.article_bulks = 0
        self.forwarded = 0
        self.injected: list[tuple[int, int]] = []
        self.times: list[float] = []  # monotonic arrival time of each article bulk request
        self.items_refused = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like a real node

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding"):
                    raise RuntimeError("chunked requests are not supported by this test proxy")
                body = self.rfile.read(length) if length else b""
                status, headers, payload = proxy._dispatch(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                length_header = str(len(payload))
                for k, v in headers:
                    if k.lower() == "x-upstream-length":  # HEAD: the length the node announced
                        length_header = v
                    else:
                        self.send_header(k, v)
                self.send_header("Content-Length", length_header)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="bulk-fault-proxy", daemon=True)

    # -- lifecycle
    def __enter__(self) -> BulkFaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    @property
    def statuses(self) -> list[int]:
        return [s for _, s in self.injected]

    # -- the work
    def _is_article_bulk(self, method: str, path: str, body: bytes) -> bool:
        if method not in ("POST", "PUT") or not urlsplit(path).path.rstrip("/").endswith("/_bulk"):
            return False
        first = body.split(b"\n", 1)[0]
        try:
            action = json.loads(first)
        except ValueError:
            return False
        meta = next(iter(action.values()), {}) if isinstance(action, dict) and action else {}
        return isinstance(meta, dict) and meta.get("_index") == self.index

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            fwd = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, path, body=body if body or method in ("POST", "PUT") else None, headers=fwd)
            resp = conn.getresponse()
            payload = resp.read()
            out = [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP]
            if method == "HEAD":
                out.append(("X-Upstream-Length", resp.getheader("Content-Length") or "0"))
            with self.lock:
                self.forwarded += 1
            return resp.status, out, payload
        finally:
            conn.close()

    def _dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        if not self._is_article_bulk(method, path, body):
            return self._forward(method, path, headers, body)
        with self.lock:
            self.article_bulks += 1
            n = self.article_bulks
            self.times.append(time.monotonic())
        fault = self.fault(n)
        if fault is None:
            return self._forward(method, path, headers, body)
        if isinstance(fault, int):
            with self.lock:
                self.injected.append((n, fault))
            error = {"type": _ERROR_TYPES.get(fault, "error"), "reason": f"injected by the test proxy (bulk #{n})"}
            payload = json.dumps({"error": {"root_cause": [error], **error}, "status": fault}).encode()
            return fault, [("Content-Type", "application/json; charset=UTF-8")], payload
        if fault == "items429":
            with self.lock:
                self.injected.append((n, 429))
            return self._refuse_items(method, path, headers, body)
        raise ValueError(f"unknown fault {fault!r}")

    def _refuse_items(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        """Refuse items 0, 2, 4... with a per-item 429 (they are NOT sent to the node); forward the rest
        and merge the node's answers back in the original order."""
        lines = [ln for ln in body.split(b"\n") if ln.strip()]
        pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines), 2)]  # index ops: action + source
        refused = {i for i in range(len(pairs)) if i % 2 == 0}
        kept = [p for i, p in enumerate(pairs) if i not in refused]
        upstream_items: list[dict[str, Any]] = []
        took, status, out_headers = 0, 200, [("Content-Type", "application/json; charset=UTF-8")]
        if kept:
            fwd_body = b"\n".join(b for pair in kept for b in pair) + b"\n"
            status, out_headers, payload = self._forward(method, path, headers, fwd_body)
            if status != 200:
                return status, out_headers, payload
            answer = json.loads(payload)
            upstream_items, took = answer["items"], answer.get("took", 0)
            out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-encoding"]
        items, it = [], iter(upstream_items)
        for i, (action, _source) in enumerate(pairs):
            if i in refused:
                op, meta = next(iter(json.loads(action).items()))
                items.append(
                    {
                        op: {
                            "_index": meta.get("_index"),
                            "_id": meta.get("_id"),
                            "status": 429,
                            "error": {
                                "type": "rejected_execution_exception",
                                "reason": "rejected execution (injected by the test proxy)",
                            },
                        }
                    }
                )
            else:
                items.append(next(it))
        with self.lock:
            self.items_refused += len(refused)
        return status, out_headers, json.dumps({"took": took, "errors": True, "items": items}).encode()


# ----------------------------------------------------------------------------- one file's document refused
def refused_by_mapping(monkeypatch, rel: str) -> None:
    """The document built from ``rel`` gets a field the strict mapping does not know (a code/mapping skew):
    OpenSearch refuses it for good, a dead letter. (Values a seed can carry are refused by validation.)"""
    from pipeline.run import seedpath

    real = seedpath.normalize

    def skewed(record):
        doc = real(record)
        if record.seed.rel == rel:
            doc.source["sentiment"] = 0.7
        return doc

    monkeypatch.setattr(seedpath, "normalize", skewed)


def busy_for(monkeypatch, rel: str) -> None:
    """The node answers 503 for the document of ``rel`` every time (a retryable failure: ``failed``)."""
    from pipeline.stores import bulk as ix
    from pipeline.types import ItemResult

    real = ix.bulk_index

    def busy(client, index, docs, **kw):
        docs = list(docs)
        yield from real(client, index, [d for d in docs if d.seed.rel != rel], **kw)
        yield from (ItemResult(d.id, False, 503, "failed", "node busy", True) for d in docs if d.seed.rel == rel)

    monkeypatch.setattr(ix, "bulk_index", busy)
