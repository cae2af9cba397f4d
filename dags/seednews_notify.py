"""Failure notifications for the seednews DAG: an Airflow notifier that posts to an HTTP webhook.

The webhook URL comes from the environment of the process that runs the callback
(``SEEDNEWS_ALERT_WEBHOOK``), read when the failure happens, never at DAG parse time; unset means
"no alert channel", which is logged as a warning in the failed task's log. The message is built by
``pipeline.run.alerts`` (no Airflow there): DAG id, run id, task id, try, the exception and the log URL.
"""

from __future__ import annotations

import os

from airflow.sdk import BaseNotifier


class WebhookNotifier(BaseNotifier):
    """``on_failure_callback=WebhookNotifier()`` (or ``WebhookNotifier(url=...)``)."""

    template_fields = ("url",)

    def __init__(self, url: str | None = None, env_var: str = "SEEDNEWS_ALERT_WEBHOOK"):
        super().__init__()
        self.url = url
        self.env_var = env_var

    def notify(self, context) -> None:
        from pipeline.run.alerts import failure_payload, post_webhook

        url = self.url or os.environ.get(self.env_var)
        if not url:
            self.log.warning(
                "no alert channel configured (%s is unset): nobody is told about this failure", self.env_var
            )
            return
        ti = context.get("ti") or context.get("task_instance")
        dag_run = context.get("dag_run")
        dag = context.get("dag")
        exc = context.get("exception") or context.get("reason") or ""
        payload = failure_payload(
            dag_id=str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?")),
            run_id=str(getattr(dag_run, "run_id", None) or getattr(ti, "run_id", "?")),
            task_id=getattr(ti, "task_id", "?"),
            try_number=getattr(ti, "try_number", None),
            map_index=getattr(ti, "map_index", None),
            reason=f"{type(exc).__name__}: {exc}" if isinstance(exc, BaseException) else str(exc),
            log_url=getattr(ti, "log_url", None),
            logical_date=str(getattr(dag_run, "logical_date", "") or "") or None,
        )
        status = post_webhook(url, payload)
        self.log.info("failure alert delivered to the webhook (HTTP %s)", status)
