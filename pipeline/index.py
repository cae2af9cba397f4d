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
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .times import utc_now
from .types import Document, ItemResult

def data_dir(package: str, repo_folder: str):
    """Where a data folder of the project is: the checkout's top-level folder (``mappings/``,
    ``dashboards/``) when running from a checkout, else the copy shipped in the wheel as the data
    package ``package`` (see pyproject.toml)."""
    here = Path(__file__).resolve().parent.parent / repo_folder
    if here.is_dir():
        return here
    from importlib import resources

    return resources.files(package)


MAPPINGS_DIR = Path(os.environ["SEEDNEWS_MAPPINGS_DIR"]) if os.environ.get("SEEDNEWS_MAPPINGS_DIR") else data_dir(
    "pipeline.mappings", "mappings")
ARTICLES_TEMPLATE = "articles.template.json"
DEADLETTER_TEMPLATE = "deadletter.template.json"
log = logging.getLogger("seednews.index")

BULK_CHUNK = 5000  # documents per bulk request at most; in practice the byte limit below decides
BULK_MAX_BYTES = 5 * 1024 * 1024  # ~5 MB requests: what this node class indexes best (bench/bench_scale.py)
FAST_JSON = True  # serialize ``_source`` with orjson (same JSON value as the client's json.dumps); False: reference path
BULK_MAX_RETRIES = 3  # the helper's own per-item 429 retries (1+2+4 s) inside each of our rounds
BULK_INITIAL_BACKOFF = 1.0
BULK_MAX_BACKOFF = 30.0


class IndexError_(RuntimeError):
    """Index management failed in a way that needs a person (validation failed, alias is not an alias)."""


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
        # fields added to the template since this index was created (additive: a strict mapping
        # refuses documents with fields it does not know)
        client.indices.put_mapping(index=current[-1], body=load_template()["template"]["mappings"])
        return current[-1]
    if client.indices.exists(index=base):
        raise IndexError_(f"{base!r} is a concrete index, not an alias; move its data and delete it first")
    # A first run that died between creating its index and adding the alias left that index behind:
    # adopt the newest one rather than leaving an orphan (its documents are valid: writes are idempotent).
    orphans = sorted(client.indices.get(index=versions_pattern(base), expand_wildcards="open").keys())
    name = orphans[-1] if orphans else create_index(client, base)
    try:
        client.indices.update_aliases(body={"actions": [{"add": {"index": name, "alias": base, "is_write_index": True}}]})
    except Exception:
        # two runs raced to create the alias: keep the winner's; drop ours if we created it just now
        winners = alias_indices(client, base)
        if not winners:
            raise
        if not orphans and name not in winners:
            client.indices.delete(index=name, ignore_unavailable=True)
    return alias_indices(client, base)[-1]


def swap_alias(client, base: str, new_index: str, retention: int, paired: dict[str, str] | None = None) -> list[str]:
    """Point the alias at ``new_index`` in one atomic request; delete indices beyond ``retention``.

    ``paired`` maps further aliases to the index each must point at from the same moment (the ledger
    alias and the new index's ledger), so readers never see the new articles with the old ledger.
    Returns the names of the deleted article indices (their paired indices go with them)."""
    paired = paired or {}
    actions: list[dict[str, Any]] = []
    for alias, index in {base: new_index, **paired}.items():
        actions += [{"remove": {"index": i, "alias": alias}} for i in alias_indices(client, alias) if i != index]
        actions.append({"add": {"index": index, "alias": alias, "is_write_index": True}})
    client.indices.update_aliases(body={"actions": actions})
    all_versions = sorted(client.indices.get(index=versions_pattern(base), expand_wildcards="open").keys())
    keep = set(all_versions[-(retention + 1):]) | {new_index}
    doomed = [i for i in all_versions if i not in keep]
    for name in doomed:
        client.indices.delete(index=name, ignore_unavailable=True)
        stamp = name[len(base) + 2:]
        for alias in paired:
            client.indices.delete(index=f"{alias}-v{stamp}", ignore_unavailable=True)
    return doomed


# ----------------------------------------------------------------------------- bulk
try:
    import orjson as _orjson
except ImportError:  # optional: the client's own json.dumps is used instead
    _orjson = None


def source_body(source: dict[str, Any]) -> dict[str, Any] | str:
    """``source`` pre-serialized with orjson (the bulk helpers pass a string ``_source`` through
    unchanged), or the dict itself for the client to serialize: when orjson is missing or switched
    off, or for values orjson refuses (a lone surrogate, an integer beyond 64 bits)."""
    if _orjson is None or not FAST_JSON:
        return source
    try:
        return _orjson.dumps(source).decode("utf-8")
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return source


def to_action(doc: Document, index: str, indexed_at: str) -> dict[str, Any]:
    """A plain opensearch-py action dict for one document."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": doc.id,
        "version": doc.version,
        "version_type": "external_gte",
        "_source": source_body({**doc.source, "indexed_at": indexed_at}),
    }


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        reason = error.get("reason") or ""
        caused = error.get("caused_by", {}).get("reason")
        return f"{error.get('type', 'error')}: {reason}" + (f" ({caused})" if caused else "")
    return str(error)


RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
BULK_ATTEMPTS = 5  # our own rounds on top of the helper's 429 retries


def _item_result(ok: bool, info: dict[str, Any]) -> ItemResult:
    doc_id = str(info.get("_id"))
    status = int(info.get("status", 0) or 0)
    if ok:
        return ItemResult(doc_id, True, status, info.get("result", "indexed"))
    if status == 409:
        return ItemResult(doc_id, False, status, "conflict", "a copy of this article ingested later is indexed")
    retryable = status in RETRYABLE_STATUSES
    return ItemResult(doc_id, False, status, "failed", _error_text(info.get("error"))[:1000], retryable=retryable)


def bulk_index(
    client,
    index: str,
    docs: Iterable[Document],
    *,
    chunk_size: int = BULK_CHUNK,
    max_retries: int = BULK_MAX_RETRIES,
    initial_backoff: float = BULK_INITIAL_BACKOFF,
    max_backoff: float = BULK_MAX_BACKOFF,
    attempts: int = BULK_ATTEMPTS,
    sleep=None,
) -> Iterator[ItemResult]:
    """Index ``docs`` into ``index`` (an index or a write alias); yield one ``ItemResult`` per document.

    Triage:
    - created/updated: acknowledged.
    - 409 version conflict: a copy of the same article ingested later is already indexed -> ``conflict``.
    - 429/502/503/504 per item, or the whole request failing with those or a connection error: the
      affected documents are sent again, up to ``attempts`` rounds with exponential back-off (the
      helper itself already retries per-item 429s ``max_retries`` times). Still failing afterwards:
      per-item -> ``failed`` with ``retryable=True`` (the ledger retries next run); request-level ->
      the last error is raised, because the cluster is unusable (Airflow retries the task).
    - anything else (400 mapping errors...): ``failed``, not retryable: a dead letter.
    Re-sending is always safe: explicit ids + external versions make every write idempotent."""
    import time

    from opensearchpy import helpers
    from opensearchpy.exceptions import ConnectionError as OSConnectionError
    from opensearchpy.exceptions import TransportError

    sleep = sleep or time.sleep
    pending = list(docs)
    by_id = {d.id: d for d in pending}
    indexed_at = utc_now()
    for attempt in range(1, attempts + 1):
        retry: list[Document] = []
        done: set[str] = set()
        last: ItemResult | None = None
        try:
            for ok, item in helpers.streaming_bulk(
                client,
                (to_action(d, index, indexed_at) for d in pending),
                chunk_size=chunk_size,
                max_chunk_bytes=BULK_MAX_BYTES,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=max_retries,
                initial_backoff=initial_backoff,
                max_backoff=max_backoff,
            ):
                info = next(iter(item.values()))
                doc = by_id.get(str(info.get("_id")))
                res = _item_result(ok, info)
                done.add(res.id)
                if res.retryable and attempt < attempts and doc is not None:
                    retry.append(doc)
                    last = res
                else:
                    yield res
        except (OSConnectionError, TransportError) as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and status not in RETRYABLE_STATUSES and not isinstance(exc, OSConnectionError):
                raise
            if attempt == attempts:
                raise
            retry += [d for d in pending if d.id not in done]
            log.warning("bulk request failed (%s); retrying %d documents (round %d/%d)", exc, len(retry), attempt, attempts)
        if not retry:
            return
        if last is not None:
            log.warning("%d bulk items were refused (%s); retrying (round %d/%d)", len(retry), last.error, attempt, attempts)
        sleep(min(max_backoff, initial_backoff * 2 ** (attempt - 1)))
        pending = retry


# ----------------------------------------------------------------------------- dead letters
def dead_letter(client, deadletter_index: str, failures: list[tuple[Document, ItemResult]], target: str) -> int:
    """Keep refused documents, whole, for replay. Returns how many were stored.

    The dead-letter id is the document id: re-failing the same document updates its one entry."""
    from opensearchpy import helpers

    if not failures:
        return 0
    client.indices.put_index_template(name=deadletter_index, body=load_template(DEADLETTER_TEMPLATE, deadletter_index))
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
        raise IndexError_(f"could not store {len(errors)} dead letters: {errors[:3]}")
    return ok


def resolve_dead_letters(client, deadletter_index: str, doc_ids: Iterable[str], resolution: str) -> int:
    """Mark pending dead letters for ``doc_ids`` as resolved (the document is now indexed)."""
    from opensearchpy import helpers

    ids = list(doc_ids)
    if not ids or not client.indices.exists(index=deadletter_index):
        return 0
    found = [d["_id"] for d in client.mget(index=deadletter_index, body={"ids": ids})["docs"]
             if d.get("found") and d["_source"].get("pending")]
    actions = [{"_op_type": "update", "_index": deadletter_index, "_id": i,
                "doc": {"pending": False, "resolution": resolution, "resolved_at": utc_now()}} for i in found]
    if actions:
        helpers.bulk(client, actions, refresh="wait_for")
    return len(actions)


def pending_dead_letters(client, deadletter_index: str, page: int = 500) -> Iterator[dict[str, Any]]:
    """Every pending dead letter's ``_source`` (sorted by id, paged with search_after)."""
    if not client.indices.exists(index=deadletter_index):
        return
    after = None
    while True:
        body: dict[str, Any] = {"size": page, "query": {"term": {"pending": True}}, "sort": [{"doc_id": "asc"}]}
        if after:
            body["search_after"] = after
        hits = client.search(index=deadletter_index, body=body)["hits"]["hits"]
        if not hits:
            return
        for h in hits:
            yield h["_source"]
        after = hits[-1]["sort"]


# ----------------------------------------------------------------------------- reads
def refresh(client, index: str) -> None:
    client.indices.refresh(index=index)


def template_refresh_interval() -> str:
    return str(load_template()["template"]["settings"]["index"].get("refresh_interval", "1s"))


def pause_refresh(client, index: str) -> None:
    """No periodic refresh while a full rebuild fills ``index`` (nobody reads it before the swap)."""
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})


def resume_refresh(client, index: str) -> None:
    """Back to the template's refresh interval (before the rebuild is validated and served)."""
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": template_refresh_interval()}})


def count(client, index: str) -> int:
    return int(client.count(index=index)["count"])


def facet(client, index: str, field: str, size: int = 50) -> list[tuple[str, int]]:
    """Terms aggregation on ``field``: ``[(value, doc_count), ...]`` most common first."""
    res = client.search(index=index, body={"size": 0, "aggs": {"f": {"terms": {"field": field, "size": size}}}})
    return [(b["key_as_string"] if "key_as_string" in b else b["key"], b["doc_count"]) for b in res["aggregations"]["f"]["buckets"]]
