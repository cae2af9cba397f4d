"""A small run of the speed benchmark (``bench/bench_scale.py``) against the test node: the command the
docs give works, every path runs, the JSON holds the figures the table shows, and the pipeline's
outcomes account for every generated file. The figures themselves are not judged here (the full run
is not part of CI; docs/benchmarks.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

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
