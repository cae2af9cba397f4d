"""Bulk writes of articles with per-item results (the index stage's I/O; the indices themselves, templates
and aliases are ``pipeline.stores.indices``).

- Bulk writes use ``opensearchpy.helpers.streaming_bulk`` with explicit ``_id``s (so a resent request
  can never duplicate), external versions (``version_type=external_gte``: the newest seed file wins,
  whatever order batches run in), ``raise_on_error=False`` + ``max_retries`` (so per-item 429s are retried
  with back-off instead of raised) and ``raise_on_exception=True`` (a dead cluster is an infrastructure
  error: it raises, and Airflow retries the task; every write is idempotent).
- Every item yields an ``ItemResult``. Non-retryable failures go to the dead-letter index with the full
  document, so they can be replayed after the cause is fixed: nothing is dropped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from pipeline.policy import LATER_COPY_INDEXED
from pipeline.times import utc_now
from pipeline.types import Document, ItemResult

log = logging.getLogger("seednews.index")


# the defaults of ``bulk_index``'s request shape; a run passes its own (``pipeline.run.tuning.Tuning``)
BULK_CHUNK = 5000  # documents per bulk request at most; in practice the byte limit below decides
BULK_MAX_BYTES = 5 * 1024 * 1024  # ~5 MB requests: what this node class indexes best (bench/bench_scale.py)
BULK_MAX_RETRIES = 3  # the helper's own per-item 429 retries (1+2+4 s) inside each of our rounds
BULK_INITIAL_BACKOFF = 1.0
BULK_MAX_BACKOFF = 30.0


# ----------------------------------------------------------------------------- bulk
_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # optional: the client's own json.dumps is used instead
    _orjson = None


def source_body(source: dict[str, Any], fast_json: bool = True) -> dict[str, Any] | str:
    """``source`` pre-serialized with orjson (the bulk helpers pass a string ``_source`` through
    unchanged; the same JSON value as the client's json.dumps), or the dict itself for the client to
    serialize: when orjson is missing or ``fast_json`` is off, or for values orjson refuses (a lone
    surrogate, an integer beyond 64 bits)."""
    if _orjson is None or not fast_json:
        return source
    try:
        return _orjson.dumps(source).decode("utf-8")
    except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
        return source


def response_serializer(fast_json: bool = True) -> Any:
    """The client's JSON serializer with responses decoded by orjson when it is there and ``fast_json``
    is on (bulk answers and the ledger's fingerprint reads are the large ones: ~40 % less decoding
    time); falls back to json for what orjson refuses (an integer beyond 64 bits). Request bodies are
    written as the client does."""
    from opensearchpy.serializer import JSONSerializer

    if _orjson is None or not fast_json:
        return JSONSerializer()

    class OrjsonResponses(JSONSerializer):
        def loads(self, s: str) -> Any:
            try:
                return _orjson.loads(s)
            except _orjson.JSONDecodeError:
                return super().loads(s)

    return OrjsonResponses()


def to_action(doc: Document, index: str, indexed_at: str, fast_json: bool = True) -> dict[str, Any]:
    """A plain opensearch-py action dict for one document (``_source`` by ``source_body``)."""
    return {
        "_op_type": "index",
        "_index": index,
        "_id": doc.id,
        "version": doc.version,
        "version_type": "external_gte",
        "_source": source_body({**doc.source, "indexed_at": indexed_at}, fast_json),
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
        return ItemResult(doc_id, True, status, "updated" if info.get("result") == "updated" else "created")
    if status == 409:
        return ItemResult(doc_id, False, status, "conflict", LATER_COPY_INDEXED)
    retryable = status in RETRYABLE_STATUSES
    return ItemResult(doc_id, False, status, "failed", _error_text(info.get("error"))[:1000], retryable=retryable)


def bulk_index(
    client,
    index: str,
    docs: Iterable[Document],
    *,
    chunk_size: int = BULK_CHUNK,
    max_chunk_bytes: int = BULK_MAX_BYTES,
    fast_json: bool = True,
    max_retries: int = BULK_MAX_RETRIES,
    initial_backoff: float = BULK_INITIAL_BACKOFF,
    max_backoff: float = BULK_MAX_BACKOFF,
    attempts: int = BULK_ATTEMPTS,
    sleep=None,
) -> Iterator[ItemResult]:
    """Index ``docs`` into ``index`` (an index or a write alias); yield one ``ItemResult`` per document.
    Requests hold at most ``chunk_size`` documents and ``max_chunk_bytes`` bytes; ``fast_json`` writes
    the bodies with orjson (``source_body``).

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
                (to_action(d, index, indexed_at, fast_json) for d in pending),
                chunk_size=chunk_size,
                max_chunk_bytes=max_chunk_bytes,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=max_retries,
                # the helper annotates these as int, but only ever sleeps min(max, initial * 2**n) seconds
                initial_backoff=initial_backoff,  # type: ignore[arg-type]
                max_backoff=max_backoff,  # type: ignore[arg-type]
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
            log.warning(
                "bulk request failed (%s); retrying %d documents (round %d/%d)", exc, len(retry), attempt, attempts
            )
        if not retry:
            return
        if last is not None:
            log.warning(
                "%d bulk items were refused (%s); retrying (round %d/%d)", len(retry), last.error, attempt, attempts
            )
        sleep(min(max_backoff, initial_backoff * 2 ** (attempt - 1)))
        pending = retry
