"""Process-level parallelism for the CPU half of a chunk: read -> parse -> normalize.

Parsing and normalizing are pure Python and hold the GIL, so threads cannot share them out; worker
processes can. A :class:`ChunkBuilder` hands whole chunks to a pool of worker processes (a chunk is
the unit the flow writes and records together) and gives them back in order; the parent keeps what
needs the run's clients (image checks, bulk, ledger). It is sized to the usable cores; on a 2-core
machine that also runs the node, expect well under 2x (docs/benchmarks.md).

When the pool is not used (one worker, or a small batch) chunks are built in this process, lazily,
when the flow asks for each.

Object-store seeds are read here, not in the workers (their client cannot be handed to a process, and a
GET is mostly waiting): a chunk's objects are fetched by ``Tuning.read_threads`` threads
(``seedpath.fetch_all``), in order, and the worker gets the seeds with their bytes. Threads for I/O,
processes for parsing.

The pool's size is the run's ``Tuning.parse_workers`` (``SEEDNEWS_PARSE_WORKERS``: "auto", the default,
for the usable cores, or a number; 1 = no worker processes), read at the edge (``pipeline.run.tuning``).

Each worker is ``python -m pipeline.run.parallel``: a fresh interpreter (never a fork of a parent that
has a writer thread and open client connections) reading chunks as length-prefixed pickles on its stdin
and writing results the same way on its stdout; its stderr is the parent's. Not ``multiprocessing`` /
``ProcessPoolExecutor``, on purpose: their ``spawn`` and ``forkserver`` workers import the caller's
``__main__`` again (an unguarded script calling ``run()`` would run itself once per worker), and their
``fork`` copies a threaded parent (an Airflow task process), whose held locks can hang the child. A
worker gets one chunk at a time, so neither side can block the other on a full pipe. A worker that
dies (killed, out of memory) fails the batch with :class:`ParseWorkerLost`: the batch is retried as a
whole, as after any crash (the ledger holds only chunks that landed); a worker exits when its stdin
closes, i.e. when the parent is gone.
"""

from __future__ import annotations

import math
import os
import pickle
import resource
import struct
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from pipeline.errors import ParseWorkerLost
from pipeline.run import heap, seedpath, timing
from pipeline.run.options import RunOptions
from pipeline.run.report import RunReport
from pipeline.sources import Sources, is_object_url
from pipeline.types import Document, SeedFile, SeedOutcome

MIN_SEEDS_PER_WORKER = 500
"""A worker's start (a fresh interpreter importing the pipeline: ~0.3 s of CPU) pays off only with this
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


class Pending(Protocol):
    """A chunk being built: ``result()`` waits for it."""

    def result(self) -> Built: ...


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_for(n_seeds: int, options: RunOptions, wanted: int | None = None) -> int:
    """Worker processes worth starting for ``n_seeds`` files: at most ``wanted`` (default: the options'
    ``tuning.parse_workers``, or the usable cores), one per ``MIN_SEEDS_PER_WORKER`` files."""
    if wanted is None:
        wanted = options.tuning.parse_workers or usable_cores()
    return max(1, min(wanted, math.ceil(n_seeds / MIN_SEEDS_PER_WORKER) if n_seeds else 1))


def build_part(
    seeds: list[SeedFile],
    options: RunOptions,
    s3_client: object | None = None,
    fetched: Sequence[seedpath.Fetched] | None = None,
) -> Built:
    """Read, parse and normalize ``seeds`` (in a worker process, or in this one); ``s3_client`` reads
    ``s3://`` seeds (None: one from the environment); ``fetched``: their reads, done already."""

    def timed() -> dict[str, tuple[float, int]]:
        return {k: (v["seconds"], int(v["calls"])) for k, v in timing.snapshot().items() if k in _TIMED}

    before, cpu0 = timed(), time.process_time()
    report = RunReport(dry_run=options.dry_run)
    docs, outcomes = seedpath.build_documents(seeds, options, report, s3_client, fetched)
    seconds = {
        k: (sec - before.get(k, (0.0, 0))[0], calls - before.get(k, (0.0, 0))[1]) for k, (sec, calls) in timed().items()
    }
    return Built(
        docs, outcomes, report.warned_docs, report.repaired_docs, seconds, time.process_time() - cpu0, _peak_rss_mb()
    )


def _peak_rss_mb() -> float:
    """This process's peak resident size: ``VmHWM`` where Linux has it (``ru_maxrss`` keeps the high-water
    mark of the process a worker was forked from, across the exec), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


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
    largest worker's peak RSS, and the chunks they built, since this process started (benchmarks)."""
    return dict(_worker_stats)


_HEADER = struct.Struct("<Q")  # the length of the pickle that follows
WORKER_STOP_SECONDS = 10.0  # a worker that has not exited this long after its stdin closed is killed


def _read_frame(stream: IO[bytes]) -> bytes | None:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (n,) = _HEADER.unpack(header)
    data = stream.read(n)
    return data if len(data) == n else None


def _write_frame(stream: IO[bytes], payload: object) -> None:
    data = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


class _Worker:
    """One worker process, one chunk at a time."""

    def __init__(self) -> None:
        here = str(Path(__file__).resolve().parents[2])  # the folder holding this pipeline package: the same code
        path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.run.parallel"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path},
            close_fds=True,
        )
        self.busy = False  # a chunk was sent and its result not yet taken

    def _lost(self, doing: str) -> ParseWorkerLost:
        code = self.proc.poll()
        if code is None:
            self.proc.kill()
            code = self.proc.wait()
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        return ParseWorkerLost(
            f"parse worker process {self.proc.pid} died ({how}) while {doing}; the batch stopped before "
            "recording that chunk and can be run again"
        )

    def send(self, seeds: list[SeedFile], options: RunOptions, fetched: list[seedpath.Fetched] | None) -> None:
        try:
            _write_frame(self.proc.stdin, (seeds, options, fetched))  # type: ignore[arg-type]
        except OSError:  # BrokenPipeError: it is gone
            raise self._lost("taking a chunk") from None
        self.busy = True

    def receive(self) -> Built:
        data = _read_frame(self.proc.stdout)  # type: ignore[arg-type]
        self.busy = False
        if data is None:
            raise self._lost("building a chunk")
        kind, value, remote = pickle.loads(data)
        if kind == "error":  # our own bug, or an infrastructure error: the run fails, as it would here
            value.add_note(f"in parse worker process {self.proc.pid}:\n{remote}")
            raise value
        return value

    def close(self) -> None:
        if self.busy and self.proc.poll() is None:
            # the batch stopped with a chunk still out (an error elsewhere): nobody will read its result,
            # and the worker could block writing it into a full pipe
            self.proc.kill()
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()  # the worker's signal to exit
            except OSError:
                pass
        try:
            self.proc.wait(timeout=WORKER_STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class _Remote:
    def __init__(self, worker: _Worker) -> None:
        self._worker = worker

    def result(self) -> Built:
        built = self._worker.receive()
        for name, (seconds, calls) in built.seconds.items():
            timing.add(name, seconds, calls)  # seconds summed over workers: more than the wall
        _worker_stats["cpu"] += built.cpu
        _worker_stats["peak_rss_mb"] = max(_worker_stats["peak_rss_mb"], built.peak_rss_mb)
        _worker_stats["chunks"] += 1
        return built


class ChunkBuilder:
    """Builds chunks in ``workers`` processes (or in this one when ``workers`` is 1), in order.

    ``submit(seeds)`` returns something with ``result() -> Built``; results must be taken in the order
    chunks were submitted, and at most ``ahead`` chunks may be waiting (one per worker, round robin:
    a worker gets its next chunk only after its last result was taken). ``options`` are pickled to the
    workers as they are; ``s3_client`` stays in this process: object-store chunks are fetched here, by
    ``options.tuning.read_threads`` threads, before they are built (here or in a worker)."""

    def __init__(self, options: RunOptions, workers: int = 1, s3_client: object | None = None) -> None:
        self.options = options
        self.s3_client = s3_client
        self.workers = workers
        self.ahead = workers if workers > 1 else 1
        self._pool: list[_Worker] = []
        self._next = 0
        self._sources = Sources(s3_client)
        self._readers: ThreadPoolExecutor | None = None
        try:
            self._pool = [_Worker() for _ in range(workers)] if workers > 1 else []
        except BaseException:
            self.close()
            raise

    def fetch(self, seeds: list[SeedFile]) -> list[seedpath.Fetched] | None:
        """The reads of an object-store chunk, done now by the read threads; ``None`` for a folder's
        files (read where they are parsed)."""
        if not seeds or not is_object_url(seeds[0].root):
            return None
        if self._readers is None:
            threads = self.options.tuning.read_threads
            self._readers = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="seednews-read")
        return seedpath.fetch_all(seeds, self._sources, self.options.parse.max_bytes, self._readers)

    def submit(self, seeds: list[SeedFile]) -> Pending:
        if not self._pool:
            return _Lazy(lambda: build_part(seeds, self.options, self.s3_client, self.fetch(seeds)))
        worker = self._pool[self._next % len(self._pool)]
        self._next += 1
        worker.send(seeds, self.options, self.fetch(seeds))
        return _Remote(worker)

    def close(self) -> None:
        for worker in self._pool:
            worker.close()
        self._pool = []
        if self._readers is not None:
            self._readers.shutdown(cancel_futures=True)
            self._readers = None

    def __enter__(self) -> ChunkBuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> int:
    """A worker's loop: build each chunk that arrives, until stdin closes (the parent is done or gone).
    The cyclic collector is paused, with one young pass per chunk (``pipeline.run.heap``)."""
    with heap.paused():
        while (data := _read_frame(stdin)) is not None:
            seeds, options, fetched = pickle.loads(data)
            try:
                _write_frame(stdout, ("ok", build_part(seeds, options, None, fetched), None))
            except Exception as exc:  # noqa: BLE001 - handed to the parent, which raises it
                remote = traceback.format_exc()
                try:
                    pickle.dumps(exc)
                except Exception:  # noqa: BLE001 - an exception that does not pickle travels as text
                    exc = RuntimeError(f"{type(exc).__name__}: {exc}")
                _write_frame(stdout, ("error", exc, remote))
            heap.collect_young()
    return 0


if __name__ == "__main__":
    # Run as ``python -m pipeline.run.parallel``, this file is ``__main__``; the results must pickle as
    # ``pipeline.run.parallel.Built``, so the loop runs in the module proper. The protocol owns fd 1:
    # anything else printed goes to stderr.
    from pipeline.run import parallel as _module

    _protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.exit(_module.serve(sys.stdin.buffer, _protocol))
