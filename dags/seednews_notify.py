"""What reaches people from the seednews DAG: failure alerts, and the run's report as the run's note.

- ``AlertNotifier``: the HTTP provider's ``HttpNotifier`` posting the failure message to the webhook of
  the Airflow connection ``seednews_alerts`` (type ``http``, its ``host`` the whole incoming-webhook URL).
  The connection is read when the failure happens, never at DAG parse time; a missing one means "no alert
  channel", which is logged as a warning in the failed task's log. The message is built by
  ``pipeline.run.alerts`` (no Airflow there): DAG id, run id, task id, try, the exception and the log URL.
  Delivery retries connection errors, timeouts and 5xx answers, and ends within ``alerts.WEBHOOK_DEADLINE``
  whatever the server does (a server that trickles a byte now and then included).
- ``post_run_note``: the DAG run's note, which the UI shows as Markdown on the run's page. The Task SDK
  cannot write a note (its execution API reads the note only), so this goes through Airflow's REST API
  with the user of the connection ``seednews_airflow_api`` (type ``http``: the api-server's URL, and a
  login allowed to edit runs). A missing connection or a refused call is a log line, never a failed run.
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Connection

ALERTS_CONN_ID = "seednews_alerts"
API_CONN_ID = "seednews_airflow_api"
MIN_MASKED = 8  # a webhook path shorter than this is no secret ("/alerts"), and masking it would hide words
API_TIMEOUT = (5.0, 30.0)  # connect, read (seconds) for the note's two REST calls

log = logging.getLogger(__name__)


def _connection(conn_id: str) -> Connection | None:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def _mask_webhook_secret(url: str) -> None:
    """Masks the path and query of the webhook URL in the task log (an incoming webhook's secret is
    there; the HTTP hook's retry warnings name the path)."""
    from airflow.sdk.log import mask_secret

    parts = urllib.parse.urlsplit(url)
    secret = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(secret.strip("/")) >= MIN_MASKED:
        mask_secret(secret)


def _payload(context: Mapping[str, Any]) -> dict[str, Any]:
    """The failure message for this callback's context (``pipeline.run.alerts.failure_payload``)."""
    from pipeline.run.alerts import failure_payload

    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    dag = context.get("dag")
    exc = context.get("exception") or context.get("reason") or ""
    return failure_payload(
        dag_id=str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")),
        run_id=str(getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?")),
        task_id=getattr(ti, "task_id", "?"),
        try_number=getattr(ti, "try_number", None),
        map_index=getattr(ti, "map_index", None),
        reason=f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc),
        log_url=getattr(ti, "log_url", None),
        logical_date=str(getattr(dag_run, "logical_date", "") or "") or None,
    )


class AlertNotifier(BaseNotifier):
    """``on_failure_callback=AlertNotifier()``: the failure message as JSON to the ``seednews_alerts``
    webhook (``{"text": ..., "dag_id": ..., ...}``: Slack-, Teams- and Mattermost-style incoming webhooks
    read ``text``), sent by the HTTP provider's ``HttpNotifier`` (``deliver``). The provider is imported
    when a failure happens: it loads aiohttp, which the DAG file does not need when Airflow parses it."""

    template_fields = ("http_conn_id",)

    def __init__(self, *, http_conn_id: str = ALERTS_CONN_ID, deadline: float | None = None):
        super().__init__()
        self.http_conn_id = http_conn_id
        self.deadline = deadline  # None: pipeline.run.alerts.WEBHOOK_DEADLINE (not imported at parse time)

    def notify(self, context) -> None:
        conn = _connection(self.http_conn_id)
        if conn is None:
            self.log.warning(
                "no alert channel configured (no Airflow connection %r): nobody is told about this failure",
                self.http_conn_id,
            )
            return
        _mask_webhook_secret(conn.host or "")
        from pipeline.run.alerts import WEBHOOK_DEADLINE

        deadline = WEBHOOK_DEADLINE if self.deadline is None else self.deadline
        status = deliver(self.http_conn_id, _payload(context), deadline=deadline)
        self.log.info("failure alert delivered to the webhook (HTTP %s)", status)


def deliver(conn_id: str, payload: Mapping[str, Any], *, deadline: float) -> int:
    """POSTs ``payload`` as JSON to the connection's URL through ``HttpNotifier``'s hook; returns the HTTP
    status. Retries connection errors, timeouts and 5xx (``alerts.WEBHOOK_ATTEMPTS`` attempts, 1 s, 2 s...
    apart, none started past the deadline); raises ``requests.HTTPError`` or ``ConnectionError`` when every
    attempt failed, and ``TimeoutError`` when ``deadline`` passes first (none of them names the URL:
    webhook URLs carry their secret):
    the request then runs on in a daemon thread, and the failed task goes on."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["status"] = _post_with_retries(conn_id, payload, deadline)
        except Exception as exc:  # noqa: BLE001 -- handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name="seednews-alert", daemon=True)
    worker.start()
    worker.join(deadline)
    if worker.is_alive():
        raise TimeoutError(f"webhook not delivered within the {deadline:g} s deadline")
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["status"])


def _post_with_retries(conn_id: str, payload: Mapping[str, Any], deadline: float) -> int:
    import requests
    import tenacity
    from airflow.providers.http.notifications.http import HttpNotifier

    from pipeline.run import alerts

    notifier = HttpNotifier(
        http_conn_id=conn_id,
        method="POST",
        json=dict(payload),
        headers={"User-Agent": "seednews-alerts"},
        extra_options={"timeout": alerts.WEBHOOK_TIMEOUT, "check_response": False},  # 5xx: retried below
    )
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(alerts.WEBHOOK_ATTEMPTS) | tenacity.stop_before_delay(deadline),
        wait=tenacity.wait_exponential(multiplier=1, min=1),
        retry=tenacity.retry_if_exception_type((requests.ConnectionError, requests.Timeout))
        | tenacity.retry_if_result(lambda resp: resp.status_code >= 500),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
        reraise=True,
    )
    try:
        response = retrying(
            notifier.hook.run,
            endpoint=notifier.endpoint,
            json=notifier.json,
            headers=notifier.headers,
            extra_options=notifier.extra_options,
        )
    except requests.RequestException as exc:  # its message names the URL, which carries the webhook's secret
        raise ConnectionError(f"webhook not reached: {type(exc).__name__}") from None
    if response.status_code >= 400:  # requests' own message names the URL too
        raise requests.HTTPError(f"webhook answered HTTP {response.status_code} {response.reason}", response=response)
    return response.status_code


def post_run_note(dag_id: str, run_id: str, note: str, conn_id: str = API_CONN_ID) -> bool:
    """Sets the DAG run's note (Markdown, at most 1,000 characters: Airflow's limit) through the REST API:
    a token from ``/auth/token`` for the connection's login, then ``PATCH`` of the run. True when set;
    False (and a log line saying why) when the connection is missing or the API refused."""
    if _connection(conn_id) is None:
        log.info("the report is not the run's note: no Airflow connection %r (api-server URL and login)", conn_id)
        return False
    from airflow.providers.http.hooks.http import HttpHook

    hook = HttpHook(method="PATCH", http_conn_id=conn_id)
    conn = hook.get_connection(conn_id)
    session = hook.get_conn()  # the connection's URL and its extras (verify, proxies...)
    session.auth = None  # the REST API takes a token, not basic auth
    try:
        token = session.post(
            hook.url_from_endpoint("auth/token"),
            json={"username": conn.login, "password": conn.password},
            timeout=API_TIMEOUT,
        )
        token.raise_for_status()
        path = f"api/v2/dags/{urllib.parse.quote(dag_id, safe='')}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
        resp = session.patch(
            hook.url_from_endpoint(path),
            params={"update_mask": "note"},
            json={"note": note},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=API_TIMEOUT,
        )
        resp.raise_for_status()
    except Exception as exc:  # noqa: BLE001 -- the report is still in the log and the XCom
        log.warning("the report could not be made the run's note (connection %r): %s", conn_id, exc)
        return False
    log.info("the report is the run's note (the run's page in the UI shows it)")
    return True
