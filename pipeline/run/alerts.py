"""Failure alerts and the quarantine threshold: pure logic, no Airflow import (the DAG's notifier in
``dags/seednews_notify.py`` calls these with values taken from the task context).

- ``failure_payload`` builds the message a person reads: which DAG, which run, which task, why, and
  where the log is.
- ``post_webhook`` delivers it as JSON (``{"text": ..., "dag_id": ..., ...}``: Slack- and Teams-style
  incoming webhooks read ``text``) with a short timeout and a few retries, all within one deadline
  (``WEBHOOK_DEADLINE``): a socket timeout bounds each read, not a server that trickles a byte now and
  then, so a timer shuts the connection down when the deadline comes and the failed task goes on.
- ``quarantine_breach`` says when too much of a run was set aside for the run to count as good.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

ENV_WEBHOOK = "SEEDNEWS_ALERT_WEBHOOK"
ENV_MAX_QUARANTINED_PCT = "SEEDNEWS_MAX_QUARANTINED_PCT"
DEFAULT_MAX_QUARANTINED_PCT = 20.0
WEBHOOK_TIMEOUT = 10.0
"""Per socket operation (connect, each read)."""
WEBHOOK_ATTEMPTS = 3
WEBHOOK_DEADLINE = 30.0
"""The whole delivery: every attempt's connect, send and read, and the pauses between attempts."""


def failure_payload(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int | None = None,
    map_index: int | None = None,
    reason: str = "",
    log_url: str | None = None,
    logical_date: str | None = None,
) -> dict[str, Any]:
    task = task_id if map_index in (None, -1) else f"{task_id}[{map_index}]"
    lines = [
        f"seednews: task {task} failed in DAG {dag_id}, run {run_id}" + (f" (try {try_number})" if try_number else "")
    ]
    if reason:
        lines.append(f"reason: {_short(reason)}")
    if log_url:
        lines.append(f"log: {log_url}")
    return {
        "text": "\n".join(lines),
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": map_index,
        "try_number": try_number,
        "reason": _short(reason),
        "log_url": log_url,
        "logical_date": logical_date,
    }


class _Watched:
    """The connections one delivery opens, so that a timer can shut them down at the deadline (urllib's
    own handlers, so proxies and TLS behave as urllib's; only the connection classes are wrapped)."""

    def __init__(self) -> None:
        self.conns: list[http.client.HTTPConnection] = []
        self.expired = False
        self.lock = threading.Lock()

    def factory(self, cls: type[http.client.HTTPConnection]) -> Callable[..., http.client.HTTPConnection]:
        def make(host: str, **kw: Any) -> http.client.HTTPConnection:
            conn = cls(host, **kw)
            connect = conn.connect

            def connect_unless_expired() -> None:
                connect()  # its timeout is at most the time left
                with self.lock:  # the timer may have fired while this socket was being made
                    if not self.expired:
                        self.conns.append(conn)
                        return
                conn.close()
                raise TimeoutError("webhook deadline reached while connecting")

            conn.connect = connect_unless_expired  # type: ignore[method-assign]
            return conn

        return make

    def expire(self) -> None:
        with self.lock:
            self.expired = True
            socks = [c.sock for c in self.conns if c.sock is not None]
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv/send at once
            except OSError:
                pass


def _opener(watched: _Watched) -> urllib.request.OpenerDirector:
    class Http(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched.factory(http.client.HTTPConnection), req)

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(
                watched.factory(http.client.HTTPSConnection),
                req,
                context=self._context,  # type: ignore[attr-defined]
            )

    return urllib.request.build_opener(Http(), Https())


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = WEBHOOK_TIMEOUT,
    attempts: int = WEBHOOK_ATTEMPTS,
    deadline: float = WEBHOOK_DEADLINE,
    sleep=time.sleep,
) -> int:
    """POST ``payload`` as JSON; returns the HTTP status. Retries connection errors and 5xx; raises the
    last error when every attempt failed (the caller logs it: an alert that cannot be sent must be
    visible in the task log, not swallowed). Returns or raises within ``deadline`` seconds (plus a few
    milliseconds), whatever the server does: then it raises ``TimeoutError`` (whose message leaves the
    URL out: incoming-webhook URLs carry their secret). A pause between attempts that would end past
    the deadline is not taken; the last error is raised instead."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    end = time.monotonic() + deadline
    watched = _Watched()
    timer = threading.Timer(deadline, watched.expire)
    timer.daemon = True
    timer.start()
    opener = _opener(watched)
    last: Exception | None = None
    tries = 0
    try:
        for attempt in range(attempts):
            left = end - time.monotonic()
            if left <= 0 or watched.expired:
                break
            req = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={"Content-Type": "application/json", "User-Agent": "seednews-alerts"},
            )
            tries += 1
            try:
                with opener.open(req, timeout=min(timeout, left)) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise
                last = exc
            except (OSError, http.client.HTTPException) as exc:
                last = exc
            pause = 2**attempt
            if attempt + 1 < attempts:
                if pause >= end - time.monotonic():
                    break
                sleep(pause)
    finally:
        timer.cancel()
    if watched.expired or last is None:
        raise TimeoutError(
            f"webhook not delivered within the {deadline:g} s deadline ({tries} attempt{'s' * (tries != 1)})"
        ) from last
    raise last


def max_quarantined_pct(env: Mapping[str, str] | None = None) -> float:
    raw = (os.environ if env is None else env).get(ENV_MAX_QUARANTINED_PCT)
    return float(raw) if raw not in (None, "") else DEFAULT_MAX_QUARANTINED_PCT


def quarantine_breach(files_seen: int, quarantined: int, max_pct: float) -> str | None:
    """A message when more than ``max_pct`` percent of the files seen were quarantined, else None."""
    if files_seen <= 0 or quarantined <= 0:
        return None
    pct = 100.0 * quarantined / files_seen
    if pct <= max_pct:
        return None
    return (
        f"{quarantined} of {files_seen} seed files quarantined ({pct:.0f}%), more than the allowed "
        f"{max_pct:g}%: the run is failed so that someone looks at the input"
    )


def _short(text: str, limit: int = 1000) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
