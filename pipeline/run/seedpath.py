"""The path of one seed file, read -> parse -> normalize, behind one boundary: no seed stops a run.

Each stage returns a value or an outcome for bad data (``SeedError`` becomes a quarantine inside
``parse``); that covers every problem somebody thought of. The boundary covers the rest: *any*
exception raised while one seed is read, parsed, normalized or has its image URLs prepared becomes
that seed's ``internal_error`` outcome (``types.internal_error``: the exception's type and where it
was raised, never its message) and the traceback goes to the log; the rest of the batch goes on.
The ledger and the report count it like any outcome, it is not settled (the next run tries the file
again), and the run fails at the end, after every other seed was settled (``RunReport.ok``), so the
bug is loud and nothing else waits for it.

Not contained, on purpose: infrastructure failures (an object store or the cluster not answering,
our own deliberate errors such as ``ParseWorkerLost``, memory exhaustion). They are not about one seed:
the task fails and is retried. ``KeyboardInterrupt`` and ``SystemExit`` are never caught.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from pipeline.errors import SeedError, SeedNewsError
from pipeline.run import timing
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.sources import Sources
from pipeline.stages.normalize import normalize
from pipeline.stages.parse import parse_bytes
from pipeline.types import Document, SeedFile, SeedOutcome, SeedRecord, Stage, internal_error

log = logging.getLogger("seednews")

INFRASTRUCTURE_MODULES: tuple[str, ...] = ("botocore", "boto3", "s3transfer", "opensearchpy", "urllib3", "requests")
"""Libraries whose exceptions mean a service did not answer, not that a seed is odd: they fail the task."""

T = TypeVar("T")


def is_infrastructure(exc: BaseException) -> bool:
    """True for failures that are not about one seed: they propagate (the task is retried)."""
    if isinstance(exc, SeedError):  # a data error that a stage forgot to turn into an outcome
        return False
    if isinstance(exc, (SeedNewsError, MemoryError, ConnectionError)):
        return True
    return type(exc).__module__.split(".", 1)[0] in INFRASTRUCTURE_MODULES


def contain(seed: SeedFile, stage: Stage, exc: Exception) -> SeedOutcome:
    """``exc`` (raised while ``seed`` was in ``stage``) as the seed's outcome; infrastructure errors
    are raised again. A stray ``SeedError`` is still a quarantine: it names the step and the reason."""
    if is_infrastructure(exc):
        raise exc
    if isinstance(exc, SeedError):
        return SeedOutcome(seed, "quarantined", exc.stage, str(exc))
    outcome = internal_error(seed, stage, exc)
    log.error("%s: %s", seed.path, outcome.reason, exc_info=exc)
    return outcome


def guarded(seed: SeedFile, stage: Stage, step: Callable[[], T]) -> T | SeedOutcome:
    """``step()``, or the seed's outcome if it raised (see :func:`contain`)."""
    try:
        return step()
    except Exception as exc:  # noqa: BLE001 - the boundary: every exception becomes this seed's outcome
        return contain(seed, stage, exc)


def build_one(seed: SeedFile, options: RunOptions, sources: Sources, report: RunReport) -> Document | SeedOutcome:
    """One seed file -> its document, or its outcome. Never raises for anything about this seed."""
    clock = time.perf_counter
    stage: Stage = "read"
    try:
        t0 = clock()
        got: bytes | SeedRecord | Document | SeedOutcome = sources.read(seed, options.parse.max_bytes)
        t1 = clock()
        timing.add("read", t1 - t0)
        if isinstance(got, bytes):
            stage = "parse"
            got = parse_bytes(seed, got, options.parse)
            t0, t1 = t1, clock()
            timing.add("parse", t1 - t0)
        if isinstance(got, SeedRecord):
            stage = "normalize"
            warned = bool(got.warnings)
            got = normalize(got)
            timing.add("normalize", clock() - t1)
            report.warned_docs += warned
        return got
    except Exception as exc:  # noqa: BLE001 - the boundary: every exception becomes this seed's outcome
        return contain(seed, stage, exc)


def build_documents(
    seeds: Iterable[SeedFile], options: RunOptions, report: RunReport, s3_client: object | None = None
) -> tuple[list[Document], list[SeedOutcome]]:
    """read -> parse -> normalize, one file at a time behind the per-seed boundary
    (``build_one``): each ends in a document or an outcome, whatever it raised. ``s3_client`` reads
    ``s3://`` seeds (None: one from the environment)."""
    docs: list[Document] = []
    outcomes: list[SeedOutcome] = []
    sources = Sources(s3_client)
    for seed in seeds:
        got = build_one(seed, options, sources, report)
        if isinstance(got, SeedOutcome):
            outcomes.append(got)
        else:
            docs.append(got)
            report.repaired_docs += bool(got.repairs)
    return docs, outcomes
