"""The run's bookkeeping after its batches, kept with the ledger: dead-letter replay, copies of one
article reconciled, articles no file carries any more swept, and a full rebuild validated and promoted.

Each function is one of ``pipeline.run.flow.finalize``'s steps; each reads and writes the ledger
(``pipeline.stores.ledger``) and the article index, and adds what it did to the run's report.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import replace

from pipeline.config import Settings
from pipeline.errors import ValidationFailed
from pipeline.policy import duplicate_reason, entry_rank
from pipeline.run.options import RunOptions
from pipeline.run.outcomes import index_documents, settle
from pipeline.run.plan import seq_base
from pipeline.run.report import RunReport
from pipeline.sources import Sources
from pipeline.stores import deadletters, indices
from pipeline.stores import ledger as lg
from pipeline.stores.ledger import Ledger, ledger_for
from pipeline.types import Document, SeedFile

log = logging.getLogger("seednews")


def replay(
    client, settings: Settings, options: RunOptions, target: str, emit: Callable[[str], None] = log.info
) -> RunReport:
    """Send every pending dead letter again (after its cause was fixed), through the same outcome
    function as a normal run. A letter whose file has moved on since is resolved, not replayed."""
    report = RunReport(target=target)
    letters = list(deadletters.pending_dead_letters(client, settings.deadletter_index))
    if not letters:
        emit("no pending dead letters to replay")
        return report
    ledger = ledger_for(client, settings, target)
    docs = []
    for dl in letters:
        seed = SeedFile(
            dl.get("seed_root") or "",
            dl["seed_path"],
            "",
            dl["seed_path"],
            0,
            sha256=dl["seed_sha256"],
            seq=int(dl["version"]),
        )
        docs.append(Document(id=dl["doc_id"], source=json.loads(dl["document"]), seed=seed, version=seed.seq))
    previous = ledger.lookup(d.seed.key for d in docs)
    current = [
        d
        for d in docs
        if (p := previous.get(d.seed.key)) is not None and p.state == "dead_letter" and p.sha256 == d.seed.sha256
    ]
    stale = [d.id for d in docs if d not in current]
    deadletters.resolve_dead_letters(client, settings.deadletter_index, stale, "superseded")
    outcomes = index_documents(
        client, target, settings.deadletter_index, current, resolution="replayed", tuning=options.tuning
    )
    landed = [o.doc_id for o in outcomes if o.state == "indexed"]
    settle(outcomes, ledger=ledger, report=report, run_id=options.run_id, target=target, previous=previous, emit=emit)
    report.notes.append(
        f"replayed {len(current)} dead letters: {len(landed)} landed, {len(current) - len(landed)} did not"
        + (f"; {len(stale)} resolved because their file changed since" if stale else "")
    )
    emit(report.notes[-1])
    return report


def reconcile(ledger: Ledger, run_id: str, report: RunReport) -> None:
    """Parallel batches may each index a copy of one article; the index keeps the copy ingested last
    (highest ``seq``). Mark the others ``duplicate`` so the ledger says exactly which file each
    article comes from."""
    changes: dict[str, dict] = {}
    this_run: list[dict] = []
    for doc_id, entries in ledger.doubly_indexed().items():
        winner = max(entries, key=entry_rank)
        for e in entries:
            if e is not winner:
                why = duplicate_reason(winner.path)
                changes[e.key] = {"state": "duplicate", "stage": "index", "reason": why}
                if e.run_id == run_id:
                    this_run.append(
                        {"path": e.path, "state": "duplicate", "stage": "index", "reason": why, "doc_id": doc_id}
                    )
    ledger.update(changes)
    report.move("indexed", "duplicate", this_run)
    if len(changes) > len(this_run):
        report.notes.append(
            f"{len(changes) - len(this_run)} files from earlier runs now lose to a copy of their article ingested later"
        )


def sweep_orphans(
    client,
    target: str,
    ledger: Ledger,
    report: RunReport,
    sources: Sources,
    max_bytes: int,
    resend: Callable[[list[SeedFile]], RunReport],
) -> list[lg.LedgerEntry]:
    """Decide the fate of every article a file stopped carrying (file deleted, article URL changed):
    removed from the index when no file in the ledger carries it any more; re-sourced from the best
    remaining copy when only duplicates carry it (``resend`` processes those files again, as one
    chunk); kept otherwise (a carrier is quarantined or failed).

    Returns the ledger entries whose orphans were handled; their ``orphans`` stay until ``clear_orphans``
    (after linking, which starts from them: a finalize retried after a crash finds them again)."""
    from opensearchpy import NotFoundError

    entries = ledger.with_orphans()
    if not entries:
        return []
    carriers = ledger.carriers({x for e in entries for x in e.orphans})
    promote: list[lg.LedgerEntry] = []
    for doc_id, holders in sorted(carriers.items()):
        if not holders:
            try:
                client.delete(index=target, id=doc_id, refresh=False)
                report.removed += 1
            except NotFoundError:
                pass
        elif not any(h.state == "indexed" for h in holders):
            dups = [h for h in holders if h.state == "duplicate"]
            if dups:
                promote.append(max(dups, key=entry_rank))
    if promote:
        base = seq_base(ledger)
        seeds = []
        for i, e in enumerate(promote):
            hashed = sources.describe_and_hash(e.root, e.path, max_bytes)
            if isinstance(hashed, SeedFile):
                seeds.append(replace(hashed, seq=base + i))
        if seeds:
            # these files did not change (the run counted them as such); only their role did
            resend(seeds)
            report.notes.append(
                "articles now taken from another file carrying them: "
                + ", ".join(s.rel for s in seeds[:10])
                + (" …" if len(seeds) > 10 else "")
            )
    return entries


def clear_orphans(ledger: Ledger, entries: list[lg.LedgerEntry]) -> None:
    """Mark the orphans of ``entries`` (from ``sweep_orphans``) as handled."""
    ledger.update({e.key: {"orphans": []} for e in entries})


def promote_rebuild(client, settings: Settings, target: str, ledger: Ledger, report: RunReport, planned: int) -> None:
    """Validate a full rebuild's new index against its ledger, then move both aliases at once (see
    ``pipeline.run.flow.finalize`` for the rule); a rebuild that does not validate deletes its own
    index pair and raises ``ValidationFailed``."""
    have = indices.count(client, target)
    states = ledger.counts()  # the rebuild's ledger holds this run's files only
    in_ledger = ledger.count_state("indexed")
    recorded = indices.count(client, ledger.index)
    problems = []
    if report.n("failed"):
        problems.append(
            f"{report.n('failed')} documents failed to index for a reason that may pass (cluster busy or "
            "unreachable): run the rebuild again"
        )
    if recorded != planned:
        problems.append(f"{planned} files planned, {recorded} with an outcome in its ledger")
    if have != in_ledger or report.indexed != in_ledger:
        problems.append(
            f"{have} documents in the index, {in_ledger} indexed files in its ledger, "
            f"{report.indexed} indexed in this run's report"
        )
    if problems:
        try:
            dropped = indices.drop_unpromoted(
                client, settings.index_base, target, {settings.ledger_index: ledger.index}
            )
            cleanup = f"removed the new index pair {' and '.join(dropped)}"
        except Exception as exc:  # noqa: BLE001 -- the validation failure is the error to report
            cleanup = f"could not remove the new index pair {target} and {ledger.index} ({exc}); delete them by hand"
        raise ValidationFailed(
            f"rebuild index {target} not promoted: {'; '.join(problems)}; {cleanup}; alias "
            f"{settings.alias} still serves the old index and ledger"
        )
    without = {s: n for s, n in sorted(states.items()) if s != "indexed"}
    report.notes.append(
        f"rebuild validated: {planned} files planned = {in_ledger} indexed"
        + "".join(f" + {n} {s.replace('_', ' ')}" for s, n in without.items())
    )
    if refused := states.get("dead_letter", 0):
        report.notes.append(
            f"promoted without {refused} article{'s' * (refused != 1)} OpenSearch refused (the dead letters "
            f"listed above, kept in {settings.deadletter_index}): fix the cause, then replay them "
            "(--replay-dead-letters, or the DAG's replay_dead_letters)"
        )
    deleted = indices.swap_alias(
        client, settings.index_base, target, settings.retention, paired={settings.ledger_index: ledger.index}
    )
    report.notes.append(f"alias {settings.alias} now points at {target} (ledger: {ledger.index})")
    if deleted:
        report.notes.append("removed old indices: " + ", ".join(deleted))
