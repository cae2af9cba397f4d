"""seednews_index: seed files -> clean, image-checked, faceted documents in OpenSearch.

Thin wiring over the ``pipeline`` library (which never imports Airflow). Shape:

    prepare_index -> plan (a few batches of seed files) -> process_batch (mapped, one per batch) -> finalize

- Nightly at 02:00 UTC; triggerable by hand with a form (the Params below).
- OpenSearch comes from the Airflow connection ``seednews_opensearch`` (e.g. env
  ``AIRFLOW_CONN_SEEDNEWS_OPENSEARCH='{"conn_type": "http", "host": "127.0.0.1", "port": 9200}'``),
  else from env ``OPENSEARCH_URL`` / ``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD``. Never from code.
- Only small values cross XCom: an index name, batches of planned seed files (path, size, content
  hash, ingest sequence: the worker re-checks the same file, it does not re-derive it), capped reports.
- Every task is idempotent (explicit ids + external versions), so retries and re-runs are safe;
  ``max_active_runs=1`` keeps a manual run from overlapping the nightly one.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import Param, dag, task

DAG_ID = "seednews_index"
CONN_ID = "seednews_opensearch"
MAX_XCOM_ITEMS = 200  # per report list passed between tasks; the ledger index has every file
DEFAULT_SEED_DIR = os.environ.get("SEEDNEWS_SEED_DIR", str(Path(__file__).resolve().parent.parent / "examples" / "seeds"))

PARAMS = {
    "seed_dir": Param(DEFAULT_SEED_DIR, type="string", title="Seed folder",
                      description="Folder to read seed files from (default: the nightly folder)."),
    "full_rebuild": Param(False, type="boolean", title="Full rebuild",
                          description="Write a fresh index and switch the alias to it once it validates."),
    "skip_images": Param(False, type="boolean", title="Skip image checks",
                         description="Index without checking image URLs (image_health = unchecked)."),
    "dry_run": Param(False, type="boolean", title="Dry run",
                     description="Parse and normalize only; write nothing to OpenSearch."),
    "replay_dead_letters": Param(False, type="boolean", title="Replay dead letters",
                                 description="Send documents OpenSearch refused earlier again (after fixing the cause)."),
    "allow_mass_delete": Param(False, type="boolean", title="Allow mass delete",
                               description="Many seed files are gone on purpose: remove their articles anyway "
                                           "(otherwise the run stops when more than 20% of the folder vanished)."),
    "max_batches": Param(4, type="integer", minimum=1, maximum=64, title="Batches",
                         description="Split the folder into at most this many parallel batches."),
    "index": Param("", type="string", title="Index alias",
                   description="Alias to write (empty: SEEDNEWS_INDEX or seednews-articles)."),
}


def _settings(params):
    """Settings from the Airflow connection if it exists, else from the environment (inside tasks only)."""
    from pipeline.config import Settings

    overrides = {"index_base": params["index"]} if params.get("index") else {}
    try:
        from airflow.sdk import Connection

        conn = Connection.get(CONN_ID)
    except Exception:  # no such connection: fall back to the environment
        return Settings.from_env(**overrides)
    extra = conn.extra_dejson or {}
    scheme = conn.schema if conn.schema in ("http", "https") else ("https" if extra.get("use_ssl") else "http")
    url = f"{scheme}://{conn.host}:{conn.port or 9200}"
    return Settings.from_env(
        opensearch_url=url,
        username=conn.login or None,
        password=conn.password or None,
        verify_certs=bool(extra.get("verify_certs", True)),
        **overrides,
    )


def _options(params, run_id):
    from pipeline.flow import RunOptions

    return RunOptions(
        run_id=run_id,
        replay_dead_letters=bool(params["replay_dead_letters"]),
        seed_dir=params["seed_dir"],
        allow_mass_delete=bool(params.get("allow_mass_delete", False)),
        full_rebuild=bool(params["full_rebuild"]),
        dry_run=bool(params["dry_run"]),
        check_images=not params["skip_images"],
        max_batches=int(params["max_batches"]),
    )


def _client(settings):
    from pipeline.config import make_client

    return make_client(settings)


@dag(
    dag_id=DAG_ID,
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    params=PARAMS,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True},
    tags=["seednews"],
    doc_md=__doc__,
)
def seednews_index():
    @task
    def prepare_index(params=None) -> str:
        """Template + alias (incremental) or a brand-new versioned index (full rebuild)."""
        from pipeline.flow import prepare

        settings = _settings(params)
        return prepare(None if params["dry_run"] else _client(settings), settings, bool(params["full_rebuild"]), bool(params["dry_run"]))

    @task
    def plan(target: str, params=None, run_id=None) -> list[dict]:
        """Discover the folder and compare it with the ledger; return a few batches of planned seed
        files, not one task per file. Refusals, unchanged and deleted files are settled here; their
        report rides along with the first batch. A folder that looks unmounted fails the run here,
        before anything is deleted (no retries: retrying won't help)."""
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.flow import VanishedFolderError
        from pipeline.flow import plan as make_plan

        settings, options = _settings(params), _options(params, run_id)
        try:
            p = make_plan(options, None if options.dry_run else _client(settings), settings, target)
        except VanishedFolderError as exc:
            raise AirflowFailException(str(exc)) from exc
        print(f"{p.report.files_seen + p.todo} seed files: {p.report.unchanged} unchanged, {p.todo} to process "
              f"in {len(p.batches)} batches")
        print(p.report.render())
        batches = [{"batch": b.to_dict(), "report": None} for b in p.batches]
        if not batches:
            batches = [{"batch": {"root": p.root, "real_root": p.real_root, "files": []}, "report": None}]
        batches[0]["report"] = p.report.to_dict(max_items=MAX_XCOM_ITEMS)
        return batches

    @task(execution_timeout=timedelta(hours=2), max_active_tis_per_dagrun=4)
    def process_batch(batch: dict, target: str, params=None, run_id=None) -> dict:
        """read -> parse -> normalize -> check images -> bulk index, for one batch of seed files."""
        from pipeline.flow import Batch
        from pipeline.flow import process_batch as run_batch
        from pipeline.report import RunReport

        settings = _settings(params)
        options = _options(params, run_id)
        report = run_batch(Batch.from_dict(batch["batch"]), client=None if options.dry_run else _client(settings),
                           settings=settings, options=options, target=target, emit=print)
        if batch.get("report"):
            report.merge(RunReport.from_dict(batch["report"]))
        print(report.render())
        return report.to_dict(max_items=MAX_XCOM_ITEMS)

    @task(trigger_rule="none_failed")
    def finalize(target: str, reports: list[dict], params=None, run_id=None) -> dict:
        """Replay dead letters if asked; refresh; validate and swap the alias on a full rebuild;
        print the run's summary. Data problems fail the task without retries (retrying won't help)."""
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.flow import ValidationFailed
        from pipeline.flow import finalize as finish
        from pipeline.report import RunReport

        settings = _settings(params)
        options = _options(params, run_id)
        total = RunReport(target=target, dry_run=options.dry_run)
        for r in reports or []:
            total.merge(RunReport.from_dict(r))
        try:
            total = finish(None if options.dry_run else _client(settings), settings, options, target, total, emit=print)
        except ValidationFailed as exc:  # the new index is wrong; the alias still serves the old one
            print(total.render())
            raise AirflowFailException(str(exc)) from exc
        print(total.render())
        if not total.ok:
            raise AirflowFailException(
                f"{total.n('failed') + total.n('dead_letter')} documents failed to index: {total.n('dead_letter')} "
                f"kept in {settings.deadletter_index} for replay, {total.n('failed')} retryable (the next run "
                "tries them again)"
            )
        return {"counts": total.counts, "files_seen": total.files_seen, "removed": total.removed, "target": target}

    target = prepare_index()
    planned = plan(target)
    reports = process_batch.partial(target=target).expand(batch=planned)
    finalize(target, reports)


dag_object = seednews_index()
