"""A REAL three-node OpenSearch cluster on 127.0.0.1 (``devtools.cluster``): a node SIGKILLed while a
multi-batch run writes (a data node holding the article primary, then the elected cluster manager), and
a rolling restart while runs keep writing, each end with every article exactly once and a ledger that
says ``indexed`` for every file.

The pipeline runs as a subprocess (``python -m pipeline run ...``) with ``OPENSEARCH_URL`` listing every
node, the node to be lost FIRST; assertions talk plain HTTP to a live node. One cluster serves the module
(started once, ~1.5-2 min on the shared 2-core machine); each test leaves it green with all nodes.

Figures (cluster start, run times with and without a node loss, recovery) are printed at the end of the
module (``pytest -s``) and written to ``artifacts/cluster-figures.json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from devtools import cluster as dc
from devtools import localnode
from pipeline.stages.normalize import document_id
from tests import faultkit as fk

ROOT = Path(__file__).resolve().parent.parent
QUIET = lambda _msg: None  # noqa: E731
FIGURES: dict[str, Any] = {}
SEED = fk.SEED


# ----------------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def cluster():
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(localnode.ENV_OPENSEARCH_URL, raising=False)  # nodes we may kill: our own
        started = time.monotonic()
        c = dc.start_cluster(3, progress=QUIET)
        FIGURES["cluster_start_s"] = round(time.monotonic() - started, 1)
        try:
            yield c
        finally:
            c.stop()
            _publish()


def _publish() -> None:
    if not FIGURES:
        return
    out = ROOT / "artifacts" / "cluster-figures.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(FIGURES, indent=2) + "\n")
    print("\ncluster figures:", json.dumps(FIGURES, indent=2))


def heal(c: dc.LocalCluster) -> None:
    """Every node running and the cluster green (a test that failed half-way must not poison the next)."""
    for node in c.nodes:
        if not node.is_running():
            c.start_node(node.number)
    c.request(
        "PUT",
        "/_cluster/settings",
        {"persistent": {"cluster.routing.allocation.enable": None, "cluster.routing.allocation.exclude._name": None}},
    )
    c.wait_for()


def write_seeds(folder: Path, n: int, tag: str) -> list[str]:
    """``n`` seed files ``<tag>-00000.txt``... (distinct article URLs); their document ids."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i in range(n):
        (folder / f"{tag}-{i:05d}.txt").write_text(SEED.format(i=i, tag=tag), encoding="utf-8")
        ids.append(document_id(f"https://example.com/a/{tag}/{i}"))
    return ids


class Run:
    """``python -m pipeline run`` against the cluster (every node listed, ``first`` at the head)."""

    def __init__(
        self,
        c: dc.LocalCluster,
        seed_dir: Path,
        index: str,
        logs: Path,
        *,
        batches: int = 4,
        first: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        urls = c.urls
        if first is not None:
            urls = [c.node(first).url] + [u for u in urls if u != c.node(first).url]
        environ = {
            **os.environ,
            "OPENSEARCH_URL": ",".join(urls),
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        environ.pop("SEEDNEWS_INDEX", None)
        logs.mkdir(parents=True, exist_ok=True)
        stamp = time.monotonic_ns()
        self.out_path, self.err_path = logs / f"run-{stamp}.out", logs / f"run-{stamp}.err"
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pipeline",
                    "run",
                    str(seed_dir),
                    "--skip-images",
                    "--batches",
                    str(batches),
                    "--index",
                    index,
                ],
                cwd=ROOT,
                env=environ,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started = time.monotonic()
        self.ended: float | None = None

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 600) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise
        self.ended = time.monotonic()
        return rc

    @property
    def seconds(self) -> float:
        return round((self.ended or time.monotonic()) - self.started, 1)

    @property
    def output(self) -> str:
        return (
            self.out_path.read_text(errors="replace") + "\n--- stderr ---\n" + self.err_path.read_text(errors="replace")
        )[-4000:]


def live_url(c: dc.LocalCluster) -> str:
    return c.running()[0].url


def get(c: dc.LocalCluster, path: str, body: Any = None) -> Any:
    status, answer = fk.http_json("POST" if body is not None else "GET", live_url(c) + path, body)
    assert status == 200, (path, status, answer)
    return answer


def article_holders(c: dc.LocalCluster, index: str) -> dict[str, str]:
    """``{"p": node name, "r": node name}`` for the article index's one shard."""
    rows = get(c, f"/_cat/shards/{index}-v*?format=json&h=index,prirep,state,node")
    return {r["prirep"]: r["node"] for r in rows if r["state"] == "STARTED" and "-ledger-" not in r["index"]}


def assert_exactly_once(c: dc.LocalCluster, index: str, seed_dir: Path, ids: list[str]) -> None:
    """count == N distinct articles, every id present, no id twice, one concrete index behind the alias,
    a ledger saying ``indexed`` for each of the N files and nothing else, no dead letter."""
    n = len(ids)
    assert len(set(ids)) == n
    get(c, f"/{index},{index}-ledger/_refresh", {})
    behind = get(c, f"/_alias/{index}")
    assert len(behind) == 1, behind
    assert sorted(get(c, f"/_cat/indices/{index}-v*?format=json&h=index"), key=str) == [{"index": next(iter(behind))}]
    assert get(c, f"/{index}/_count")["count"] == n
    dups = get(
        c, f"/{index}/_search", {"size": 0, "aggs": {"d": {"terms": {"field": "id", "min_doc_count": 2, "size": 10}}}}
    )
    assert dups["aggregations"]["d"]["buckets"] == [], "an article is in the index twice"
    found: set[str] = set()
    for i in range(0, n, 2000):
        docs = get(c, f"/{index}/_mget?_source=false", {"ids": ids[i : i + 2000]})["docs"]
        found |= {d["_id"] for d in docs if d.get("found")}
    assert found == set(ids), f"{n - len(found)} articles missing"
    root = str(seed_dir.resolve())
    states = get(
        c,
        f"/{index}-ledger/_search",
        {"size": 0, "query": {"term": {"root": root}}, "aggs": {"s": {"terms": {"field": "state"}}}},
    )
    assert {b["key"]: b["doc_count"] for b in states["aggregations"]["s"]["buckets"]} == {"indexed": n}
    # the ledger's entries carry exactly these ids, each once (exact: terms, not the approximate cardinality)
    twice = get(
        c,
        f"/{index}-ledger/_search",
        {
            "size": 0,
            "query": {"term": {"root": root}},
            "aggs": {"d": {"terms": {"field": "doc_id", "min_doc_count": 2}}},
        },
    )
    assert twice["aggregations"]["d"]["buckets"] == [], "two ledger entries claim one article"
    carried = sum(
        get(
            c,
            f"/{index}-ledger/_count",
            {"query": {"bool": {"filter": [{"term": {"root": root}}, {"terms": {"doc_id": ids[i : i + 5000]}}]}}},
        )["count"]
        for i in range(0, n, 5000)
    )
    assert carried == n
    status, answer = fk.http_json("GET", live_url(c) + f"/{index}-deadletter/_count")
    assert status == 404 or answer["count"] == 0, answer


def replicas_agree(c: dc.LocalCluster, index: str, n: int) -> None:
    """After recovery both copies hold exactly the N articles (the restarted node brought nothing stale back)."""
    for pref in ("_primary", "_replica"):
        assert get(c, f"/{index}/_count?preference={pref}")["count"] == n, pref


# ----------------------------------------------------------------------------- tests
N, BATCHES = 6000, 4


def test_baseline_run_on_the_cluster(cluster, tmp_path):
    """No fault: the reference time, and one replica per index on a cluster (auto-expand)."""
    heal(cluster)
    seed_dir = tmp_path / "seeds"
    ids = write_seeds(seed_dir, N, "base")
    run = Run(cluster, seed_dir, "cl-base", tmp_path / "logs", batches=BATCHES)
    assert run.wait() == 0, run.output
    assert f"{N} indexed" in run.output
    FIGURES["run_without_fault_s"] = run.seconds
    assert_exactly_once(cluster, "cl-base", seed_dir, ids)
    rows = get(cluster, "/_cat/indices/cl-base*?format=json&h=index,rep,health")
    assert {r["rep"] for r in rows} == {"1"} and {r["health"] for r in rows} == {"green"}, rows


def _held(c: dc.LocalCluster, index: str, name: str) -> str:
    holders = article_holders(c, index)
    return "primary" if holders.get("p") == name else ("replica" if holders.get("r") == name else "none")


@pytest.mark.parametrize("victim", ["data", "manager"])
def test_node_sigkilled_while_a_run_writes(cluster, tmp_path, victim):
    """SIGKILL one node in batch 2 of 4 while the run writes; that node is FIRST in OPENSEARCH_URL.

    - "data": a node that is not the cluster manager and holds the article index's primary (the manager is
      excluded from allocation for this run, so both copies of every index live on the two others);
    - "manager": the elected cluster manager, holding a copy of every index (one other node excluded), so
      an election comes on top of the lost copies.

    The run ends OK on its own (exit 0, no re-run needed); every article exactly once; the next run finds
    everything unchanged; after the node is back and the exclusion lifted both copies agree."""
    heal(cluster)
    index = f"cl-kill-{victim}"
    seed_dir = tmp_path / "seeds"
    ids = write_seeds(seed_dir, N, f"kill{victim}")
    per_batch = N // BATCHES
    manager = cluster.manager_index()
    others = [n.number for n in cluster.nodes if n.number != manager]
    excluded = manager if victim == "data" else others[1]
    cluster.request(
        "PUT",
        "/_cluster/settings",
        {"persistent": {"cluster.routing.allocation.exclude._name": cluster.node(excluded).name}},
    )
    try:
        target = others[0] if victim == "data" else manager  # refined below once the index exists
        run = Run(cluster, seed_dir, index, tmp_path / "logs", batches=BATCHES, first=target)
        seen: list[int] = []
        assert fk.wait_until(
            lambda: (
                seen.append(fk.indexing_total(live_url(cluster), index)) or seen[-1] > per_batch or not run.running()
            ),
            timeout=300,
            interval=0.05,
        )
        assert run.running(), f"the run ended before the kill:\n{run.output}"
        if victim == "data":
            names = {n.name: n.number for n in cluster.nodes}
            target = names[article_holders(cluster, index)["p"]]
            assert target != manager
        killed = cluster.node(target).name
        held = _held(cluster, index, killed)
        assert held == "primary" if victim == "data" else held != "none", held
        cluster.kill(target)
        killed_at = time.monotonic()
        left_after = new_manager_after = None
        while time.monotonic() - killed_at < 120 and (
            left_after is None or (victim == "manager" and new_manager_after is None)
        ):
            h = cluster.health()
            if left_after is None and h and h.get("number_of_nodes") == 2:
                left_after = round(time.monotonic() - killed_at, 1)
            name = cluster.manager_name() if victim == "manager" else None
            if new_manager_after is None and name and name != killed:
                new_manager_after = round(time.monotonic() - killed_at, 1)
            time.sleep(0.1)
        rc = run.wait(timeout=900)
        after_kill = round(time.monotonic() - killed_at, 1)
        assert rc == 0, f"a lost node failed the run (exit {rc}):\n{run.output}"
        assert f"{N} indexed" in run.output, run.output
        assert_exactly_once(cluster, index, seed_dir, ids)

        again = Run(cluster, seed_dir, index, tmp_path / "logs", batches=BATCHES)  # the next night: a no-op
        assert again.wait() == 0, again.output
        assert f"{N} unchanged" in again.output, again.output
    finally:
        cluster.request("PUT", "/_cluster/settings", {"persistent": {"cluster.routing.allocation.exclude._name": None}})

    back = time.monotonic()
    joined = cluster.start_node(target)
    green = cluster.wait_for()
    replicas_agree(cluster, index, N)
    assert_exactly_once(cluster, index, seed_dir, ids)
    FIGURES[f"kill_{victim}"] = {
        "killed": killed,
        "was_manager": target == manager,
        "article_copy_on_killed_node": held,
        "index_total_at_kill": seen[-1],
        "node_left_seen_after_s": left_after,
        "new_manager_elected_after_s": new_manager_after,
        "run_s": run.seconds,
        "run_end_after_kill_s": after_kill,
        "rejoin_s": round(joined, 1),
        "green_after_rejoin_s": round(green, 1),
        "recovered_s": round(time.monotonic() - back, 1),
        "rerun_no_change_s": again.seconds,
    }


def test_rolling_restart_while_runs_keep_writing(cluster, tmp_path):
    """Every node restarted in turn (devtools.cluster.rolling_restart: allocation to primaries, flush,
    SIGTERM, start, allocation back, wait for green; the manager last) while nightly-style runs follow one
    another on a growing folder, with the replica count pinned (SEEDNEWS_REPLICAS=1). Every run exits 0,
    every node stop falls inside a run, and the end state is every article exactly once."""
    heal(cluster)
    index, per_round = "cl-rolling", 1000
    seed_dir = tmp_path / "seeds"
    ids: list[str] = []
    events: list[tuple[float, str, int]] = []
    result: dict[str, Any] = {}

    current: list[Run] = []

    def on_event(event: str, number: int) -> None:
        if event == "stopping":  # take the node away in the middle of a run, not between two
            fk.wait_until(
                lambda: bool(current) and current[-1].running() and time.monotonic() - current[-1].started > 2,
                timeout=300,
                interval=0.05,
            )
        events.append((time.monotonic(), event, number))

    def restart() -> None:
        try:
            result["timings"] = cluster.rolling_restart(on_event=on_event)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            result["error"] = exc

    env = {"SEEDNEWS_REPLICAS": "1"}
    ids += write_seeds(seed_dir, per_round, "r0")
    first = Run(cluster, seed_dir, index, tmp_path / "logs", batches=2, env=env)
    assert first.wait() == 0, first.output
    runs = [first]
    started = time.monotonic()
    worker = threading.Thread(target=restart, name="rolling-restart", daemon=True)
    worker.start()
    k = 0
    while worker.is_alive() and time.monotonic() - started < 1200:
        k += 1
        ids += write_seeds(seed_dir, per_round, f"r{k}")
        run = Run(cluster, seed_dir, index, tmp_path / "logs", batches=2, env=env)
        current.append(run)
        rc = run.wait(timeout=900)
        runs.append(run)
        assert rc == 0, f"run {k} failed during the rolling restart (exit {rc}):\n{run.output}"
    worker.join(timeout=60)
    rolling_s = round(time.monotonic() - started, 1)
    assert "error" not in result, result.get("error")
    assert not worker.is_alive(), "the rolling restart did not finish"
    last = Run(cluster, seed_dir, index, tmp_path / "logs", batches=2, env=env)
    assert last.wait() == 0, last.output
    assert f"{len(ids)} unchanged" in last.output, last.output

    stops = [(t, n) for t, e, n in events if e == "stopping"]
    assert sorted(n for _, n in stops) == [1, 2, 3]
    for t, number in stops:
        assert any(r.started <= t <= (r.ended or 0) for r in runs[1:]), f"node {number} was stopped between runs"
    rows = get(cluster, f"/_cat/indices/{index}*?format=json&h=index,rep,health")
    assert {r["rep"] for r in rows} == {"1"} and {r["health"] for r in rows} == {"green"}, rows
    replicas_agree(cluster, index, len(ids))
    assert_exactly_once(cluster, index, seed_dir, ids)
    FIGURES["rolling_restart"] = {
        "total_s": rolling_s,
        "per_node": result["timings"],
        "runs_during": len(runs) - 1,
        "articles": len(ids),
        "run_s": [r.seconds for r in runs[1:]],
    }
