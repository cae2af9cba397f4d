"""The dead-letter index: documents the cluster refused for good, kept whole for replay after a fix."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.errors import DeadLetterError
from pipeline.stores.indices import DEADLETTER_TEMPLATE, load_template
from pipeline.stores.retry import read
from pipeline.times import utc_now
from pipeline.types import Document, ItemResult

log = logging.getLogger("seednews.index")


# ----------------------------------------------------------------------------- dead letters
def ensure_template(client, deadletter_index: str) -> None:
    """Install (or update) the dead-letter template for ``deadletter_index``: the index it creates on the
    first refusal gets the mapping of ``mappings/deadletter.template.json``. Idempotent."""
    client.indices.put_index_template(name=deadletter_index, body=load_template(DEADLETTER_TEMPLATE, deadletter_index))


def dead_letter(client, deadletter_index: str, failures: list[tuple[Document, ItemResult]], target: str) -> int:
    """Keep refused documents, whole, for replay. Returns how many were stored.

    The dead-letter id is the document id: re-failing the same document updates its one entry."""
    from opensearchpy import helpers

    if not failures:
        return 0
    ensure_template(client, deadletter_index)
    now = utc_now()
    actions = [
        {
            "_op_type": "index",
            "_index": deadletter_index,
            "_id": doc.id,
            "_source": {
                "doc_id": doc.id,
                "seed_root": doc.seed.root,
                "seed_path": doc.seed.rel,
                "seed_sha256": doc.seed.sha256,
                "target": target,
                "status": result.status,
                "reason": result.error,
                "failed_at": now,
                "version": doc.version,
                "document": json.dumps(doc.source, ensure_ascii=False),
                "pending": True,
            },
        }
        for doc, result in failures
    ]
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="wait_for", max_retries=5)
    if errors:
        raise DeadLetterError(f"could not store {len(errors)} dead letters: {errors[:3]}")
    return ok


def resolve_dead_letters(client, deadletter_index: str, doc_ids: Iterable[str], resolution: str) -> int:
    """Mark pending dead letters for ``doc_ids`` as resolved (the document is now indexed)."""
    from opensearchpy import helpers

    ids = list(doc_ids)
    if not ids or not read(client, f"index {deadletter_index}: exists", client.indices.exists, index=deadletter_index):
        return 0
    found = [
        d["_id"]
        for d in read(client, "dead letters: lookup", client.mget, index=deadletter_index, body={"ids": ids})["docs"]
        if d.get("found") and d["_source"].get("pending")
    ]
    actions = [
        {
            "_op_type": "update",
            "_index": deadletter_index,
            "_id": i,
            "doc": {"pending": False, "resolution": resolution, "resolved_at": utc_now()},
        }
        for i in found
    ]
    if actions:
        helpers.bulk(client, actions, refresh="wait_for")
    return len(actions)


def pending_dead_letters(client, deadletter_index: str, page: int = 500) -> Iterator[dict[str, Any]]:
    """Every pending dead letter's ``_source`` (sorted by id, paged with search_after)."""
    if not read(client, f"index {deadletter_index}: exists", client.indices.exists, index=deadletter_index):
        return
    after = None
    while True:
        body: dict[str, Any] = {"size": page, "query": {"term": {"pending": True}}, "sort": [{"doc_id": "asc"}]}
        if after:
            body["search_after"] = after
        hits = read(client, "dead letters: scan", client.search, index=deadletter_index, body=body)["hits"]["hits"]
        if not hits:
            return
        for h in hits:
            yield h["_source"]
        after = hits[-1]["sort"]
