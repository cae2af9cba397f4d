"""Light per-stage wall-clock counters for benchmarks (``bench/bench_scale.py``).

Kept out of ``RunReport`` on purpose: they are measurements of one process, not facts about the run.
A module-level collector, so the stages need no extra parameter; the cost is two ``perf_counter``
calls per timed step (well under a microsecond), so it is always on. Stages of one batch overlap (the
writer thread's ``bulk`` and ``ledger`` run while the next chunk is parsed), so their sum can exceed the wall.

    with timing.stage("parse"):
        ...
    timing.snapshot()  # {"parse": {"seconds": 1.23, "calls": 1000}, ...}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from threading import Lock
from time import perf_counter

_seconds: dict[str, float] = {}
_calls: dict[str, int] = {}
_lock = Lock()  # a batch's writer thread times bulk and ledger while the main thread times parse


def add(name: str, seconds: float, calls: int = 1) -> None:
    with _lock:
        _seconds[name] = _seconds.get(name, 0.0) + seconds
        _calls[name] = _calls.get(name, 0) + calls


@contextmanager
def stage(name: str) -> Iterator[None]:
    t0 = perf_counter()
    try:
        yield
    finally:
        add(name, perf_counter() - t0)


def snapshot() -> dict[str, dict[str, float]]:
    return {k: {"seconds": round(v, 4), "calls": _calls[k]} for k, v in _seconds.items()}


def reset() -> None:
    _seconds.clear()
    _calls.clear()
