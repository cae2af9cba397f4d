"""CPU per seed of the pure levers, each against the code it replaced, interleaved in one process.

    .venv/bin/python bench/bench_levers.py [--n 2000] [--rounds 5] [--json out.json]

On one generated corpus (``bench/corpus.py``), ``time.process_time`` per seed for:

  yaml        ``yamlsafe.load`` with the yaml-rs first path vs without it (``load_fast``: libyaml events)
  urls        ``urls.canonical`` with its per-process cache vs a fresh yarl parse every call, over the
              calls one seed's parse + normalize make
  annotate    ``annotate_document`` copying only what it writes vs ``copy.deepcopy`` of the document
  parse+norm  the whole read -> parse -> normalize of a seed with every lever vs none of these three

Rounds alternate old and new so that load on the machine hits both alike; the table shows the median
and the minimum. Figures are this process's CPU, no OpenSearch involved (``bench_scale.py`` has those).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def _fronts(folder: Path) -> list[str]:
    from pipeline.stages.parse import split_front_matter

    out = []
    for p in sorted(folder.rglob("*.txt")):
        try:
            out.append(split_front_matter(p.read_text(encoding="utf-8")))
        except Exception:  # noqa: BLE001 - a broken file of the corpus: not a YAML sample
            continue
    return out


def _per_seed(fn, items) -> float:
    t0 = time.process_time()
    for it in items:
        try:
            fn(it)
        except Exception:  # noqa: BLE001 - bad documents raise on both sides alike
            pass
    return (time.process_time() - t0) / max(1, len(items)) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()

    from corpus import generate

    from pipeline import urls
    from pipeline.run.options import RunOptions
    from pipeline.run.parallel import build_part
    from pipeline.run.plan import make_plan
    from pipeline.safety import yamlrust, yamlsafe
    from pipeline.stages.images import annotate

    tmp = Path(tempfile.mkdtemp(prefix="bench-levers-"))
    generate(tmp, args.n, seed=args.seed)
    fronts = _fronts(tmp)
    options = RunOptions(seed_dir=str(tmp), check_images=False, dry_run=True)
    seeds = make_plan(options, "x", None, None).batches
    files = [s for b in seeds for s in b.seeds]
    docs = build_part(files, options).docs
    sources = [d.source for d in docs]
    url_calls: list[str] = []  # every canonical() call one pass of parse + normalize makes
    real = urls._canonical_text

    def spy(text: str):
        url_calls.append(text)
        return real(text)

    urls._canonical_text = spy  # type: ignore[assignment]
    build_part(files, options)
    urls._canonical_text = real

    def uncached(text: str):
        return urls._canonical(urls.parse(text))

    def deepcopy_annotate(doc):
        return annotate.annotate_document(copy.deepcopy(doc), None)

    real_rust, real_canonical = yamlrust.yaml_rs, urls.canonical
    cases = {
        "yaml": (lambda f: yamlsafe.load_fast(f), yamlsafe.load, fronts),
        "urls": (uncached, urls.canonical, url_calls),
        "annotate": (deepcopy_annotate, lambda d: annotate.annotate_document(d, None), sources),
    }
    results: dict[str, dict[str, list[float]]] = {k: {"old": [], "new": []} for k in cases}
    results["parse+norm"] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for name, (old, new, items) in cases.items():
            urls._canonical_text.cache_clear()
            results[name]["old"].append(_per_seed(old, items))  # type: ignore[operator]
            urls._canonical_text.cache_clear()
            results[name]["new"].append(_per_seed(new, items))
        # the whole CPU half of a chunk, per seed, old (no yaml-rs, no URL cache) vs new
        yamlrust.yaml_rs = None
        urls.canonical = lambda t: uncached(t) if isinstance(t, str) else urls._canonical(t)  # type: ignore[assignment]
        t0 = time.process_time()
        build_part(files, options)
        results["parse+norm"]["old"].append((time.process_time() - t0) / len(files) * 1000.0)
        yamlrust.yaml_rs, urls.canonical = real_rust, real_canonical  # type: ignore[assignment]
        urls._canonical_text.cache_clear()
        t0 = time.process_time()
        build_part(files, options)
        results["parse+norm"]["new"].append((time.process_time() - t0) / len(files) * 1000.0)

    lines = [
        f"{len(files):,} seeds ({len(fronts):,} front matters, {len(url_calls):,} canonical() calls, "
        f"{len(sources):,} documents); {args.rounds} rounds, old and new alternated; CPU ms per item",
        "",
        "| lever | old median | new median | old min | new min | change (median) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        om, nm = statistics.median(r["old"]), statistics.median(r["new"])
        lo, ln = min(r["old"]), min(r["new"])
        lines.append(f"| {name} | {om:.4f} | {nm:.4f} | {lo:.4f} | {ln:.4f} | {100 * (nm / om - 1):+.0f} % |")
    text = "\n".join(lines)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "table": text}, indent=1))


if __name__ == "__main__":
    main()
