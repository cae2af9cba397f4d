"""Links between articles, kept right after every run: each ``related[]`` entry naming an indexed article
is ``linked``, and each article lists the indexed articles citing it (``cited_by``, ``cited_by_count``).

Normalize puts on every related entry the id its URL would have as a document (``related[].id``) and
writes the link fields empty: a document re-sent from its file is rebuilt from it. After the run's
writes, ``finalize`` links (``link_run``) starting from exactly the articles the run changed: the ones it
indexed (its ``indexed`` ledger entries) and the ones it removed or moved (the ledger's orphans). Only
these articles' neighbours can have changed links:

- the changed articles themselves (rebuilt empty, or gone);
- the articles citing them (``related.id`` in the set): a cited article arrived, left or changed URL;
- the articles their stored ``cited_by`` names them in: a citation that may be stale;
- the articles they cite now.

Each group is one terms query (chunked) returning a few fields; then the citers of the whole group, and
which related articles exist, are two more. An article is written again only when its link fields
differ (``pipeline.stores.citations.rewrite``). The cost follows what the run changed, never the size
of the index; a full rebuild links its whole new index from one read of every article's links
(``link_all``), before it is validated and promoted. So does a run that changed at least ``SCAN_SHARE`` of
the index's articles (a first run, say): the terms queries would name nearly every article several times
over, and the node would fetch each one up to five times; one scan reads each once (docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from pipeline.run.report import RunReport
from pipeline.stores import citations as cit
from pipeline.stores import indices
from pipeline.stores.citations import Links, Node
from pipeline.stores.ledger import Ledger

log = logging.getLogger("seednews")

SCAN_SHARE = 0.5  # of the index's articles changed by the run: relink from one scan of the index


@dataclass(frozen=True)
class Linked:
    """What one linking pass did."""

    changed: int  # articles the run indexed or removed
    checked: int  # articles whose links were recomputed
    written: int  # articles written again with new links
    skipped: int  # left to a newer copy, or gone meanwhile

    def note(self) -> str:
        skipped = f", {self.skipped} left to a newer copy" if self.skipped else ""
        return (
            f"links: {self.written} articles updated ({self.checked} checked around the {self.changed} "
            f"articles indexed or removed{skipped})"
        )


# ----------------------------------------------------------------------------- pure
def citations(citers: Iterable[Node], wanted: Collection[str]) -> dict[str, tuple[str, ...]]:
    """For each article of ``wanted``, the sorted ids of the ``citers`` whose related entries name it
    (once per citer; an article naming itself does not cite itself)."""
    out: dict[str, set[str]] = {}
    for n in citers:
        for r in set(n.related):
            if r is not None and r != n.id and r in wanted:
                out.setdefault(r, set()).add(n.id)
    return {k: tuple(sorted(v)) for k, v in out.items()}


def links_of(node: Node, cited_by: dict[str, tuple[str, ...]], present: Collection[str]) -> Links:
    """The links ``node`` should carry, given who cites it and which articles are indexed."""
    return Links(tuple(r is not None and r in present for r in node.related), cited_by.get(node.id, ()))


def updates(nodes: dict[str, Node], cited_by: dict[str, tuple[str, ...]], present: Collection[str]) -> dict[str, Links]:
    """The articles of ``nodes`` whose stored links differ from what they should be, with the new links."""
    return {i: new for i, n in nodes.items() if (new := links_of(n, cited_by, present)) != n.links}


# ----------------------------------------------------------------------------- reads and writes
def around(client, index: str, changed: set[str]) -> dict[str, Node]:
    """The indexed articles whose links a change of ``changed`` can affect (see the module docstring)."""
    own = cit.nodes_where(client, index, "id", changed)
    cited = {r for n in own.values() for r in n.related if r is not None}
    found = dict(own)
    found.update(cit.nodes_where(client, index, "related.id", changed))
    found.update(cit.nodes_where(client, index, "cited_by", changed))
    found.update(cit.nodes_where(client, index, "id", cited - found.keys()))
    return found


def link_changed(client, index: str, changed: set[str], fast_json: bool = True) -> Linked:
    """Relink what ``changed`` (articles indexed or removed) affects in ``index``."""
    if not changed:
        return Linked(0, 0, 0, 0)
    indices.refresh(client, index)
    if len(changed) >= SCAN_SHARE * indices.count(client, index):
        return _link_scanned(client, index, len(changed), fast_json)
    nodes = around(client, index, changed)
    citers = cit.nodes_where(client, index, "related.id", nodes.keys())
    named = {r for n in nodes.values() for r in n.related if r is not None}
    known = nodes.keys() | citers.keys()
    present = (named & known) | cit.present(client, index, named - known)
    todo = updates(nodes, citations(citers.values(), nodes.keys()), present)
    written, skipped = cit.rewrite(client, index, todo, nodes, fast_json)
    return Linked(len(changed), len(nodes), written, skipped)


def link_all(client, index: str, fast_json: bool = True) -> Linked:
    """Link every article of ``index`` (a full rebuild's new index: every article in it is new)."""
    indices.refresh(client, index)
    return _link_scanned(client, index, None, fast_json)


def _link_scanned(client, index: str, changed: int | None, fast_json: bool) -> Linked:
    """Recompute every article's links from one read of them all (``changed``: how many the run changed,
    None for all of them); write the ones that differ."""
    nodes = cit.all_nodes(client, index)
    todo = updates(nodes, citations(nodes.values(), nodes.keys()), nodes.keys())
    written, skipped = cit.rewrite(client, index, todo, nodes, fast_json)
    return Linked(len(nodes) if changed is None else changed, len(nodes), written, skipped)


def link_run(
    client,
    index: str,
    ledger: Ledger,
    run_id: str,
    removed: Iterable[str],
    report: RunReport,
    *,
    full: bool = False,
    fast_json: bool = True,
    emit: Callable[[str], None] = log.info,
) -> Linked:
    """Link after run ``run_id``'s writes: the articles it indexed (from ``ledger``) and ``removed`` (ids
    it deleted or moved), or, with ``full``, the whole of ``index``. Adds a note to ``report``."""
    if full:
        done = link_all(client, index, fast_json)
    else:
        done = link_changed(client, index, ledger.indexed_by_run(run_id) | set(removed), fast_json)
    if done.changed:
        report.notes.append(done.note())
        emit(report.notes[-1])
    if done.written:
        indices.refresh(client, index)
    return done
