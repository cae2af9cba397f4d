"""What the DAG hands between its tasks, and what it costs: XCom bytes per task and the run's wall.

    flock /tmp/seednews-bench.lock .venv/bin/python bench/bench_xcom.py --n 10000 --checkout . [--checkout OTHER]

For each checkout (its ``dags/`` and its ``pipeline`` package, through ``PYTHONPATH``), in the order given
and ``--rounds`` times (so a before and an after alternate and the machine's drift cancels), one
``airflow dags test seednews_index`` (images off, 4 batches, a fresh alias) on one generated corpus, against
$OPENSEARCH_URL, in a fresh Airflow home (SQLite). Prints one JSON line per run: wall seconds, the load
average, and the XCom table's bytes per task (``length(value)`` summed, and its largest row).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(home: Path, checkout: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(checkout / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "OPENSEARCH_URL": url,
        "PYTHONPATH": str(checkout),
    }


def xcom_bytes(db: Path) -> dict[str, dict]:
    """Per task: the XCom bytes the run stored (all rows) and its largest row."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, SUM(LENGTH(value)), MAX(LENGTH(value)), COUNT(*) FROM xcom GROUP BY task_id"
        )
        out = {task: {"bytes": total, "largest": largest, "rows": n} for task, total, largest, n in rows}
        for task, key, n in conn.execute("SELECT task_id, key, COUNT(*) FROM xcom GROUP BY task_id, key"):
            out[task].setdefault("keys", {})[key] = n
        return out


def one_run(checkout: Path, folder: Path, url: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix="bench-xcom-home-"))
    base = f"bsxcom-{uuid.uuid4().hex[:6]}"
    env = airflow_env(home, checkout, url)
    try:
        subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
        conf = {"seed_dir": str(folder), "skip_images": True, "index": base, "max_batches": 4}
        load = os.getloadavg()
        t0 = time.perf_counter()
        out = subprocess.run(
            [AIRFLOW, "dags", "test", "seednews_index", "-c", json.dumps(conf)],
            env=env,
            cwd=checkout,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
        log = out.stdout + out.stderr
        if out.returncode != 0 or "state=success" not in log:
            raise RuntimeError(f"airflow dags test failed:\n{log[-3000:]}")
        xcom = xcom_bytes(home / "airflow.db")
        total = sum(t["bytes"] for t in xcom.values())
        return {"checkout": str(checkout), "wall": round(wall, 2), "load": load, "xcom_total": total, "xcom": xcom}
    finally:
        from opensearchpy import OpenSearch

        OpenSearch(url).indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
        OpenSearch(url).indices.delete_index_template(name=base, ignore=[404])
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    from corpus import generate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--checkout", type=Path, action="append", required=True)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    url = os.environ.get("OPENSEARCH_URL") or "http://127.0.0.1:9200"
    with tempfile.TemporaryDirectory(prefix="bench-xcom-") as tmp:
        folder = Path(tmp) / "seeds"
        generate(folder, args.n, seed=args.seed)
        for _ in range(args.rounds):
            for checkout in args.checkout:
                print(json.dumps({"n": args.n, **one_run(checkout.resolve(), folder, url)}), flush=True)


if __name__ == "__main__":
    main()
