"""What a deployed path costs the machine, for ``bench/bench_deployed.py``: the CPU seconds and peak RSS of a whole
process tree (the CLI with its parse workers, the afternoon script) or of a running stack (Airflow's services and
task processes, Celery workers, their PostgreSQL and Redis), the machine it runs on, and the node's indexing ops.

A process tree runs under :data:`TREE_WRAPPER`, a child subreaper (``PR_SET_CHILD_SUBREAPER``): descendants that
outlive their parent (a parse worker's forkserver) are reaped by it, so ``RUSAGE_CHILDREN`` holds the CPU of every
process of the run. Peak RSS is the largest sum of the tree's proportional set sizes (PSS: a page shared by k
processes counts 1/k in each) seen every 0.25 s; a stack's is sampled the same way every 0.5 s.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from pathlib import Path

from bench_celery import _cpu_of_tree, _pids_by_session

SAMPLE_S = 0.25
STACK_SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")

TREE_WRAPPER = r"""
import ctypes, json, os, resource, subprocess, sys, threading, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
def tree_rss():
    kids, rss = {}, {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{d}/smaps_rollup") as f:
                    rss[int(d)] = next(int(x.split()[1]) for x in f if x.startswith("Pss:")) * 1024
            except (OSError, ValueError, IndexError, StopIteration):
                continue
            kids.setdefault(ppid, []).append(int(d))
    total, todo = 0, list(kids.get(os.getpid(), []))
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo += kids.get(p, [])
    return total
peak, stop = [0], threading.Event()
def watch():
    while not stop.wait(0.25):
        peak[0] = max(peak[0], tree_rss())
threading.Thread(target=watch, daemon=True).start()
with open(sys.argv[2], "wb") as out:
    t0 = time.perf_counter()
    rc = subprocess.call(sys.argv[3:], stdout=out)
    wall = time.perf_counter() - t0
stop.set()
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    json.dump({"wall": wall, "rc": rc, "cpu": r.ru_utime + r.ru_stime, "rss_mb": peak[0] / 2**20}, f)
"""


def pss_kb(pid: int) -> int:
    """The proportional set size of ``pid`` in KB (a page shared by k processes counts 1/k), 0 if gone."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    return next((int(x.split()[1]) for x in text.splitlines() if x.startswith("Pss:")), 0)


def rss_of(pids: set[int]) -> float:
    """MB of memory ``pids`` hold (their PSS: shared pages split between the processes that share them)."""
    return sum(pss_kb(p) for p in pids) / 1024


def _descendants(root: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int(d.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError, StopIteration):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = {root}, [root]
    while todo:
        for kid in kids.get(todo.pop(), []):
            out.add(kid)
            todo.append(kid)
    return out


class StackProbe:
    """Every process of a running ``./scripts/stack`` (its home ``home``): the Airflow services' and Celery
    workers' sessions (task processes included), the PostgreSQL server with its backends, Redis."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _pid(self, name: str) -> int:
        try:
            return int((self.home / "run" / f"{name}.pid").read_text())
        except (OSError, ValueError):
            return 0

    def parts(self) -> dict[str, set[int]]:
        """The stack's processes by part: each Airflow service's session (the LocalExecutor's task processes are
        in the scheduler's), each Celery worker's (its task processes), PostgreSQL, Redis."""
        state = json.loads((self.home / "stack.json").read_text())
        names = [*STACK_SERVICES, *(f"celery-worker-{i}" for i in range(1, int(state.get("workers") or 0) + 1))]
        out = {name: set(_pids_by_session(pid)) for name in names if (pid := self._pid(name))}
        try:
            postmaster = int((Path(state["pg_data"]) / "postmaster.pid").read_text().split()[0])
            out["postgresql"] = _descendants(postmaster)
        except (OSError, KeyError, ValueError, IndexError):
            pass
        if self._pid("redis"):
            out["redis"] = {self._pid("redis")}
        return out

    def pids(self) -> set[int]:
        return set().union(*self.parts().values())

    def cpu_parts(self) -> dict[str, float]:
        """CPU seconds so far of each part (live processes and the children they reaped)."""
        return {name: sum(_cpu_of_tree(p) for p in pids) for name, pids in self.parts().items()}

    def __enter__(self) -> StackProbe:
        def watch() -> None:
            while not self._stop.wait(SAMPLE_S * 2):
                self.peak_mb = max(self.peak_mb, rss_of(self.pids()))

        self.peak_mb = rss_of(self.pids())
        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def machine() -> dict:
    """Cores, memory, CPU model, Python: what the figures came from."""
    mem_kb = next(int(x.split()[1]) for x in Path("/proc/meminfo").read_text().splitlines() if x.startswith("MemTotal"))
    model = next(
        (
            x.split(":", 1)[1].strip()
            for x in Path("/proc/cpuinfo").read_text().splitlines()
            if x.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "cpu": model,
        "python": platform.python_version(),
    }


def index_ops(client, base: str) -> int:
    """Documents indexed or deleted so far in ``base``'s indices (articles, ledger, dead letters), primaries; the
    DAG's plan hand-off index (``<base>-plan``: batch tickets, stored and deleted every run) is left out."""
    res = client.indices.stats(index=f"{base}*,-{base}-plan*", metric="indexing", expand_wildcards="all")
    p = res.get("_all", {}).get("primaries", {}).get("indexing", {})
    return int(p.get("index_total", 0)) + int(p.get("delete_total", 0))


QUIET_SHARE = 0.03  # of one core: the node counts as idle below this
QUIET_WINDOW_S = 1.1  # _nodes/stats refreshes a process's CPU figure once a second
QUIET_MAX_S = 60.0


def node_quiet(client, cpu) -> float:
    """Wait until the node is idle (its CPU below ``QUIET_SHARE`` of a core over a window: the previous row's
    merges and refreshes done), at most ``QUIET_MAX_S``; the seconds waited. A row's node CPU is read after its
    own trailing work and before the next row starts, so no row pays for another's merges."""
    t0 = time.monotonic()
    last = cpu(client)
    while time.monotonic() - t0 < QUIET_MAX_S:
        time.sleep(QUIET_WINDOW_S)
        now = cpu(client)
        if now - last < QUIET_SHARE * QUIET_WINDOW_S:
            break
        last = now
    return time.monotonic() - t0


def node_work(client, base: str) -> dict[str, float]:
    """Milliseconds the primary shards of ``base``'s indices (the plan hand-off left out) spent, by kind of
    work: indexing, searching (query and fetch; a scroll's time is how long its context stayed open, not
    work), refreshing, merging, flushing; and the number of searches."""
    res = client.indices.stats(
        index=f"{base}*,-{base}-plan*", metric="indexing,search,refresh,merge,flush", expand_wildcards="all"
    )
    p = res.get("_all", {}).get("primaries", {})
    s = p.get("search", {})
    return {
        "index_ms": float(p.get("indexing", {}).get("index_time_in_millis", 0)),
        "delete_ms": float(p.get("indexing", {}).get("delete_time_in_millis", 0)),
        "search_ms": float(s.get("query_time_in_millis", 0) + s.get("fetch_time_in_millis", 0)),
        "searches": float(s.get("query_total", 0)),
        "refresh_ms": float(p.get("refresh", {}).get("total_time_in_millis", 0)),
        "merge_ms": float(p.get("merges", {}).get("total_time_in_millis", 0)),
        "flush_ms": float(p.get("flush", {}).get("total_time_in_millis", 0)),
    }
