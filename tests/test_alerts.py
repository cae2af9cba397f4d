"""Failure messages, webhook delivery (to a real loopback HTTP server) and the quarantine threshold."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.run import alerts
from pipeline.run import artifact as runartifact


class _Sink(BaseHTTPRequestHandler):
    received: list = []
    status = 200

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def sink():
    handler = type("Sink", (_Sink,), {"received": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_payload_names_dag_run_and_task():
    p = alerts.failure_payload(
        dag_id="seednews_index",
        run_id="manual__1",
        task_id="process_batch",
        map_index=2,
        try_number=3,
        reason="ConnectionError: boom",
        log_url="http://af/log",
    )
    assert (
        p["text"].splitlines()[0]
        == "seednews: task process_batch[2] failed in DAG seednews_index, run manual__1 (try 3)"
    )
    assert "reason: ConnectionError: boom" in p["text"] and "log: http://af/log" in p["text"]


def test_webhook_delivery_and_retry(sink):
    handler, url = sink
    assert alerts.post_webhook(url, {"text": "hi"}) == 200
    assert handler.received == [{"text": "hi"}]
    handler.status = 503
    with pytest.raises(urllib.error.HTTPError, match="503"):
        alerts.post_webhook(url, {"text": "again"}, attempts=2, sleep=lambda s: None)
    assert len(handler.received) == 3  # retried the 5xx once


class _Trickle(BaseHTTPRequestHandler):
    """Reads the alert, then answers one byte every ``interval`` seconds: every socket read is quick."""

    interval = 5.0
    stop: threading.Event

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                if type(self).stop.wait(type(self).interval):
                    return
        except OSError:
            pass

    def log_message(self, *args):
        pass


@pytest.mark.parametrize(
    ("interval", "timeout", "deadline"),
    [
        (5.0, alerts.WEBHOOK_TIMEOUT, 3.0),  # seen: a byte every 5 s held the failed task over 120 s
        (0.2, 1.0, 1.5),  # each byte well inside the socket timeout: only the deadline can end it
    ],
)
def test_webhook_gives_up_at_its_deadline_on_a_trickling_server(interval, timeout, deadline):
    handler = type("Trickle", (_Trickle,), {"interval": interval, "stop": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook/SECRET"
    try:
        t = time.monotonic()
        with pytest.raises(TimeoutError) as ei:
            alerts.post_webhook(url, {"text": "hi"}, timeout=timeout, deadline=deadline)
        took = time.monotonic() - t
    finally:
        handler.stop.set()
        server.shutdown()
        server.server_close()
    assert str(ei.value) == f"webhook not delivered within the {deadline:g} s deadline (1 attempt)"
    assert deadline - 0.1 < took < deadline + 2.0  # slack for a loaded machine; it used to take over 120 s


def test_webhook_pause_that_would_pass_the_deadline_is_not_taken(sink):
    handler, url = sink
    handler.status = 503
    t = time.monotonic()
    with pytest.raises(urllib.error.HTTPError, match="503"):
        alerts.post_webhook(url, {"text": "x"}, attempts=3, deadline=1.5)  # pauses 1 s, then 2 s: not taken
    assert len(handler.received) == 2 and 0.9 < time.monotonic() - t < 1.5


def test_quarantine_threshold():
    assert alerts.quarantine_breach(10, 2, 20) is None  # exactly 20%: allowed
    assert "3 of 10 seed files quarantined (30%)" in alerts.quarantine_breach(10, 3, 20)
    assert alerts.quarantine_breach(0, 0, 20) is None
    assert (
        alerts.max_quarantined_pct({}) == 20 and alerts.max_quarantined_pct({"SEEDNEWS_MAX_QUARANTINED_PCT": "5"}) == 5
    )


def test_markdown_report(tmp_path):
    text = runartifact.render_markdown(
        dag_id="d",
        run_id="manual__2026-01-01T00:00:00+00:00",
        target="idx",
        counts={"indexed": 2, "quarantined": 1},
        files_seen=3,
        facets={"topics": [("AI", 2), ("a|b", 1)], "provider.name": []},
    )
    assert "| indexed | 2 |" in text and "| AI | 2 |" in text and "a\\|b" in text and "| (none) | 0 |" in text
    path = runartifact.write(tmp_path, "manual__2026-01-01T00:00:00+00:00", text)
    assert path.name == "seednews-manual__2026-01-01T00_00_00_00_00.md" and path.read_text() == text
