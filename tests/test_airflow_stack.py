"""The full Airflow stack, as operators use it: api-server + dag-processor + scheduler (LocalExecutor,
SQLite metadata DB) on 127.0.0.1, against the real OpenSearch node.

- The trigger form the UI renders is built from the DAG's params as the api-server serves them: every
  Param is a scalar with a title, a type and a description.
- A run triggered through the REST API with a form's conf (what the UI's "Trigger" button sends) is
  scheduled, fans out into mapped batch tasks and succeeds; the index holds the sample articles.
- Unpausing also lets the scheduler create the latest nightly run (catchup is off): it succeeds too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE_SEEDS

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_ID = "seednews_index"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(base: str, path: str, method: str = "GET", body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{base}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, opensearch_url):
    home = tmp_path_factory.mktemp("airflow_stack")
    seeds = home / "seeds"
    shutil.copytree(SAMPLE_SEEDS, seeds)
    port = _free_port()
    index = f"stack-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",  # local test stack: no login
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "OPENSEARCH_URL": opensearch_url,
        "SEEDNEWS_SEED_DIR": str(seeds),  # the nightly run's folder
        "SEEDNEWS_INDEX": f"{index}-nightly",  # the scheduled run's alias, kept apart from the manual run's
    }
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    procs = []
    for name, args in (("api-server", ["api-server"]), ("dag-processor", ["dag-processor"]), ("scheduler", ["scheduler"])):
        log = open(home / f"{name}.log", "wb")
        procs.append((subprocess.Popen([AIRFLOW, *args], env=env, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True), log))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: _api(base, f"/api/v2/dags/{DAG_ID}/details")["dag_id"] == DAG_ID, 180, "the DAG to be served")
        yield {"base": base, "home": home, "seeds": seeds, "index": index, "url": opensearch_url}
    finally:
        for p, _ in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p, log in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
            log.close()
        from pipeline.config import Settings, make_client

        client = make_client(Settings(opensearch_url=opensearch_url))
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        client.indices.delete_index_template(name=index, ignore=[404])


def test_trigger_form_is_built_from_scalar_params(stack):
    params = _api(stack["base"], f"/api/v2/dags/{DAG_ID}/details")["params"]
    assert set(params) == {"seed_dir", "full_rebuild", "skip_images", "dry_run", "replay_dead_letters", "max_batches", "index"}
    for name, p in params.items():
        assert p["schema"]["type"] in ("string", "boolean", "integer"), name  # no object/array form fields
        assert p["schema"]["title"] and p["description"], name
    assert params["seed_dir"]["value"] == str(stack["seeds"])
    assert params["full_rebuild"]["value"] is False and params["dry_run"]["value"] is False
    assert params["max_batches"]["schema"]["minimum"] == 1


def test_run_triggered_from_the_api_succeeds_on_the_scheduler(stack):
    base = stack["base"]
    conf = {"seed_dir": str(stack["seeds"]), "index": stack["index"], "skip_images": True, "max_batches": 2}
    run = _api(base, f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})
    _api(base, f"/api/v2/dags/{DAG_ID}", "PATCH", {"is_paused": False})
    run_id = run["dag_run_id"]
    quoted = urllib.request.quote(run_id, safe="")
    state = _wait(lambda: (s := _api(base, f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}")["state"]) in ("success", "failed") and s,
                  240, f"run {run_id} to finish")
    tis = _api(base, f"/api/v2/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances")["task_instances"]
    summary = sorted((t["task_id"], t["map_index"], t["state"]) for t in tis)
    assert state == "success", summary
    assert summary == [("finalize", -1, "success"), ("plan", -1, "success"), ("prepare_index", -1, "success"),
                       ("process_batch", 0, "success"), ("process_batch", 1, "success")]

    from pipeline import index as ix
    from pipeline.config import Settings, make_client

    client = make_client(Settings(opensearch_url=stack["url"]))
    client.indices.refresh(index=stack["index"])
    assert ix.count(client, stack["index"]) == 2
    assert dict(ix.facet(client, stack["index"], "topics")) == {"AI": 2, "Computer Vision": 1}

    # the nightly run the scheduler created on unpause (one, not a catch-up backlog) into its own alias
    runs = _wait(lambda: (r := _api(base, f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"])
                 and all(x["state"] in ("success", "failed") for x in r) and r, 240, "all runs to finish")
    assert sorted((r["run_type"], r["state"]) for r in runs) == [("manual", "success"), ("scheduled", "success")]
    client.indices.refresh(index=f"{stack['index']}-nightly")
    assert ix.count(client, f"{stack['index']}-nightly") == 2
