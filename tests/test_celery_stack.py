"""The CeleryExecutor deployment (``./scripts/stack up --executor celery --workers 2``), all real: Redis
(Debian's package) as broker, PostgreSQL as metadata DB and Celery result backend, two ``airflow celery
worker`` processes with their own working directories, HOME and temp dirs, seeds in object storage (SeaweedFS
on loopback, ``devtools.s3server``: no seed folder the workers share) and the test OpenSearch node.

- A run with more batches than workers (4 batches, 2 workers with one slot each) spreads over both workers
  (each task instance's ``hostname``) and indexes every article exactly once; the ledger has one entry per seed.
- One worker is SIGKILLed (its whole process group: the worker, its pool and the task it runs) while it runs
  a batch whose first chunk is already in OpenSearch. The scheduler sees the task's heartbeat stop, Airflow
  retries it on the other worker, and the run ends in success with every article exactly once and the ledger
  matching the index.

Shortened for the test through env (the stack passes ``AIRFLOW__*`` through): heartbeat timeout 15 s checked
every 3 s, and ``SEEDNEWS_CHUNK_SEEDS`` so that a batch writes in several chunks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import pytest

from tests.conftest import ROOT, SAMPLE_SEEDS
from tests.stackkit import api, free_port, wait_until

sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "scripts"))

import stack_celery
from corpus import generate

DAG_ID = "seednews_index"
N_SEEDS = 800
BATCHES = 4
CHUNK = 50
HEARTBEAT_TIMEOUT = 15
WORKERS = ("worker-1", "worker-2")
RUN_TIMEOUT = 240


def _tis(stack, run_id: str) -> list[dict]:
    q = urllib.parse.quote(run_id, safe="")
    return api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances")["task_instances"]


def _finished(stack, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
    q = urllib.parse.quote(run_id, safe="")
    return wait_until(
        lambda: (s := api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["state"]) in ("success", "failed") and s,
        timeout,
        f"run {run_id} to finish",
    )


def _trigger(stack, index: str) -> str:
    conf = {"seed_dir": stack["seed_url"], "index": index, "skip_images": True, "max_batches": BATCHES}
    return api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})["dag_run_id"]


def _client(url):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    return make_client(Settings(opensearch_url=url))


def _exactly_once(stack, index: str) -> None:
    """Every article once in the index, one ledger entry per seed, and the ledger's indexed ids are the index."""
    client = _client(stack["url"])
    client.indices.refresh(index=f"{index}*")
    ids = _all_ids(client, index)
    assert len(ids) == len(set(ids)), len(ids) - len(set(ids))  # no article twice
    assert set(ids) == stack["articles"], (len(ids), len(stack["articles"]))  # and every article
    ledger = _all_sources(client, f"{index}-ledger")
    assert len(ledger) == N_SEEDS, len(ledger)
    assert len({(e["root"], e["path"]) for e in ledger}) == N_SEEDS  # one entry per seed
    states: dict[str, int] = {}
    for e in ledger:
        states[e["state"]] = states.get(e["state"], 0) + 1
    assert set(states) <= {"indexed", "duplicate", "quarantined"}, states
    assert states["quarantined"] == stack["broken"], states
    indexed = [e["doc_id"] for e in ledger if e["state"] == "indexed"]
    assert sorted(indexed) == sorted(ids)  # the ledger says which file carries each article, once


def _article_ids(folder) -> set[str]:
    """The ids the corpus must end up as: parsed and normalized here, in one process, from the local copy."""
    from pipeline.run.options import RunOptions
    from pipeline.run.report import RunReport
    from pipeline.run.seedpath import build_documents
    from pipeline.sources import open_source
    from pipeline.types import SeedFile

    options = RunOptions(seed_dir=str(folder), check_images=False)
    source = open_source(str(folder))
    listed = [s for s in source.walk() if isinstance(s, SeedFile)]
    seeds = [h for s in listed if isinstance(h := source.hash(s, options.parse.max_bytes), SeedFile)]
    docs, _ = build_documents(seeds, options, RunReport())
    return {d.id for d in docs}


def _all_ids(client, index: str) -> list[str]:
    return [h["_id"] for h in _scan(client, index, {"_source": False})]


def _all_sources(client, index: str) -> list[dict]:
    return [h["_source"] for h in _scan(client, index, {})]


def _scan(client, index: str, body: dict) -> list[dict]:
    from opensearchpy.helpers import scan

    return list(scan(client, index=index, query={"query": {"match_all": {}}, **body}, size=1000))


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, opensearch_url, s3_server):
    home = tmp_path_factory.mktemp("celery_stack")
    info = generate(home / "corpus", N_SEEDS, seed=7)
    s3 = s3_server.client()
    bucket = f"celery-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    for name in info.files:
        s3.put_object(Bucket=bucket, Key=f"seeds/{name}", Body=(home / "corpus" / name).read_bytes())
    for p in sorted(SAMPLE_SEEDS.iterdir()):  # what a nightly run would read (none runs at the first start)
        if p.is_file():
            s3.put_object(Bucket=bucket, Key=f"nightly/{p.name}", Body=p.read_bytes())
    index = f"celery-{uuid.uuid4().hex[:8]}"
    password = f"pw-{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        **s3_server.env,  # the workers read S3 with these (no aws_default connection)
        "SEEDNEWS_STACK_HOME": str(home / "stack"),
        "SEEDNEWS_AIRFLOW_PORT": str(free_port()),
        "SEEDNEWS_AIRFLOW_PASSWORD": password,
        "OPENSEARCH_URL": opensearch_url,
        "SEEDNEWS_SEED_DIR": f"s3://{bucket}/nightly",
        "SEEDNEWS_INDEX": f"{index}-nightly",
        "SEEDNEWS_CHUNK_SEEDS": str(CHUNK),
        "SEEDNEWS_MIN_BATCH_FILES": "1",  # small runs in several batches: spread over the workers
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
    }
    env.pop("SEEDNEWS_REPORT_DIR", None)  # each worker writes reports in its own folder
    cmd = [
        str(ROOT / "scripts" / "stack"),
        "up",
        "--executor",
        "celery",
        "--workers",
        str(len(WORKERS)),
        "--concurrency",
        "1",
    ]
    t0 = time.monotonic()
    up = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    started = time.monotonic() - t0
    try:
        assert up.returncode == 0, (up.stdout + up.stderr)[-5000:]
        print(f"\ncelery stack up in {started:.1f}s:\n{up.stdout}")
        state = json.loads((home / "stack" / "stack.json").read_text())
        base = state["base_url"]
        req = urllib.request.Request(
            f"{base}/auth/token",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"username": "admin", "password": password}).encode(),
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            tok = json.loads(resp.read())["access_token"]
        stack = {
            "base": base,
            "token": tok,
            "home": home / "stack",
            "state": state,
            "url": opensearch_url,
            "seed_url": f"s3://{bucket}/seeds",
            "index": index,
            "env": env,
            "articles": _article_ids(home / "corpus"),
            "broken": info.broken,
        }
        # a first start waits for the next 02:00 (the DAG's timetable): no run holds the workers' slots
        assert api(stack, f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"] == []
        yield stack
    finally:
        subprocess.run([str(ROOT / "scripts" / "stack"), "down", "--purge"], env=env, capture_output=True, timeout=180)
        client = _client(opensearch_url)
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        for name in (f"{index}-a", f"{index}-b", f"{index}-nightly"):
            client.indices.delete_index_template(name=name, ignore=[404])


def test_stack_runs_the_celery_executor_with_separate_workers(celery_stack):
    home = celery_stack["home"]
    env = subprocess.run(
        [str(ROOT / "scripts" / "stack"), "env"], env=celery_stack["env"], capture_output=True, text=True, check=True
    ).stdout
    assert "CeleryExecutor" in env and "db+postgresql://" in env
    assert celery_stack["env"]["SEEDNEWS_AIRFLOW_PASSWORD"] not in (home / "stack.json").read_text()
    for name in WORKERS:
        wdir = home / "workers" / name
        assert (wdir / "home").is_dir() and (wdir / "tmp").is_dir()
        pid = int((home / "run" / f"celery-{name}.pid").read_text())
        assert os.readlink(f"/proc/{pid}/cwd") == str(wdir)  # (its environ is overwritten by its process title)
        wenv, _ = stack_celery.worker_env({"HOME": "/root"}, home, name)
        assert (wenv["HOME"], wenv["TMPDIR"], wenv["SEEDNEWS_WORKER_NAME"]) == (
            str(wdir / "home"),
            str(wdir / "tmp"),
            name,
        )
    redis = home / "redis" / "redis.conf"
    assert oct(redis.stat().st_mode & 0o777) == "0o600" and "bind 127.0.0.1" in redis.read_text()


def test_batches_spread_over_both_workers_and_every_article_lands_once(celery_stack):
    index = f"{celery_stack['index']}-a"
    t0 = time.monotonic()
    run_id = _trigger(celery_stack, index)
    state = _finished(celery_stack, run_id)
    took = time.monotonic() - t0
    tis = _tis(celery_stack, run_id)
    assert state == "success", [(t["task_id"], t["map_index"], t["state"]) for t in tis]
    batches = [t for t in tis if t["task_id"] == "process_batch"]
    assert len(batches) == BATCHES
    hosts = {t["hostname"] for t in batches}
    print(
        f"\n{N_SEEDS} seeds from S3 in {BATCHES} batches on {sorted(hosts)}: run took {took:.1f}s; "
        + ", ".join(f"batch {t['map_index']} on {t['hostname']} {t['duration']:.1f}s" for t in batches)
    )
    assert hosts == set(WORKERS)
    assert {t["hostname"] for t in tis} <= set(WORKERS)
    _exactly_once(celery_stack, index)


def test_a_worker_killed_mid_batch_is_retried_elsewhere_and_nothing_is_lost_or_doubled(celery_stack):
    index = f"{celery_stack['index']}-b"
    client = _client(celery_stack["url"])
    home = celery_stack["home"]
    run_id = _trigger(celery_stack, index)

    def victim():
        """A worker running a batch whose first chunk OpenSearch already holds (so the kill lands mid-batch)."""
        running = [
            t
            for t in _tis(celery_stack, run_id)
            if t["task_id"] == "process_batch" and t["state"] == "running" and t["hostname"] in WORKERS
        ]
        if not running:
            return None
        client.indices.refresh(index=f"{index}*", ignore_unavailable=True)
        have = client.count(index=index, ignore_unavailable=True)["count"] if client.indices.exists(index=index) else 0
        return running[-1] if 0 < have < len(celery_stack["articles"]) else None

    ti = wait_until(victim, 180, "a batch task running with a chunk written", step=0.3)
    name = ti["hostname"]
    pid = int((home / "run" / f"celery-{name}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)  # the worker, its pool and the task: a lost machine
    killed_at = time.monotonic()
    state = _finished(celery_stack, run_id, timeout=RUN_TIMEOUT + 120)
    took = time.monotonic() - killed_at
    tis = _tis(celery_stack, run_id)
    assert state == "success", [(t["task_id"], t["map_index"], t["state"], t["hostname"]) for t in tis]
    again = next(t for t in tis if t["task_id"] == "process_batch" and t["map_index"] == ti["map_index"])
    survivor = next(w for w in WORKERS if w != name)
    print(
        f"\nkilled {name} during batch {ti['map_index']}; retried as try {again['try_number']} on "
        f"{again['hostname']}; run ended {took:.1f}s after the kill"
    )
    assert again["try_number"] >= 2 and again["hostname"] == survivor
    _exactly_once(celery_stack, index)
