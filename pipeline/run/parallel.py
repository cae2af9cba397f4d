"""Process-level parallelism for the CPU half of a chunk: read -> parse -> normalize.

Parsing and normalizing are pure Python and hold the GIL, so threads cannot share them out; worker
processes can. A :class:`ChunkBuilder` hands whole chunks to a pool of worker processes (a chunk is
the unit the flow writes and records together) and gives them back in order; the parent keeps what
needs the run's clients (image checks, bulk, ledger). It is sized to the usable cores; on a 2-core
machine that also runs the node, expect well under 2x (docs/benchmarks.md).

When the pool is not used (one worker, a small batch, or an object-store source whose client cannot
be handed to a process) chunks are built in this process, lazily, exactly as before.

    SEEDNEWS_PARSE_WORKERS   "auto" (default: the usable cores), or a number; 1 = no worker processes

Workers are started by ``forkserver`` (a clean process, never a fork of a parent that has a writer
thread and open client connections), with this module preloaded; each handles chunks until the pool
closes. A worker that dies (killed, out of memory) fails the batch with :class:`ParseWorkerLost`:
the batch is retried as a whole, as after any crash (the ledger holds only chunks that landed).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Protocol

from pipeline.errors import ParseWorkerLost
from pipeline.run import timing
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.sources import is_object_url
from pipeline.types import Document, SeedFile, SeedOutcome

ENV_PARSE_WORKERS = "SEEDNEWS_PARSE_WORKERS"
MIN_SEEDS_PER_WORKER = 500
"""A worker's start (a forkserver child importing the pipeline: ~0.3 s of CPU) pays off only with this
many files to parse; a batch of 600 files gets one worker, i.e. none."""
_TIMED = ("read", "parse", "normalize")


@dataclass(frozen=True)
class Built:
    """What the CPU half of a chunk hands on: documents, the outcomes it settled, its report counts."""

    docs: list[Document]
    outcomes: list[SeedOutcome]
    warned_docs: int
    repaired_docs: int
    seconds: dict[str, tuple[float, int]]  # stage -> (seconds, calls) spent building, for timing
    cpu: float = 0.0  # CPU seconds the build took in its process
    peak_rss_mb: float = 0.0  # that process's peak resident size so far


class _Pending(Protocol):
    def result(self) -> Built: ...


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def configured_workers(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The worker count ``SEEDNEWS_PARSE_WORKERS`` asks for ("auto": the usable cores)."""
    raw = (environ.get(ENV_PARSE_WORKERS) or "auto").strip().lower()
    if raw == "auto":
        return usable_cores()
    try:
        n = int(raw)
    except ValueError:
        raise ValueError(f"{ENV_PARSE_WORKERS}={raw!r}: expected 'auto' or a whole number >= 1") from None
    if n < 1:
        raise ValueError(f"{ENV_PARSE_WORKERS}={raw!r}: expected 'auto' or a whole number >= 1")
    return n


def workers_for(n_seeds: int, options: RunOptions, wanted: int | None = None) -> int:
    """Worker processes worth starting for ``n_seeds`` files: at most ``wanted`` (default: the
    configured count), one per ``MIN_SEEDS_PER_WORKER`` files, and 1 (none) for an object store."""
    if options.s3_client is not None or is_object_url(options.seed_dir):
        return 1
    wanted = configured_workers() if wanted is None else wanted
    return max(1, min(wanted, math.ceil(n_seeds / MIN_SEEDS_PER_WORKER) if n_seeds else 1))


def build_part(seeds: list[SeedFile], options: RunOptions) -> Built:
    """Read, parse and normalize ``seeds`` (in a worker process, or in this one)."""
    from pipeline.run.flow import build_documents

    def timed() -> dict[str, tuple[float, int]]:
        return {k: (v["seconds"], int(v["calls"])) for k, v in timing.snapshot().items() if k in _TIMED}

    before, cpu0 = timed(), time.process_time()
    report = RunReport(dry_run=options.dry_run)
    docs, outcomes = build_documents(seeds, options, report)
    seconds = {
        k: (sec - before.get(k, (0.0, 0))[0], calls - before.get(k, (0.0, 0))[1]) for k, (sec, calls) in timed().items()
    }
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return Built(docs, outcomes, report.warned_docs, report.repaired_docs, seconds, time.process_time() - cpu0, peak)


class _Lazy:
    """A chunk built in this process when its result is asked for (so building overlaps the write
    in flight exactly as with workers, and nothing is built ahead that an error would waste)."""

    def __init__(self, fn: Callable[[], Built]) -> None:
        self._fn = fn

    def result(self) -> Built:
        return self._fn()  # build_documents has timed its stages in this process already


_worker_stats = {"cpu": 0.0, "peak_rss_mb": 0.0, "chunks": 0}


def worker_stats() -> dict[str, float]:
    """CPU seconds spent building chunks in worker processes (their start-up not included), the
    largest worker's peak RSS, and the chunks they built, since this process started. For
    benchmarks: the workers are the forkserver's children, so ``RUSAGE_CHILDREN`` never sees them."""
    return dict(_worker_stats)


def _lost(exc: BrokenProcessPool) -> ParseWorkerLost:
    return ParseWorkerLost(
        f"a parse worker process died while building a chunk ({exc}); the batch stopped before recording "
        "that chunk and can be run again"
    )


class _Remote:
    def __init__(self, future: Future[Built]) -> None:
        self._future = future

    def result(self) -> Built:
        try:
            built = self._future.result()
        except BrokenProcessPool as exc:
            raise _lost(exc) from None
        for name, (seconds, calls) in built.seconds.items():
            timing.add(name, seconds, calls)  # CPU seconds summed over workers: more than the wall
        _worker_stats["cpu"] += built.cpu
        _worker_stats["peak_rss_mb"] = max(_worker_stats["peak_rss_mb"], built.peak_rss_mb)
        _worker_stats["chunks"] += 1
        return built


class ChunkBuilder:
    """Builds chunks in ``workers`` processes (or in this one when ``workers`` is 1), in order.

    ``submit(seeds)`` returns something with ``result() -> Built``; ``ahead`` is how many chunks to
    keep submitted (so every worker has one while the parent writes)."""

    def __init__(self, options: RunOptions, workers: int = 1) -> None:
        self.options = replace(options, s3_client=None) if workers > 1 else options
        self.workers = workers
        self.ahead = workers if workers > 1 else 1
        self._pool: ProcessPoolExecutor | None = None
        if workers > 1:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["pipeline.run.parallel", "pipeline.run.flow"])
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)

    def submit(self, seeds: list[SeedFile]) -> _Pending:
        if self._pool is None:
            return _Lazy(lambda: build_part(seeds, self.options))
        try:
            return _Remote(self._pool.submit(build_part, seeds, self.options))
        except BrokenProcessPool as exc:  # a worker died between two chunks
            raise _lost(exc) from None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> ChunkBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
