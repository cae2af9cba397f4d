"""Failure messages, their delivery by the notifier (to a real loopback HTTP server), the quarantine
threshold, and the Markdown report and its run note."""

from __future__ import annotations

import json
import threading
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


# The notifier runs in a process of its own (Airflow imported there, not in the test process), with the
# alerts' connection from the environment (no Airflow database), against a server this test starts.
NOTIFY = """
import json, logging, sys, time, types
sys.path.insert(0, sys.argv[1])
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
from seednews_notify import AlertNotifier, deliver
case, deadline = sys.argv[2], float(sys.argv[3])
ti = types.SimpleNamespace(dag_id="seednews_index", run_id="manual__1", task_id="finalize", try_number=2,
                           map_index=-1, log_url="http://af/log")
t = time.monotonic()
try:
    if case == "note":
        from seednews_notify import post_run_note
        out = {"set": post_run_note("seednews_index", "manual__2026-01-01T00:00:00+00:00", "# report\\n| a | 1 |")}
    elif case == "notify":
        AlertNotifier(deadline=deadline).notify({"ti": ti, "exception": ValueError("3 of 3 quarantined")})
        out = {"ok": True}
    else:
        out = {"status": deliver("seednews_alerts", {"text": "hi"}, deadline=deadline)}
except Exception as exc:
    out = {"error": type(exc).__name__, "message": str(exc)}
out["took"] = time.monotonic() - t
from airflow.sdk.log import redact  # what the task log's secrets masker makes of a line naming the URL
out["redacted"] = redact("Max retries exceeded with url: /services/T000/B000/SECRETPATH")
print("RESULT " + json.dumps(out))
"""


def _notify(case: str, url: str | None, tmp_path, deadline: float = 30.0, api: dict | None = None) -> tuple[dict, str]:
    import os
    import subprocess
    import sys

    from tests.conftest import DAGS

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp_path), AIRFLOW__CORE__LOAD_EXAMPLES="False", NO_PROXY="127.0.0.1")
    if url:
        env["AIRFLOW_CONN_SEEDNEWS_ALERTS"] = json.dumps({"conn_type": "http", "host": url})
    if api:
        env["AIRFLOW_CONN_SEEDNEWS_AIRFLOW_API"] = json.dumps(api)
    out = subprocess.run(
        [sys.executable, "-c", NOTIFY, str(DAGS), case, str(deadline)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, (out.stdout + out.stderr)[-3000:]
    return json.loads(lines[-1][len("RESULT ") :]), out.stdout + out.stderr


def test_the_notifier_posts_the_failure_message_to_the_connections_url(sink, tmp_path):
    handler, url = sink
    result, log = _notify("notify", url, tmp_path)
    assert result["ok"], log[-3000:]
    [msg] = handler.received
    assert msg["text"].splitlines()[0] == "seednews: task finalize failed in DAG seednews_index, run manual__1 (try 2)"
    assert msg["reason"] == "ValueError: 3 of 3 quarantined" and msg["log_url"] == "http://af/log"
    assert "failure alert delivered to the webhook (HTTP 200)" in log


def test_without_the_alerts_connection_the_failure_is_a_warning_not_an_error(sink, tmp_path):
    handler, _ = sink
    result, log = _notify("notify", None, tmp_path)
    assert result["ok"], log[-3000:]
    [line] = [
        x for x in log.splitlines() if "no alert channel configured (no Airflow connection 'seednews_alerts')" in x
    ]
    assert "warning" in line.lower(), line
    assert handler.received == []


def test_webhook_5xx_is_retried_then_raised(sink, tmp_path):
    handler, url = sink
    handler.status = 503
    result, log = _notify("deliver", url, tmp_path)
    assert result["error"] == "HTTPError", log[-3000:]
    assert result["message"] == "webhook answered HTTP 503 Service Unavailable"  # no URL: it carries the secret
    assert len(handler.received) == alerts.WEBHOOK_ATTEMPTS  # paused 1 s, then 2 s
    assert 2.5 < result["took"] < 10


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


def test_webhook_gives_up_at_its_deadline_on_a_trickling_server(tmp_path):
    """Seen: a byte every 5 s held the failed task over 120 s (each read is well inside the timeout)."""
    handler = type("Trickle", (_Trickle,), {"interval": 0.5, "stop": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook/SECRET"
    try:
        result, log = _notify("deliver", url, tmp_path, deadline=2.0)
    finally:
        handler.stop.set()
        server.shutdown()
        server.server_close()
    assert result["error"] == "TimeoutError", log[-3000:]
    assert result["message"] == "webhook not delivered within the 2 s deadline"  # no URL: it carries the secret
    assert 1.9 < result["took"] < 4.0  # slack for a loaded machine


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


def test_the_run_note_is_the_report_cut_to_airflows_1000_characters():
    facets = {"topics": [(f"topic {i}", i) for i in range(25)], "provider.name": [("P", 3)]}
    short = runartifact.render_markdown(dag_id="d", run_id="r", target="t", counts={"indexed": 2}, files_seen=2)
    assert runartifact.run_note(short) == short  # fits: whole
    text = runartifact.render_markdown(
        dag_id="d", run_id="r", target="t", counts={"indexed": 2}, files_seen=2, facets=facets, summary="x\n" * 300
    )
    note = runartifact.run_note(text)
    assert len(text) > runartifact.NOTE_LIMIT >= len(note)
    assert "## Run summary" not in note and "| topic 24 | 24 |" in note and "| P | 3 |" in note
    assert note.endswith(runartifact.NOTE_TAIL)
    tiny = runartifact.run_note(text, limit=400)  # whole lines only, then where the rest is
    assert len(tiny) <= 400 and tiny.endswith(runartifact.NOTE_TAIL) and "| indexed | 2 |" in tiny
    assert all(line in text.splitlines() for line in tiny[: -len(runartifact.NOTE_TAIL)].splitlines())


class _Api(BaseHTTPRequestHandler):
    """Airflow's REST API as the note needs it: a token for the right login, then PATCH of the run."""

    seen: list = []
    patch_status = 200

    def _body(self) -> dict:
        return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = self._body()
        ok = self.path == "/auth/token" and body == {"username": "notes", "password": 'p"w\\#@%'}
        self._answer(201 if ok else 401, {"access_token": "JWT"} if ok else {"detail": "no"})

    def do_PATCH(self):
        type(self).seen.append((self.path, self.headers["Authorization"], self._body()))
        self._answer(type(self).patch_status, {"note": "x"})

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("patch_status", [200, 403])
def test_the_report_becomes_the_runs_note_through_the_rest_api(tmp_path, patch_status):
    handler = type("Api", (_Api,), {"seen": [], "patch_status": patch_status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api = {
        "conn_type": "http",
        "host": f"http://127.0.0.1:{server.server_address[1]}",
        "login": "notes",
        "password": 'p"w\\#@%',
    }
    try:
        result, log = _notify("note", None, tmp_path, api=api)
    finally:
        server.shutdown()
    assert result["set"] is (patch_status == 200), log[-3000:]
    [(path, auth, body)] = handler.seen
    assert path == "/api/v2/dags/seednews_index/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00?update_mask=note"
    assert auth == "Bearer JWT" and body == {"note": "# report\n| a | 1 |"}
    if patch_status != 200:  # a refused note is a warning; the run goes on
        assert "the report could not be made the run's note" in log and 'p"w' not in log


def test_without_the_api_connection_the_note_is_skipped_with_a_reason(tmp_path):
    result, log = _notify("note", None, tmp_path)
    assert result["set"] is False
    assert "the report is not the run's note: no Airflow connection 'seednews_airflow_api'" in log


def test_an_unreachable_webhook_fails_without_showing_its_secret_path(tmp_path):
    from tests.stackkit import free_port

    url = f"http://127.0.0.1:{free_port()}/services/T000/B000/SECRETPATH"  # nothing listens there
    result, log = _notify("notify", url, tmp_path, deadline=20.0)
    assert result["error"] == "ConnectionError" and result["message"] == "webhook not reached: ConnectionError", log
    # the HTTP hook's own retry warnings name the path: the notifier has it masked in the task log
    assert result["redacted"] == "Max retries exceeded with url: ***", result
