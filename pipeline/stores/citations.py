"""Reads and writes of the links between articles: ``related[].id`` (the id the related article would have
as a document, set by ``stages.normalize``), ``related[].linked`` (that article is indexed), and
``cited_by`` / ``cited_by_count`` (the indexed articles whose related entries name this one).

Reads fetch only what linking needs of an article (``Node``: its related ids, their flags, its
``cited_by``), by a terms query on one field, chunked and scrolled, so a read costs what it returns and
never a scan of the index. ``rewrite`` changes articles the only way external versioning allows: the
whole ``_source`` indexed again with the ``_version`` the article had when read and ``external_gte`` (an equal
version is accepted; the ``_update`` API would bump the version and make the seed's next re-send of the
same version a conflict). A write refused with a conflict means a newer copy landed since the read: the
run that wrote it links it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.errors import LinkError
from pipeline.stores.bulk import BULK_MAX_BYTES, source_body
from pipeline.stores.retry import read, read_scroll

TERMS_CHUNK = 10_000  # values per terms query (the node's index.max_terms_count is 65,536)
MGET_CHUNK = 1000  # whole documents per mget when rewriting
SCAN_PAGE = 5000
LINK_SOURCE = ["id", "related.id", "related.linked", "cited_by"]


@dataclass(frozen=True)
class Links:
    """The link fields of one article: ``related[i].linked`` in order, and ``cited_by`` (sorted ids)."""

    linked: tuple[bool | None, ...]  # None: not set (an article written before linking existed)
    cited_by: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    """One indexed article as linking sees it."""

    id: str
    related: tuple[str | None, ...]  # related[i].id (None: a related entry without a URL)
    links: Links
    version: int = 0  # the document's ``_version`` when it was read


def node_of(hit: dict[str, Any]) -> Node:
    src = hit.get("_source") or {}
    related = [r for r in src.get("related") or [] if isinstance(r, dict)]
    linked = tuple(r.get("linked") if isinstance(r.get("linked"), bool) else None for r in related)
    cited = src.get("cited_by")
    return Node(
        str(hit["_id"]),
        tuple(r.get("id") for r in related),
        Links(linked, tuple(cited) if isinstance(cited, list) else ()),
        int(hit.get("_version") or 0),
    )


def apply_links(source: dict[str, Any], links: Links) -> dict[str, Any]:
    """``source`` with its link fields set to ``links`` (a new dict; the related entries are copied)."""
    related = [dict(r) for r in source.get("related") or []]
    for entry, linked in zip(related, links.linked, strict=False):
        entry["linked"] = bool(linked)
    return {**source, "related": related, "cited_by": list(links.cited_by), "cited_by_count": len(links.cited_by)}


def _scan(client, index: str, query: dict[str, Any], source: list[str] | bool) -> Iterator[dict[str, Any]]:
    from opensearchpy import helpers

    body = {"query": query, "_source": source, "version": True}
    return helpers.scan(client, index=index, query=body, size=SCAN_PAGE, scroll="2m")


def nodes_where(client, index: str, field: str, values: Iterable[str]) -> dict[str, Node]:
    """Every article whose ``field`` holds one of ``values`` (``id``: the articles themselves)."""
    wanted = sorted(set(values))
    out: dict[str, Node] = {}
    for i in range(0, len(wanted), TERMS_CHUNK):
        query = {"terms": {field: wanted[i : i + TERMS_CHUNK]}}

        def chunk(query: dict[str, Any] = query) -> list[Node]:
            return [node_of(h) for h in _scan(client, index, query, LINK_SOURCE)]

        out.update((n.id, n) for n in read_scroll(client, f"index {index}: articles by {field}", chunk))
    return out


def all_nodes(client, index: str) -> dict[str, Node]:
    """Every article of ``index`` (a full rebuild links its whole new index)."""

    def everything() -> list[Node]:
        return [node_of(h) for h in _scan(client, index, {"match_all": {}}, LINK_SOURCE)]

    return {n.id: n for n in read_scroll(client, f"index {index}: all articles' links", everything)}


def present(client, index: str, ids: Iterable[str]) -> set[str]:
    """Which of ``ids`` are indexed articles."""
    wanted = sorted(set(ids))
    out: set[str] = set()
    for i in range(0, len(wanted), TERMS_CHUNK):
        query = {"ids": {"values": wanted[i : i + TERMS_CHUNK]}}

        def chunk(query: dict[str, Any] = query) -> list[str]:
            return [str(h["_id"]) for h in _scan(client, index, query, False)]

        out.update(read_scroll(client, f"index {index}: which related articles are indexed", chunk))
    return out


def _actions(
    client, index: str, links: dict[str, Links], seen: dict[str, Node], fast_json: bool
) -> Iterator[dict[str, Any]]:
    ids = sorted(links)
    for i in range(0, len(ids), MGET_CHUNK):
        res = read(
            client,
            f"index {index}: articles to relink",
            client.mget,
            index=index,
            body={"ids": ids[i : i + MGET_CHUNK]},
        )
        for doc in res["docs"]:
            if doc.get("found"):  # gone since it was read: nothing to link
                yield {
                    "_op_type": "index",
                    "_index": index,
                    "_id": doc["_id"],
                    "version": seen[doc["_id"]].version,
                    "version_type": "external_gte",
                    "_source": source_body(apply_links(doc["_source"], links[doc["_id"]]), fast_json),
                }


def rewrite(
    client, index: str, links: dict[str, Links], seen: dict[str, Node], fast_json: bool = True
) -> tuple[int, int]:
    """Write ``links`` into the articles they belong to, each with the version it had when it was
    ``seen`` (so a copy that landed since refuses the write: the links were computed from the older
    one); returns (written, skipped: a newer copy landed since, or the article left). Raises
    ``LinkError`` if OpenSearch refuses any other way."""
    from opensearchpy import helpers

    written = 0
    errors: list[str] = []
    for ok, item in helpers.streaming_bulk(
        client,
        _actions(client, index, links, seen, fast_json),
        max_chunk_bytes=BULK_MAX_BYTES,
        raise_on_error=False,
        max_retries=5,
    ):
        info = next(iter(item.values()))
        if ok:
            written += 1
        elif info.get("status") != 409:
            errors.append(f"{info.get('_id')}: {info.get('error')}")
    if errors:
        raise LinkError(f"index {index}: {len(errors)} articles not relinked (first: {errors[0][:300]})")
    return written, len(links) - written
