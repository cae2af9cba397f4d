"""Throughput of the CeleryExecutor stack with 1 and 2 workers on one generated corpus in object storage.

    .venv/bin/python bench/bench_celery.py --n 8000 [--batches 4] [--concurrency 1] [--json out.json]

One stack (``./scripts/stack up --executor celery``: Redis, PostgreSQL, api-server, scheduler, dag-processor,
triggerer) is brought up once per worker count, seeds come from the loopback S3 server (``devtools.s3server``),
OpenSearch is ``$OPENSEARCH_URL`` or the local dev node. Each configuration indexes the same corpus into a fresh
alias (every file new, images off), triggered through the REST API.

Printed per configuration: wall time from trigger to success and seeds/s; the batch tasks' own durations and
where they ran; the time tasks waited in the queue; and the CPU seconds each part of the machine spent during
the run (workers incl. their task processes, the Airflow services, OpenSearch, SeaweedFS, Redis, PostgreSQL)
next to what 2 cores could give in that wall time. The load average is recorded with every table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import generate  # noqa: E402

from devtools import s3server  # noqa: E402

DAG_ID = "seednews_index"
STACK = str(ROOT / "scripts" / "stack")
CLK_TCK = os.sysconf("SC_CLK_TCK")
RUN_TIMEOUT = 1800.0


def _cpu_of_tree(pid: int) -> float:
    """CPU seconds of a process and its reaped children (task processes are reaped by their worker)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / CLK_TCK  # utime stime cutime cstime


def _pids_by_session(sid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[3]) == sid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def _session_cpu(sid: int) -> float:
    """Every live process of a session (its own time plus its reaped children's)."""
    return sum(_cpu_of_tree(p) for p in _pids_by_session(sid))


def _cpu_of_command(word: str) -> float:
    """Every live process whose command line contains ``word`` (postgres, the OpenSearch JVM, weed)."""
    total = 0.0
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if word in Path(d, "cmdline").read_bytes().decode(errors="replace"):
                    total += _cpu_of_tree(int(d.name))
            except OSError:
                continue
    return total


def _machine_busy() -> tuple[float, float]:
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return (sum(parts) - idle) / CLK_TCK, sum(parts) / CLK_TCK


class Stack:
    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env = home, env
        self.base = self.token = ""

    def up(self, workers: int, concurrency: int, executor: str = "celery") -> float:
        """``./scripts/stack up`` (``executor`` celery: ``workers`` x ``concurrency`` slots; local: the
        LocalExecutor, workers ignored), then an API token; the seconds it took."""
        t0 = time.monotonic()
        argv = [STACK, "up", "--executor", executor]
        if executor == "celery":
            argv += ["--workers", str(workers), "--concurrency", str(concurrency)]
        out = subprocess.run(
            argv,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode:
            raise SystemExit(f"stack up failed:\n{(out.stdout + out.stderr)[-3000:]}")
        state = json.loads((self.home / "stack.json").read_text())
        self.base = state["base_url"]
        req = urllib.request.Request(
            f"{self.base}/auth/token",
            method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"username": "admin", "password": self.env["SEEDNEWS_AIRFLOW_PASSWORD"]}).encode(),
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            self.token = json.loads(resp.read())["access_token"]
        return time.monotonic() - t0

    def down(self, purge: bool = False) -> None:
        subprocess.run(
            [STACK, "down", *(["--purge"] if purge else [])],
            env=self.env,
            capture_output=True,
            timeout=300,
            check=False,
        )

    def api(self, path: str, method: str = "GET", body: dict | None = None) -> dict:
        req = urllib.request.Request(
            f"{self.base}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def pid(self, name: str) -> int:
        try:
            return int((self.home / "run" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return 0

    def wait_idle(self) -> None:
        """No run active (the nightly run that unpausing starts must not share the measured window)."""
        deadline = time.monotonic() + RUN_TIMEOUT
        while time.monotonic() < deadline:
            runs = self.api(f"/api/v2/dags/{DAG_ID}/dagRuns?state=queued&state=running")["dag_runs"]
            if not runs:
                return
            time.sleep(2)
        raise SystemExit("a run is still active")


def _parse(ts: str | None) -> float:
    return datetime.fromisoformat(ts).timestamp() if ts else 0.0


def measure(stack: Stack, workers: int, args, seed_url: str) -> dict:
    names = [f"worker-{i}" for i in range(1, workers + 1)]
    parts = {
        "workers": lambda: sum(_session_cpu(stack.pid(f"celery-{n}")) for n in names),
        "airflow services": lambda: sum(
            _session_cpu(stack.pid(s)) for s in ("api-server", "scheduler", "dag-processor", "triggerer")
        ),
        "opensearch": lambda: _cpu_of_command("org.opensearch.bootstrap.OpenSearch"),
        "seaweedfs": lambda: _cpu_of_command("weed"),
        "redis": lambda: _cpu_of_tree(stack.pid("redis")),
        "postgresql": lambda: _cpu_of_command("postgres:"),
    }
    before = {k: f() for k, f in parts.items()}
    busy0, total0 = _machine_busy()
    index = f"bench-celery-{uuid.uuid4().hex[:8]}"
    conf = {"seed_dir": seed_url, "index": index, "skip_images": True, "max_batches": args.batches}
    t0 = time.monotonic()
    run_id = stack.api(f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})["dag_run_id"]
    q = urllib.parse.quote(run_id, safe="")
    while (state := stack.api(f"/api/v2/dags/{DAG_ID}/dagRuns/{q}")["state"]) not in ("success", "failed"):
        if time.monotonic() - t0 > RUN_TIMEOUT:
            raise SystemExit(f"run {run_id} did not finish in {RUN_TIMEOUT:.0f}s")
        time.sleep(0.5)
    wall = time.monotonic() - t0
    busy1, total1 = _machine_busy()
    cpu = {k: round(f() - before[k], 1) for k, f in parts.items()}
    if state != "success":
        raise SystemExit(f"run {run_id} ended {state}")
    tis = stack.api(f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances")["task_instances"]
    batches = sorted((t for t in tis if t["task_id"] == "process_batch"), key=lambda t: t["map_index"])
    tasks = {t["task_id"]: round(t["duration"] or 0, 1) for t in tis if t["task_id"] != "process_batch"}
    queued = [_parse(t["start_date"]) - _parse(t["queued_when"]) for t in tis if t.get("queued_when")]
    first = min(_parse(t["start_date"]) for t in batches)
    last = max(_parse(t["end_date"]) for t in batches)
    return {
        "workers": workers,
        "concurrency": args.concurrency,
        "batches": args.batches,
        "n": args.n,
        "chunk_seeds": int(os.environ.get("SEEDNEWS_CHUNK_SEEDS") or 1000),
        "wall_s": round(wall, 1),
        "seeds_per_s": round(args.n / wall, 1),
        "batch_span_s": round(last - first, 1),
        "batch_seeds_per_s": round(args.n / (last - first), 1),
        "batches_s": [round(t["duration"] or 0, 1) for t in batches],
        "hosts": [t["hostname"] for t in batches],
        "other_tasks_s": tasks,
        "queue_wait_s_max": round(max(queued), 1) if queued else None,
        "cpu_s": cpu,
        "machine_busy_s": round(busy1 - busy0, 1),
        "machine_capacity_s": round(total1 - total0, 1),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "index": index,
    }


def render(results: list[dict], meta: dict) -> str:
    lines = [
        f"{meta['n']} seeds from S3 (SeaweedFS on loopback), {meta['batches']} batches, images off; "
        f"{os.cpu_count()} cores; load before {meta['load_before']}",
        f"{'workers':>7} {'slots':>5} {'wall s':>7} {'seeds/s':>8} {'batches s':>24} {'batch span s':>12} "
        f"{'seeds/s in batches':>18} {'queue wait s':>12} {'busy %':>6}",
    ]
    for r in results:
        busy = 100 * r["machine_busy_s"] / max(r["machine_capacity_s"], 0.1)
        lines.append(
            f"{r['workers']:>7} {r['workers'] * r['concurrency']:>5} {r['wall_s']:>7} {r['seeds_per_s']:>8} "
            f"{'/'.join(map(str, r['batches_s'])):>24} {r['batch_span_s']:>12} {r['batch_seeds_per_s']:>18} "
            f"{r['queue_wait_s_max']!s:>12} {busy:>6.0f}"
        )
    lines.append("CPU seconds during the run (machine: busy / 2-core capacity):")
    for r in results:
        parts = ", ".join(f"{k} {v}" for k, v in r["cpu_s"].items())
        lines.append(
            f"  {r['workers']} worker(s): {parts}; machine {r['machine_busy_s']} / {r['machine_capacity_s']}"
            f"; other tasks {r['other_tasks_s']}; load after {r['load_avg']}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=1, help="task slots per worker")
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, comma-separated")
    ap.add_argument("--json")
    args = ap.parse_args()
    from devtools import localnode

    node = None
    if not os.environ.get("OPENSEARCH_URL"):
        node = localnode.start(progress=lambda _: None)
    url = os.environ.get("OPENSEARCH_URL") or node.url
    results: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp, s3server.start(progress=lambda _: None) as server:
        folder = Path(tmp) / "seeds"
        generate(folder, args.n, seed=1)
        client = server.client()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda p: client.put_object(
                        Bucket=bucket, Key="seeds/" + p.relative_to(folder).as_posix(), Body=p.read_bytes()
                    ),
                    files,
                )
            )
        for p in sorted((ROOT / "examples" / "seeds").iterdir()):
            if p.is_file():
                client.put_object(Bucket=bucket, Key=f"nightly/{p.name}", Body=p.read_bytes())
        home = Path(tmp) / "stack"
        env = {
            **os.environ,
            **server.env,
            "OPENSEARCH_URL": url,
            "SEEDNEWS_STACK_HOME": str(home),
            "SEEDNEWS_AIRFLOW_PASSWORD": f"pw-{uuid.uuid4().hex[:12]}",
            "SEEDNEWS_SEED_DIR": f"s3://{bucket}/nightly",
            "SEEDNEWS_INDEX": f"bench-celery-nightly-{uuid.uuid4().hex[:6]}",
        }
        stack = Stack(home, env)
        meta = {"n": args.n, "batches": args.batches, "load_before": [round(x, 2) for x in os.getloadavg()]}
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                started = stack.up(workers, args.concurrency)
                stack.wait_idle()
                r = measure(stack, workers, args, f"s3://{bucket}/seeds")
                r["stack_up_s"] = round(started, 1)
                results.append(r)
                print(json.dumps(r), file=sys.stderr)
                stack.down()
        finally:
            stack.down(purge=True)
            from pipeline.config import Settings
            from pipeline.stores.client import make_client

            os_client = make_client(Settings(opensearch_url=url))
            os_client.indices.delete(index="bench-celery-*", ignore_unavailable=True, expand_wildcards="all")
            if node:
                node.stop()
    text = render(results, meta)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results, "table": text}, indent=1))


if __name__ == "__main__":
    main()
