"""What the DAG's task processes import before they do any work: milliseconds and modules.

    .venv/bin/python bench/bench_imports.py --checkout . [--checkout OTHER] [--rounds 7]

For each checkout (its ``dags/`` and its ``pipeline`` package, through ``PYTHONPATH``), each scenario runs in
a fresh interpreter that has already imported ``airflow.sdk`` (Airflow's own cost, the same for every DAG):

  parse          the DAG file imported (what Airflow's DAG processor and every task process pay)
  <task>         after the DAG file, the modules the task's first call imports: its context
                 (``_task_context``: settings, options, tuning, sources, the OpenSearch client) and the
                 library code it runs (``TASK_MODULES``; a checkout without a module skips it)

Prints the median wall of the imports (ms) and the modules they added, per scenario and checkout, then the
20 heaviest modules of each task (``python -X importtime``, cumulative ms) for the first checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CONTEXT = ["pipeline.errors", "pipeline.config", "pipeline.run.options", "pipeline.run.tuning", "pipeline.sources"]
CONTEXT += ["pipeline.stores.client"]
TASK_MODULES: dict[str, list[str]] = {
    "plan": [*CONTEXT, "pipeline.run.flow", "pipeline.run.plan", "pipeline.run.handoff"],
    "process_batch": [
        *CONTEXT,
        "pipeline.run.flow",
        "pipeline.run.handoff",
        "pipeline.run.plan",
        "pipeline.run.parallel",
        "pipeline.run.writes",
    ],
    "finalize": [
        *CONTEXT,
        "pipeline.run.flow",
        "pipeline.run.report",
        "pipeline.run.bookkeeping",
        "pipeline.run.linking",
        "pipeline.run.artifact",
        "pipeline.run.alerts",
    ],
}

PROBE = """
import importlib, importlib.util, json, sys, time
import airflow.sdk
sys.path.insert(0, sys.argv[1])
wanted = json.loads(sys.argv[2])
n0, t0 = len(sys.modules), time.perf_counter()
import seednews_index
n1, t1 = len(sys.modules), time.perf_counter()
for name in wanted:
    if importlib.util.find_spec(name) is not None:
        importlib.import_module(name)
n2, t2 = len(sys.modules), time.perf_counter()
print(json.dumps({"parse_ms": (t1 - t0) * 1000, "parse_modules": n1 - n0, "ms": (t2 - t1) * 1000, "modules": n2 - n1}))
"""


def probe(checkout: Path, modules: list[str], importtime: bool = False) -> dict | str:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), "-c", PROBE, str(checkout / "dags")]
    # run from the checkout: ``-c`` puts the working directory first on sys.path, before PYTHONPATH
    out = subprocess.run(
        [*argv, json.dumps(modules)], env=env, cwd=checkout, capture_output=True, text=True, check=True
    )
    return out.stderr if importtime else json.loads(out.stdout.strip().splitlines()[-1])


def heaviest(stderr: str, after: str = "seednews_index", top: int = 20) -> list[tuple[float, str]]:
    """The modules imported after ``after``, by cumulative ms (from ``-X importtime``)."""
    rows, seen = [], False
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, cumulative, name = line.split(":", 1)[1].split("|")
        if seen:
            rows.append((int(cumulative) / 1000, name.rstrip()))
        seen = seen or name.strip() == after
    return sorted(rows, key=lambda r: -r[0])[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkout", type=Path, action="append", required=True)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    checkouts = [c.resolve() for c in args.checkout]
    results: dict[str, dict[str, dict[str, float]]] = {str(c): {} for c in checkouts}
    for task, modules in TASK_MODULES.items():
        runs: dict[str, list[dict]] = {str(c): [] for c in checkouts}
        for _ in range(args.rounds):  # checkouts alternate: the machine's drift cancels
            for c in checkouts:
                got = probe(c, modules)
                assert isinstance(got, dict)
                runs[str(c)].append(got)
        for c, rows in runs.items():
            results[c]["parse"] = {
                "ms": statistics.median(r["parse_ms"] for r in rows),
                "modules": rows[0]["parse_modules"],
            }
            results[c][task] = {"ms": statistics.median(r["ms"] for r in rows), "modules": rows[0]["modules"]}
    print(json.dumps({"load": os.getloadavg(), "results": results}, indent=1))
    for task, modules in TASK_MODULES.items():
        got = probe(checkouts[0], modules, importtime=True)
        assert isinstance(got, str)
        print(f"\n{task} ({checkouts[0]}): heaviest imports after the DAG file, cumulative ms")
        for ms, name in heaviest(got):
            print(f"  {ms:7.1f} {name}")


if __name__ == "__main__":
    main()
