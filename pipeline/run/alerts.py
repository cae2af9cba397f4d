"""Failure alerts and the quarantine threshold: pure logic, no Airflow import (the DAG's notifier in
``dags/seednews_notify.py`` calls these with values taken from the task context).

- ``failure_payload`` builds the message a person reads: which DAG, which run, which task, why, and
  where the log is.
- ``post_webhook`` delivers it as JSON (``{"text": ..., "dag_id": ..., ...}``: Slack- and Teams-style
  incoming webhooks read ``text``) with a short timeout and a few retries.
- ``quarantine_breach`` says when too much of a run was set aside for the run to count as good.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

ENV_WEBHOOK = "SEEDNEWS_ALERT_WEBHOOK"
ENV_MAX_QUARANTINED_PCT = "SEEDNEWS_MAX_QUARANTINED_PCT"
DEFAULT_MAX_QUARANTINED_PCT = 20.0
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_ATTEMPTS = 3


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


def post_webhook(
    url: str,
    payload: Mapping[str, Any],
    *,
    timeout: float = WEBHOOK_TIMEOUT,
    attempts: int = WEBHOOK_ATTEMPTS,
    sleep=time.sleep,
) -> int:
    """POST ``payload`` as JSON; returns the HTTP status. Retries connection errors and 5xx; raises the
    last error when every attempt failed (the caller logs it: an alert that cannot be sent must be
    visible in the task log, not swallowed)."""
    body = json.dumps(payload, ensure_ascii=False, default=str).encode()
    last: Exception | None = None
    for attempt in range(attempts):
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "seednews-alerts"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                raise
            last = exc
        except OSError as exc:
            last = exc
        if attempt + 1 < attempts:
            sleep(2**attempt)
    assert last is not None
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
