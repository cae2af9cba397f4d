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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from . import index as ix
from .config import Settings
from .discover import discover, make_batches, seed_from_path
from .normalize import dedupe, normalize
from .parse import ParseConfig, parse_seed
from .report import RunReport
from .types import Document, ItemResult, Quarantined, SeedFile

log = logging.getLogger("seednews")

DEFAULT_MAX_BATCHES = 4
PROGRESS_EVERY_SECONDS = 5.0


@dataclass(frozen=True)
class RunOptions:
    seed_dir: str
    full_rebuild: bool = False
    dry_run: bool = False
    check_images: bool = True
    max_batches: int = DEFAULT_MAX_BATCHES
    parse: ParseConfig = field(default_factory=ParseConfig)
    image_config: object | None = None  # pipeline.images.ImageCheckConfig; None = its defaults


@dataclass(frozen=True)
class Plan:
    batches: list[list[str]]
    refused: list[dict[str, str]]  # discovery-level quarantine (links out of the root, unreadable)
    files_seen: int


class ValidationFailed(RuntimeError):
    """A full rebuild did not validate; the alias still points at the old index."""


# ----------------------------------------------------------------------------- pieces
def prepare(client, settings: Settings, full_rebuild: bool, dry_run: bool = False) -> str:
    """The index this run writes to: a new versioned index for a rebuild, else the alias."""
    if dry_run:
        return settings.alias
    if full_rebuild:
        ix.ensure_templates(client, settings.index_base)
        return ix.create_index(client, settings.index_base)
    ix.ensure_alias(client, settings.index_base)
    return settings.alias


def plan(seed_dir: str, max_batches: int = DEFAULT_MAX_BATCHES) -> Plan:
    seeds, refused = discover(seed_dir)
    batches = make_batches([s.path for s in seeds], max_batches)
    return Plan(batches, [_q(q) for q in refused], len(seeds) + len(refused))


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
    seeds: Iterable[SeedFile], config: ParseConfig, report: RunReport, progress: _Progress | None = None
) -> list[Document]:
    docs: list[Document] = []
    for seed in seeds:
        rec = parse_seed(seed, config)
        out = normalize(rec) if not isinstance(rec, Quarantined) else rec
        if isinstance(out, Quarantined):
            log.warning("quarantined %s", out)
            report.quarantined.append(_q(out))
        else:
            docs.append(out)
            report.repaired_docs += bool(out.repairs)
        if progress:
            progress.step()
    winners, losers = dedupe(docs)
    for loser, winner in losers:
        report.duplicates.append({"path": loser.seed.rel, "id": loser.id, "winner": winner.seed.rel})
    return winners


def check_images(docs: list[Document], client, settings: Settings, options: RunOptions, report: RunReport) -> list[Document]:
    """Annotate every document with image verdicts (never drops a document)."""
    from dataclasses import replace

    from . import images

    if not options.check_images:
        return [replace(d, source=images.annotate_document(d.source, None)) for d in docs]
    urls = [u for d in docs for u in images.collect_image_urls(d.source)]
    cache = images.OpenSearchVerdictCache(client, settings.image_cache_index) if client is not None else None
    config = options.image_config or images.ImageCheckConfig()
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
    """Parse, normalize, check images and index one batch of seed paths."""
    report = RunReport(files_seen=len(paths), dry_run=options.dry_run, target=target)
    seeds: list[SeedFile] = []
    for p in paths:
        try:
            seeds.append(seed_from_path(p, options.seed_dir))
        except OSError as exc:  # vanished between discover and now
            report.quarantined.append({"path": p, "stage": "read", "reason": f"cannot read file: {exc.strerror}"})
    docs = build_documents(seeds, options.parse, report, _Progress(len(seeds), "parsed", emit))
    docs = check_images(docs, None if options.dry_run else client, settings, options, report)
    if options.dry_run:
        report.indexed = len(docs)
        return report
    failures: list[tuple[Document, ItemResult]] = []
    by_id = {d.id: d for d in docs}
    progress = _Progress(len(docs), "indexed", emit)
    for res in ix.bulk_index(client, target, docs):
        progress.step()
        if res.result == "superseded":
            report.superseded.append({"path": res.seed or "", "id": res.id, "reason": res.error or ""})
        elif res.ok:
            report.indexed += 1
            report.created += res.result == "created"
            report.updated += res.result == "updated"
        else:
            log.error("bulk item failed: %s (%s): HTTP %s %s", res.id, res.seed, res.status, res.error)
            report.failed.append({"path": res.seed, "id": res.id, "status": res.status, "reason": res.error})
            failures.append((by_id[res.id], res))
    report.dead_lettered = ix.dead_letter(client, settings.deadletter_index, failures, target)
    return report


def finalize(client, settings: Settings, options: RunOptions, target: str, report: RunReport) -> RunReport:
    """Refresh; on a full rebuild validate the new index and swap the alias (old index keeps serving
    if validation fails)."""
    if options.dry_run:
        return report
    ix.refresh(client, target)
    if options.full_rebuild:
        have = ix.count(client, target)
        # In a fresh index each distinct article is "created" exactly once; later copies are updates.
        expected = report.created
        if report.failed or have != expected:
            raise ValidationFailed(
                f"rebuild index {target} not promoted: {have} documents, expected {expected}, "
                f"{len(report.failed)} failed items; alias {settings.alias} still serves the old index"
            )
        deleted = ix.swap_alias(client, settings.index_base, target, settings.retention)
        report.notes.append(f"alias {settings.alias} now points at {target}")
        if deleted:
            report.notes.append("removed old indices: " + ", ".join(deleted))
    return report


# ----------------------------------------------------------------------------- one process
def run(settings: Settings, options: RunOptions, client=None, emit: Callable[[str], None] = print) -> RunReport:
    """Run the whole flow in this process (the CLI). Returns the merged report."""
    if not Path(options.seed_dir).is_dir():
        from .discover import SeedRootError

        raise SeedRootError(f"seed folder {options.seed_dir!r} does not exist or is not a folder")
    if client is None and not options.dry_run:
        from .config import make_client

        client = make_client(settings)
    target = prepare(client, settings, options.full_rebuild, options.dry_run)
    the_plan = plan(options.seed_dir, options.max_batches)
    emit(f"discovered {the_plan.files_seen} seed files in {options.seed_dir} ({len(the_plan.batches)} batches)")
    report = RunReport(quarantined=list(the_plan.refused), files_seen=len(the_plan.refused), target=target,
                       dry_run=options.dry_run)
    for i, batch in enumerate(the_plan.batches, 1):
        emit(f"batch {i}/{len(the_plan.batches)}: {len(batch)} files")
        report.merge(process_batch(batch, client=client, settings=settings, options=options, target=target, emit=emit))
    return finalize(client, settings, options, target, report)
