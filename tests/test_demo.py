"""The README's first command, ``./scripts/demo``, against the test node: it ends with the run's summary
as finalize printed it (not the report's XCom echo) and the topic facet counts."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

from tests.conftest import ROOT, SAMPLE_SEEDS


def test_demo_prints_the_run_summary_and_the_facets(opensearch_url, client, tmp_path):
    index = f"demo-{uuid.uuid4().hex[:8]}"
    seeds = tmp_path / "seeds"
    shutil.copytree(SAMPLE_SEEDS, seeds)
    env = {
        **os.environ,
        "OPENSEARCH_URL": opensearch_url,
        "SEEDNEWS_INDEX": index,
        "SEED_DIR": str(seeds),
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
    }
    try:
        proc = subprocess.run(
            [str(ROOT / "scripts" / "demo")], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        out = proc.stdout
        summary = out[out.index("seednews run:") :]
        assert summary.startswith("seednews run: 2 seed files seen: 2 indexed\n  target index: " + index)
        assert "Returned value" not in out and "\\n" not in summary  # the XCom echo is not the summary
        assert f"2 documents in {index}; facet 'topics':\n  AI: 2\n  Computer Vision: 1" in out
    finally:
        client.indices.delete(index=f"{index}*", ignore_unavailable=True, expand_wildcards="all")
        for name in (index, f"{index}-ledger", f"{index}-deadletters", f"{index}-image-cache"):
            client.indices.delete_index_template(name=name, ignore=[404])
