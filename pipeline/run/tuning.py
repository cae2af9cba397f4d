"""How hard a run works (``Tuning``): chunk size, overlapped writes, parse workers and the bulk requests' shape.

One frozen value, a field of ``RunOptions`` (``RunOptions.tuning``), read once at the edge (the CLI, the
DAG's options builder, the benchmarks) by ``Tuning.from_env``; the flow, the parse workers and the bulk
writes take every value from the options they are given, never from the environment or a module global.
None of these changes what a run writes, only how fast it gets there and how much it holds at once.

    SEEDNEWS_CHUNK_SEEDS     files read, indexed and recorded in the ledger together (default 1000)
    SEEDNEWS_OVERLAP_WRITES  write a chunk while the next is parsed (default on; "0" turns it off)
    SEEDNEWS_PARSE_WORKERS   "auto" (default: the usable cores), or a number; 1 = no worker processes
    SEEDNEWS_READ_THREADS    object-store seeds read (GET) at once by the run's process (default 16)

A bad value is a ``ConfigError`` naming the variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.config import parse_bool
from pipeline.errors import ConfigError
from pipeline.stores.bulk import BULK_CHUNK, BULK_MAX_BYTES

ENV_CHUNK_SEEDS = "SEEDNEWS_CHUNK_SEEDS"
ENV_OVERLAP_WRITES = "SEEDNEWS_OVERLAP_WRITES"
ENV_PARSE_WORKERS = "SEEDNEWS_PARSE_WORKERS"
ENV_READ_THREADS = "SEEDNEWS_READ_THREADS"
AUTO_WORKERS = "auto"

DEFAULT_CHUNK_SEEDS = 1000
DEFAULT_OVERLAP_WRITES = True
DEFAULT_PARSE_WORKERS: int | None = None  # the usable cores (``pipeline.run.parallel.usable_cores``)
DEFAULT_READ_THREADS = 16  # a client from pipeline.sources.s3.make_client keeps connections for 32
DEFAULT_FAST_JSON = True
DEFAULT_PAUSE_REFRESH = True


@dataclass(frozen=True)
class Tuning:
    """The run's performance knobs; plain values, so options holding them pickle to parse workers as they are."""

    chunk_seeds: int = DEFAULT_CHUNK_SEEDS
    """Files read, checked, indexed and recorded in the ledger together inside a batch: bounds a task's memory,
    and is the work redone when a worker dies mid-batch (docs/deploy-at-scale.md)."""
    overlap_writes: bool = DEFAULT_OVERLAP_WRITES
    """Write chunk k (bulk, then ledger) in a writer thread while chunk k+1 is parsed; False: one after the other."""
    parse_workers: int | None = DEFAULT_PARSE_WORKERS
    """Worker processes that read, parse and normalize chunks (``pipeline.run.parallel``); None: the usable
    cores; 1: none, chunks are built in the run's own process."""
    read_threads: int = DEFAULT_READ_THREADS
    """Threads that GET a chunk's object-store seeds at once, in the run's process, before the chunk is parsed
    (``pipeline.run.seedpath.fetch_all``): a GET is mostly waiting for the store. A client given to the run
    should keep as many connections (botocore's ``max_pool_connections``). A folder's files are read where
    they are parsed."""
    fast_json: bool = DEFAULT_FAST_JSON
    """Bulk bodies written and responses decoded by orjson (when installed); False: the client's own json."""
    bulk_chunk: int = BULK_CHUNK
    """Documents per bulk request at most; in practice ``bulk_max_bytes`` decides."""
    bulk_max_bytes: int = BULK_MAX_BYTES
    """Bytes per bulk request at most: ~5 MB indexes best on the benchmarked node class (docs/benchmarks.md)."""
    pause_refresh: bool = DEFAULT_PAUSE_REFRESH
    """A full rebuild's new index is not refreshed while it is written (resumed before validation)."""

    def __post_init__(self) -> None:
        for name in ("chunk_seeds", "read_threads", "bulk_chunk", "bulk_max_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"Tuning.{name}: {getattr(self, name)!r} must be at least 1")
        if self.parse_workers is not None and self.parse_workers < 1:
            raise ConfigError(f"Tuning.parse_workers: {self.parse_workers!r} must be at least 1 (None: the cores)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Tuning:
        """The tuning the ``SEEDNEWS_*`` variables above ask for; an unset or empty variable keeps its default."""
        overlap = (environ.get(ENV_OVERLAP_WRITES) or "").strip()
        return cls(
            chunk_seeds=_whole(environ, ENV_CHUNK_SEEDS, DEFAULT_CHUNK_SEEDS),
            overlap_writes=parse_bool(overlap or None, name=ENV_OVERLAP_WRITES, default=DEFAULT_OVERLAP_WRITES),
            parse_workers=_workers(environ.get(ENV_PARSE_WORKERS)),
            read_threads=_whole(environ, ENV_READ_THREADS, DEFAULT_READ_THREADS),
        )


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    """A whole number of at least 1 from ``environ[name]``; ``default`` when unset or empty."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= 1") from None
    if n < 1:
        raise ConfigError(f"{name}={raw!r}: expected a whole number >= 1")
    return n


def _workers(value: str | None) -> int | None:
    """``SEEDNEWS_PARSE_WORKERS`` as a count: None for "auto" (or unset), else a whole number >= 1."""
    raw = (value or AUTO_WORKERS).strip().lower()
    if raw == AUTO_WORKERS:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"{ENV_PARSE_WORKERS}={raw!r}: expected 'auto' or a whole number >= 1")
    return n


DEFAULT_TUNING = Tuning()
