"""The real DAG: integrity checks, and a real run with ``airflow dags test`` (SQLite metadata DB)
against the real OpenSearch node."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from tests.conftest import AIRFLOW, DAGS, DATA, ROOT


def test_dag_imports_cleanly_and_is_wired(airflow_env):
    code = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["seednews_index"]
print(json.dumps({
  "errors": {k: str(v) for k, v in bag.import_errors.items()},
  "tasks": sorted(dag.task_ids),
  "retries": {t.task_id: t.retries for t in dag.tasks},
  "params": sorted(dag.params.keys()),
  "schedule": str(dag.timetable.expression),
  "max_active_runs": dag.max_active_runs,
  "catchup": dag.catchup,
  "paused_upon_creation": dag.is_paused_upon_creation,
  "description": dag.description,
  "doc_md": dag.doc_md,
  "on_failure": [type(c).__name__ for c in (dag.default_args.get("on_failure_callback") or [])],
  "outlets": [a.uri for a in dag.get_task("finalize").outlets],
  "param_schemas": {k: dag.params.get_param(k).schema for k in dag.params.keys()},
  "param_titles": [dag.params.get_param(k).schema.get("title") for k in dag.params.keys()],
}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS)], env=airflow_env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-3000:]
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert info["tasks"] == ["finalize", "plan", "process_batch"]
    assert all(r >= 1 for r in info["retries"].values())
    assert {
        "allow_mass_delete",
        "dry_run",
        "full_rebuild",
        "index",
        "max_batches",
        "max_quarantined_pct",
        "replay_dead_letters",
        "seed_dir",
        "skip_images",
    } <= set(info["params"])
    assert info["schedule"] == "0 2 * * *" and info["max_active_runs"] == 1 and info["catchup"] is False
    # operators' view: runs without anyone unpausing it, says what it is, alerts, and marks freshness
    assert info["paused_upon_creation"] is False
    # the doc's Params table names every field of the trigger form (it left out "Allow mass delete")
    missing = [t for t in info["param_titles"] if t and f"| {t} |" not in info["doc_md"]]
    assert not missing, missing
    # and the index pattern by the name Dashboards gives it (pipeline.dashboards.objects)
    assert "`seednews-articles` index pattern" in info["doc_md"]
    assert "02:00 UTC" in info["description"] and "seednews-articles" in info["description"]
    for words in ("What runs when", "Params", "report", "Dashboards", "SEEDNEWS_ALERT_WEBHOOK"):
        assert words in info["doc_md"], words
    assert info["on_failure"] == ["AlertNotifier"]
    # where the report is: the run's note, on the run's page
    assert "the run's **note**" in info["doc_md"] and "seednews_airflow_api" in info["doc_md"]
    assert "seednews_alerts" in info["doc_md"]
    assert info["outlets"] == ["opensearch://seednews-articles/"]
    # optional values are nullable, so the UI's trigger form does not mark them as missing
    assert info["param_schemas"]["index"]["type"] == ["null", "string"]
    assert info["param_schemas"]["max_quarantined_pct"]["minimum"] == 0
    # a switch is not shown as required (the form marks every Param whose type has no "null" so, and then
    # refuses a required switch turned back off); its values stay true, false (and null: off)
    switches = [k for k, schema in info["param_schemas"].items() if "boolean" in schema["type"]]
    assert len(switches) == 5 and all(info["param_schemas"][k]["type"] == ["boolean", "null"] for k in switches)
    # the doc names the dashboards by the titles Dashboards shows
    objects = [json.loads(line) for line in (ROOT / "dashboards" / "seednews.ndjson").read_text().splitlines()]
    titles = {o["attributes"]["title"] for o in objects if o.get("type") == "dashboard"}
    named = set(re.findall(r"\*\*(\[seednews\][^*]+)\*\*", info["doc_md"]))
    assert named and named <= titles, (named, titles)


NIGHT = """
import json, sys
from unittest import mock
import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import DagRunInfo
bag = DagBag(dag_folder=sys.argv[1])
dag = DagSerialization.from_dict(DagSerialization.to_dict(bag.dags["seednews_index"]))  # as the scheduler has it
out = {}
for case in sys.argv[2:]:
    now, _, last = case.partition("|")
    previous = DagRunInfo.exact(pendulum.parse(last)) if last else None
    with mock.patch("airflow.timetables.trigger.utcnow", return_value=pendulum.parse(now)):
        info = dag.next_dagrun_info(last_automated_run_info=previous)
    out[case] = info.run_after.isoformat()
print(json.dumps(out))
"""


def test_first_start_waits_for_the_next_night_and_a_missed_night_runs_once(airflow_env):
    """The DAG's timetable, asked as the scheduler asks it: with no run yet (a fresh deployment), the
    first run is the next 02:00 UTC, never the one just passed (seen: ``stack up`` at 14:40 ran
    ``scheduled__<today>T02:00`` at once); after a night Airflow was down, only the latest missed one."""
    cases = {
        "2026-12-06T14:40:00+00:00": "2026-12-07T02:00:00+00:00",  # deployed in the afternoon
        "2026-12-06T02:03:00+00:00": "2026-12-07T02:00:00+00:00",  # three minutes late: still not run at once
        # within 10% of a day: run_immediately=False would still run the 02:00 just passed (Airflow 3.3)
        "2026-12-06T04:00:00+00:00": "2026-12-07T02:00:00+00:00",
        "2026-12-06T01:59:00+00:00": "2026-12-06T02:00:00+00:00",  # just before: tonight
        # the last run was on the 3rd, Airflow was down on the 4th, 5th and 6th at 02:00: the 6th runs
        "2026-12-06T14:40:00+00:00|2026-12-03T02:00:00+00:00": "2026-12-06T02:00:00+00:00",
        # the usual night: the run after the 6th is the 7th
        "2026-12-06T02:00:05+00:00|2026-12-06T02:00:00+00:00": "2026-12-07T02:00:00+00:00",
    }
    out = subprocess.run(
        [sys.executable, "-c", NIGHT, str(DAGS), *cases],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == cases


def test_dag_file_does_no_heavy_imports_at_top_level():
    heavy = "('opensearchpy', 'pipeline', 'requests', 'ftfy', 'yaml', 'aiohttp')"
    # what Airflow itself loads for the same top-level calls (it imports yaml; with the amazon provider
    # installed, an Asset's URI check loads the provider's S3 hook and so requests): not the DAG's doing
    baseline = (
        "import sys; from airflow.sdk import Asset, Param, dag, task; Asset(name='x', uri='opensearch://x/'); "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    code = (
        "import sys, runpy; sys.path.insert(0, sys.argv[1]); import seednews_index; "
        f"print(sorted(m for m in {heavy} if m in sys.modules))"
    )
    loaded = []
    for snippet in (baseline, code):
        out = subprocess.run([sys.executable, "-c", snippet, str(DAGS)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        loaded.append(set(ast.literal_eval(out.stdout.strip().splitlines()[-1])))
    assert loaded[1] - loaded[0] == set(), loaded


def _dags_test(airflow_env, opensearch_url, conf: dict) -> subprocess.CompletedProcess:
    env = {**airflow_env, "OPENSEARCH_URL": opensearch_url}
    return subprocess.run(
        [AIRFLOW, "dags", "test", "seednews_index", "-c", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dag_run_indexes_sample_seeds(airflow_env, opensearch_url, seed_dir):
    from pipeline.config import Settings
    from pipeline.stores import indices
    from pipeline.stores.client import make_client

    shutil.copy(DATA / "seeds" / "bad" / "invalid_yaml.txt", seed_dir / "001_broken.txt")
    base = f"dagtest-{uuid.uuid4().hex[:8]}"
    conf = {"seed_dir": str(seed_dir), "index": base, "max_batches": 2, "max_quarantined_pct": 50}  # 1 of 3 bad
    client = make_client(Settings(opensearch_url=opensearch_url))
    try:
        logs = []
        for attempt in (1, 2):  # twice: a re-run must leave exactly the same index state
            out = _dags_test(airflow_env, opensearch_url, conf)
            log = out.stdout + out.stderr
            logs.append(log)
            assert out.returncode == 0 and "DagRun Finished" in log and "state=success" in log, log[-4000:]
            # the first run indexes both; the re-run finds them unchanged in the ledger
            assert (
                "3 seed files seen: 2 indexed, 1 quarantined" if attempt == 1 else "3 seed files seen: 3 unchanged"
            ) in log
            client.indices.refresh(index=base)
            assert indices.count(client, base) == 2
            assert dict(indices.facet(client, base, "topics")) == {"AI": 2, "Computer Vision": 1}
        hits = client.search(index=base, body={"query": {"match_phrase": {"excerpt": "surveillance—a development"}}})
        assert [h["_source"]["provider"]["name"] for h in hits["hits"]["hits"]] == ["Common Dreams"]
        # image checks ran inside the batch tasks: the public image hosts are unreachable from here, and
        # that must come out as a verdict with a reason, not as a crash or a hang
        docs = [h["_source"] for h in client.search(index=base, body={"query": {"match_all": {}}})["hits"]["hits"]]
        for doc in docs:
            checks = [img["check"] for img in doc["images"] + doc["provider"].get("images", [])]
            assert checks and all(
                c["status"] in ("unreachable", "blocked", "timeout", "relative") and c["reason"] for c in checks
            )
            assert doc["image_health"] in ("none_ok", "no_images")
        # 3 files are one batch, whatever max_batches says: a batch is a task, worth at least 10,000 files
        assert "3 seed files: 0 unchanged, 3 to process in 1 batches (at least 10,000 files a batch)" in logs[0]
        assert logs[0].count("Task started") == 3  # plan, one batch, finalize
        assert "001_broken.txt: yaml: while scanning a quoted scalar at line 2" in logs[0]  # named, with the reason
        assert "images: " in logs[0]  # the run report has image totals per verdict
        # the Markdown report for people: its path in the task log, counts per outcome and per topic
        report = Path(logs[0].split("run report written to ")[1].split()[0])
        text = report.read_text(encoding="utf-8")
        assert "| indexed | 2 |" in text and "| quarantined | 1 |" in text and "| AI | 2 |" in text
        # the re-run had nothing to process: plan finished it, no other task started (the batch task and
        # finalize were skipped), and its report still counts every file
        assert logs[1].count("Task started") == 1 and "Downstream tasks skipped" in logs[1], logs[1][-4000:]
        assert "tasks_skipped=2" in logs[1]
        assert logs[1].count("seednews run: 3 seed files seen:") == 1  # its summary once, when finished
        again = Path(logs[1].split("run report written to ")[1].split()[0]).read_text(encoding="utf-8")
        assert "- seed files seen: 3" in again and "| unchanged | 3 |" in again and "| indexed |" not in again
        # finalize's XCom is one value (no multiple_outputs), and the log does not repeat it
        assert "Done. Returned value not shown" in logs[0]  # finalize's (the other tasks' values are small)
        assert logs[0].count("# seednews run") == 0  # the report's text is in the XCom, not repeated in the log
        # no connection to the api-server here: the log says why the report is not the run's note
        assert "the report is not the run's note: no Airflow connection 'seednews_airflow_api'" in logs[0]
    finally:
        client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=base, ignore=[404])


def test_a_quiet_run_that_deletes_is_finished_by_plan(airflow_env, opensearch_url, seed_dir):
    """Nothing to process but a file gone: ``plan`` settles the deletion and finishes the run itself
    (``finalize``'s sweep removes the article), no other task starts, and the report says so."""
    from pipeline.config import Settings
    from pipeline.stores import indices
    from pipeline.stores.client import make_client

    base = f"dagquiet-{uuid.uuid4().hex[:8]}"
    conf = {"seed_dir": str(seed_dir), "index": base, "skip_images": True}
    client = make_client(Settings(opensearch_url=opensearch_url))
    try:
        first = _dags_test(airflow_env, opensearch_url, conf)
        assert first.returncode == 0 and "state=success" in first.stdout + first.stderr
        sorted(seed_dir.glob("*.txt"))[0].unlink()
        out = _dags_test(airflow_env, opensearch_url, conf)
        log = out.stdout + out.stderr
        assert out.returncode == 0 and "state=success" in log, log[-4000:]
        assert log.count("Task started") == 1 and "tasks_skipped=2" in log, log[-4000:]
        assert "1 seed files deleted since the last run; 1 articles removed from the index" in log
        client.indices.refresh(index=base)
        assert indices.count(client, base) == 1
        report = Path(log.split("run report written to ")[1].split()[0]).read_text(encoding="utf-8")
        assert "| deleted | 1 |" in report and "| unchanged | 1 |" in report
    finally:
        client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=base, ignore=[404])


def test_a_batch_task_parses_in_worker_processes(airflow_env, opensearch_url, tmp_path):
    """A mapped batch task starts parse workers (forkserver children of the task process) and the run
    ends with every file indexed once."""
    from pipeline.config import Settings
    from pipeline.stores import indices
    from pipeline.stores.client import make_client
    from tests import faultkit as fk

    ids = fk.write_seeds(tmp_path / "seeds", 1200, tag="dagworkers")
    base = f"dagpar-{uuid.uuid4().hex[:8]}"
    conf = {"seed_dir": str(tmp_path / "seeds"), "index": base, "max_batches": 1, "skip_images": True}
    client = make_client(Settings(opensearch_url=opensearch_url))
    try:
        out = _dags_test({**airflow_env, "SEEDNEWS_PARSE_WORKERS": "2"}, opensearch_url, conf)
        log = out.stdout + out.stderr
        assert out.returncode == 0 and "state=success" in log, log[-4000:]
        assert "parsing in 2 worker processes" in log
        assert "1200 seed files seen: 1200 indexed" in log
        client.indices.refresh(index=base)
        assert indices.count(client, base) == 1200
        found = client.mget(index=base, body={"ids": ids[:5] + ids[-5:]}, _source=False)["docs"]
        assert all(d.get("found") for d in found)
    finally:
        client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=base, ignore=[404])


def test_a_missing_seed_folder_fails_plan_at_once_without_retries(airflow_env, opensearch_url, tmp_path):
    """Seen: ``seed_dir=/nonexistent`` retried ``plan`` three times (about 70 s) before anyone heard of it."""
    import time

    missing = tmp_path / "nonexistent"
    base = f"dagmissing-{uuid.uuid4().hex[:8]}"
    t = time.monotonic()
    out = _dags_test(airflow_env, opensearch_url, {"seed_dir": str(missing), "index": base})
    took = time.monotonic() - t
    log = out.stdout + out.stderr
    assert "state=failed" in log, log[-3000:]
    assert f"seed folder '{missing}' does not exist or is not a folder" in log
    assert "up_for_retry" not in log.lower() and "UP_FOR_RETRY" not in log
    assert took < 60, f"{took:.0f} s"  # a hang guard; the three retries alone waited 2 x 30 s
