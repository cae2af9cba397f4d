"""Small helpers the live Airflow stack tests share (LocalExecutor and Celery): a free loopback port, the
REST API with the stack's JWT, and a bounded wait that shows what it last saw."""

from __future__ import annotations

import json
import socket
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(stack, path: str, method: str = "GET", body: dict | None = None, token: str | None = "default") -> dict:
    """Call the stack's REST API; ``token=None`` sends no credentials, ``"default"`` the stack's JWT."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {stack['token'] if token == 'default' else token}"
    req = urllib.request.Request(
        f"{stack['base']}{path}",
        method=method,
        headers=headers,
        data=json.dumps(body).encode() if body is not None else None,
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"{}")


def wait_until(predicate, timeout: float, what: str, step: float = 1.0):
    """``predicate()``'s first truthy value within ``timeout`` seconds; errors count as "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 -- not there yet; shown in the timeout message
            last = exc
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
