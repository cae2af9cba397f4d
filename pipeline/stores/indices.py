"""The article indices in OpenSearch: templates (``mappings/``, the one source of the shapes), versioned
indices ``<base>-v<stamp>`` behind the read alias ``<base>``, the atomic alias swap of a full rebuild,
refresh control and the reads the CLI uses (count, facets). Reads (alias lookups, index listings, counts,
facets, refresh) retry transient cluster errors (``pipeline.stores.retry``); writes do not."""

from __future__ import annotations

import copy
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.errors import IndexManagementError
from pipeline.resources import data_dir
from pipeline.stores.retry import read

MAPPINGS_DIR = (
    Path(os.environ["SEEDNEWS_MAPPINGS_DIR"])
    if os.environ.get("SEEDNEWS_MAPPINGS_DIR")
    else data_dir("pipeline.mappings", "mappings")
)
ARTICLES_TEMPLATE = "articles.template.json"
DEADLETTER_TEMPLATE = "deadletter.template.json"
RUN_META = "seednews_run_id"  # the mapping's _meta key naming the run that created a rebuild's index
log = logging.getLogger("seednews.index")


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
    now = now or datetime.now(UTC)
    return f"{base}-v{now.strftime('%Y%m%d%H%M%S%f')}"


def create_index(client, base: str, run_id: str = "") -> str:
    """Create a fresh concrete index (the template supplies settings and mappings); with ``run_id``, its
    mapping's ``_meta`` names the run that made it (``made_by``)."""
    ensure_templates(client, base)
    name = new_index_name(base)
    client.indices.create(index=name, body={"mappings": {"_meta": {RUN_META: run_id}}} if run_id else None)
    return name


def made_by(client, base: str, run_id: str) -> list[str]:
    """The article indices of ``base`` that run ``run_id`` created and no alias serves: what an earlier try
    of the same run left (a retried or cleared task). None for an empty ``run_id``."""
    if not run_id:
        return []
    pattern = versions_pattern(base)
    found = read(client, f"indices {pattern}: mappings", client.indices.get_mapping, index=pattern)
    served = set(alias_indices(client, base))
    return sorted(
        name
        for name, body in found.items()
        if name not in served and ((body.get("mappings") or {}).get("_meta") or {}).get(RUN_META) == run_id
    )


def alias_indices(client, alias: str) -> list[str]:
    if not read(client, f"alias {alias}: exists", client.indices.exists_alias, name=alias):
        return []
    return sorted(read(client, f"alias {alias}: indices", client.indices.get_alias, name=alias).keys())


def _versions(client, base: str) -> list[str]:
    """The open concrete article indices of ``base``, oldest first."""
    pattern = versions_pattern(base)
    return sorted(read(client, f"indices {pattern}", client.indices.get, index=pattern, expand_wildcards="open"))


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
    if read(client, f"index {base}: exists", client.indices.exists, index=base):
        raise IndexManagementError(f"{base!r} is a concrete index, not an alias; move its data and delete it first")
    # A first run that died between creating its index and adding the alias left that index behind:
    # adopt the newest one rather than leaving an orphan (its documents are valid: writes are idempotent).
    orphans = _versions(client, base)
    name = orphans[-1] if orphans else create_index(client, base)
    try:
        client.indices.update_aliases(
            body={"actions": [{"add": {"index": name, "alias": base, "is_write_index": True}}]}
        )
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
    all_versions = _versions(client, base)
    keep = set(all_versions[-(retention + 1) :]) | {new_index}
    doomed = [i for i in all_versions if i not in keep]
    for name in doomed:
        client.indices.delete(index=name, ignore_unavailable=True)
        stamp = name[len(base) + 2 :]
        for alias in paired:
            client.indices.delete(index=f"{alias}-v{stamp}", ignore_unavailable=True)
    return doomed


def drop_unpromoted(client, base: str, index: str, paired: dict[str, str]) -> list[str]:
    """Delete a rebuild's index pair that was not promoted: ``index`` (an article index of ``base``) and
    the indices in ``paired`` (alias -> index, as for ``swap_alias``: its ledger). An index that ``base``
    or one of those aliases points at is served and is never deleted: that raises
    ``IndexManagementError`` before anything is deleted. Returns the names deleted."""
    if not index.startswith(versions_pattern(base)[:-1]):
        raise IndexManagementError(f"{index!r} is not an article index of {base!r}; not deleting it")
    doomed = [index, *paired.values()]
    served = set(alias_indices(client, base)).union(*(alias_indices(client, alias) for alias in paired))
    if kept := [name for name in doomed if name in served]:
        raise IndexManagementError(f"not deleting {', '.join(kept)}: an alias serves it")
    for name in doomed:
        client.indices.delete(index=name, ignore_unavailable=True)
    return doomed


# ----------------------------------------------------------------------------- reads
def refresh(client, index: str) -> None:
    """Make what was written searchable (idempotent, so retried like a read)."""
    read(client, f"index {index}: refresh", client.indices.refresh, index=index)


def template_refresh_interval() -> str:
    return str(load_template()["template"]["settings"]["index"].get("refresh_interval", "1s"))


def pause_refresh(client, index: str) -> None:
    """No periodic refresh while a full rebuild fills ``index`` (nobody reads it before the swap)."""
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})


def resume_refresh(client, index: str) -> None:
    """Back to the template's refresh interval (before the rebuild is validated and served)."""
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": template_refresh_interval()}})


def count(client, index: str) -> int:
    return int(read(client, f"index {index}: count", client.count, index=index)["count"])


def facet(client, index: str, field: str, size: int = 50) -> list[tuple[str, int]]:
    """Terms aggregation on ``field``: ``[(value, doc_count), ...]`` most common first."""
    body = {"size": 0, "aggs": {"f": {"terms": {"field": field, "size": size}}}}
    res = read(client, f"index {index}: facet {field}", client.search, index=index, body=body)
    return [
        (b["key_as_string"] if "key_as_string" in b else b["key"], b["doc_count"])
        for b in res["aggregations"]["f"]["buckets"]
    ]
