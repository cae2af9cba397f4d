"""The deployed paths side by side (issue 21): every way seeds reach the index, on one corpus and one node, in one run.

    flock /tmp/seednews-bench.lock .venv/bin/python bench/bench_deployed.py --n 10000 --s3-n 20000 \\
        --json bench/results-deployed.json

Rows (each a whole process or a whole stack as deployed; ``--rows`` picks some):

  raw         ``_bulk`` of pre-built NDJSON of the same documents (``bench_scale``'s raw worker; the floor)
  script      ``bench/afternoon.py``: the ~40-line script a user would write instead (no ledger)
  cli-folder  ``seednews run DIR --skip-images``, a process: a first, incremental run into a fresh alias
  flow-run    the same run as ``flow.run`` timed inside its process (``bench_scale``'s figure: no start-up)
  stack       ``./scripts/stack up`` (LocalExecutor), the DAG triggered through the REST API, trigger -> success
  cli-s3      the CLI on loopback S3 (``devtools.s3server``, SeaweedFS)
  celery-1/2  ``./scripts/stack up --executor celery --workers 1|2`` (one task slot each) on S3

and each pipeline path's no-change night (``-night``: the same run again, nothing changed). The corpus is
``bench/corpus.py``'s (mojibake, broken files, duplicates), a quarter of it replaced by variants of the two real
seeds in ``examples/seeds``, spread over 100 nested sub-folders; ``--n`` files on the folder rows, ``--s3-n`` in the
bucket. Per row: wall, files/s, CPU ms per file of every process of the path (``deployed_probe``), of the node
(``_nodes/stats``) and of SeaweedFS, peak RSS, and the ops on the run's own indices. Then issue 21's targets, each
next to its figure, with the CPU-floor arithmetic where one is missed (``deployed_report``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_celery import DAG_ID, RUN_TIMEOUT, Stack  # noqa: E402
from bench_scale import _client, node_cpu, run_worker  # noqa: E402
from corpus import BASE_TIME, generate  # noqa: E402
from deployed_probe import (  # noqa: E402
    TREE_WRAPPER,
    StackProbe,
    _cpu_of_tree,
    index_ops,
    machine,
    node_quiet,
    node_work,
)
from deployed_report import render  # noqa: E402

from pipeline.sources.folder import RACY_WINDOW_NS  # noqa: E402

ROWS = ("raw", "script", "cli-folder", "flow-run", "stack", "cli-s3", "celery-1", "celery-2")
S3_ROWS = {"cli-s3", "celery-1", "celery-2"}
REAL_EVERY = 4  # every 4th file is a variant of a real seed
NEST = 10  # 10 x 10 sub-folders
BATCHES = 4  # the DAG's max_batches (its default)
POLL_S = 0.2


# ----------------------------------------------------------------------------- corpus
def real_variant(text: str, i: int) -> str:
    """A real seed as another article: its URL (in every form the file holds it) made unique by ``-i``."""
    url = text.split('originalUrl: "', 1)[1].split('"', 1)[0]
    bare = url.split("://", 1)[1].rstrip("/")
    return text.replace(bare, f"{bare}-{i}")


def make_corpus(folder: Path, n: int, seed: int) -> dict:
    """``n`` seeds in ``folder``, nested ``a/b/`` (100 sub-folders), every :data:`REAL_EVERY`-th a real-shaped one."""
    flat = folder.with_name(folder.name + "-flat")
    info = generate(flat, n, seed=seed)
    reals = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples" / "seeds").glob("*.txt"))]
    for i, name in enumerate(info.files):
        dest = folder / f"{i % NEST:02}" / f"{i // NEST % NEST:02}" / Path(name).name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if i % REAL_EVERY == REAL_EVERY - 1:
            dest.write_text(real_variant(reals[i // REAL_EVERY % len(reals)], i), encoding="utf-8")
            os.utime(dest, ns=((BASE_TIME + i) * 10**9,) * 2)
            (flat / name).unlink()
        else:
            (flat / name).rename(dest)
    shutil.rmtree(flat)
    return {"files": n, "real_shaped": n // REAL_EVERY, "subfolders": NEST * NEST, "mojibake": info.mojibake}


def upload(server, folder: Path, bucket: str) -> None:
    client = server.client()
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
    for p in sorted((ROOT / "examples" / "seeds").glob("*.txt")):  # the stack's nightly default: a tiny prefix
        client.put_object(Bucket=bucket, Key=f"nightly/{p.name}", Body=p.read_bytes())


# ----------------------------------------------------------------------------- one row
class Bench:
    def __init__(self, url: str, tmp: Path, json_path: str | None) -> None:
        self.url, self.tmp, self.json_path = url, tmp, json_path
        self.client = _client(url)
        self.tag = uuid.uuid4().hex[:6]
        self.rows: dict[str, dict] = {}
        self.result: dict = {}  # what is known so far: the machine, the corpus, these rows
        self.store_pid = 0  # SeaweedFS, once started

    def save(self) -> None:
        """Write what is measured so far to ``--json`` (a run cut short keeps its rows)."""
        self.result.update(rows=self.rows, loadavg_end=os.getloadavg())
        self.result["table"] = render(self.result)
        if self.json_path:
            Path(self.json_path).write_text(json.dumps(self.result, indent=1) + "\n")

    def base(self, row: str) -> str:
        return f"bd{row.split('-night')[0].replace('-', '')}-{self.tag}"

    def _finish(self, name: str, n: int, fig: dict, before: dict, base: str | None) -> dict:
        tail = node_quiet(self.client, node_cpu)  # this row's own merges, charged to it
        row = {
            "n": n,
            "wall": fig["wall"],
            "rate": n / fig["wall"],
            "cpu_ms": 1000 * fig["cpu"] / n,
            "node_ms": 1000 * (node_cpu(self.client) - before["node"]) / n,
            "store_ms": 1000 * (_cpu_of_tree(self.store_pid) - before["store"]) / n if self.store_pid else 0.0,
            "rss_mb": fig["rss_mb"],
            "load": before["load"],
            "node_tail_s": round(tail, 1),
            **{k: v for k, v in fig.items() if k not in ("wall", "cpu", "rss_mb")},
        }
        if base:
            row["index_ops"] = index_ops(self.client, base) - before["ops"]
            work = node_work(self.client, base)
            row["node_work_ms"] = {k: round(v - before["work"].get(k, 0.0)) for k, v in work.items()}
            self.client.indices.refresh(index=f"{base}*", expand_wildcards="all")
            row["docs"] = self.client.count(index=base, ignore_unavailable=True)["count"]
        self.rows[name] = row
        self.save()
        print(
            f"[{name}] {row['wall']:.2f} s, {row['rate']:,.0f} files/s, {row['cpu_ms']:.2f} CPU ms/file, "
            f"node {row['node_ms']:.2f}, RSS {row['rss_mb']:.0f} MB, load {row['load']:.2f}",
            flush=True,
        )
        return row

    def _before(self, base: str | None) -> dict:
        node_quiet(self.client, node_cpu)
        return {
            "work": node_work(self.client, base) if base else {},
            "node": node_cpu(self.client),
            "store": _cpu_of_tree(self.store_pid) if self.store_pid else 0.0,
            "ops": index_ops(self.client, base) if base else 0,
            "load": os.getloadavg()[0],
        }

    def process(self, name: str, n: int, argv: list[str], env: dict[str, str], base: str | None) -> dict:
        """``argv`` as one process tree under the subreaper wrapper; its stdout's JSON kept as ``report``."""
        fig_path, out_path = self.tmp / f"{name}.fig.json", self.tmp / f"{name}.out"
        before = self._before(base)
        done = subprocess.run(
            [sys.executable, "-c", TREE_WRAPPER, str(fig_path), str(out_path), *argv],
            env=env,
            capture_output=True,
            text=True,
        )
        fig = json.loads(fig_path.read_text()) if fig_path.exists() else {"rc": done.returncode}
        if done.returncode or fig["rc"]:
            raise SystemExit(f"{name} failed ({fig['rc']}):\n{done.stderr[-3000:]}")
        report = json.loads(out_path.read_text() or "{}")
        fig["counts"] = report.get("counts", report)
        return self._finish(name, n, fig, before, base)

    def raw(self, n: int, folder: Path) -> dict:
        base = self.base("raw")
        before = self._before(base)
        fig = run_worker("raw", url=self.url, folder=str(folder), base=base, index=f"{base}-v1")
        return self._finish("raw", n, {**fig, "counts": {"indexed": fig["docs"]}}, before, base)

    def warm_up(self, folder: Path) -> None:
        """Index the corpus once, raw, into a throwaway index (not a row), and delete it."""
        base = f"bdwarm-{self.tag}"
        run_worker("raw", url=self.url, folder=str(folder), base=base, index=f"{base}-v1")
        self.client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")

    def in_process(self, n: int, folder: Path) -> dict:
        """``flow.run`` timed inside a fresh process (``bench_scale``'s pipeline worker: no interpreter start,
        no imports, no exit in the wall), the same incremental first run as the CLI's: the gap to the CLI."""
        base = self.base("flow-run")
        before = self._before(base)
        fig = run_worker("pipeline", url=self.url, folder=str(folder), base=base)
        return self._finish("flow-run", n, fig, before, base)

    def dag_run(self, name: str, n: int, stack: Stack, probe: StackProbe, conf: dict, base: str) -> dict:
        """Trigger the DAG through the REST API; wall from the trigger until the run reads ``success``."""
        before = self._before(base)
        cpu0 = probe.cpu_parts()
        probe.peak_mb = 0.0
        t0 = time.monotonic()
        run_id = stack.api(f"/api/v2/dags/{DAG_ID}/dagRuns", "POST", {"logical_date": None, "conf": conf})["dag_run_id"]
        q = urllib.parse.quote(run_id, safe="")
        while (run := stack.api(f"/api/v2/dags/{DAG_ID}/dagRuns/{q}"))["state"] not in ("success", "failed"):
            if time.monotonic() - t0 > RUN_TIMEOUT:
                raise SystemExit(f"{name}: run {run_id} did not finish in {RUN_TIMEOUT:.0f} s")
            time.sleep(POLL_S)
        wall = time.monotonic() - t0
        if run["state"] != "success":
            raise SystemExit(f"{name}: run {run_id} ended {run['state']}")
        parts = {k: round(v - cpu0.get(k, 0.0), 2) for k, v in probe.cpu_parts().items()}
        tis = stack.api(f"/api/v2/dags/{DAG_ID}/dagRuns/{q}/taskInstances")["task_instances"]
        tasks = {
            t["task_id"] + (f"[{t['map_index']}]" if t["map_index"] >= 0 else ""): round(t["duration"] or 0, 2)
            for t in tis
        }
        fig = {"wall": wall, "cpu": sum(parts.values()), "rss_mb": probe.peak_mb}
        fig.update(cpu_parts_s=parts, tasks_s=tasks)
        return self._finish(name, n, fig, before, base)

    def cleanup(self) -> None:
        for row in ROWS:
            base = self.base(row)
            self.client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
            for template in (base, f"{base}-ledger", f"{base}-deadletter"):
                self.client.indices.delete_index_template(name=template, ignore=[404])


# ----------------------------------------------------------------------------- the paths
def settle() -> None:
    """Wait out the racy-clean window after writing the seeds (real seeds are written long before the run): a
    file recorded within it of its last change is hashed again by the next run and its ledger entry rewritten,
    which would make the no-change night write."""
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.5)


def cli_env(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, **(extra or {}), "OPENSEARCH_URL": url, "PYTHONPATH": str(ROOT)}


def cli(seed_dir: str, base: str) -> list[str]:
    return [
        str(Path(sys.executable).with_name("seednews")),
        "run",
        seed_dir,
        "--skip-images",
        "--index",
        base,
        "--json",
    ]


def stack_rows(bench: Bench, names: list[str], n: int, seed_dir: str, env: dict[str, str]) -> None:
    """Bring a stack up for each of ``names`` (stack, celery-1, celery-2), run it, its night, take it down."""
    for name in names:
        home = bench.tmp / f"stack-{name}"
        stack = Stack(home, {**env, "SEEDNEWS_STACK_HOME": str(home)})
        try:
            executor, workers = ("local", 0) if name == "stack" else ("celery", int(name[-1]))
            up = stack.up(workers, 1, executor)
            print(f"[{name}] stack up in {up:.0f} s", flush=True)
            stack.wait_idle()
            base = bench.base(name)
            conf = {"seed_dir": seed_dir, "index": base, "skip_images": True, "max_batches": BATCHES}
            with StackProbe(home) as probe:
                bench.dag_run(name, n, stack, probe, conf, base)["stack_up_s"] = up
                night = "celery-night" if name == "celery-2" else f"{name}-night" if name == "stack" else ""
                if night:
                    bench.dag_run(night, n, stack, probe, conf, base)
        finally:
            stack.down(purge=True)


def measure(args, url: str, tmp: Path) -> dict:
    from devtools import s3server

    bench = Bench(url, tmp, args.json)
    wanted = [r for r in ROWS if r in args.rows]
    folder = tmp / "seeds"
    corpus = make_corpus(folder, args.n, args.seed) if set(wanted) - S3_ROWS else {}
    settle()
    bench.result.update(
        n=args.n,
        s3_n=args.s3_n,
        machine=machine(),
        opensearch=bench.client.info()["version"]["number"],
        loadavg_start=os.getloadavg(),
        corpus=corpus,
    )
    stack_env = {
        **cli_env(url),
        "SEEDNEWS_AIRFLOW_PASSWORD": f"pw-{uuid.uuid4().hex[:12]}",
        "SEEDNEWS_INDEX": f"{bench.base('stack')}-nightly",
        "SEEDNEWS_SEED_DIR": str(ROOT / "examples" / "seeds"),
    }
    try:
        if folder.exists():  # a node started a moment ago charges its JIT warm-up to whichever row comes first
            bench.warm_up(folder)
        if "raw" in wanted:
            bench.raw(args.n, folder)
        if "script" in wanted:
            script = [sys.executable, str(ROOT / "bench" / "afternoon.py"), str(folder), "--url", url]
            bench.process(
                "script", args.n, [*script, "--index", bench.base("script")], cli_env(url), bench.base("script")
            )
        if "cli-folder" in wanted:
            for name in ("cli-folder", "cli-folder-night"):
                bench.process(name, args.n, cli(str(folder), bench.base(name)), cli_env(url), bench.base(name))
        if "flow-run" in wanted:
            bench.in_process(args.n, folder)
        if "stack" in wanted:
            stack_rows(bench, ["stack"], args.n, str(folder), stack_env)
        if set(wanted) & S3_ROWS:
            s3_folder = tmp / "s3-seeds"
            corpus["s3"] = make_corpus(s3_folder, args.s3_n, args.seed)
            with s3server.start(progress=lambda _: None) as server:
                bucket = f"bench-{bench.tag}"
                upload(server, s3_folder, bucket)
                settle()
                bench.store_pid = server.pid or 0
                seed_url = f"s3://{bucket}/seeds"
                if "cli-s3" in wanted:
                    for name in ("cli-s3", "cli-s3-night"):
                        argv = cli(seed_url, bench.base(name))
                        bench.process(name, args.s3_n, argv, cli_env(url, server.env), bench.base(name))
                env = {**stack_env, **server.env, "SEEDNEWS_SEED_DIR": f"s3://{bucket}/nightly"}
                celery = [r for r in ("celery-1", "celery-2") if r in wanted]
                stack_rows(bench, celery, args.s3_n, seed_url, env)
                bench.store_pid = 0
    finally:
        bench.cleanup()
    bench.save()
    return bench.result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="files in the folder rows")
    ap.add_argument("--s3-n", type=int, default=20_000, help="files in the S3 rows")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {', '.join(ROWS)}")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    args.rows = args.rows.split(",")
    unknown = set(args.rows) - set(ROWS)
    if unknown:
        ap.error(f"unknown rows: {', '.join(sorted(unknown))}")
    url = os.environ.get("OPENSEARCH_URL")
    node = None
    if not url:
        from devtools import localnode

        node = localnode.start(progress=lambda _: None)
        url = node.url
    tmp = Path(tempfile.mkdtemp(prefix="bench-deployed-"))
    try:
        result = measure(args, url, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if node is not None:
            node.stop()
    print(result["table"])


if __name__ == "__main__":
    main()
