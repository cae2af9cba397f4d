"""Failure messages, webhook delivery (to a real loopback HTTP server) and the quarantine threshold."""

from __future__ import annotations

import json
import threading
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
