"""The path of one seed file, read -> parse -> normalize, behind one boundary: no seed stops a run.

Each stage returns a value or an outcome for bad data (``SeedError`` becomes a quarantine inside
``parse``); that covers every problem somebody thought of. The boundary covers the rest: *any*
exception raised while one seed is read, parsed, normalized or has its image URLs prepared becomes
that seed's ``internal_error`` outcome (``types.internal_error``: the exception's type and where it
was raised, never its message) and the traceback goes to the log; the rest of the batch goes on.
The ledger and the report count it like any outcome, it is not settled (the next run tries the file
again), and the run fails at the end, after every other seed was settled (``RunReport.ok``), so the
bug is loud and nothing else waits for it.

A seed is read once (``read_one``): in the process that parses it (a folder's files), or ahead of
parsing by a bounded pool of threads in the run's process (``fetch_all``: object-store GETs, mostly
waiting for the store), in order, each behind the same boundary. A seed planned without its content
hash (an object: ``Source.deferred_hash``) gets it from the bytes of that one read.

Not contained, on purpose: infrastructure failures (an object store or the cluster not answering,
our own deliberate errors such as ``ParseWorkerLost``, memory exhaustion). They are not about one seed:
the task fails and is retried. ``KeyboardInterrupt`` and ``SystemExit`` are never caught.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from functools import partial
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

Fetched = tuple[SeedFile, bytes] | SeedOutcome
"""One seed read: the seed (with its content hash) and its bytes, or its outcome."""


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


def read_one(seed: SeedFile, sources: Sources, max_bytes: int) -> Fetched:
    """``seed``'s bytes, read once behind the per-seed boundary, with the seed as read: one planned
    without its content hash gets it here, from these bytes."""
    t0, when = time.perf_counter(), time.time_ns()
    try:
        got = sources.read(seed, max_bytes)
    except Exception as exc:  # noqa: BLE001 - the boundary: every exception becomes this seed's outcome
        return contain(seed, "read", exc)
    finally:
        timing.add("read", time.perf_counter() - t0)
    if isinstance(got, SeedOutcome):
        return got
    if not seed.sha256:
        seed = replace(seed, sha256=hashlib.sha256(got).hexdigest(), hashed_ns=when)
    return seed, got


def fetch_all(seeds: Sequence[SeedFile], sources: Sources, max_bytes: int, pool: Executor) -> list[Fetched]:
    """``read_one`` of every seed, at most as many at once as ``pool`` has threads, in ``seeds``' order.
    An infrastructure error raises here, as it would from the seed's own read."""
    for root in {s.root for s in seeds}:
        sources.for_root(root)  # made once, here, not raced for by the threads
    return list(pool.map(partial(read_one, sources=sources, max_bytes=max_bytes), seeds))


def build_one(
    seed: SeedFile, options: RunOptions, sources: Sources, report: RunReport, fetched: Fetched | None = None
) -> Document | SeedOutcome:
    """One seed file -> its document, or its outcome (``fetched``: its read, done already). Never
    raises for anything about this seed."""
    got = fetched if fetched is not None else read_one(seed, sources, options.parse.max_bytes)
    if isinstance(got, SeedOutcome):
        return got
    seed, data = got
    clock = time.perf_counter
    stage: Stage = "parse"
    try:
        t1 = clock()
        parsed = parse_bytes(seed, data, options.parse)
        t0, t1 = t1, clock()
        timing.add("parse", t1 - t0)
        if isinstance(parsed, SeedRecord):
            stage = "normalize"
            warned = bool(parsed.warnings)
            done = normalize(parsed)
            timing.add("normalize", clock() - t1)
            report.warned_docs += warned
            return done
        return parsed
    except Exception as exc:  # noqa: BLE001 - the boundary: every exception becomes this seed's outcome
        return contain(seed, stage, exc)


def build_documents(
    seeds: Iterable[SeedFile],
    options: RunOptions,
    report: RunReport,
    s3_client: object | None = None,
    fetched: Sequence[Fetched] | None = None,
) -> tuple[list[Document], list[SeedOutcome]]:
    """read -> parse -> normalize, one file at a time behind the per-seed boundary
    (``build_one``): each ends in a document or an outcome, whatever it raised. ``s3_client`` reads
    ``s3://`` seeds (None: one from the environment); ``fetched``: the seeds' reads (``fetch_all``),
    done already, in their order."""
    docs: list[Document] = []
    outcomes: list[SeedOutcome] = []
    sources = Sources(s3_client)
    reads = iter(fetched) if fetched is not None else None
    for seed in seeds:
        got = build_one(seed, options, sources, report, next(reads) if reads is not None else None)
        if isinstance(got, SeedOutcome):
            outcomes.append(got)
        else:
            docs.append(got)
            report.repaired_docs += bool(got.repairs)
    return docs, outcomes
