"""Where image verdicts outlive a run in production: the OpenSearch-backed ``VerdictCache``.

The protocol, the in-memory cache and the age rule are the checker's own
(:mod:`pipeline.stages.images.cache`); this module only stores and returns verdicts as given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from yarl import URL

from pipeline.errors import ImageCacheError
from pipeline.stores.retry import read
from pipeline.types import ImageVerdict

DEFAULT_CACHE_INDEX = "seednews-image-cache"

CACHE_INDEX_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "url": {"type": "keyword", "ignore_above": 4096},
        "host": {"type": "keyword", "ignore_above": 256},
        "status": {"type": "keyword"},
        "http_code": {"type": "short"},
        "transient": {"type": "boolean"},
        "reason": {"type": "keyword", "ignore_above": 512},
        "checked_at": {"type": "date", "format": "strict_date_optional_time||epoch_second"},
        "final_url": {"type": "keyword", "index": False, "doc_values": False, "ignore_above": 4096},
    },
}
"""Mapping of the cache index: small, strict, every field but ``final_url`` facetable."""


def cache_doc_id(url: str) -> str:
    """Document id of a cache entry: hex sha256 of the URL (UTF-8)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class OpenSearchVerdictCache:
    """Verdict cache in an OpenSearch index (opensearch-py client): ``mget`` to look up,
    ``bulk`` to write, one document per URL with id ``sha256(url)``.

    The index is created on first write with :data:`CACHE_INDEX_MAPPING`. Lookups on a missing
    index return nothing. Errors propagate; :func:`pipeline.stages.images.check_images` logs them and goes on
    uncached.
    """

    def __init__(
        self,
        client: Any,
        index: str = DEFAULT_CACHE_INDEX,
        *,
        chunk_size: int = 500,
        refresh: bool | str = False,
        number_of_replicas: int | None = None,
    ) -> None:
        self.client = client
        self.index = index
        self.chunk_size = chunk_size
        self.refresh = refresh
        self.number_of_replicas = number_of_replicas
        self._index_ready = False

    def ensure_index(self) -> None:
        if self._index_ready:
            return
        if not read(self.client, f"index {self.index}: exists", self.client.indices.exists, index=self.index):
            # like the other indices: one replica on a cluster, none on a single node
            # (a cache: losing it only costs checks)
            copies = (
                {"auto_expand_replicas": "0-1"}
                if self.number_of_replicas is None
                else {"number_of_replicas": self.number_of_replicas}
            )
            body = {"settings": {"index": {"number_of_shards": 1, **copies}}, "mappings": CACHE_INDEX_MAPPING}
            try:
                self.client.indices.create(index=self.index, body=body)
            except Exception as exc:  # a concurrent worker may have created it first
                if "resource_already_exists" not in str(exc):
                    raise
        self._index_ready = True

    def get_many(self, keys: Sequence[str]) -> dict[str, ImageVerdict]:
        out: dict[str, ImageVerdict] = {}
        keys = list(dict.fromkeys(keys))
        for i in range(0, len(keys), self.chunk_size):
            chunk = keys[i : i + self.chunk_size]
            ids = {cache_doc_id(k): k for k in chunk}
            try:
                resp = read(
                    self.client, "image cache: lookup", self.client.mget, index=self.index, body={"ids": list(ids)}
                )
            except Exception as exc:
                if getattr(exc, "status_code", None) == 404 or "index_not_found" in str(exc):
                    return out
                raise
            for doc in resp.get("docs", []):
                if not doc.get("found"):
                    continue
                src = doc.get("_source") or {}
                key = ids.get(doc.get("_id", ""))
                if key is None or src.get("url") != key:  # hash collision or foreign doc: ignore
                    continue
                try:
                    out[key] = ImageVerdict.from_dict(src)
                except (KeyError, TypeError, ValueError):
                    continue
        return out

    def put_many(self, verdicts: Mapping[str, ImageVerdict]) -> None:
        if not verdicts:
            return
        self.ensure_index()
        items = list(verdicts.items())
        for i in range(0, len(items), self.chunk_size):
            body: list[dict[str, Any]] = []
            for key, v in items[i : i + self.chunk_size]:
                body.append({"index": {"_index": self.index, "_id": cache_doc_id(key)}})
                body.append(
                    {
                        "url": key,
                        "host": (URL(key).raw_host or "") if key else "",
                        "status": v.status,
                        "http_code": v.http_code,
                        "transient": v.transient,
                        "reason": v.reason,
                        "checked_at": v.checked_at,
                        "final_url": v.final_url,
                    }
                )
            params = {"refresh": str(self.refresh).lower()} if self.refresh else None
            resp = self.client.bulk(body=body, params=params) if params else self.client.bulk(body=body)
            if resp.get("errors"):
                first = next((it for it in resp.get("items", []) if next(iter(it.values())).get("error")), None)
                raise ImageCacheError(f"bulk write to {self.index} had errors, first: {_first_error(first)}")


def _first_error(item: Mapping[str, Any] | None) -> str:
    """``index <id>: <type>: <reason>`` of one failed bulk item, not the raw response dict."""
    if not item:
        return "(no item reported an error)"
    op, info = next(iter(item.items()))
    error = info.get("error") or {}
    kind, reason = (
        (error.get("type", "error"), error.get("reason", "")) if isinstance(error, dict) else ("error", error)
    )
    return f"{op} {info.get('_id')}: {kind}: {str(reason)[:200]}"


__all__ = ["CACHE_INDEX_MAPPING", "DEFAULT_CACHE_INDEX", "OpenSearchVerdictCache", "cache_doc_id"]
