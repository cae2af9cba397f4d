"""Benchmark of the pipeline stages (prints its figures; not a test).

Generates N seeds shaped like the samples (with mojibake in half of them), then measures:
  1. discover + parse + normalize, in process (seeds/s, ms per seed);
  2. a whole run (ledger, bulk index, no image checks) against a real local OpenSearch node
     (or $OPENSEARCH_URL), and the re-run that the ledger turns into a no-op.

    .venv/bin/python bench/bench_pipeline.py --n 5000
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.seedfile import parse_seed
from pipeline.sources.folder import discover
from pipeline.stages.normalize import normalize

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "seeds" / "002_2c91f7d39cae87f0.txt"


def make_seeds(folder: Path, n: int) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    for i in range(n):
        body = text.replace("historic-moment-eu-approves", f"historic-moment-{i}-eu-approves")
        if i % 2:
            body = body.replace("surveillanceâ€”a", "surveillance—a")  # half clean, half mojibake
        (folder / f"{i:06}.txt").write_text(body, encoding="utf-8")


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_seeds(folder, args.n)
        t0, c0 = time.perf_counter(), cpu()
        seeds, _ = discover(folder)
        docs = [normalize(parse_seed(s)) for s in seeds]
        dt, dc = time.perf_counter() - t0, cpu() - c0
        assert len(docs) == args.n
        print(
            f"parse+normalize: {args.n} seeds in {dt:.2f}s = {args.n / dt:,.0f} seeds/s "
            f"({1000 * dt / args.n:.2f} ms/seed, {dc:.2f} CPU s)"
        )

        from devtools import localnode
        from pipeline.config import Settings
        from pipeline.run.flow import run
        from pipeline.run.options import RunOptions
        from pipeline.run.tuning import Tuning
        from pipeline.stores.client import make_client

        options = RunOptions(seed_dir=str(folder), check_images=False, tuning=Tuning.from_env(os.environ))
        node = localnode.start(progress=lambda m: None)
        try:
            settings = Settings(opensearch_url=node.url, index_base=f"bench-{uuid.uuid4().hex[:8]}")
            client = make_client(settings, fast_json=options.tuning.fast_json)
            for label in ("first run (index everything)", "re-run (ledger: all unchanged)"):
                t0 = time.perf_counter()
                report = run(settings, options, client=client, emit=lambda m: None)
                dt = time.perf_counter() - t0
                print(
                    f"{label}: {report.files_seen} files, {report.indexed} indexed, {report.unchanged} unchanged "
                    f"in {dt:.2f}s = {report.files_seen / dt:,.0f} files/s"
                )
            client.indices.delete(index=f"{settings.index_base}*", expand_wildcards="all")
        finally:
            node.stop()


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
