"""The ledger of seed files: which file (root + path), with which content (sha256), became what.

Kept in an OpenSearch index (``<base>-ledger``) because every Airflow worker already reaches OpenSearch
and nothing else: it survives a wiped worker, needs no extra service, and analysts can read it in
Dashboards next to the articles. One entry per file; its id is derived from root + path, so writing
an entry again replaces it (idempotent).

States a person can read:

``indexed``      OpenSearch acknowledged the document built from this content
``quarantined``  the content cannot become a document (reason says why); fixed content is picked up
                 again because its hash changes
``failed``       a retryable failure (cluster busy, 5xx): the next run tries it again
``dead_letter``  OpenSearch refused the document for good (mapping); kept whole in the dead-letter
                 index for replay
``duplicate``    another file in the same run carries the same article and is newer
``superseded``   a newer file for the same article was already indexed

Discovery skips a file whose content hash matches its entry in a settled state (``SETTLED``): an
unchanged file is never re-parsed. ``failed`` files are always retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .index import load_template, utc_now

LEDGER_TEMPLATE = "ledger.template.json"
MGET_CHUNK = 1000

INDEXED, QUARANTINED, FAILED, DEAD_LETTER, DUPLICATE, SUPERSEDED = (
    "indexed", "quarantined", "failed", "dead_letter", "duplicate", "superseded",
)
STATES = (INDEXED, QUARANTINED, FAILED, DEAD_LETTER, DUPLICATE, SUPERSEDED)
SETTLED = frozenset({INDEXED, QUARANTINED, DUPLICATE, SUPERSEDED, DEAD_LETTER})


@dataclass(frozen=True)
class LedgerEntry:
    root: str
    path: str  # relative to root
    sha256: str
    state: str
    size: int = 0
    stage: str | None = None
    reason: str | None = None
    doc_id: str | None = None
    target: str | None = None
    run_id: str | None = None
    attempts: int = 1
    updated_at: str | None = None

    @property
    def key(self) -> str:
        return entry_key(self.root, self.path)


def entry_key(root: str, path: str) -> str:
    return hashlib.sha256(f"{root}\0{path}".encode("utf-8")).hexdigest()


class Ledger:
    """The ledger index. ``client`` is an ``opensearchpy.OpenSearch``; ``index`` its name."""

    def __init__(self, client, index: str) -> None:
        self.client = client
        self.index = index

    def ensure(self) -> None:
        self.client.indices.put_index_template(name=self.index, body=load_template(LEDGER_TEMPLATE, self.index))
        if not self.client.indices.exists(index=self.index):
            try:
                self.client.indices.create(index=self.index)
            except Exception:
                if not self.client.indices.exists(index=self.index):  # lost a creation race: fine
                    raise

    def lookup(self, root: str, paths: Iterable[str]) -> dict[str, LedgerEntry]:
        """Entries for ``paths`` (relative to ``root``) that exist, keyed by path."""
        paths = list(paths)
        found: dict[str, LedgerEntry] = {}
        if not paths or not self.client.indices.exists(index=self.index):
            return found
        for i in range(0, len(paths), MGET_CHUNK):
            ids = [entry_key(root, p) for p in paths[i:i + MGET_CHUNK]]
            res = self.client.mget(index=self.index, body={"ids": ids})
            for doc in res["docs"]:
                if doc.get("found"):
                    entry = LedgerEntry(**doc["_source"])
                    found[entry.path] = entry
        return found

    def record(self, entries: Iterable[LedgerEntry], previous: dict[str, LedgerEntry] | None = None) -> int:
        """Write entries (replacing earlier ones). ``attempts`` counts consecutive tries of the same
        content. Raises if OpenSearch refuses any write: a ledger that silently lags would lie."""
        from opensearchpy import helpers

        previous = previous or {}
        now = utc_now()
        actions: list[dict[str, Any]] = []
        for e in entries:
            prev = previous.get(e.path)
            attempts = prev.attempts + 1 if prev and prev.sha256 == e.sha256 and prev.state == FAILED else 1
            body = {**asdict(e), "attempts": attempts, "updated_at": now}
            actions.append({"_op_type": "index", "_index": self.index, "_id": e.key, "_source": body})
        if not actions:
            return 0
        self.ensure()
        ok, errors = helpers.bulk(self.client, actions, raise_on_error=False, max_retries=5)
        if errors:
            raise RuntimeError(f"ledger {self.index}: {len(errors)} entries not written: {errors[:2]}")
        return ok

    def counts(self, root: str | None = None) -> dict[str, int]:
        """Entries per state (for reports and validation)."""
        if not self.client.indices.exists(index=self.index):
            return {}
        self.client.indices.refresh(index=self.index)
        query = {"term": {"root": root}} if root else {"match_all": {}}
        res = self.client.search(
            index=self.index,
            body={"size": 0, "query": query, "aggs": {"s": {"terms": {"field": "state", "size": 20}}}},
        )
        return {b["key"]: b["doc_count"] for b in res["aggregations"]["s"]["buckets"]}

    def indexed_doc_ids(self, run_id: str) -> int:
        """How many distinct documents this run's entries say are indexed (exact up to 40,000)."""
        self.client.indices.refresh(index=self.index)
        res = self.client.search(
            index=self.index,
            body={
                "size": 0,
                "query": {"bool": {"filter": [{"term": {"run_id": run_id}}, {"term": {"state": INDEXED}}]}},
                "aggs": {"d": {"cardinality": {"field": "doc_id", "precision_threshold": 40000}}},
            },
        )
        return int(res["aggregations"]["d"]["value"])
