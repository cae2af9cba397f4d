"""Speed at scale: every way of indexing one generated corpus, side by side, against one node, in one run.

    .venv/bin/python bench/bench_scale.py --n 10000 [--n 100000] [--airflow] [--json out.json]

Paths (each pipeline path in a fresh subprocess: its CPU time and peak RSS are its own, not the node's):

  raw        ``_bulk`` of pre-built NDJSON for the same documents (one thread, ~5 MB requests); the
             documents are built before the clock starts. The ceiling the pipeline is measured against.
  pipeline   ``pipeline.run.flow.run`` end to end (full rebuild into a fresh index, images off).
  airflow    ``airflow dags test seednews_index`` with the same conf (``--airflow``; slow to start).
  naive      pure-Python ``yaml.safe_load``, ``ftfy.fix_text`` on every string, one ``index`` call per
             document, on a subsample (``--naive-n``), EXTRAPOLATED to N.
  rerun      the pipeline again, nothing changed (the ledger says ``unchanged``).
  rerun-1%   the pipeline again after 1 % of the files were edited.

``--reruns-only`` runs just the pipeline and the two re-runs (the figures of the re-run lever, a minute at
N = 10,000); the raw, naive and Airflow rows and their targets are left out.

All rates are seed files per second (N / wall seconds) so the paths compare directly. Node: $OPENSEARCH_URL,
else ``devtools.localnode.start()``. The load average (the machine is shared) is recorded with every table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

RAW_REQUEST_BYTES = 5 * 1024 * 1024
LEVERS_OFF = {  # the pipeline's tuning for the levers-off reference run (``pipeline.run.tuning.Tuning``)
    "overlap_writes": False,
    "parse_workers": 1,
    "fast_json": False,
    "bulk_chunk": 500,
    "bulk_max_bytes": 10 * 1024 * 1024,
    "pause_refresh": False,
}
TARGETS = {
    "pipeline_vs_raw": 0.5,
    "pipeline_vs_naive": 20.0,
    "airflow_overhead": 0.10,
    "rerun_share": 0.02,
    "rerun1_share": 0.05,
    "rss_mb": 250.0,
    "rss_growth": 0.10,
}


def _usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024.0


def _children_usage() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime, r.ru_maxrss / 1024.0


def node_cpu(client) -> float:
    """CPU seconds the OpenSearch node(s) have used so far (``_nodes/stats/process``)."""
    stats = client.nodes.stats(metric="process")["nodes"].values()
    return sum(n["process"]["cpu"]["total_in_millis"] for n in stats) / 1000.0


def shard_ms(client, base: str) -> dict[str, float]:
    """Milliseconds the primary shards of ``base``'s indices have spent indexing, refreshing, merging and
    flushing, by kind (articles, ledger, deadletter): ``_stats`` of these indices only, so unlike the node's
    CPU it holds nothing of what other users of a shared node do."""
    res = client.indices.stats(index=f"{base}*", metric="indexing,refresh,merge,flush")
    out: dict[str, float] = {}
    for name, s in res.get("indices", {}).items():
        p = s["primaries"]
        kind = "ledger" if "-ledger" in name else "deadletter" if "-deadletter" in name else "articles"
        spent = p["indexing"]["index_time_in_millis"] + p["refresh"]["total_time_in_millis"]
        out[kind] = (
            out.get(kind, 0.0) + spent + p["merges"]["total_time_in_millis"] + p["flush"]["total_time_in_millis"]
        )
    return out


# ----------------------------------------------------------------------------- workers (subprocesses)
def _client(url: str):
    from pipeline.config import Settings
    from pipeline.stores.client import make_client

    return make_client(Settings(opensearch_url=url, timeout=300))


def worker_raw(args) -> dict:
    """Build the documents (untimed), write NDJSON, then time only the ``_bulk`` POSTs."""
    from devtools.seedfile import parse_seed
    from pipeline.sources.folder import discover
    from pipeline.stages.normalize import normalize
    from pipeline.stores import indices
    from pipeline.types import SeedOutcome

    client = _client(args.url)
    seeds, _ = discover(args.folder)
    lines: list[bytes] = []
    indexed_at = "2026-01-01T00:00:00Z"
    ids = set()
    for i, s in enumerate(seeds):
        rec = parse_seed(s)
        if isinstance(rec, SeedOutcome):
            continue
        doc = normalize(rec)
        if doc.id in ids:
            continue
        ids.add(doc.id)
        lines.append(
            json.dumps(
                {"index": {"_index": args.index, "_id": doc.id, "version": i + 1, "version_type": "external_gte"}}
            ).encode()
            + b"\n"
            + json.dumps({**doc.source, "indexed_at": indexed_at}, ensure_ascii=False).encode()
            + b"\n"
        )
    bodies: list[bytes] = []
    cur: list[bytes] = []
    size = 0
    for line in lines:
        if cur and size + len(line) > RAW_REQUEST_BYTES:
            bodies.append(b"".join(cur))
            cur, size = [], 0
        cur.append(line)
        size += len(line)
    if cur:
        bodies.append(b"".join(cur))
    del lines
    indices.ensure_templates(client, args.base)
    client.indices.create(index=args.index)
    c0, _ = _usage()
    t0 = time.perf_counter()
    errors = 0
    for body in bodies:
        res = client.bulk(body=body)
        errors += (
            sum(1 for it in res["items"] if next(iter(it.values())).get("status", 500) >= 300)
            if res.get("errors")
            else 0
        )
    client.indices.refresh(index=args.index)
    wall = time.perf_counter() - t0
    c1, rss = _usage()
    return {
        "wall": wall,
        "cpu": c1 - c0,
        "rss_mb": rss,
        "docs": len(ids),
        "errors": errors,
        "requests": len(bodies),
        "bytes": sum(map(len, bodies)),
    }


def worker_pipeline(args) -> dict:
    from pipeline.config import Settings
    from pipeline.run import parallel, timing
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions
    from pipeline.run.tuning import Tuning

    tuning = Tuning.from_env(os.environ)
    if args.levers_off:  # the reference: client json.dumps, 500-document requests, refresh on, no overlap
        tuning = replace(tuning, **LEVERS_OFF)
    settings = Settings(opensearch_url=args.url, index_base=args.base, timeout=300)
    messages: list[str] = []
    c0, _ = _usage()
    t0 = time.perf_counter()
    report = run(
        settings,
        RunOptions(seed_dir=args.folder, check_images=False, full_rebuild=args.full_rebuild, tuning=tuning),
        emit=messages.append,
    )
    wall = time.perf_counter() - t0
    c1, rss = _usage()
    ws = parallel.worker_stats()  # the parse workers' own CPU and peak RSS (forkserver children)
    said = [m for m in messages if m.startswith("parsing in ")]
    workers = int(said[0].split()[2]) if said else 0
    return {
        "wall": wall,
        "cpu": c1 - c0 + ws["cpu"],
        "cpu_workers": ws["cpu"],
        "parse_workers": workers,
        "rss_parent_mb": rss,
        "rss_worker_mb": ws["peak_rss_mb"],
        # upper bound of what the run held at once: the parent's peak plus every worker at the largest one's
        "rss_mb": rss + workers * ws["peak_rss_mb"],
        "counts": report.counts,
        "stages": timing.snapshot(),
    }


def _yaml_front(text: str) -> str:
    lines = text.split("\n")
    end = next(i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "..."))
    return "\n".join(lines[1:end])


def worker_naive(args) -> dict:
    """The obvious implementation: safe_load, fix_text on every string, one request per document."""
    import hashlib

    import ftfy
    import yaml

    client = _client(args.url)
    files = sorted(Path(args.folder).rglob("*.txt"))[: args.naive_n]

    def fix(v):
        if isinstance(v, str):
            return ftfy.fix_text(v)
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v

    c0, _ = _usage()
    t0 = time.perf_counter()
    done = bad = 0
    for p in files:
        try:
            data = yaml.load(_yaml_front(p.read_text(encoding="utf-8")), Loader=yaml.SafeLoader)
            if not isinstance(data, dict) or "title" not in data:
                raise ValueError("no title")
        except Exception:  # noqa: BLE001 - the naive way: skip what does not load
            bad += 1
            continue
        doc = {k: str(v) if hasattr(v, "isoformat") else v for k, v in fix(data).items()}
        url = doc.get("originalUrl") or doc.get("webUrl") or str(p)
        client.index(index=args.index, id=hashlib.sha256(url.encode()).hexdigest()[:32], body=doc)
        done += 1
    client.indices.refresh(index=args.index)
    wall = time.perf_counter() - t0
    c1, rss = _usage()
    return {"wall": wall, "cpu": c1 - c0, "rss_mb": rss, "files": len(files), "docs": done, "bad": bad}


WORKERS = {"raw": worker_raw, "pipeline": worker_pipeline, "naive": worker_naive}


def run_worker(kind: str, **kw) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind]
    for k, v in kw.items():
        if v is True:
            cmd.append(f"--{k.replace('_', '-')}")
        elif v not in (None, False):
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- airflow
def airflow_env(home: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "OPENSEARCH_URL": url,
    }


# ``airflow dags test`` under a small wrapper process, so that its CPU and peak RSS are its own and its
# children's (this process's RUSAGE_CHILDREN also holds the raw worker, whose RSS is the whole NDJSON)
_AIRFLOW_WRAPPER = """
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
out = subprocess.run(sys.argv[2:], capture_output=True, text=True)
wall = time.perf_counter() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
figures = {"wall": wall, "cpu": r.ru_utime + r.ru_stime, "rss_mb": r.ru_maxrss / 1024, "rc": out.returncode}
with open(sys.argv[1], "w") as f:
    json.dump({**figures, "log": out.stdout + out.stderr}, f)
"""


def run_airflow(env: dict[str, str], folder: str, base: str, full_rebuild: bool) -> dict:
    airflow = str(Path(sys.executable).with_name("airflow"))
    conf = {"seed_dir": folder, "skip_images": True, "index": base, "full_rebuild": full_rebuild, "max_batches": 4}
    with tempfile.TemporaryDirectory(prefix="bench-airflow-") as work:
        result = Path(work) / "figures.json"
        argv = [sys.executable, "-c", _AIRFLOW_WRAPPER, str(result), airflow, "dags", "test", "seednews_index"]
        subprocess.run([*argv, "-c", json.dumps(conf)], env=env, check=True)
        row = json.loads(result.read_text())
    if row["rc"] != 0 or "state=success" not in row["log"]:
        raise RuntimeError(f"airflow dags test failed:\n{row['log'][-3000:]}")
    return {"wall": row["wall"], "cpu": row["cpu"], "rss_mb": row["rss_mb"]}


# ----------------------------------------------------------------------------- the table
def measure(n: int, url: str, args) -> dict:
    from corpus import generate, touch

    tmp = Path(tempfile.mkdtemp(prefix=f"bench-scale-{n}-"))
    folder = tmp / "seeds"
    tag = uuid.uuid4().hex[:6]
    client = _client(url)
    rows: dict[str, dict] = {}

    def timed_row(name: str, kind: str, **kw) -> dict:
        shards = shard_ms(client, kw["base"]) if "base" in kw else {}
        before = node_cpu(client)
        row = run_worker(kind, **kw)
        row["node_cpu"] = node_cpu(client) - before  # the node's CPU during this row (all of it, not only ours)
        if "base" in kw:  # this row's own indices only
            row["shard_ms"] = {k: v - shards.get(k, 0.0) for k, v in shard_ms(client, kw["base"]).items()}
        rows[name] = row
        return row

    try:
        t0 = time.perf_counter()
        info = generate(folder, n, seed=args.seed)
        print(
            f"[N={n}] corpus: {info.n} files ({info.mojibake} mojibake, {info.broken} broken, "
            f"{info.duplicates} duplicates, {info.citing} citing another) in {time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        load0 = os.getloadavg()
        if not args.reruns_only:
            timed_row("raw", "raw", url=url, folder=str(folder), base=f"bsraw-{tag}", index=f"bsraw-{tag}-v1")
            print(f"[N={n}] raw: {rows['raw']['wall']:.1f}s", flush=True)
        timed_row("pipeline", "pipeline", url=url, folder=str(folder), base=f"bspipe-{tag}", full_rebuild=True)
        print(f"[N={n}] pipeline: {rows['pipeline']['wall']:.1f}s", flush=True)
        if args.compare_levers and not args.reruns_only:
            timed_row(
                "pipeline_levers_off",
                "pipeline",
                url=url,
                folder=str(folder),
                base=f"bsoff-{tag}",
                full_rebuild=True,
                levers_off=True,
            )
            print(f"[N={n}] pipeline, levers off: {rows['pipeline_levers_off']['wall']:.1f}s", flush=True)
            timed_row("raw_again", "raw", url=url, folder=str(folder), base=f"bsraw2-{tag}", index=f"bsraw2-{tag}-v1")
            print(f"[N={n}] raw again: {rows['raw_again']['wall']:.1f}s", flush=True)
        if args.airflow and not args.reruns_only:
            home = tmp / "airflow"
            home.mkdir()
            env = airflow_env(home, url)
            subprocess.run(
                [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
                env=env,
                check=True,
                capture_output=True,
            )
            before = node_cpu(client)
            rows["airflow"] = run_airflow(env, str(folder), f"bsair-{tag}", True)
            rows["airflow"]["node_cpu"] = node_cpu(client) - before
            print(f"[N={n}] airflow: {rows['airflow']['wall']:.1f}s", flush=True)
        if not args.reruns_only:
            naive_n = min(n, args.naive_n)
            timed_row("naive", "naive", url=url, folder=str(folder), index=f"bsnaive-{tag}", naive_n=naive_n)
            rows["naive"]["extrapolated_from"] = rows["naive"]["files"]
            scale = n / rows["naive"]["files"]
            rows["naive"]["wall"] *= scale
            rows["naive"]["cpu"] *= scale
            rows["naive"]["node_cpu"] *= scale
            print(f"[N={n}] naive: {rows['naive']['wall']:.1f}s (extrapolated x{scale:.1f})", flush=True)
        timed_row("rerun", "pipeline", url=url, folder=str(folder), base=f"bspipe-{tag}")
        print(f"[N={n}] re-run, no change: {rows['rerun']['wall']:.2f}s", flush=True)
        touched = touch(folder, 0.01, seed=args.seed + 1)
        timed_row("rerun_1pct", "pipeline", url=url, folder=str(folder), base=f"bspipe-{tag}")
        rows["rerun_1pct"]["touched"] = len(touched)
        print(f"[N={n}] re-run, 1% changed: {rows['rerun_1pct']['wall']:.2f}s", flush=True)
        load1 = os.getloadavg()
    finally:
        for base in (
            f"bsraw-{tag}",
            f"bsraw2-{tag}",
            f"bspipe-{tag}",
            f"bsoff-{tag}",
            f"bsair-{tag}",
            f"bsnaive-{tag}",
        ):
            client.indices.delete(index=f"{base}*", ignore_unavailable=True, expand_wildcards="all")
            client.indices.delete_index_template(name=base, ignore=[404])
            client.indices.delete_index_template(name=f"{base}-ledger", ignore=[404])
        shutil.rmtree(tmp, ignore_errors=True)
    for r in rows.values():
        r["rate"] = n / r["wall"]
        r["cpu_per_1k"] = 1000 * r["cpu"] / n
    raws = [rows[k]["rate"] for k in ("raw", "raw_again") if k in rows]
    best_raw = max(raws) if raws else None  # the stricter baseline (none with --reruns-only)
    for r in rows.values():
        r["vs_raw"] = r["rate"] / best_raw if best_raw else None
    return {
        "n": n,
        "rows": rows,
        "loadavg_start": load0,
        "loadavg_end": load1,
        "cores": os.cpu_count(),
        "corpus": {
            "mojibake": info.mojibake,
            "broken": info.broken,
            "duplicates": info.duplicates,
            "citing": info.citing,
        },
    }


def render(result: dict) -> str:
    n, rows = result["n"], result["rows"]
    la0 = " ".join(f"{x:.2f}" for x in result["loadavg_start"])
    la1 = " ".join(f"{x:.2f}" for x in result["loadavg_end"])
    out = [
        f"N = {n:,} seed files; {result['cores']} cores; load average {la0} (start) -> {la1} (end)",
        "",
        "| path | wall s | files/s | x raw | CPU s / 1k files | node CPU s / 1k | peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    names = {
        "raw": "raw _bulk (pre-built NDJSON)",
        "raw_again": "raw _bulk, again (after the pipeline runs)",
        "pipeline": "pipeline (flow.run, full rebuild)",
        "pipeline_levers_off": "pipeline, levers off (reference)",
        "airflow": "Airflow (dags test)",
        "naive": "naive (extrapolated)",
        "rerun": "re-run, no change",
        "rerun_1pct": "re-run, 1% changed",
    }
    for key, label in names.items():
        if key in rows:
            r = rows[key]
            if key == "naive":
                label = f"naive (from {r['extrapolated_from']:,} files, extrapolated)"
            rss = f"{r['rss_mb']:.0f}"
            vs_raw = "—" if r["vs_raw"] is None else f"{r['vs_raw']:.2f}"
            node = f"{1000 * r['node_cpu'] / n:.2f}" if "node_cpu" in r else "—"
            out.append(
                f"| {label} | {r['wall']:.2f} | {r['rate']:,.0f} | {vs_raw} | {r['cpu_per_1k']:.2f} | {node} | {rss} |"
            )
    p = rows["pipeline"]
    stages = p.get("stages", {})
    total = sum(v["seconds"] for v in stages.values()) or 1
    out += [
        "",
        "pipeline stage split (wall s): "
        + ", ".join(
            f"{k} {v['seconds']:.1f} ({100 * v['seconds'] / p['wall']:.0f}%)"
            for k, v in sorted(stages.items(), key=lambda kv: -kv[1]["seconds"])
        ),
    ]
    out.append(
        f"(timed stages add up to {total:.1f} s against {p['wall']:.1f} s of wall: chunks overlap their writes and "
        f"parse in {p.get('parse_workers') or 1} process(es); outcomes: {p['counts']})"
    )
    cores = result["cores"] or 1
    for key in ("raw", "pipeline"):
        if key in rows and "node_cpu" in rows[key]:
            r = rows[key]
            floor = (r["cpu"] + r["node_cpu"]) / cores
            out.append(
                f"{names[key]}: {r['cpu']:.1f} CPU s of its own + {r['node_cpu']:.1f} of the node's = a floor of "
                f"{floor:.1f} s on {cores} cores ({n / floor:,.0f} files/s at most); it took {r['wall']:.1f} s"
            )
    if "shard_ms" in p:
        pipe = sum(p["shard_ms"].values())
        kinds = ", ".join(f"{k} {1000 * v / n:.0f}" for k, v in sorted(p["shard_ms"].items()))
        raw = sum(rows["raw"]["shard_ms"].values()) if "raw" in rows else 0.0
        vs = f" = {pipe / raw:.2f}x raw _bulk's {1000 * raw / n:.0f}" if raw else ""
        out.append(
            f"shard time of the pipeline's own indices (indexing + refresh + merge + flush, ms / 1k files): "
            f"{1000 * pipe / n:.0f} ({kinds}){vs}"
        )
    if p.get("parse_workers"):
        out.append(
            f"pipeline RSS: parent {p['rss_parent_mb']:.0f} MB + {p['parse_workers']} parse workers of at most "
            f"{p['rss_worker_mb']:.0f} MB each (the peak RSS column adds them up)"
        )
    linking = [
        (names[k], rows[k]["stages"]["links"]["seconds"], rows[k]["wall"])
        for k in ("pipeline", "rerun", "rerun_1pct")
        if "links" in rows[k].get("stages", {})
    ]
    if linking:
        out.append(
            "linking related articles (finalize's links stage, wall s): "
            + "; ".join(f"{label} {sec:.2f} ({100 * sec / wall:.1f}% of its wall)" for label, sec, wall in linking)
        )
    for key in ("rerun", "rerun_1pct"):
        r = rows[key]
        out.append(
            f"{names[key]} stage split (wall s): "
            + ", ".join(
                f"{k} {v['seconds']:.2f}"
                for k, v in sorted(r.get("stages", {}).items(), key=lambda kv: -kv[1]["seconds"])
            )
            + f"; outcomes: {r['counts']}"
        )
    return "\n".join(out)


def targets(results: list[dict]) -> str:
    out = ["", "| target | measured | ok |", "| --- | --- | --- |"]
    for res in results:
        n, rows = res["n"], res["rows"]
        p = rows["pipeline"]

        def line(what, value, ok, n=n):
            out.append(f"| N={n:,}: {what} | {value} | {'yes' if ok else 'NO'} |")

        if p["vs_raw"] is not None:
            line(
                f"end-to-end >= {TARGETS['pipeline_vs_raw']} x raw",
                f"{p['vs_raw']:.2f} x",
                p["vs_raw"] >= TARGETS["pipeline_vs_raw"],
            )
        if "naive" in rows:
            ratio = p["rate"] / rows["naive"]["rate"]
            line(
                f">= {TARGETS['pipeline_vs_naive']:.0f} x naive",
                f"{ratio:.1f} x",
                ratio >= TARGETS["pipeline_vs_naive"],
            )
        if "airflow" in rows:
            over = rows["airflow"]["wall"] / p["wall"] - 1
            line(
                f"Airflow overhead <= {TARGETS['airflow_overhead']:.0%}",
                f"{over:+.0%}",
                over <= TARGETS["airflow_overhead"],
            )
        share = rows["rerun"]["wall"] / p["wall"]
        line(
            f"no-change re-run <= {TARGETS['rerun_share']:.0%} of full", f"{share:.1%}", share <= TARGETS["rerun_share"]
        )
        share1 = rows["rerun_1pct"]["wall"] / p["wall"]
        line(
            f"1%-changed re-run <= {TARGETS['rerun1_share']:.0%} of full",
            f"{share1:.1%}",
            share1 <= TARGETS["rerun1_share"],
        )
        rss = max(rows[k]["rss_mb"] for k in ("pipeline", "rerun", "rerun_1pct"))
        line(f"peak RSS <= {TARGETS['rss_mb']:.0f} MB", f"{rss:.0f} MB", rss <= TARGETS["rss_mb"])
    if len(results) >= 2 and "rss_parent_mb" in results[0]["rows"]["pipeline"]:
        a, b = results[0]["rows"]["pipeline"]["rss_parent_mb"], results[-1]["rows"]["pipeline"]["rss_parent_mb"]
        out.append(
            f"| (the parent process alone: {a:.0f} -> {b:.0f} MB, {b / a - 1:+.0%}; the parse workers' peak does not"
            " grow with N) | | |"
        )
    if len(results) >= 2:
        a, b = results[0]["rows"]["pipeline"]["rss_mb"], results[-1]["rows"]["pipeline"]["rss_mb"]
        growth = b / a - 1
        out.append(
            f"| RSS N={results[0]['n']:,} -> N={results[-1]['n']:,} within {TARGETS['rss_growth']:.0%} | "
            f"{a:.0f} -> {b:.0f} MB ({growth:+.0%}) | {'yes' if abs(growth) <= TARGETS['rss_growth'] else 'NO'} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--json")
    ap.add_argument("--airflow", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--naive-n", type=int, default=1000)
    # worker-only
    ap.add_argument("--worker", choices=sorted(WORKERS))
    ap.add_argument("--url")
    ap.add_argument("--folder")
    ap.add_argument("--base")
    ap.add_argument("--index")
    ap.add_argument("--full-rebuild", action="store_true")
    ap.add_argument("--levers-off", action="store_true")
    ap.add_argument(
        "--compare-levers", action="store_true", help="also run the pipeline with the levers off, and raw twice"
    )
    ap.add_argument(
        "--reruns-only",
        action="store_true",
        help="only the full pipeline run and the two re-runs (no raw, naive or Airflow rows)",
    )
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    node = None
    url = os.environ.get("OPENSEARCH_URL")
    if not url:
        from devtools import localnode

        node = localnode.start(progress=lambda m: None)
        url = node.url
    try:
        results = [measure(n, url, args) for n in (args.n or [10_000])]
    finally:
        if node is not None:
            node.stop()
    text = "\n\n".join(render(r) for r in results) + "\n" + targets(results)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "table": text}, indent=1))


if __name__ == "__main__":
    main()
