"""Where a chunk's results go: the write seam between a run and OpenSearch.

A chunk needs two writes: its documents indexed (one outcome per document), then every file's outcome
recorded (ledger entries, then the report). ``Writes`` names those two; a run picks its implementation
once (``writes_for``), the way an HTTP client picks a transport:

- ``OpenSearchWrites`` sends the documents (``outcomes.index_documents``) and records the outcomes in
  the ledger the run writes (``outcomes.settle``);
- ``DryRunWrites`` writes nothing: it decides each document's outcome with the policy the index
  applies (``pipeline.policy``: the copy ingested last wins, the others are duplicates, with the same
  reasons) as if the index were empty when the run began, and counts the outcomes through the same
  ``settle``. A dry run's report therefore says what a real run into an empty index would say.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from pipeline.config import Settings
from pipeline.policy import LATER_COPY_INDEXED, Rank, copies_by_article, document_rank, duplicate_reason
from pipeline.run.options import RunOptions
from pipeline.run.outcomes import index_documents, settle
from pipeline.run.report import RunReport
from pipeline.run.tuning import DEFAULT_TUNING, Tuning
from pipeline.stores.ledger import Ledger, ledger_for
from pipeline.types import Document, SeedFile, SeedOutcome, display_path

log = logging.getLogger("seednews")

Emit = Callable[[str], None]


class Writes(Protocol):
    """The two writes of a chunk."""

    def index(self, docs: list[Document]) -> list[SeedOutcome]:
        """Index ``docs``; one outcome per document."""
        ...

    def record(self, outcomes: list[SeedOutcome], report: RunReport, emit: Emit) -> None:
        """Record every outcome: its ledger entry first, then its count in ``report``."""
        ...


class OpenSearchWrites:
    """Documents into ``target``, outcomes into the ledger paired with it."""

    def __init__(self, client, settings: Settings, target: str, run_id: str, tuning: Tuning = DEFAULT_TUNING) -> None:
        self.client = client
        self.settings = settings
        self.target = target
        self.run_id = run_id
        self.tuning = tuning  # the shape of bulk requests
        self.ledger: Ledger = ledger_for(client, settings, target)

    def index(self, docs: list[Document]) -> list[SeedOutcome]:
        return index_documents(self.client, self.target, self.settings.deadletter_index, docs, tuning=self.tuning)

    def record(self, outcomes: list[SeedOutcome], report: RunReport, emit: Emit) -> None:
        settle(outcomes, ledger=self.ledger, report=report, run_id=self.run_id, target=self.target, emit=emit)


class DryRunWrites:
    """Writes nothing; decides outcomes as the index would, from what this object was offered so far.

    ``held`` is what the index would hold after the chunks seen so far: per article, the copy that
    won. A copy met in a later chunk loses to a held copy ingested later (OpenSearch refuses it with a
    version conflict); otherwise both copies land, and the one that loses the winner rule becomes a
    duplicate as a real run's ``finalize`` reconciles it (``bookkeeping.reconcile``), moved in the
    report of the chunk that met the second copy."""

    def __init__(self, target: str, run_id: str) -> None:
        self.target = target
        self.run_id = run_id
        self.held: dict[str, tuple[Rank, SeedFile]] = {}  # article id -> rank and seed of the copy held
        self.superseded: list[SeedOutcome] = []  # copies counted indexed that lost since the last ``record``

    def index(self, docs: list[Document]) -> list[SeedOutcome]:
        outcomes: list[SeedOutcome] = []
        for doc_id, copies in copies_by_article(docs).items():
            best = copies[0]
            held = self.held.get(doc_id)
            if held is not None and held[0][0] > best.version:  # refused: the index holds a copy ingested later
                outcomes += [SeedOutcome(c.seed, "duplicate", "index", LATER_COPY_INDEXED, c.id) for c in copies]
                continue
            outcomes.append(SeedOutcome(best.seed, "indexed", "index", None, doc_id))
            outcomes += [self._duplicate(c, best.seed.rel) for c in copies[1:]]
            kept = (document_rank(best), best.seed)
            if held is not None:  # both copies landed: the one ingested last is kept
                kept, lost = (kept, held) if kept[0] >= held[0] else (held, kept)
                self.superseded.append(
                    SeedOutcome(lost[1], "duplicate", "index", duplicate_reason(display_path(kept[1].rel)), doc_id)
                )
            self.held[doc_id] = kept
        return outcomes

    @staticmethod
    def _duplicate(doc: Document, winner_path: str) -> SeedOutcome:
        return SeedOutcome(doc.seed, "duplicate", "index", duplicate_reason(winner_path), doc.id)

    def record(self, outcomes: list[SeedOutcome], report: RunReport, emit: Emit) -> None:
        settle(outcomes, ledger=None, report=report, run_id=self.run_id, target=self.target, emit=emit)
        report.move("indexed", "duplicate", [o.brief() for o in self.superseded])
        self.superseded = []


def writes_for(client, settings: Settings, options: RunOptions, target: str) -> Writes:
    """The writes a run makes: into OpenSearch, or none for a dry run."""
    if options.dry_run:
        return DryRunWrites(target, options.run_id)
    return OpenSearchWrites(client, settings, target, options.run_id, options.tuning)
