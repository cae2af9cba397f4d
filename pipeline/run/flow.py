"""The whole flow, in the pieces Airflow maps over, and as one call for the CLI.

    prepare(...)        -> target index name (the alias for incremental runs, a new index for a rebuild)
    plan(...)           -> Plan: batches of SeedFiles + the outcomes planning settled (refusals,
                           unchanged, deleted)
    process_batch(...)  -> RunReport for one batch: read -> parse -> normalize -> images -> index
    finalize(...)       -> RunReport for the run: replay, reconcile copies, remove articles no file
                           carries, link related articles (``pipeline.run.linking``), validate + swap
                           aliases on a rebuild (``pipeline.run.bookkeeping``)
    run(...)            -> all of the above in one process

Every seed ends in exactly one outcome (``types.SeedOutcome``), recorded by ``outcomes.settle``.
Problems with one file become outcomes; problems with the infrastructure, and bugs, raise.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from pipeline.config import Settings
from pipeline.run import heap, timing
from pipeline.run.options import RunOptions
from pipeline.run.plan import Batch, Plan, make_plan
from pipeline.run.report import RunReport
from pipeline.run.tuning import ENV_PARSE_WORKERS
from pipeline.run.writes import Writes, writes_for
from pipeline.sources import Sources, open_source, root_of
from pipeline.stores import indices
from pipeline.stores import ledger as lg
from pipeline.stores.health import ready_for_writes
from pipeline.stores.ledger import Ledger, ledger_for
from pipeline.times import utc_now
from pipeline.types import Document, SeedFile, SeedOutcome

if TYPE_CHECKING:  # imported where they run: a task that does not parse (prepare, plan) does not load them
    from pipeline.run import parallel

log = logging.getLogger("seednews")


def new_run_id() -> str:
    return f"cli__{utc_now()}__{uuid.uuid4().hex[:8]}"


# ----------------------------------------------------------------------------- pieces
def prepare(client, settings: Settings, options: RunOptions) -> str:
    """The index the run of ``options`` writes to: a new versioned index (with its own ledger; not refreshed
    while it is written if ``options.tuning.pause_refresh``) for a rebuild, else the alias (whose ledger alias
    is made sure of too). A rebuild's index is tagged with ``options.run_id``: a try of the same run that
    prepares again (a retried or cleared task) first drops the pairs an earlier try made and no alias serves,
    so a run leaves one new index, not one per try, and it starts empty."""
    run_id = options.run_id
    if options.dry_run:
        return settings.alias
    if options.full_rebuild:
        for stale in indices.made_by(client, settings.index_base, run_id):
            pair = {settings.ledger_index: lg.paired_name(stale, settings.index_base, settings.ledger_index)}
            log.warning("dropping %s: an earlier try of run %s created it", stale, run_id)
            indices.drop_unpromoted(client, settings.index_base, stale, pair)
        name = indices.create_index(client, settings.index_base, run_id)
        if options.tuning.pause_refresh:
            indices.pause_refresh(client, name)  # resumed in finalize, before validation
        paired = lg.paired_name(name, settings.index_base, settings.ledger_index)
        lg.create_paired(client, settings.ledger_index, paired)
        ready_for_writes(client, settings, name, paired)  # replicas pinned if asked; health waited for
        return name
    current = indices.ensure_alias(client, settings.index_base)
    lg.ensure_alias(client, settings.ledger_index, lg.paired_name(current, settings.index_base, settings.ledger_index))
    ready_for_writes(client, settings, settings.alias, settings.ledger_index)
    return settings.alias


def plan(
    options: RunOptions,
    client=None,
    settings: Settings | None = None,
    target: str | None = None,
    *,
    s3_client: object | None = None,
) -> Plan:
    """Discover the folder, compare it with the ledger and split the work into batches (the
    refusals, unchanged and deleted files are settled here). ``s3_client`` lists an ``s3://``
    location (None: one from the environment)."""
    settings = settings or Settings()
    target = target or settings.alias
    writes = client is not None and not options.dry_run
    served = Ledger(client, settings.ledger_index) if writes else None
    ledger = ledger_for(client, settings, target) if writes else None
    return make_plan(options, target, served, ledger, s3_client=s3_client)


def annotate_images(
    docs: list[Document], client, settings: Settings, options: RunOptions, report: RunReport
) -> tuple[list[Document], list[SeedOutcome]]:
    """Annotate every document with the verdicts of its image URLs. A document whose URLs cannot even be
    collected or annotated (a bug) becomes its seed's ``internal_error`` outcome; the rest go on."""
    from pipeline.run import seedpath
    from pipeline.stages.images import (
        ImageCheckConfig,
        annotate_document,
        check_images,
        collect_image_urls,
        summarize,
    )
    from pipeline.stores.imagecache import OpenSearchVerdictCache

    outcomes: list[SeedOutcome] = []
    verdicts, cap = None, None
    if options.check_images:
        config = options.image_config or ImageCheckConfig(relative_base=settings.image_relative_base)
        cap = config.max_images_per_doc  # the rest of a document's image URLs: unchecked, and counted
        wanted: list[Document] = []
        urls: list[str] = []
        over_cap = 0
        for d in docs:  # URL preparation is per seed: a bug here is this seed's outcome
            got = seedpath.guarded(d.seed, "images", partial(_image_urls, d.source, cap))
            if isinstance(got, SeedOutcome):
                outcomes.append(got)
            else:
                wanted.append(d)
                urls += got[0]
                over_cap += got[1]
        cache = OpenSearchVerdictCache(client, settings.image_cache_index) if client is not None else None
        failures: dict[str, Exception] = {}
        verdicts = check_images(urls, config, cache=cache, failures=failures)
        docs = []
        for d in wanted:  # a URL the checker could not even prepare (a bug) settles the documents carrying it
            bad = (
                next((failures[u] for u in collect_image_urls(d.source, cap) if u in failures), None)
                if failures
                else None
            )
            if bad is None:
                docs.append(d)
            else:
                outcomes.append(seedpath.contain(d.seed, "images", bad))
        report.images = summarize(verdicts.values(), over_cap)
    annotated: list[Document] = []
    for d in docs:
        source = seedpath.guarded(d.seed, "images", partial(annotate_document, d.source, verdicts, cap))
        if isinstance(source, SeedOutcome):
            outcomes.append(source)
        else:
            annotated.append(replace(d, source=source))
    return annotated, outcomes


def _image_urls(source: dict, cap: int | None) -> tuple[list[str], int]:
    """The image URLs of one document to check (at most ``cap``), and how many are left unchecked."""
    from pipeline.stages.images import collect_image_urls, images_over_cap

    return collect_image_urls(source, cap), images_over_cap(source, cap)


def finish_chunk(
    built: parallel.Built, *, client, settings: Settings, options: RunOptions, target: str
) -> tuple[RunReport, list[Document], list[SeedOutcome]]:
    """Image checks for a built chunk (here: they need the run's verdict cache), and its report.
    Writes nothing to OpenSearch (the verdict cache aside), so it can run while the previous chunk
    is being written."""
    report = RunReport(dry_run=options.dry_run, target=target)
    report.warned_docs, report.repaired_docs = built.warned_docs, built.repaired_docs
    report.text_quality = dict(Counter(d.source.get("text_quality", "clean") for d in built.docs))
    with timing.stage("images"):
        docs, failed = annotate_images(built.docs, None if options.dry_run else client, settings, options, report)
    return report, docs, list(built.outcomes) + failed


def write_chunk(
    built: tuple[RunReport, list[Document], list[SeedOutcome]],
    *,
    client,
    settings: Settings,
    options: RunOptions,
    target: str,
    emit: Callable[[str], None] = log.info,
    writes: Writes | None = None,
) -> RunReport:
    """The I/O half of a chunk, a transaction: index the documents, then record every file's outcome
    in the ledger (only after OpenSearch answered for it). ``writes`` says where (``writes_for``, made
    for this chunk when not given)."""
    report, docs, outcomes = built
    writes = writes or writes_for(client, settings, options, target)
    with timing.stage("bulk"):
        outcomes += writes.index(docs)
    with timing.stage("ledger"):
        writes.record(outcomes, report, emit)
    return report


def process_seeds(
    seeds: list[SeedFile],
    *,
    client,
    settings: Settings,
    options: RunOptions,
    target: str,
    emit: Callable[[str], None] = log.info,
    s3_client: object | None = None,
) -> RunReport:
    """One chunk of seed files, end to end, in this process; every file's outcome is in the ledger when
    this returns."""
    from pipeline.run import parallel

    kw = {"client": client, "settings": settings, "options": options, "target": target}
    return write_chunk(finish_chunk(parallel.build_part(seeds, options, s3_client), **kw), emit=emit, **kw)


def process_batch(
    batch: Batch,
    *,
    client,
    settings: Settings,
    options: RunOptions,
    target: str,
    emit: Callable[[str], None] = log.info,
    builder: parallel.ChunkBuilder | None = None,
    writes: Writes | None = None,
    s3_client: object | None = None,
) -> RunReport:
    """Read, parse, normalize, check images and index one batch, ``options.tuning.chunk_seeds`` files
    at a time (memory stays flat however big the batch); each file's outcome is recorded in the ledger
    only after OpenSearch answered for it.

    Chunks are built (read, parse, normalize: CPU) by ``builder``: in worker processes sized by
    ``options.tuning`` (``pipeline.run.parallel``; one is made for the batch, reading ``s3://`` seeds
    with ``s3_client``, when none is given), or in this process. With ``tuning.overlap_writes``, chunk
    k is written (bulk, then ledger: I/O, mostly waiting for the node) by one writer thread while the
    next chunks are built, so the node's work and ours overlap; chunks are written in order and at
    most ``builder.ahead + 2`` are in memory. An error in a write stops the batch at
    the next chunk boundary; an error elsewhere lets the write in flight finish its transaction first.
    Every chunk writes through ``writes`` (one is made for the batch when none is given)."""
    from pipeline.run import parallel

    report = RunReport(dry_run=options.dry_run, target=target)
    if not options.dry_run:  # a node lost since prepare: wait (bounded) for the primaries rather than fail
        ready_for_writes(client, settings, target, ledger_for(client, settings, target).index, pin=False)
    seeds = list(batch.seeds)
    total, size = len(seeds), options.tuning.chunk_seeds
    chunks = iter([seeds[start : start + size] for start in range(0, total, size)])
    kw = {"client": client, "settings": settings, "options": options, "target": target}
    writes = writes or writes_for(client, settings, options, target)
    overlap = options.tuning.overlap_writes and not options.dry_run
    built_n = written_n = 0
    with contextlib.ExitStack() as stack:
        stack.enter_context(heap.paused())
        if builder is None:
            workers = parallel.workers_for(total, options)
            if workers > 1:
                emit(f"parsing in {workers} worker processes ({ENV_PARSE_WORKERS} to change)")
            builder = stack.enter_context(parallel.ChunkBuilder(options, workers, s3_client))
        writer = stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix="seednews-writer"))
        pending: deque[tuple[parallel.Pending, int]] = deque()
        in_flight: tuple[Future[RunReport], int] | None = None

        def feed() -> None:
            while len(pending) < builder.ahead and (chunk := next(chunks, None)) is not None:
                pending.append((builder.submit(chunk), len(chunk)))

        def landed(chunk_report: RunReport, n: int) -> None:
            nonlocal written_n
            report.merge(chunk_report)
            written_n += n
            heap.collect_young()  # the collector is paused for the batch: the chunk's cycles, if any
            if total > size:
                emit(f"batch progress: {written_n}/{total} files")

        feed()
        while pending:
            part, n = pending.popleft()
            built = finish_chunk(part.result(), **kw)
            built_n += n
            feed()
            if total > size:
                emit(f"parsed: {built_n}/{total} files")
            if not overlap:
                landed(write_chunk(built, emit=emit, writes=writes, **kw), n)
                continue
            if in_flight is not None:
                landed(in_flight[0].result(), in_flight[1])  # re-raises the writer's error
            in_flight = (writer.submit(write_chunk, built, emit=emit, writes=writes, **kw), n)
        if in_flight is not None:
            landed(in_flight[0].result(), in_flight[1])
    return report


# ----------------------------------------------------------------------------- finalize
@heap.paused()  # linking holds every article id of a first run at once
def finalize(
    client,
    settings: Settings,
    options: RunOptions,
    target: str,
    report: RunReport,
    emit: Callable[[str], None] = log.info,
    *,
    s3_client: object | None = None,
) -> RunReport:
    """Replay dead letters if asked; refresh; reconcile copies of one article; remove or re-source
    articles no file carries; link related articles around what the run changed (``pipeline.run.linking``;
    a rebuild links its whole index), then validate it against its ledger and move both aliases at once.

    A rebuild is promoted when every planned file has an outcome in its ledger, the index holds exactly
    the ledger's ``indexed`` files (as the report counts them too), and no document ``failed``. Files
    that end without a document (``dead_letter``: refused by the mapping, kept for replay;
    ``quarantined``, ``duplicate``, ``changed``) are decisions about one file, each recorded with its
    reason: they are accounted for, listed in the report, and do not hold the rebuild back. ``failed``
    does: it is the cluster's trouble (busy, down), not the file's, so the index may lack any number
    of articles the old one serves; run the rebuild again when the cluster is well. A rebuild that is
    not promoted deletes its own index pair (never a served one) and raises ``ValidationFailed``.
    ``s3_client`` reads ``s3://`` seeds again when an orphaned article is re-sourced."""
    from pipeline.run.bookkeeping import clear_orphans, promote_rebuild, reconcile, replay, sweep_orphans
    from pipeline.run.linking import link_run

    planned = report.files_seen  # before a replay's outcomes are merged: they are for files counted here
    if options.dry_run:
        return report
    if options.replay_dead_letters:
        report.merge(replay(client, settings, options, target, emit))
    if options.full_rebuild:
        indices.resume_refresh(client, target)
    indices.refresh(client, target)
    ledger = ledger_for(client, settings, target)
    reconcile(ledger, options.run_id, report)
    fast_json = options.tuning.fast_json
    if not options.full_rebuild:
        kw = {"client": client, "settings": settings, "options": options, "target": target, "emit": emit}
        resend = partial(process_seeds, s3_client=s3_client, **kw)
        swept = sweep_orphans(client, target, ledger, report, Sources(s3_client), options.parse.max_bytes, resend)
        with timing.stage("links"):  # the articles removed or moved to another URL: their citers relink
            removed = {x for e in swept for x in e.orphans}
            link_run(client, target, ledger, options.run_id, removed, report, emit=emit, fast_json=fast_json)
        clear_orphans(ledger, swept)
    else:
        with timing.stage("links"):
            link_run(client, target, ledger, options.run_id, (), report, full=True, emit=emit, fast_json=fast_json)
        promote_rebuild(client, settings, target, ledger, report, planned)
    indices.refresh(client, target)
    counts = Ledger(client, settings.ledger_index).counts(plan_root(options))
    if counts:
        report.notes.append("ledger for this folder: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return report


def plan_root(options: RunOptions) -> str:
    return root_of(options.seed_dir)


# ----------------------------------------------------------------------------- one process
def run(
    settings: Settings,
    options: RunOptions,
    client=None,
    emit: Callable[[str], None] = print,
    *,
    s3_client: object | None = None,
) -> RunReport:
    """Run the whole flow in this process (the CLI). Returns the merged report. ``client``: OpenSearch's (None:
    made from ``settings``); ``s3_client``: an ``s3://`` location's (None: from the environment, one per run)."""
    from pipeline.run import parallel

    # a missing folder or bucket is a usage error before anything is touched
    source = open_source(options.seed_dir, s3_client=s3_client)
    source.check()
    if s3_client is None:
        s3_client = getattr(source, "client", None)  # an S3Source's client; a folder has none
    if not options.run_id:
        options = replace(options, run_id=new_run_id())
    if client is None and not options.dry_run:
        from pipeline.stores.client import make_client

        client = make_client(settings, fast_json=options.tuning.fast_json)
    with timing.stage("prepare"):
        target = prepare(client, settings, options)
    with timing.stage("plan"):
        the_plan = plan(options, client, settings, target, s3_client=s3_client)
    report = the_plan.report
    emit(
        f"discovered {report.files_seen + the_plan.todo} seed files in {options.seed_dir}: "
        f"{report.unchanged} unchanged, {the_plan.todo} to process in {len(the_plan.batches)} batches"
    )
    workers = parallel.workers_for(the_plan.todo, options)
    if workers > 1:
        emit(f"parsing in {workers} worker processes ({ENV_PARSE_WORKERS} to change)")
    writes = writes_for(client, settings, options, target)  # one for all the run's batches
    kw = {"client": client, "settings": settings, "options": options, "target": target, "emit": emit}
    with parallel.ChunkBuilder(options, workers, s3_client) as builder:  # one pool for all the run's batches
        for i, batch in enumerate(the_plan.batches, 1):
            emit(f"batch {i}/{len(the_plan.batches)}: {len(batch.seeds)} files")
            report.merge(process_batch(batch, builder=builder, writes=writes, s3_client=s3_client, **kw))
    with timing.stage("finalize"):
        return finalize(client, settings, options, target, report, emit, s3_client=s3_client)
