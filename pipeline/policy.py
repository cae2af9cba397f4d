"""The outcome policy: which states mean what, which copy of an article wins, and the duplicate reason.

Every floor that decides or reads an outcome asks here: planning (which files stay settled), the bulk
outcomes and the dry run (which copy of an article is indexed), the ledger (which entries still carry
an article), the run's bookkeeping (reconciling copies written by parallel batches) and the report
(which states are listed, in which order). Standard library and ``pipeline.types`` only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pipeline.types import STATES, Document, State

SETTLED: frozenset[State] = frozenset({"indexed", "quarantined", "duplicate", "dead_letter"})
"""States an unchanged file keeps: it is not processed again until its content changes."""
CARRYING: frozenset[State] = SETTLED | {"failed", "changed", "internal_error"}
"""States whose ``doc_id`` still counts as carried by a file (an article leaves the index only when no
entry in one of these states carries it)."""

QUIET_STATES: tuple[State, ...] = ("indexed", "unchanged")
"""States a report counts but does not list."""
ORDER: tuple[State, ...] = (
    "indexed",
    "unchanged",
    "duplicate",
    "quarantined",
    "changed",
    "deleted",
    "failed",
    "dead_letter",
    "internal_error",
)
"""The order in which a report names the states."""

LATER_COPY_INDEXED = "a copy of this article ingested later is indexed"
"""Why a copy lost to one the index already holds (OpenSearch refused it with a version conflict)."""

Rank = tuple[int, str]
"""Where a copy of an article stands in the ingest order: ``(ingest sequence, seed path)``."""


class Recorded(Protocol):
    """A ledger entry as the winner rule sees it."""

    @property
    def seq(self) -> int: ...

    @property
    def path(self) -> str: ...


def ingest_rank(seq: int, path: str) -> Rank:
    """The winner rule: of the copies of one article, the copy ingested last wins (the highest ingest
    sequence, which is the document's version); between equal sequences the greater path, so the winner
    never depends on the order the copies are met in."""
    return seq, path


def document_rank(doc: Document) -> Rank:
    """``ingest_rank`` of a document (its version is its seed's ingest sequence)."""
    return ingest_rank(doc.version, doc.seed.rel)


def entry_rank(entry: Recorded) -> Rank:
    """``ingest_rank`` of a ledger entry."""
    return ingest_rank(entry.seq, entry.path)


def copies_by_article(docs: Iterable[Document]) -> dict[str, list[Document]]:
    """Documents by article id, each article's copies winner first (the order they are offered to the
    index: when the winner is refused, the next copy is tried)."""
    copies: dict[str, list[Document]] = {}
    for d in docs:
        copies.setdefault(d.id, []).append(d)
    for same in copies.values():
        same.sort(key=document_rank, reverse=True)
    return copies


def duplicate_reason(winner_path: str) -> str:
    """Why a copy lost to the copy of its article at ``winner_path``."""
    return f"same article as {winner_path}, which was ingested later"


assert set(ORDER) == set(STATES), "every outcome state has a place in the report"
