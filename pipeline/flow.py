"""The whole flow, in the pieces Airflow maps over, and as one call for the CLI.

    prepare(...)        -> target index name   (alias for incremental runs, a new index for a rebuild)
    plan(...)           -> Plan: batches of paths + what discovery refused
    process_batch(...)  -> RunReport for one batch: parse -> normalize -> images -> index
    finalize(...)       -> RunReport for the run: refresh, validate + swap alias on a rebuild
    run(...)            -> all of the above in one process

Problems with one record become data in the report; problems with the infrastructure raise.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import index as ix
from .config import Settings
from .discover import discover, make_batches, seed_from_path
from .index import utc_now
from .ledger import DEAD_LETTER, DUPLICATE, FAILED, INDEXED, QUARANTINED, SETTLED, SUPERSEDED, Ledger, LedgerEntry
from .normalize import dedupe, normalize
from .parse import ParseConfig, parse_seed
from .report import RunReport
from .types import Document, ItemResult, Quarantined, SeedFile

log = logging.getLogger("seednews")

DEFAULT_MAX_BATCHES = 4
CHUNK_SEEDS = 1000  # files parsed, checked and indexed together inside a batch (bounds memory)
PROGRESS_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class RunOptions:
    seed_dir: str
    full_rebuild: bool = False
    dry_run: bool = False
    check_images: bool = True
    max_batches: int = DEFAULT_MAX_BATCHES
    use_ledger: bool = True  # skip files whose content is unchanged since they settled
    replay_dead_letters: bool = False
    run_id: str = ""  # names this run in the ledger; the DAG passes Airflow's run_id
    parse: ParseConfig = field(default_factory=ParseConfig)
    image_config: object | None = None  # pipeline.images.ImageCheckConfig; None = its defaults

    @property
    def root(self) -> str:
        return str(Path(self.seed_dir).resolve())


@dataclass(frozen=True)
class Plan:
    batches: list[list[str]]
    refused: list[dict[str, str]]  # discovery-level quarantine (links out of the root, unreadable)
    files_seen: int
    unchanged: int = 0  # settled in the ledger with the same content: not re-parsed


class ValidationFailed(RuntimeError):
    """A full rebuild did not validate; the alias still points at the old index."""


def new_run_id() -> str:
    return f"cli__{utc_now()}__{uuid.uuid4().hex[:8]}"


def _ledger(client, settings: Settings, options: RunOptions) -> Ledger | None:
    return Ledger(client, settings.ledger_index) if client is not None and options.use_ledger and not options.dry_run else None


# ----------------------------------------------------------------------------- pieces
def prepare(client, settings: Settings, full_rebuild: bool, dry_run: bool = False) -> str:
    """The index this run writes to: a new versioned index for a rebuild, else the alias."""
    if dry_run:
        return settings.alias
    if full_rebuild:
        return ix.create_index(client, settings.index_base)
    ix.ensure_alias(client, settings.index_base)
    return settings.alias


def plan(options: RunOptions, client=None, settings: Settings | None = None) -> Plan:
    """Discover seeds and split them into batches. With a ledger (and not a full rebuild), files whose
    content hash matches a settled ledger entry are left out: an unchanged file is never re-parsed."""
    seeds, refused = discover(options.seed_dir)
    unchanged = 0
    ledger = _ledger(client, settings, options) if settings else None
    if ledger is not None and not options.full_rebuild:
        known = ledger.lookup(options.root, [s.rel for s in seeds])
        todo = [s for s in seeds if not (s.rel in known and known[s.rel].sha256 == s.sha256 and known[s.rel].state in SETTLED)]
        unchanged = len(seeds) - len(todo)
        seeds = todo
    batches = make_batches([s.path for s in seeds], options.max_batches)
    return Plan(batches, [_q(q) for q in refused], len(seeds) + len(refused) + unchanged, unchanged)


def _q(q: Quarantined) -> dict[str, str]:
    return {"path": q.path, "stage": q.stage, "reason": q.reason}


class _Progress:
    def __init__(self, total: int, label: str, emit: Callable[[str], None]) -> None:
        self.total, self.label, self.emit = total, label, emit
        self.done, self.last = 0, time.monotonic()

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_SECONDS or self.done == self.total:
            self.last = now
            self.emit(f"{self.label}: {self.done}/{self.total}")


def build_documents(
    seeds: Iterable[SeedFile], config: ParseConfig, report: RunReport, progress: _Progress | None = None,
    outcomes: dict[str, LedgerEntry] | None = None, root: str = "",
) -> list[Document]:
    """Parse + normalize + dedupe. Quarantines and duplicates go to ``report`` (and ``outcomes``)."""
    docs: list[Document] = []
    for seed in seeds:
        rec = parse_seed(seed, config)
        out = normalize(rec) if not isinstance(rec, Quarantined) else rec
        if isinstance(out, Quarantined):
            log.warning("quarantined %s", out)
            report.quarantined.append(_q(out))
            if outcomes is not None:
                outcomes[seed.rel] = _entry(root, seed, QUARANTINED, stage=out.stage, reason=out.reason)
        else:
            docs.append(out)
            report.repaired_docs += bool(out.repairs)
        if progress:
            progress.step()
    winners, losers = dedupe(docs)
    for loser, winner in losers:
        report.duplicates.append({"path": loser.seed.rel, "id": loser.id, "winner": winner.seed.rel})
        if outcomes is not None:
            outcomes[loser.seed.rel] = _entry(root, loser.seed, DUPLICATE, doc_id=loser.id,
                                              reason=f"same article as {winner.seed.rel} (newer file wins)")
    return winners


def _entry(root: str, seed: SeedFile, state: str, **kw) -> LedgerEntry:
    return LedgerEntry(root=root, path=seed.rel, sha256=seed.sha256, size=seed.size, state=state, **kw)


def check_images(docs: list[Document], client, settings: Settings, options: RunOptions, report: RunReport) -> list[Document]:
    """Annotate every document with image verdicts (never drops a document)."""
    from . import images

    if not options.check_images:
        return [replace(d, source=images.annotate_document(d.source, None)) for d in docs]
    urls = [u for d in docs for u in images.collect_image_urls(d.source)]
    cache = images.OpenSearchVerdictCache(client, settings.image_cache_index) if client is not None else None
    config = options.image_config or images.ImageCheckConfig(relative_base=settings.image_relative_base)
    verdicts = images.check_images(urls, config, cache=cache)
    report.images = images.summarize(verdicts.values())
    return [replace(d, source=images.annotate_document(d.source, verdicts)) for d in docs]


def process_batch(
    paths: list[str],
    *,
    client,
    settings: Settings,
    options: RunOptions,
    target: str,
    emit: Callable[[str], None] = log.info,
) -> RunReport:
    """Parse, normalize, check images and index one batch of seed paths, ``CHUNK_SEEDS`` files at a
    time (memory stays flat however big the batch); record each file's fate in the ledger only after
    OpenSearch answered for it."""
    report = RunReport(dry_run=options.dry_run, target=target)
    total = len(paths)
    for start in range(0, total, CHUNK_SEEDS):
        chunk = paths[start:start + CHUNK_SEEDS]
        report.merge(_process_chunk(chunk, client=client, settings=settings, options=options, target=target, emit=emit))
        if total > CHUNK_SEEDS:
            emit(f"batch progress: {min(start + CHUNK_SEEDS, total)}/{total} files")
    return report


def _process_chunk(paths: list[str], *, client, settings: Settings, options: RunOptions, target: str,
                   emit: Callable[[str], None]) -> RunReport:
    report = RunReport(files_seen=len(paths), dry_run=options.dry_run, target=target)
    root = options.root
    seeds: list[SeedFile] = []
    for p in paths:
        try:
            seeds.append(seed_from_path(p, root))
        except OSError as exc:  # vanished between discover and now
            report.quarantined.append({"path": p, "stage": "read", "reason": f"cannot read file: {exc.strerror}"})
    ledger = _ledger(client, settings, options)
    previous = ledger.lookup(root, [s.rel for s in seeds]) if ledger else {}
    outcomes: dict[str, LedgerEntry] = {}
    docs = build_documents(seeds, options.parse, report, _Progress(len(seeds), "parsed", emit), outcomes, root)
    docs = check_images(docs, None if options.dry_run else client, settings, options, report)
    if options.dry_run:
        report.indexed = len(docs)
        return report

    failures: list[tuple[Document, ItemResult]] = []
    by_id = {d.id: d for d in docs}
    indexed_ids: list[str] = []
    progress = _Progress(len(docs), "indexed", emit)
    run_id = options.run_id
    for res in ix.bulk_index(client, target, docs):
        progress.step()
        doc = by_id[res.id]
        if res.result == "superseded":
            report.superseded.append({"path": res.seed or "", "id": res.id, "reason": res.error or ""})
            outcomes[doc.seed.rel] = _entry(root, doc.seed, SUPERSEDED, doc_id=doc.id, reason=res.error, target=target, run_id=run_id)
        elif res.ok:
            report.indexed += 1
            report.created += res.result == "created"
            report.updated += res.result == "updated"
            indexed_ids.append(res.id)
            outcomes[doc.seed.rel] = _entry(root, doc.seed, INDEXED, doc_id=doc.id, target=target, run_id=run_id)
        else:
            log.error("bulk item failed: %s (%s): HTTP %s %s", res.id, res.seed, res.status, res.error)
            report.failed.append({"path": res.seed, "id": res.id, "status": res.status, "reason": res.error,
                                  "retryable": res.retryable})
            state = FAILED if res.retryable else DEAD_LETTER
            outcomes[doc.seed.rel] = _entry(root, doc.seed, state, doc_id=doc.id, reason=f"HTTP {res.status}: {res.error}",
                                            stage="index", target=target, run_id=run_id)
            if not res.retryable:
                failures.append((doc, res))
    report.dead_lettered = ix.dead_letter(client, settings.deadletter_index, failures, target, root)
    ix.resolve_dead_letters(client, settings.deadletter_index, indexed_ids, "reindexed")
    _drop_moved_articles(client, target, previous, outcomes, report)
    if ledger is not None:
        ledger.record([e if e.run_id else replace(e, run_id=run_id) for e in outcomes.values()], previous)
    for rel, e in sorted(outcomes.items()):
        emit(f"{rel}: {e.state}" + (f" ({e.reason})" if e.reason and e.state != INDEXED else ""))
    return report


def _drop_moved_articles(client, target: str, previous: dict[str, LedgerEntry], outcomes: dict[str, LedgerEntry],
                         report: RunReport) -> None:
    """A changed file whose article URL changed leaves its old document behind: delete it, so the
    index holds what the files say now."""
    from opensearchpy import NotFoundError

    for rel, now in outcomes.items():
        before = previous.get(rel)
        if before and before.state == INDEXED and before.doc_id and now.state == INDEXED and now.doc_id != before.doc_id:
            try:
                client.delete(index=target, id=before.doc_id, version=int(time.time() * 1_000_000), version_type="external_gte")
                report.notes.append(f"{rel}: article URL changed; removed its old document {before.doc_id}")
            except NotFoundError:
                pass


def replay(client, settings: Settings, options: RunOptions, target: str, emit: Callable[[str], None] = log.info) -> RunReport:
    """Send every pending dead letter again (after its cause was fixed); resolve the ones that land."""
    import json

    report = RunReport(target=target)
    letters = list(ix.pending_dead_letters(client, settings.deadletter_index))
    if not letters:
        emit("no pending dead letters to replay")
        return report
    docs = [
        Document(id=dl["doc_id"], source=json.loads(dl["document"]),
                 seed=SeedFile(path=dl["seed_path"], rel=dl["seed_path"], size=0, sha256=dl["seed_sha256"], mtime_ns=0),
                 version=int(dl["version"]))
        for dl in letters
    ]
    roots = {dl["doc_id"]: dl.get("seed_root") or options.root for dl in letters}
    landed, still = [], []
    for res in ix.bulk_index(client, target, docs):
        if res.ok:
            landed.append(res.id)
            if res.result != "superseded":
                report.indexed += 1
                report.created += res.result == "created"
                report.updated += res.result == "updated"
        else:
            still.append(res)
            report.failed.append({"path": res.seed, "id": res.id, "status": res.status, "reason": res.error,
                                  "retryable": res.retryable})
    ix.resolve_dead_letters(client, settings.deadletter_index, landed, "replayed")
    by_id = {d.id: d for d in docs}
    for r in still:
        if not r.retryable:
            ix.dead_letter(client, settings.deadletter_index, [(by_id[r.id], r)], target, roots[r.id])
    ledger = _ledger(client, settings, options)
    if ledger is not None and landed:
        ledger.record([LedgerEntry(root=roots[i], path=by_id[i].seed.rel, sha256=by_id[i].seed.sha256, state=INDEXED,
                                   doc_id=i, target=target, run_id=options.run_id, reason="replayed from dead letters")
                       for i in landed])
    report.notes.append(f"replayed {len(letters)} dead letters: {len(landed)} landed, {len(still)} still failing")
    emit(report.notes[-1])
    return report


def finalize(client, settings: Settings, options: RunOptions, target: str, report: RunReport) -> RunReport:
    """Replay dead letters if asked; refresh; on a full rebuild validate the new index against the run
    report and the ledger, then swap the alias (the old index keeps serving if validation fails)."""
    if options.dry_run:
        return report
    if options.replay_dead_letters:
        report.merge(replay(client, settings, options, target))
    ix.refresh(client, target)
    if options.full_rebuild:
        have = ix.count(client, target)
        # In a fresh index each distinct article is "created" exactly once; later copies are updates.
        expected = report.created
        problems = []
        if not report.ok:
            problems.append(f"{report.n('failed')} failed items")
        if have != expected:
            problems.append(f"{have} documents, expected {expected}")
        ledger = _ledger(client, settings, options)
        if ledger is not None:
            in_ledger = ledger.indexed_doc_ids(options.run_id)
            if in_ledger != have:
                problems.append(f"the ledger records {in_ledger} indexed articles for this run, the index has {have}")
        if problems:
            raise ValidationFailed(
                f"rebuild index {target} not promoted: {'; '.join(problems)}; alias {settings.alias} still serves the old index"
            )
        deleted = ix.swap_alias(client, settings.index_base, target, settings.retention)
        report.notes.append(f"alias {settings.alias} now points at {target}")
        if deleted:
            report.notes.append("removed old indices: " + ", ".join(deleted))
    if client is not None and options.use_ledger:
        counts = Ledger(client, settings.ledger_index).counts(options.root)
        if counts:
            report.notes.append("ledger for this folder: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return report


# ----------------------------------------------------------------------------- one process
def run(settings: Settings, options: RunOptions, client=None, emit: Callable[[str], None] = print) -> RunReport:
    """Run the whole flow in this process (the CLI). Returns the merged report."""
    if not Path(options.seed_dir).is_dir():
        from .discover import SeedRootError

        raise SeedRootError(f"seed folder {options.seed_dir!r} does not exist or is not a folder")
    if not options.run_id:
        options = replace(options, run_id=new_run_id())
    if client is None and not options.dry_run:
        from .config import make_client

        client = make_client(settings)
    target = prepare(client, settings, options.full_rebuild, options.dry_run)
    the_plan = plan(options, client, settings)
    emit(f"discovered {the_plan.files_seen} seed files in {options.seed_dir}: {the_plan.unchanged} unchanged, "
         f"{sum(map(len, the_plan.batches))} to process in {len(the_plan.batches)} batches")
    report = RunReport(quarantined=list(the_plan.refused), files_seen=len(the_plan.refused) + the_plan.unchanged,
                       unchanged=the_plan.unchanged, target=target, dry_run=options.dry_run)
    for i, batch in enumerate(the_plan.batches, 1):
        emit(f"batch {i}/{len(the_plan.batches)}: {len(batch)} files")
        report.merge(process_batch(batch, client=client, settings=settings, options=options, target=target, emit=emit))
    return finalize(client, settings, options, target, report)
