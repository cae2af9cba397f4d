"""Failure alerts and the quarantine threshold: pure logic, no Airflow import (the DAG's notifier in
``dags/seednews_notify.py``, the HTTP provider's ``HttpNotifier``, calls these with values taken from the
task context, and delivers with the policy below).

- ``failure_payload`` builds the message a person reads: which DAG, which run, which task, why, and
  where the log is; it is sent as JSON (``{"text": ..., "dag_id": ..., ...}``: Slack- and Teams-style
  incoming webhooks read ``text``).
- The delivery policy: ``WEBHOOK_TIMEOUT`` per socket operation, ``WEBHOOK_ATTEMPTS`` attempts, all within
  ``WEBHOOK_DEADLINE`` (a socket timeout bounds each read, not a server that trickles a byte now and then).
- ``quarantine_breach`` says when too much of a run was set aside for the run to count as good.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

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
