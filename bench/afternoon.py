"""The afternoon script of issue 21: what a user would write instead of seednews, as the benchmark's yardstick.

    .venv/bin/python bench/afternoon.py SEED_DIR --url http://127.0.0.1:9200 --index afternoon

One process: every ``*.txt`` under SEED_DIR, its front matter loaded by PyYAML's ``CSafeLoader``, ``ftfy.fix_text``
on every string, the documents sent by opensearch-py's ``streaming_bulk`` (``_id`` from the article URL). No
ledger, no quarantine, no versions, no alias: a file that does not load is skipped. Prints ``{"indexed", "failed",
"skipped"}`` as JSON.
"""

import argparse
import hashlib
import json
from pathlib import Path

import ftfy
import yaml
from opensearchpy import OpenSearch, helpers


def fix(value):
    if isinstance(value, str):
        return ftfy.fix_text(value)
    if isinstance(value, list):
        return [fix(v) for v in value]
    if isinstance(value, dict):
        return {k: fix(v) for k, v in value.items()}
    return value


def actions(folder, index, skipped):
    for path in sorted(Path(folder).rglob("*.txt")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8").split("\n---", 1)[0], Loader=yaml.CSafeLoader)
        except (yaml.YAMLError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or not data.get("title"):
            skipped.append(path)
            continue
        url = str(data.get("originalUrl") or data.get("webUrl") or path)
        yield {"_index": index, "_id": hashlib.sha256(url.encode()).hexdigest(), "_source": fix(data)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("--url", required=True)
    ap.add_argument("--index", required=True)
    args = ap.parse_args()
    client = OpenSearch(args.url, timeout=300)
    skipped, ok, failed = [], 0, 0
    for good, _ in helpers.streaming_bulk(client, actions(args.folder, args.index, skipped), raise_on_error=False):
        ok, failed = ok + good, failed + (not good)
    client.indices.refresh(index=args.index)
    print(json.dumps({"indexed": ok, "failed": failed, "skipped": len(skipped)}))


if __name__ == "__main__":
    main()
