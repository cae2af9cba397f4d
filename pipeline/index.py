"""Stage 5, index: templates, versioned indices behind a read alias, and bulk writes with per-item results.

- The index template (``mappings/articles.template.json``) is the single source of truth for the shape.
- Concrete indices are ``<base>-v<UTC stamp>``; readers and Dashboards use the alias ``<base>``.
  Incremental runs write through the alias; a full rebuild writes a new index and ``swap_alias`` moves
  the alias atomically once the new index is validated, then prunes old indices beyond a retention count.
- Bulk writes use ``opensearchpy.helpers.streaming_bulk`` with explicit ``_id``s (so a resent request
  can never duplicate), external versions (``version_type=external_gte``: the newest seed file wins,
  whatever order batches run in), ``raise_on_error=False`` + ``max_retries`` (so per-item 429s are retried
  with back-off instead of raised) and ``raise_on_exception=True`` (a dead cluster is an infrastructure
  error: it raises, and Airflow retries the task; every write is idempotent).
- Every item yields an ``ItemResult``. Non-retryable failures go to the dead-letter index with the full
  document, so they can be replayed after the cause is fixed: nothing is dropped silently.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .types import Document, ItemResult

MAPPINGS_DIR = Path(os.environ.get("SEEDNEWS_MAPPINGS_DIR", Path(__file__).resolve().parent.parent / "mappings"))
ARTICLES_TEMPLATE = "articles.template.json"
DEADLETTER_TEMPLATE = "deadletter.template.json"
BULK_CHUNK = 500
BULK_MAX_BYTES = 10 * 1024 * 1024
BULK_MAX_RETRIES = 5
BULK_INITIAL_BACKOFF = 1.0
BULK_MAX_BACKOFF = 30.0


class IndexError_(RuntimeError):
    """Index management failed in a way that needs a person (validation failed, alias is not an alias)."""


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_template(name: str = ARTICLES_TEMPLATE, pattern: str | None = None) -> dict[str, Any]:
    """The template JSON from ``mappings/``; ``pattern`` replaces its index pattern (another index base)."""
    body = json.loads((MAPPINGS_DIR / name).read_text(encoding="utf-8"))
    if pattern is not None:
        body["index_patterns"] = [pattern]
    return body


def versions_pattern(base: str) -> str:
    """Concrete article indices are ``<base>-v<stamp>``: the pattern never matches the dead-letter or
    cache indices that share the base name."""
    return f"{base}-v*"


def article_mapping() -> dict[str, Any]:
    return copy.deepcopy(load_template()["template"]["mappings"])


def ensure_templates(client, base: str) -> None:
    """Install (or update) the article template for ``<base>-*``. Idempotent."""
    client.indices.put_index_template(name=base, body=load_template(ARTICLES_TEMPLATE, versions_pattern(base)))


def new_index_name(base: str, now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"{base}-v{now.strftime('%Y%m%d%H%M%S%f')}"


def create_index(client, base: str) -> str:
    """Create a fresh concrete index (the template supplies settings and mappings)."""
    ensure_templates(client, base)
    name = new_index_name(base)
    client.indices.create(index=name)
    return name


def alias_indices(client, alias: str) -> list[str]:
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(client.indices.get_alias(name=alias).keys())


def ensure_alias(client, base: str) -> str:
    """Make sure the read/write alias ``base`` exists; return the concrete index behind it.

    If ``base`` is a concrete index (someone indexed without the alias), refuse rather than guess."""
    ensure_templates(client, base)
    current = alias_indices(client, base)
    if current:
        return current[-1]
    if client.indices.exists(index=base):
        raise IndexError_(f"{base!r} is a concrete index, not an alias; move its data and delete it first")
    name = create_index(client, base)
    try:
        client.indices.update_aliases(body={"actions": [{"add": {"index": name, "alias": base, "is_write_index": True}}]})
    except Exception:
        # two runs raced to create the alias: keep the winner's, drop ours if it is empty
        if alias_indices(client, base):
            client.indices.delete(index=name, ignore_unavailable=True)
        else:
            raise
    return alias_indices(client, base)[-1]


def swap_alias(client, base: str, new_index: str, retention: int) -> list[str]:
    """Point the alias at ``new_index`` in one atomic request; delete indices beyond ``retention``.

    Returns the names of the deleted indices."""
    old = alias_indices(client, base)
    actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": base}} for i in old if i != new_index]
    actions.append({"add": {"index": new_index, "alias": base, "is_write_index": True}})
    client.indices.update_aliases(body={"actions": actions})
    all_versions = sorted(client.indices.get(index=versions_pattern(base), expand_wildcards="open").keys())
    keep = set(all_versions[-(retention + 1):]) | {new_index}
    doomed = [i for i in all_versions if i not in keep]
    for name in doomed:
        client.indices.delete(index=name, ignore_unavailable=True)
    return doomed


# ----------------------------------------------------------------------------- bulk
def to_action(doc: Document, index: str, indexed_at: str) -> dict[str, Any]:
    """A plain opensearch-py action dict for one document."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": doc.id,
        "version": doc.version,
        "version_type": "external_gte",
        "_source": {**doc.source, "indexed_at": indexed_at},
    }


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        reason = error.get("reason") or ""
        caused = error.get("caused_by", {}).get("reason")
        return f"{error.get('type', 'error')}: {reason}" + (f" ({caused})" if caused else "")
    return str(error)


def bulk_index(
    client,
    index: str,
    docs: Iterable[Document],
    *,
    chunk_size: int = BULK_CHUNK,
    max_retries: int = BULK_MAX_RETRIES,
    initial_backoff: float = BULK_INITIAL_BACKOFF,
    max_backoff: float = BULK_MAX_BACKOFF,
) -> Iterator[ItemResult]:
    """Index ``docs`` into ``index`` (an index or a write alias); yield one ``ItemResult`` per document.

    A 409 version conflict means a newer seed file for the same article is already indexed: reported
    as ``superseded`` (ok). Other per-item failures are reported with their reason (``ok=False``)."""
    from opensearchpy import helpers

    by_id: dict[str, Document] = {}
    indexed_at = utc_now()

    def actions() -> Iterator[dict[str, Any]]:
        for d in docs:
            by_id[d.id] = d
            yield to_action(d, index, indexed_at)

    for ok, item in helpers.streaming_bulk(
        client,
        actions(),
        chunk_size=chunk_size,
        max_chunk_bytes=BULK_MAX_BYTES,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=max_retries,
        initial_backoff=initial_backoff,
        max_backoff=max_backoff,
    ):
        info = next(iter(item.values()))
        doc_id = str(info.get("_id"))
        seed = by_id[doc_id].seed.rel if doc_id in by_id else None
        status = int(info.get("status", 0))
        if ok:
            yield ItemResult(doc_id, True, status, info.get("result", "indexed"), seed=seed)
        elif status == 409:
            yield ItemResult(doc_id, True, status, "superseded", "a newer seed file for this article is indexed", seed)
        else:
            yield ItemResult(doc_id, False, status, "failed", _error_text(info.get("error")), seed)


# ----------------------------------------------------------------------------- dead letters
def dead_letter(client, settings_deadletter_index: str, failures: list[tuple[Document, ItemResult]], target: str) -> int:
    """Keep failed documents, whole, for replay. Returns how many were stored.

    The dead-letter id is the document id: re-failing the same document updates one entry."""
    from opensearchpy import helpers

    if not failures:
        return 0
    client.indices.put_index_template(
        name=settings_deadletter_index, body=_deadletter_template(settings_deadletter_index)
    )
    now = utc_now()
    actions = [
        {
            "_op_type": "index",
            "_index": settings_deadletter_index,
            "_id": doc.id,
            "_source": {
                "doc_id": doc.id,
                "seed_path": doc.seed.rel,
                "seed_sha256": doc.seed.sha256,
                "target": target,
                "status": result.status,
                "reason": result.error,
                "failed_at": now,
                "version": doc.version,
                "document": json.dumps(doc.source, ensure_ascii=False),
                "replayed": False,
            },
        }
        for doc, result in failures
    ]
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, refresh="wait_for")
    if errors:
        raise IndexError_(f"could not store {len(errors)} dead letters: {errors[:3]}")
    return ok


def _deadletter_template(name: str) -> dict[str, Any]:
    return load_template(DEADLETTER_TEMPLATE, name)


# ----------------------------------------------------------------------------- reads
def refresh(client, index: str) -> None:
    client.indices.refresh(index=index)


def count(client, index: str) -> int:
    return int(client.count(index=index)["count"])


def facet(client, index: str, field: str, size: int = 50) -> list[tuple[str, int]]:
    """Terms aggregation on ``field``: ``[(value, doc_count), ...]`` most common first."""
    res = client.search(index=index, body={"size": 0, "aggs": {"f": {"terms": {"field": field, "size": size}}}})
    return [(b["key_as_string"] if "key_as_string" in b else b["key"], b["doc_count"]) for b in res["aggregations"]["f"]["buckets"]]
