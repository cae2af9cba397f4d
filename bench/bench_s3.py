"""Benchmark: reading seeds from object storage versus a local folder (prints its figures; not a test).

Generates N synthetic seeds (bench/corpus.py), writes them to a temp folder and to a bucket on a real
S3-compatible server on loopback (devtools.s3server: SeaweedFS), then measures, for each source, the
three things a run does with seeds, one thread like the pipeline:

  list     walk the location (the ledger's cheap change filter needs nothing more: an unchanged re-run)
  hash     planning's read + sha256 of every seed (a first run, or every changed seed)
  read     the worker's checked read (same ETag / same file, same sha256)

With --full, also a whole run of each (no image checks) against a real OpenSearch node (started
here, or $OPENSEARCH_URL) and its re-run.

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
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import generate
from devtools import s3server
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


def full_runs(folder: Path, url: str, s3_client) -> list[tuple[str, float, float]]:
    from devtools import localnode
    from pipeline.config import Settings
    from pipeline.run.flow import run
    from pipeline.run.options import RunOptions
    from pipeline.run.tuning import Tuning
    from pipeline.stores.client import make_client

    # both sources parse in the run's own process: an object store gets no parse workers
    tuning = replace(Tuning.from_env(os.environ), parse_workers=1)
    node = localnode.start(progress=lambda _: None)
    rows = []
    try:
        for label, location in (("folder", str(folder)), ("s3", url)):
            settings = Settings(opensearch_url=node.url, index_base=f"bench-s3-{uuid.uuid4().hex[:8]}")
            client = make_client(settings)
            opts = RunOptions(seed_dir=location, check_images=False, tuning=tuning)
            t0 = time.perf_counter()
            run(settings, opts, client=client, emit=lambda _: None, s3_client=s3_client)
            t1 = time.perf_counter()
            again = run(settings, opts, client=client, emit=lambda _: None, s3_client=s3_client)
            t2 = time.perf_counter()
            assert again.unchanged == again.files_seen
            rows.append((label, t1 - t0, t2 - t1))
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
                print(f"{'whole run':8} {'first s':>14} {'re-run s':>14}")
                for label, first, again in full_runs(folder, url, client):
                    print(f"{label:8} {first:>14.1f} {again:>14.1f}   ({args.n / first:,.0f} seeds/s first run)")


if __name__ == "__main__":
    main()
