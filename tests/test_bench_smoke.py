"""A small run of the speed benchmark (``bench/bench_scale.py``) against the test node: the command the
docs give works, every path runs, the JSON holds the figures the table shows, and the pipeline's
outcomes account for every generated file. The figures themselves are not judged here (the full run
is not part of CI; docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_bench_scale_smoke_run_writes_the_table_and_json(opensearch_url, tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_scale.py"), "--n", "200", "--naive-n", "40", "--json", str(out)],
        env={**os.environ, "OPENSEARCH_URL": opensearch_url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    (res,) = result["results"]
    rows = res["rows"]
    assert set(rows) == {"raw", "pipeline", "naive", "rerun", "rerun_1pct"}
    for name, row in rows.items():
        assert row["wall"] > 0 and row["rate"] > 0 and row["cpu"] > 0 and row["rss_mb"] > 0, name
        assert "node_cpu" in row, name
    assert sum(rows["pipeline"]["counts"].values()) == 200  # one outcome per generated file
    assert rows["pipeline"]["counts"]["indexed"] == rows["raw"]["docs"]  # both paths index the same articles
    assert rows["rerun"]["counts"] == {"unchanged": 200}
    touched = rows["rerun_1pct"]["touched"]
    assert touched == 2 and rows["rerun_1pct"]["counts"].get("unchanged") == 200 - touched
    assert rows["naive"]["extrapolated_from"] == 40
    assert "linking related articles (finalize's links stage" in proc.stdout  # docs/benchmarks.md quotes it
    for line in ("| path | wall s | files/s |", "| target | measured | ok |", "end-to-end >= 0.5 x raw"):
        assert line in proc.stdout and line in result["table"]


DEPLOYED_ROWS = {
    "raw",
    "script",
    "cli-folder",
    "cli-folder-night",
    "flow-run",
    "stack",
    "stack-night",
    "cli-s3",
    "cli-s3-night",
    "celery-1",
    "celery-2",
    "celery-night",
}
NIGHTS = ("cli-folder-night", "stack-night", "cli-s3-night", "celery-night")


def test_bench_deployed_smoke_runs_every_path_and_its_no_change_night(opensearch_url, tmp_path):
    """``bench/bench_deployed.py`` on 24 files: every deployed path (the CLI as a process, the LocalExecutor and
    Celery stacks through the REST API, the CLI on loopback S3, the afternoon script, raw ``_bulk``) gives a row
    with sane figures, the same articles reach every index, and each no-change night writes nothing."""
    pytest.importorskip("boto3")
    out = tmp_path / "deployed.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_deployed.py"), "--n", "24", "--s3-n", "24", "--json", str(out)],
        env={**os.environ, "OPENSEARCH_URL": opensearch_url},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert set(rows) == DEPLOYED_ROWS
    for name, row in rows.items():
        assert row["n"] == 24 and row["wall"] > 0 and row["rate"] > 0, name
        assert (row["cpu_ms"] > 0 or name == "raw") and row["node_ms"] >= 0 and row["rss_mb"] > 0, name
        if name != "raw":
            assert row["docs"] > 0 and row["index_ops"] >= 0, name
    assert all(rows[k]["store_ms"] > 0 for k in ("cli-s3", "celery-1", "celery-2"))  # SeaweedFS served them
    docs = {rows[k]["docs"] for k in DEPLOYED_ROWS - {"raw"}}
    assert docs == {rows["raw"]["counts"]["indexed"]}  # every path indexed the same articles
    for night in NIGHTS:
        assert rows[night]["index_ops"] == 0, night  # nothing changed: nothing written
    assert rows["cli-folder-night"]["counts"] == {"unchanged": 24}
    assert result["machine"]["cores"] and result["machine"]["memory_gb"] > 0 and len(result["loadavg_start"]) == 3
    for line in ("| path | N | wall s | files/s |", "| target | measured | |", "no-change night <= 5% of the full run"):
        assert line in proc.stdout and line in result["table"]
