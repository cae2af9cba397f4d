"""Outcomes: the one place where bulk results become ``SeedOutcome``s, and where outcomes become ledger
entries and report counts.

- ``index_documents`` sends documents and turns OpenSearch's per-item answers into outcomes. It is
  used by normal runs, by promotions and by dead-letter replay alike. When several files of one
  chunk carry the same article, the copy ingested last is sent first; if OpenSearch refuses it, the
  next copy is sent, so a valid copy is never settled as a "duplicate" of one that did not land.
- ``entry_for_outcome`` is the only function that builds ledger entries from outcomes, and
  ``RunReport.add`` (``pipeline.run.report``) the only one that counts them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace

from pipeline.policy import CARRYING, LATER_COPY_INDEXED, copies_by_article, duplicate_reason
from pipeline.run.report import RunReport
from pipeline.run.tuning import DEFAULT_TUNING, Tuning
from pipeline.stores import bulk as ix
from pipeline.stores import deadletters
from pipeline.stores.ledger import Ledger, LedgerEntry, entry_for
from pipeline.stores.retry import read
from pipeline.types import Document, ItemResult, SeedOutcome, State

log = logging.getLogger("seednews")


def outcome_for_result(doc: Document, res: ItemResult) -> SeedOutcome:
    """One bulk item's answer as the outcome of the seed file the document came from."""
    if res.ok:
        return SeedOutcome(doc.seed, "indexed", "index", None, doc.id)
    if res.result == "conflict":
        return SeedOutcome(doc.seed, "duplicate", "index", res.error, doc.id)
    state: State = "failed" if res.retryable else "dead_letter"
    why = f"HTTP {res.status}: {res.error}" + (" (retried next run)" if res.retryable else " (kept for replay)")
    return SeedOutcome(doc.seed, state, "index", why, doc.id, res.status)


def index_documents(
    client,
    target: str,
    deadletter_index: str,
    docs: Iterable[Document],
    resolution: str = "reindexed",
    *,
    tuning: Tuning = DEFAULT_TUNING,
) -> list[SeedOutcome]:
    """Index ``docs`` into ``target``; one outcome per document. Refused documents are stored in the
    dead-letter index (before this returns, so nothing is lost); pending dead letters of documents
    that landed are resolved. Bulk requests are shaped by ``tuning`` (size, bytes, orjson)."""
    candidates = copies_by_article(docs)  # each article's copies, the one ingested last first
    outcomes: list[SeedOutcome] = []
    round_no = 0
    while candidates:
        sending = {doc_id: copies[round_no] for doc_id, copies in candidates.items()}
        failures: list[tuple[Document, ItemResult]] = []
        landed: list[str] = []
        results = list(
            ix.bulk_index(
                client,
                target,
                sending.values(),
                chunk_size=tuning.bulk_chunk,
                max_chunk_bytes=tuning.bulk_max_bytes,
                fast_json=tuning.fast_json,
            )
        )
        already = _holding_this_content(client, target, [sending[r.id] for r in results if r.result == "conflict"])
        for res in results:
            doc = sending[res.id]
            out = outcome_for_result(doc, res)
            if out.state == "duplicate" and doc.id in already:
                # a concurrent run wrote this very file's content with another ingest number
                out = SeedOutcome(doc.seed, "indexed", "index", None, doc.id)
            outcomes.append(out)
            if out.state == "dead_letter":
                failures.append((doc, res))
            if out.state in ("indexed", "duplicate"):
                # the rest of the copies lose to this one, or to what the index already holds
                why = duplicate_reason(doc.seed.rel) if out.state == "indexed" else LATER_COPY_INDEXED
                for other in candidates[res.id][round_no + 1 :]:
                    outcomes.append(SeedOutcome(other.seed, "duplicate", "index", why, other.id))
                del candidates[res.id]
                if out.state == "indexed":
                    landed.append(res.id)
        deadletters.dead_letter(client, deadletter_index, failures, target)
        deadletters.resolve_dead_letters(client, deadletter_index, landed, resolution)
        round_no += 1
        candidates = {i: c for i, c in candidates.items() if len(c) > round_no}
    return outcomes


def _holding_this_content(client, target: str, docs: list[Document]) -> set[str]:
    """Ids (of ``docs`` refused with a version conflict) whose indexed copy is this same file's
    content: for those the index already holds what the file says, so the file is ``indexed``."""
    if not docs:
        return set()
    ids = {"ids": [d.id for d in docs]}
    res = read(client, f"index {target}: who holds", client.mget, index=target, body=ids, _source_includes=["seed"])
    seen = {h["_id"]: h["_source"].get("seed", {}) for h in res["docs"] if h.get("found")}
    return {
        d.id for d in docs if (s := seen.get(d.id)) and (s.get("path"), s.get("sha256")) == (d.seed.rel, d.seed.sha256)
    }


# ----------------------------------------------------------------------------- ledger entries
def entry_for_outcome(o: SeedOutcome, prev: LedgerEntry | None, *, run_id: str, target: str) -> LedgerEntry | None:
    """The ledger entry an outcome leaves (``None`` for ``unchanged``: the entry is left untouched)."""
    if o.state == "unchanged":
        return None
    carried_before = prev.doc_id if prev is not None and prev.state in CARRYING else None
    doc_id = o.doc_id
    if doc_id is None and o.state in ("quarantined", "changed", "failed", "internal_error"):
        doc_id = carried_before  # a broken or half-read edit does not take the last good article away
    if o.state == "deleted":
        doc_id = None
    orphans = list(prev.orphans) if prev is not None else []
    if carried_before and carried_before != doc_id and carried_before not in orphans:
        orphans.append(carried_before)
    if doc_id in orphans:
        orphans.remove(doc_id)
    attempts = 1
    if prev is not None and o.state == "failed" and prev.state == "failed" and prev.sha256 == o.seed.sha256:
        attempts = prev.attempts + 1
    seed = o.seed
    if o.state == "deleted" and prev is not None:  # nothing left to stat: keep what was known
        return replace(
            prev,
            state="deleted",
            stage=o.stage,
            reason=o.reason,
            doc_id=None,
            orphans=orphans,
            run_id=run_id,
            target=target,
            attempts=1,
        )
    return entry_for(
        seed,
        o.state,
        stage=o.stage,
        reason=o.reason,
        doc_id=doc_id,
        orphans=orphans,
        target=target,
        run_id=run_id,
        attempts=attempts,
    )


def changes(entry: LedgerEntry, prev: LedgerEntry | None) -> bool:
    """``entry`` says something the stored ``prev`` does not (``updated_at``, the time of a write, aside):
    an identical entry (a retried task settling the same outcome again) is not written again."""
    return prev is None or replace(entry, updated_at=prev.updated_at) != prev


def settle(
    outcomes: list[SeedOutcome],
    *,
    ledger: Ledger | None,
    report: RunReport,
    run_id: str,
    target: str,
    previous: dict[str, LedgerEntry] | None = None,
    emit=None,
) -> None:
    """Record outcomes: ledger entries first (raises if they cannot be written), then the report. Only
    entries that change are written (none for ``unchanged``, none identical to the stored one)."""
    if ledger is not None:
        if previous is None:
            previous = ledger.lookup(o.seed.key for o in outcomes if o.state != "unchanged")
        entries = [
            e
            for o in outcomes
            if (e := entry_for_outcome(o, prev := previous.get(o.seed.key), run_id=run_id, target=target)) is not None
            and changes(e, prev)
        ]
        ledger.record(entries)
    for o in outcomes:
        report.add(o)
        if emit is not None and o.state not in ("unchanged", "indexed"):
            emit(str(o))
