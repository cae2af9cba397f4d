"""Developer notes (operators: see ``DOC_MD`` below, shown on the DAG's page in the Airflow UI).

Thin wiring over the ``pipeline`` library (which never imports Airflow). Shape:

    plan (the target index made ready, then a few batches of seed files) -> process_batch (mapped, one per
    batch) -> finalize

  With nothing to process (a quiet night) ``plan`` finishes the run itself and skips both (a short
  circuit): a task's start-up and two scheduler hand-offs cost more than that night's whole work.

- Nightly at 02:00 UTC (``NIGHTLY``: a fresh deployment waits for the next 02:00, it does not run the
  night that has just passed); triggerable by hand with a form (the Params below).
- OpenSearch comes from the Airflow connection ``seednews_opensearch`` (type ``opensearch``, read through
  the official OpenSearch provider's ``OpenSearchHook``) when it exists, else from env ``OPENSEARCH_URL`` /
  ``OPENSEARCH_USER`` / ``OPENSEARCH_PASSWORD``; any other error reading the connection (a secrets backend
  outage) fails the task instead of silently writing to another cluster. Never from code.
- Only small values cross XCom: an index name, one ticket of constant size per batch, capped reports.
  A batch's planned seed files (path, size, content hash, ingest sequence: the worker re-checks the
  same file, it does not re-derive it) are stored in OpenSearch by ``plan`` and read by its
  ``process_batch`` (``pipeline.run.handoff``).
  No task reads a file another task wrote, so tasks may land on different workers (CeleryExecutor) that
  share no disk; the state lives in OpenSearch (ledger, dead letters, image cache) and the seeds in the
  seed location, which must then be object storage (``s3://``). The Markdown report file is written on the
  worker that ran ``finalize`` (or ``plan``, see above); its text is also that task's XCom
  ``report_markdown`` and the run's note (``seednews_notify.post_run_note``), both readable anywhere.
- Every task builds its context (settings, run options, OpenSearch and S3 clients) once, through
  ``_task_context``, and runs under ``_fail_or_retry``: an error ``pipeline.errors`` marks ``fail`` (usage,
  configuration, data) fails the task at once; any other error is retried.
- Every task is idempotent (explicit ids + external versions), so retries and re-runs are safe;
  ``max_active_runs=1`` keeps a manual run from overlapping the nightly one.
- Failures reach a person through ``seednews_notify.AlertNotifier`` (connection ``seednews_alerts``);
  ``finalize`` (``_finish_run``) writes a Markdown report per run, fails the run above the quarantine
  threshold and updates the ``opensearch://seednews-articles`` Asset on success.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from airflow.sdk import Asset, AssetAlias, CronTriggerTimetable, Param, XComArg, dag, task

if TYPE_CHECKING:  # for annotations only: the DAG file imports nothing heavy when Airflow parses it
    from opensearchpy import OpenSearch
    from pydantic.types import JsonValue

    from pipeline.config import Settings
    from pipeline.run.options import RunOptions
    from pipeline.run.report import RunReport

if str(Path(__file__).resolve().parent) not in map(str, sys.path):  # the DAGs folder (Airflow adds it too)
    sys.path.append(str(Path(__file__).resolve().parent))
from seednews_notify import AlertNotifier, post_run_note

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

DAG_ID = "seednews_index"
CONN_ID = "seednews_opensearch"
AWS_CONN_ID = os.environ.get("SEEDNEWS_AWS_CONN_ID") or "aws_default"  # for s3:// seed locations
ARTICLES_ASSET = Asset(
    name="seednews-articles", uri="opensearch://seednews-articles/", extra={"alias": "seednews-articles"}
)
# A run with nothing to process ends in ``plan``, which cannot name ``ARTICLES_ASSET`` as an outlet (every
# run's plan would then mark the index refreshed before its batches ran): it adds that Asset's event
# through this alias, only when it finished the run itself.
QUIET_RUN_ALIAS = AssetAlias(name="seednews-articles-quiet-run")
# the compose stack sets https://localhost:5601; the default is pipeline.dashboards.load.DEFAULT_URL
DASHBOARDS_URL = os.environ.get("SEEDNEWS_DASHBOARDS_URL", "http://127.0.0.1:5601")
DEFAULT_MAX_QUARANTINED_PCT = float(os.environ.get("SEEDNEWS_MAX_QUARANTINED_PCT") or 20)
# A batch is a task: its process start (~1 s of CPU) and two scheduler hand-offs cost about what 1,000-2,000
# files do, and on one machine the tasks and their parse workers share the cores. So a batch holds at least
# this many files (a 10,000-file run is one batch; 100,000 files are still 4); docs/benchmarks.md measures it.
MIN_BATCH_FILES = int(os.environ.get("SEEDNEWS_MIN_BATCH_FILES") or 10_000)
_Facets = dict[str, list[tuple[str, int]]]  # articles per value, per facet field (the report's tables)
MAX_XCOM_ITEMS = 200  # per report list passed between tasks; the ledger index has every file
TARGET_KEY = "target"  # plan's XCom: the index this run writes to (the alias, or a rebuild's new index)
# Every night at 02:00 UTC. The first run after a deployment is the next 02:00, never the one just passed.
# In Airflow 3.3 (airflow/timetables/trigger.py) ``run_immediately`` decides the first run only for a DAG
# without a start date (with one, the latest past 02:00 runs at once), and ``False`` behaves like ``None``:
# the past 02:00 still runs when it is less than 10% of a day (2.4 h) old. A zero window means "only a
# 02:00 that is now". Catchup is off: after a night the scheduler was down, only the latest missed one runs.
NIGHTLY = CronTriggerTimetable("0 2 * * *", timezone="UTC", run_immediately=timedelta(0))
DEFAULT_SEED_DIR = os.environ.get(
    "SEEDNEWS_SEED_DIR", str(Path(__file__).resolve().parent.parent / "examples" / "seeds")
)

# A switch in the trigger form: true or false, and null (the UI form marks a Param whose type does not
# allow null as required, and then refuses a switch turned back off). Null means off, as false does.
BOOLEAN = ["boolean", "null"]
PARAMS = {
    "seed_dir": Param(
        DEFAULT_SEED_DIR,
        type="string",
        title="Seed folder",
        description="Folder to read seed files from (default: the nightly folder), or an "
        "s3://bucket/prefix in object storage (Airflow connection SEEDNEWS_AWS_CONN_ID, "
        "default aws_default).",
    ),
    "full_rebuild": Param(
        False,
        type=BOOLEAN,
        title="Full rebuild",
        description="Write a fresh index and switch the alias to it once it validates.",
    ),
    "skip_images": Param(
        False,
        type=BOOLEAN,
        title="Skip image checks",
        description="Index without checking image URLs (image_health = unchecked).",
    ),
    "dry_run": Param(
        False, type=BOOLEAN, title="Dry run", description="Parse and normalize only; write nothing to OpenSearch."
    ),
    "replay_dead_letters": Param(
        False,
        type=BOOLEAN,
        title="Replay dead letters",
        description="Send documents OpenSearch refused earlier again (after fixing the cause).",
    ),
    "allow_mass_delete": Param(
        False,
        type=BOOLEAN,
        title="Allow mass delete",
        description="Many seed files are gone on purpose: remove their articles anyway "
        "(otherwise the run stops when more than 20% and more than 10 of the files it knows vanished).",
    ),
    "max_batches": Param(
        4,
        type="integer",
        minimum=1,
        maximum=64,
        title="Batches",
        description="Split the files to process into at most this many parallel batches, each of at least "
        f"{MIN_BATCH_FILES:,} files (SEEDNEWS_MIN_BATCH_FILES): a small run is one batch.",
    ),
    "index": Param(
        None,
        type=["null", "string"],
        title="Index alias",
        # pipeline.config.INDEX_NAME_PATTERN (no pipeline import at parse time; tests/test_cli.py keeps them equal)
        pattern=r'^(?![-_+])(?!\.\.?$)[^A-Z\\/*?"<>| ,#:]{1,226}$',
        description="Alias to write (empty: SEEDNEWS_INDEX or seednews-articles); as OpenSearch requires: "
        'lowercase, no space or any of \\ / * ? " < > | , # :, not starting with -, _ or +.',
    ),
    "max_quarantined_pct": Param(
        DEFAULT_MAX_QUARANTINED_PCT,
        type="number",
        minimum=0,
        maximum=100,
        title="Quarantine threshold (%)",
        description="Fail the run when more than this share of the files seen is "
        "quarantined (default: SEEDNEWS_MAX_QUARANTINED_PCT or 20).",
    ),
}

DOC_MD = f"""
### seednews: news seed files → the `seednews-articles` search index

**What runs when.** Every night at **02:00 UTC**, one run at a time, this DAG reads the seed folder
(`SEEDNEWS_SEED_DIR`), parses and cleans every new or changed file, checks image links and writes the
articles to OpenSearch. Unchanged files are skipped. You can also press **Trigger** and fill in the form.

**After a deployment** nothing runs at once: the first run is the next 02:00 UTC (its time is shown as
the DAG's next run). To index now, press **Trigger**. If Airflow was down at 02:00, the latest missed
night runs once as soon as it is back; older missed nights are skipped.

**The form (Params).**

| Param | What it does |
| --- | --- |
| Seed folder | folder to read (default: the nightly folder), or `s3://bucket/prefix` |
| Full rebuild | write a fresh index; searches switch to it only once it checks out |
| Skip image checks | faster; images are marked `unchecked` |
| Dry run | read and clean only; write nothing |
| Replay dead letters | send again the articles OpenSearch refused earlier (after a fix) |
| Allow mass delete | lift the vanish guard: many seed files are gone on purpose, delete their articles |
| Batches | at most how many parallel pieces the work is split into (each of {MIN_BATCH_FILES:,} files or more) |
| Index alias | another index name (empty: `SEEDNEWS_INDEX`, else `seednews-articles`) |
| Quarantine threshold (%) | fail the run above this quarantined share (default {DEFAULT_MAX_QUARANTINED_PCT:g}) |

**Where the report is.** On the run's page: the last task, `finalize`, makes its Markdown report (files
per outcome, articles per topic and provider) the run's **note**, shown under the run's header; click it
to read it whole (Airflow keeps 1,000 characters of a note: a longer report is cut and says so). A run
with nothing to process (every file unchanged) ends in `plan`, which does the same and skips the rest:
`process_batch` and `finalize` show as *skipped*. The whole text is that task's XCom `report_markdown`
(the task's *XCom* tab), and a file in
`SEEDNEWS_REPORT_DIR` on the worker that ran it (its log names it). The note needs the Airflow connection
`seednews_airflow_api` (the api-server's URL, a login that may edit runs). Every file's fate is also in
the ledger index `seednews-articles-ledger` (for another alias: `<alias>-ledger`).

**When it fails.** The reason is an ERROR line in the failed task's log: on this DAG's *Overview*,
*Recent Failed Task Logs* → *Show Logs* lists those lines; from a run, click the failed task and open
its log; a run failed for too many quarantined files also says so in its note. A failed task also sends
an alert to the team's webhook (the Airflow connection `seednews_alerts`, set from
`SEEDNEWS_ALERT_WEBHOOK`) naming the DAG, run and task. Quarantined files (bad YAML, binary, too
large...) are listed with the reason; fix the file and the next run picks it up. Documents OpenSearch
refused are kept in `seednews-articles-deadletter`: fix the cause, then trigger with *Replay dead letters*.

**Freshness.** Each successful run updates the Asset `seednews-articles`
(URI `opensearch://seednews-articles/`; Assets page: its latest event).

**Dashboards.** Open [OpenSearch Dashboards]({DASHBOARDS_URL}) → *Dashboards* →
**[seednews] Articles (analysts)** (articles per topic, provider and image health) or
**[seednews] Pipeline health (operators)**, or *Discover* on the `seednews-articles` index pattern.
"""


@dataclass(frozen=True)
class _TaskContext:
    """What every task works with: where OpenSearch is, what the run was asked to do, and its clients."""

    settings: Settings
    options: RunOptions
    client: OpenSearch | None  # None on a dry run: nothing is written
    s3: object | None  # a boto3 S3 client for an s3:// seed location, else None


def _task_context(params: Mapping[str, Any], run_id: str | None) -> _TaskContext:
    """This task's context, built once per task process: a later call for the same run and the same
    Params returns the same settings, options and clients (as a provider's hook caches its client)."""
    return _context_for(run_id or "", tuple((name, params.get(name)) for name in PARAMS))


@functools.cache
def _context_for(run_id: str, params: tuple[tuple[str, Any], ...]) -> _TaskContext:
    """Builds the context of one run and one set of Params (``functools.cache`` keeps it)."""
    values = dict(params)
    settings = _settings(values)
    s3 = _s3_client(values["seed_dir"])
    options = _options(values, run_id)
    return _TaskContext(settings, options, None if options.dry_run else _client(settings), s3)


def _settings(params: Mapping[str, Any]) -> Settings:
    """Settings from the Airflow connection if it exists, else from the environment (inside tasks only).

    The connection is resolved by the OpenSearch provider's ``OpenSearchHook`` (which also gives the
    connection form in the UI its fields), but the client is the project's (``pipeline.stores.client``):
    the hook's client takes one host, turns TLS verification off unless the extra says otherwise, and has
    no CA bundle, retries, read deadline or pool size. Only "the connection does not exist" falls back to
    the environment; any other error (secrets backend down, a malformed connection) fails the task, so a
    run never writes to the wrong cluster."""
    from airflow.providers.opensearch.hooks.opensearch import OpenSearchHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from pipeline.config import Settings, settings_from_connection

    overrides = {"index_base": params["index"]} if params.get("index") else {}
    try:
        conn = OpenSearchHook(open_search_conn_id=CONN_ID, log_query=False).conn
    except AirflowNotFoundException:
        settings = Settings.from_env(**overrides)
        log.info("OpenSearch from the environment (no Airflow connection %r): %s", CONN_ID, settings.display_url)
        return settings
    settings = settings_from_connection(
        conn.host, conn.port, conn.schema, conn.login, conn.password, conn.extra_dejson or {}, **overrides
    )
    log.info(
        "OpenSearch from the Airflow connection %r (type %s): %s, verify_certs=%s",
        CONN_ID,
        conn.conn_type,
        settings.display_url,
        settings.verify_certs,
    )
    return settings


def _s3_client(seed_dir: str) -> object | None:
    """A boto3 client for an ``s3://`` seed location, with the credentials of the Amazon provider's
    connection ``AWS_CONN_ID`` (keys, role, ``endpoint_url`` and ``region_name`` extras) and the project's
    timeouts and retries; without that connection, from the environment like the CLI. ``None`` for a
    folder. Built inside tasks only; credentials are never logged."""
    from pipeline.sources import is_object_url

    if not is_object_url(seed_dir):
        return None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    from pipeline.sources.s3 import make_client, redact_endpoint

    try:
        Connection.get(AWS_CONN_ID)
    except AirflowNotFoundException:
        log.info("S3 from the environment (no Airflow connection %r)", AWS_CONN_ID)
        return make_client()
    from airflow.providers.amazon.aws.hooks.s3 import (
        S3Hook,  # the airflow extra installs the provider
    )

    hook = S3Hook(aws_conn_id=AWS_CONN_ID)
    endpoint = hook.conn_config.get_service_endpoint_url("s3")
    log.info("S3 from the Airflow connection %r: %s", AWS_CONN_ID, redact_endpoint(endpoint))
    return make_client(endpoint_url=endpoint, region_name=hook.conn_region_name, session=hook.get_session())


def _options(params: Mapping[str, Any], run_id: str) -> RunOptions:
    """The run's options from the Params: the one place the DAG builds them."""
    from pipeline.run.options import RunOptions
    from pipeline.run.tuning import Tuning

    return RunOptions(
        tuning=Tuning.from_env(os.environ),
        run_id=run_id,
        replay_dead_letters=_switch(params, "replay_dead_letters"),
        seed_dir=params["seed_dir"],
        allow_mass_delete=_switch(params, "allow_mass_delete"),
        full_rebuild=_switch(params, "full_rebuild"),
        dry_run=_switch(params, "dry_run"),
        check_images=not _switch(params, "skip_images"),
        max_batches=int(params["max_batches"]),
        min_batch_files=MIN_BATCH_FILES,
    )


def _switch(params: Mapping[str, Any], name: str) -> bool:
    """A boolean Param: on only when it is true (false, null and a missing one are off)."""
    return params.get(name) is True


def _client(settings: Settings) -> OpenSearch:
    from pipeline.stores.client import make_client

    # opensearch-py logs every request at INFO ("HEAD /x [status:200 request:0.003s]"): pages of it buried
    # the pipeline's own lines in the task logs. Its warnings (a failed attempt) still show.
    logging.getLogger("opensearch").setLevel(logging.WARNING)
    return make_client(settings)


def _say(line: str) -> None:
    """One of the pipeline's own lines (plan summary, progress, report) in the task log.

    Through ``logging``, the channel of Airflow's own task log lines: ``print`` goes through the task's
    stdout, a second channel the supervisor reads on its own, so a line printed just before a task returns
    could land after Airflow's "Post Execute" group marker, folded away in the UI."""
    log.info("%s", line)


def _fail_or_retry(func: Callable[P, R]) -> Callable[P, R]:
    """Runs a task so that an error retrying cannot cure (``pipeline.errors``' table: a ``SeedNewsError``
    that is not ``retryable``) fails it at once, without retries; every other error reaches Airflow
    unchanged and the task is retried.

    The reason of such a failure is also one ERROR line of its own in the task log: the DAG's Overview
    lists the error lines of recently failed tasks ("Recent Failed Task Logs"), and the failed task's log
    is one click from the run page."""

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from airflow.sdk.exceptions import AirflowFailException

        from pipeline.errors import fail_fast_as

        try:
            with fail_fast_as(AirflowFailException):
                return func(*args, **kwargs)
        except AirflowFailException as exc:
            log.error("%s failed, not retried: %s", func.__name__, exc)
            raise

    return run


def _quarantine_breach(total: RunReport, params: Mapping[str, Any]) -> str | None:
    """Why the run quarantined too much (the Param, else ``SEEDNEWS_MAX_QUARANTINED_PCT``), or None."""
    from pipeline.run import alerts

    limit = params.get("max_quarantined_pct")
    limit = alerts.max_quarantined_pct() if limit is None else float(limit)
    return alerts.quarantine_breach(total.files_seen, total.n("quarantined"), limit)


def _facets(ctx: _TaskContext) -> _Facets | None:
    """Articles per topic and provider for the report; None on a dry run or when the query fails."""
    from pipeline.run import artifact as runartifact

    if ctx.client is None:
        return None
    try:
        return runartifact.query_facets(ctx.client, ctx.settings.alias)
    except Exception as exc:  # noqa: BLE001 -- the report is still worth writing without facets
        log.warning("facet counts for the report failed: %s", exc)
        return None


def _report_markdown(total: RunReport, facets: _Facets | None, target: str, run_id: str, breach: str | None) -> str:
    """The run's Markdown report: counts per outcome, facets, the summary and the verdict."""
    from pipeline.run import artifact as runartifact

    return runartifact.render_markdown(
        dag_id=DAG_ID,
        run_id=run_id,
        target=target,
        counts=total.counts,
        files_seen=total.files_seen,
        facets=facets,
        summary=total.render(),
        verdict="failed: " + breach if breach else "success",
    )


def _write_report(run_id: str, text: str) -> Path:
    """Writes the report on this worker's disk (``SEEDNEWS_REPORT_DIR``) and logs its path."""
    from pipeline.run import artifact as runartifact

    path = runartifact.write(runartifact.report_dir(), run_id, text)
    _say(f"run report written to {path}")
    return path


def _publish_report(run_id: str, text: str) -> None:
    """The report where the UI shows it, from any worker: the XCom ``report_markdown`` (the whole text)
    and the run's note (Markdown on the run's page, cut to Airflow's 1,000 characters)."""
    from airflow.sdk import get_current_context

    from pipeline.run import artifact as runartifact

    get_current_context()["ti"].xcom_push(key="report_markdown", value=text)
    post_run_note(DAG_ID, run_id, runartifact.run_note(text))


def _mark_asset(ctx: _TaskContext, total: RunReport, target: str, run_id: str, report: Path) -> None:
    """The Asset event and its extra: what this run refreshed, and where its report is. From ``finalize``
    (its outlet), or from ``plan`` when it finished the run itself (through ``QUIET_RUN_ALIAS``)."""
    from airflow.sdk import get_current_context

    context = get_current_context()
    extra: dict[str, JsonValue] = {
        "alias": ctx.settings.alias,
        "target": target,
        "run_id": run_id,
        "dry_run": ctx.options.dry_run,
        "indexed": total.indexed,
        "files_seen": total.files_seen,
        "counts": {str(outcome): n for outcome, n in total.counts.items()},  # a JSON object, as extras are
        "report": str(report),
    }
    if ARTICLES_ASSET in context["task"].outlets:
        context["outlet_events"][ARTICLES_ASSET].extra = extra
    else:
        context["outlet_events"][QUIET_RUN_ALIAS].add(ARTICLES_ASSET, extra=extra)


def _finish_run(ctx: _TaskContext, total: RunReport, target: str, params: Mapping[str, Any], run_id: str) -> dict:
    """The run's end, in ``finalize`` (or in ``plan`` when there was nothing to process): replay, refresh,
    links and the rebuild's swap (``flow.finalize``); the summary in the log; the Markdown report written
    and published; fail above the quarantine threshold, else mark the Asset refreshed. Returns the counts."""
    from airflow.sdk.exceptions import AirflowFailException

    from pipeline.run.flow import finalize as finish

    try:
        total = finish(ctx.client, ctx.settings, ctx.options, target, total, emit=_say, s3_client=ctx.s3)
    finally:  # on a failed validation too: the new index is wrong, the alias still serves the old one
        _say(total.render())
    if not total.ok:  # failed documents or seeds that met a bug: every other seed is settled by now
        raise AirflowFailException(f"{total.problem()} (dead letters: {ctx.settings.deadletter_index})")
    breach = _quarantine_breach(total, params)
    text = _report_markdown(total, _facets(ctx), target, run_id, breach)
    path = _write_report(run_id, text)
    _publish_report(run_id, text)
    if breach:
        raise AirflowFailException(f"{breach}. Report: {path}")
    _mark_asset(ctx, total, target, run_id, path)
    return {
        "counts": total.counts,
        "files_seen": total.files_seen,
        "removed": total.removed,
        "target": target,
        "report": str(path),
    }


@dag(
    dag_id=DAG_ID,
    schedule=NIGHTLY,  # no start_date: see NIGHTLY
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,  # a fresh deployment runs at the next 02:00 without anyone unpausing it
    params=PARAMS,
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
        "on_failure_callback": [AlertNotifier()],
    },
    tags=["seednews"],
    description="Nightly 02:00 UTC: news seeds -> the seednews-articles OpenSearch index (report, alerts on failure)",
    doc_md=DOC_MD,
)
def seednews_index():
    # a short circuit: no ticket (nothing to process) skips every task after this one
    @task.short_circuit(outlets=[QUIET_RUN_ALIAS], show_return_value_in_logs=False)
    @_fail_or_retry
    def plan(params=None, run_id=None, ti=None) -> list[dict]:
        """Make the target ready: templates and alias (incremental), or a brand-new versioned index (full
        rebuild; a retry of this task drops the one its earlier try made: ``flow.prepare``); its name is
        this task's XCom ``target``. One task, not two: on a quiet night a task's start-up and hand-off
        cost more than preparing does.

        Then discover the folder and compare it with the ledger; return a few batches of planned seed
        files, not one task per file. Refusals, unchanged and deleted files are settled here; their
        report rides along with the first batch. Each batch's XCom is a ticket of constant size: the
        files and the report are stored in OpenSearch for the workers (``pipeline.run.handoff``; a dry
        run carries them inline). With nothing to process (a quiet night) there is no batch: nothing
        is stored, this task finishes the run as ``finalize`` would (``_finish_run``: deletes swept,
        links, the report, the Asset event) and returns no ticket, which skips the batch task and
        ``finalize`` (``task.short_circuit``). A folder that looks unmounted fails the run here, before
        anything is deleted, and so does a seed folder that does not exist (no retries: retrying won't
        help)."""
        from pipeline.run.flow import plan as make_plan
        from pipeline.run.flow import prepare
        from pipeline.run.handoff import hand_out

        ctx = _task_context(params, run_id)
        target = prepare(ctx.client, ctx.settings, ctx.options)
        ti.xcom_push(key=TARGET_KEY, value=target)
        p = make_plan(ctx.options, ctx.client, ctx.settings, target, s3_client=ctx.s3)
        # the minimum is named only where it, not the maximum or the number of files, set the count
        cut = 0 < len(p.batches) < min(ctx.options.max_batches, p.todo)
        fewer = f" (at least {ctx.options.min_batch_files:,} files a batch)" if cut else ""
        _say(
            f"{p.report.files_seen + p.todo} seed files: {p.report.unchanged} unchanged, {p.todo} to process "
            f"in {len(p.batches)} batches{fewer}"
        )
        if not p.batches:  # the run's summary is logged once, when it is finished here
            _finish_run(ctx, p.report, target, params, run_id)
            return []
        _say(p.report.render())
        tickets = hand_out(p, ctx.client, ctx.settings, ctx.options.run_id, max_items=MAX_XCOM_ITEMS)
        return [t.to_dict() for t in tickets]

    # one XCom per batch (the report's dict), not one more per key: each is a call to the api-server; the
    # report is already in the log as text (_say), so the value is not repeated there
    @task(
        execution_timeout=timedelta(hours=2),
        max_active_tis_per_dagrun=4,
        multiple_outputs=False,
        show_return_value_in_logs=False,
    )
    @_fail_or_retry
    def process_batch(batch: dict, target: str, params=None, run_id=None) -> dict:
        """read -> parse -> normalize -> check images -> bulk index, for one batch of seed files."""
        from pipeline.run.flow import process_batch as run_batch
        from pipeline.run.handoff import Ticket, take

        ctx = _task_context(params, run_id)
        planned, plan_report = take(Ticket.from_dict(batch), ctx.client, ctx.settings)
        report = run_batch(
            planned,
            client=ctx.client,
            settings=ctx.settings,
            options=ctx.options,
            target=target,
            emit=_say,
            s3_client=ctx.s3,
        )
        if plan_report is not None:
            report.merge(plan_report)
        _say(report.render())
        return report.to_dict(max_items=MAX_XCOM_ITEMS)

    # one XCom (the dict), not one per key; its value is not repeated in the log ("Returned value was")
    @task(trigger_rule="none_failed", outlets=[ARTICLES_ASSET], multiple_outputs=False, show_return_value_in_logs=False)
    @_fail_or_retry
    def finalize(target: str, reports: list[dict], params=None, run_id=None) -> dict:
        """Replay dead letters if asked; refresh; link related articles; validate and swap the alias on a
        full rebuild; log the run's summary; write the Markdown report and publish it (``_publish_report``:
        the file is on this worker's disk, which other workers and the api-server may not see); fail
        above the quarantine threshold, else mark the Asset refreshed. Data problems fail the task
        without retries (retrying won't help). Returns the counts (its XCom ``return_value``)."""
        from pipeline.run.report import RunReport

        ctx = _task_context(params, run_id)
        total = RunReport(target=target, dry_run=ctx.options.dry_run)
        for r in reports or []:
            total.merge(RunReport.from_dict(r))
        return _finish_run(ctx, total, target, params, run_id)

    planned = plan()
    target = XComArg(planned.operator, key=TARGET_KEY)  # type: ignore[attr-defined]  # a PlainXComArg
    # the task decorators' stubs type arguments as the plain values; at parse time they are XComArgs
    reports = process_batch.partial(target=target).expand(batch=planned)
    finalize(target, reports)  # type: ignore[arg-type]


dag_object = seednews_index()
