"""Benchmark: reading seeds from object storage versus a local folder (prints its figures; not a test).

Generates N synthetic seeds (bench/corpus.py), writes them to a temp folder and to a bucket on a real
S3-compatible server on loopback (devtools.s3server: SeaweedFS), then measures, for each source, the
three things a run does with seeds, one thread like the pipeline:

  list     walk the location (the ledger's cheap change filter needs nothing more: an unchanged re-run)
  hash     a read + sha256 of every seed, one at a time (what planning does where the hash must decide)
  read     the checked read of every hashed seed, one at a time (same ETag / same file, same sha256)

With --full, also a whole run of each, as the CLI runs it (``run()`` in this process, the tuning from
the ``SEEDNEWS_*`` environment: parse workers, read threads; no image checks) against a real OpenSearch
node (started here, or $OPENSEARCH_URL) and its re-run; it prints files/s, S3 against the folder (the
target of issue 21: >= 0.5x) and the GETs per object of each S3 run.

    .venv/bin/python bench/bench_s3.py --n 2000 [--full]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import generate
from devtools import s3gets, s3server
from pipeline.run.tuning import Tuning
from pipeline.sources import open_source
from pipeline.stages.parse import ParseConfig
from pipeline.types import SeedFile

MAX_BYTES = ParseConfig().max_bytes


def measure(source) -> dict[str, float]:
    t0 = time.perf_counter()
    listed = [s for s in source.walk() if isinstance(s, SeedFile)]
    t1 = time.perf_counter()
    hashed = [h for s in listed if isinstance(h := source.hash(s, MAX_BYTES), SeedFile)]
    t2 = time.perf_counter()
    ok = sum(isinstance(source.read(h, MAX_BYTES), bytes) for h in hashed)
    t3 = time.perf_counter()
    assert len(listed) == len(hashed) == ok, (len(listed), len(hashed), ok)
    return {"n": len(listed), "list": t1 - t0, "hash": t2 - t1, "read": t3 - t2}


def upload(client, bucket: str, folder: Path, prefix: str) -> float:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda p: client.put_object(
                    Bucket=bucket, Key=prefix + p.relative_to(folder).as_posix(), Body=p.read_bytes()
                ),
                files,
            )
        )
    return time.perf_counter() - t0


def count_gets(s3_client) -> list[int]:
    """A counter (one item) of the GETs ``s3_client`` makes from now on."""
    counter = [0]

    def count(_key: str) -> None:
        counter[0] += 1

    s3gets.on_object_gets(s3_client, count)  # presigned GETs and get_object's alike
    return counter


def full_runs(folder: Path, url: str, s3_client, gets: list[int]) -> list[tuple[str, float, float, int, int]]:
    """Whole runs (first, re-run) of the folder and of the prefix (through ``s3_client``, whose GETs are counted)."""
    from devtools import localnode
    from pipeline.config import Settings
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions
    from pipeline.stores.client import make_client

    tuning = Tuning.from_env(os.environ)  # what the CLI runs with
    node = localnode.start(progress=lambda _: None)
    rows = []
    try:
        for label, location in (("folder", str(folder)), ("s3", url)):
            settings = Settings(opensearch_url=node.url, index_base=f"bench-s3-{uuid.uuid4().hex[:8]}")
            client = make_client(settings)
            opts = RunOptions(seed_dir=location, check_images=False, tuning=tuning)
            g0, t0 = gets[0], time.perf_counter()
            first = run(settings, opts, client=client, emit=lambda _: None, s3_client=s3_client)
            g1, t1 = gets[0], time.perf_counter()
            again = run(settings, opts, client=client, emit=lambda _: None, s3_client=s3_client)
            g2, t2 = gets[0], time.perf_counter()
            assert again.unchanged == again.files_seen, (label, first.counts, again.counts)
            rows.append((label, t1 - t0, t2 - t1, g1 - g0, g2 - g1))
            client.indices.delete(index=f"{settings.index_base}*", ignore_unavailable=True, expand_wildcards="all")
            client.indices.delete_index_template(name=settings.index_base, ignore=[404])
    finally:
        node.stop()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--full", action="store_true", help="also whole runs against OpenSearch")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "seeds"
        generate(folder, args.n, seed=1)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        with s3server.start(progress=lambda _: None) as server:
            client = server.client()
            gets = count_gets(client)
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            client.create_bucket(Bucket=bucket)
            up = upload(client, bucket, folder, "seeds/")
            url = f"s3://{bucket}/seeds"
            results = {"folder": measure(open_source(folder)), "s3": measure(open_source(url, s3_client=client))}
            print(
                f"{args.n} seeds ({size / args.n / 1024:.1f} KiB each), {os.cpu_count()} cores, "
                f"load {os.getloadavg()[0]:.1f}; S3 = SeaweedFS {s3server.SEAWEEDFS_VERSION} on loopback"
            )
            print(f"upload to S3 (8 threads): {args.n / up:,.0f} seeds/s")
            print(f"{'':8} {'list seeds/s':>14} {'hash seeds/s':>14} {'read seeds/s':>14}")
            for label, r in results.items():
                print(f"{label:8} " + " ".join(f"{r['n'] / r[k]:>14,.0f}" for k in ("list", "hash", "read")))
            f, s = results["folder"], results["s3"]
            print("S3 / folder time: " + ", ".join(f"{k} {s[k] / f[k]:.1f}x" for k in ("list", "hash", "read")))
            if args.full:
                tuning = Tuning.from_env(os.environ)
                threads = getattr(tuning, "read_threads", 1)  # 1: a checkout that reads one object at a time
                print(
                    f"whole runs, {tuning.parse_workers or 'auto'} parse workers, {threads} read threads "
                    f"(load {os.getloadavg()[0]:.1f})"
                )
                print(f"{'':8} {'first s':>9} {'files/s':>9} {'re-run s':>9} {'GETs/object':>12} {'re-run GETs':>12}")
                rate = {}
                for label, first, again, g_first, g_again in full_runs(folder, url, client, gets):
                    rate[label] = args.n / first
                    got = f"{g_first / args.n:>12.2f} {g_again:>12}" if label == "s3" else ""
                    print(f"{label:8} {first:>9.1f} {rate[label]:>9,.0f} {again:>9.1f} {got}")
                ratio = rate["s3"] / rate["folder"]
                verdict = "met" if ratio >= 0.5 else "NOT met"
                print(f"S3 / folder files/s: {ratio:.2f}x (issue 21's target: >= 0.5x: {verdict})")


if __name__ == "__main__":
    main()
