"""The ledger's cost on the node: N entries written as a run writes them, then read as planning reads them,
into ledgers made from one or more templates, alternated round by round on one node.

    git show <commit>:mappings/ledger.template.json > earlier.json
    .venv/bin/python bench/bench_ledger.py --n 10000 --rounds 3 --template earlier=earlier.json --template lean

Each round writes N entries (``Ledger.record``, a chunk of ``CHUNK`` per call, as a run settles a chunk of
files: 95 % indexed, 3 % quarantined and 2 % duplicate with a reason), refreshes, then reads the folder's
fingerprints (``Ledger.fingerprints``, what planning reads). Per 1,000 entries it reports the node's CPU
(``_nodes/stats``: all of it, so other users of a shared node add noise), the shard's own indexing, refresh
and merge time (``_stats``: this index only), and the store size. Node: $OPENSEARCH_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHUNK = 1000  # files a run settles at once (``Tuning.chunk_seeds``)
FOLDER = "/srv/seeds"
LEAN = "lean"
SAMPLE = 1.1  # seconds: _nodes/stats refreshes a process's CPU figure once a second


def entries(n: int, run_id: str, target: str, seed: int = 1) -> list:
    """``n`` ledger entries shaped like a run's: one folder, nested paths, a few refusals and duplicates."""
    from pipeline.stores.ledger import LedgerEntry
    from pipeline.types import entry_key

    rng = random.Random(seed)
    out = []
    for i in range(n):
        path = f"{i // 100:03}/article-{i:06}.txt"
        roll = rng.random()
        state, stage, reason = "indexed", "index", None
        if roll < 0.03:
            state, stage, reason = "quarantined", "validate", f"required field 'title' is missing ({i % 7})"
        elif roll < 0.05:
            state, reason = "duplicate", f"another file carries this article and was ingested later: {i - 1:06}.txt"
        ns = 1_700_000_000_000_000_000 + rng.randrange(10**15)
        out.append(
            LedgerEntry(
                root=FOLDER,
                path=path,
                state=state,
                sha256=f"{rng.getrandbits(256):064x}",
                size=rng.randrange(500, 20_000),
                mtime_ns=ns,
                ctime_ns=ns,
                ino=rng.randrange(10**7),
                seq=(1_700_000_000_000 << 20) + i,
                hashed_ns=ns + 10**10,
                stage=stage,
                reason=reason,
                doc_id=None if state == "quarantined" else f"{rng.getrandbits(128):032x}",
                target=target,
                run_id=run_id,
                key=entry_key(FOLDER, path),
            )
        )
    return out


def node_cpu(client) -> float:
    """CPU seconds the node(s) have used so far, read after ``SAMPLE`` s (the figure is refreshed each second)."""
    time.sleep(SAMPLE)
    stats = client.nodes.stats(metric="process")["nodes"].values()
    return sum(n["process"]["cpu"]["total_in_millis"] for n in stats) / 1000.0


def one_round(client, name: str, mappings: dict, n: int) -> dict[str, float]:
    from pipeline.stores.ledger import Ledger

    index = f"bench-ledger-{name}-{uuid.uuid4().hex[:8]}"
    body = {"settings": {"index": {"number_of_shards": 1, "auto_expand_replicas": "0-1"}}, "mappings": mappings}
    client.indices.create(index=index, body=body)
    batch = entries(n, run_id=uuid.uuid4().hex, target=index)
    ledger = Ledger(client, index)
    try:
        cpu0, t0 = node_cpu(client), time.perf_counter()
        for i in range(0, n, CHUNK):
            ledger.record(batch[i : i + CHUNK])
        ledger.refresh()
        t1 = time.perf_counter()
        known = ledger.fingerprints(FOLDER, content=True)
        t2 = time.perf_counter()
        cpu1 = node_cpu(client)
        assert len(known) == n, (len(known), n)
        s = client.indices.stats(index=index, metric="indexing,refresh,merge,store")["_all"]["primaries"]
        per_k = 1000 / n
        return {
            "node_cpu_s_per_1k": (cpu1 - cpu0) * per_k,
            "index_ms_per_1k": s["indexing"]["index_time_in_millis"] * per_k,
            "refresh_ms_per_1k": s["refresh"]["total_time_in_millis"] * per_k,
            "merge_ms_per_1k": s["merges"]["total_time_in_millis"] * per_k,
            "store_kb_per_1k": s["store"]["size_in_bytes"] / 1024 * per_k,
            "write_s": t1 - t0,
            "read_s": t2 - t1,
        }
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def main() -> None:
    from pipeline.config import Settings
    from pipeline.stores.client import make_client
    from pipeline.stores.indices import load_template
    from pipeline.stores.ledger import LEDGER_TEMPLATE

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--template", action="append", help=f"NAME=FILE, or {LEAN!r} for the installed template")
    ap.add_argument("--json")
    args = ap.parse_args()
    templates: dict[str, dict] = {}
    for spec in args.template or [LEAN]:
        name, _, path = spec.partition("=")
        source = json.loads(Path(path).read_text()) if path else load_template(LEDGER_TEMPLATE)
        templates[name] = source["template"]["mappings"]
    client = make_client(Settings(opensearch_url=os.environ["OPENSEARCH_URL"], timeout=300))
    results: dict[str, list[dict[str, float]]] = {name: [] for name in templates}
    load0 = os.getloadavg()
    for r in range(args.rounds):
        for name, mappings in templates.items():
            results[name].append(one_round(client, name, mappings, args.n))
            print(f"round {r + 1} {name}: {json.dumps(results[name][-1])}", flush=True)
    load1 = os.getloadavg()
    keys = list(next(iter(results.values()))[0])
    print(f"\nN = {args.n:,} entries, {args.rounds} rounds, medians; load {load0} -> {load1}\n")
    print("| template | " + " | ".join(keys) + " |")
    print("| --- |" + " ---: |" * len(keys))
    for name, rows in results.items():
        print(f"| {name} | " + " | ".join(f"{statistics.median(r[k] for r in rows):.3g}" for k in keys) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "load": [load0, load1], "results": results}, indent=1))


if __name__ == "__main__":
    main()
