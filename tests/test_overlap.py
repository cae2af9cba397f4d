"""A batch's chunks overlap: chunk k is written (bulk, then ledger) by a writer thread while the next
chunks are built, in this process or in parse worker processes (``pipeline.run.parallel``). Against
the REAL test node: the overlapped and parallel runs leave exactly what the sequential one leaves, an
error in a write stops the batch at the next chunk boundary with the ledger exact up to the last chunk
that landed, a parse worker killed mid-run fails the run without a ledger entry ahead of the index,
and re-runs converge.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import pytest

from pipeline.run import parallel
from pipeline.run import writes as seam
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.run.tuning import Tuning
from pipeline.stores import indices
from pipeline.stores.ledger import Ledger
from tests import faultkit as fk
from tests.conftest import ROOT

QUIET = lambda _msg: None  # noqa: E731


def ledger_states(client, settings, root: str) -> dict[str, tuple[str, str | None]]:
    ledger = Ledger(client, settings.ledger_index)
    ledger.refresh()
    hits = client.search(
        index=settings.ledger_index,
        body={"size": 10_000, "query": {"term": {"root": root}}, "_source": ["path", "state", "doc_id"]},
    )["hits"]["hits"]
    return {h["_source"]["path"]: (h["_source"]["state"], h["_source"].get("doc_id")) for h in hits}


def index_sources(client, alias: str) -> dict[str, str]:
    indices.refresh(client, alias)
    hits = client.search(index=alias, body={"size": 10_000, "query": {"match_all": {}}})["hits"]["hits"]
    return {h["_id"]: json.dumps({**h["_source"], "indexed_at": None}, sort_keys=True) for h in hits}


def mixed_folder(folder, n: int = 230):
    """``n`` valid seeds, a broken one every 37 files, and copies of one article in chunks 1 and 4."""
    ids = fk.write_seeds(folder, n, tag="overlap")
    for i in range(0, n, 37):
        (folder / f"s{i:05d}.txt").write_text('---\ntitle: "unterminated\n---\n', encoding="utf-8")
    (folder / "s00001.txt").write_text(fk.SEED.format(i=999, tag="dup"), encoding="utf-8")
    (folder / "s00201.txt").write_text(fk.SEED.format(i=999, tag="dup"), encoding="utf-8")
    return ids


MODES = {"sequential": (False, 1), "overlapped": (True, 1), "two-workers": (True, 2)}


@pytest.mark.parametrize("rebuild", [False, True], ids=["incremental", "rebuild"])
def test_overlapped_and_parallel_chunks_leave_what_sequential_chunks_leave(
    settings, client, tmp_path, monkeypatch, request, rebuild
):
    monkeypatch.setattr(parallel, "MIN_SEEDS_PER_WORKER", 10)
    seen = {}
    for mode, (overlap, workers) in MODES.items():
        folder = tmp_path / f"seeds-{mode}"
        mixed_folder(folder)
        # 230 files: five chunks in one batch
        tuning = Tuning(chunk_seeds=50, overlap_writes=overlap, parse_workers=workers)
        s = replace(settings, index_base=f"{settings.index_base}-{mode}")
        request.addfinalizer(lambda s=s: client.indices.delete_index_template(name=s.index_base, ignore=[404]))
        messages: list[str] = []
        report = run(
            s,
            RunOptions(seed_dir=str(folder), check_images=False, full_rebuild=rebuild, max_batches=1, tuning=tuning),
            emit=messages.append,
        )
        assert [m for m in messages if m.startswith("batch progress")] == [
            f"batch progress: {k}/230 files" for k in (50, 100, 150, 200, 230)
        ]
        assert ("parsing in 2 worker processes (SEEDNEWS_PARSE_WORKERS to change)" in messages) == (workers == 2)
        root = str(folder.resolve())
        seen[mode] = (report.counts, ledger_states(client, s, root), index_sources(client, s.alias))
    base = seen["sequential"]
    assert base[0] == {"indexed": 222, "quarantined": 7, "duplicate": 1}
    for mode in ("overlapped", "two-workers"):
        assert seen[mode][0] == base[0], mode
        assert seen[mode][1] == base[1], mode
        assert seen[mode][2] == base[2], mode
    assert base[1]["s00001.txt"][0] == "duplicate"  # the copy ingested last (chunk 5) wins
    assert base[1]["s00201.txt"][0] == "indexed"


def test_a_failed_write_stops_the_batch_at_the_next_chunk_and_the_rerun_converges(
    settings, client, tmp_path, monkeypatch
):
    tuning = Tuning(chunk_seeds=50, overlap_writes=True)
    folder = tmp_path / "seeds"
    ids = fk.write_seeds(folder, 200, tag="stop")
    real_index, real_build = seam.index_documents, parallel.build_part
    writes: list[str] = []
    builds: list[int] = []

    def failing_index(client_, target, dl_index, docs, **kw):
        writes.append(threading.current_thread().name)
        if len(writes) == 2:
            raise RuntimeError("node went away (injected)")
        return real_index(client_, target, dl_index, docs, **kw)

    def counting_build(seeds, options, *rest):
        builds.append(len(seeds))
        return real_build(seeds, options, *rest)

    monkeypatch.setattr(seam, "index_documents", failing_index)
    monkeypatch.setattr(parallel, "build_part", counting_build)
    options = RunOptions(seed_dir=str(folder), check_images=False, max_batches=1, tuning=tuning)
    with pytest.raises(RuntimeError, match="injected"):
        run(settings, options, emit=QUIET)
    assert all(name.startswith("seednews-writer") for name in writes)  # the writes ran in the writer thread
    assert len(writes) == 2  # chunk 3 was built (overlapping chunk 2's write) but never written
    assert builds == [50, 50, 50]
    root = str(folder.resolve())
    states = ledger_states(client, settings, root)
    assert sorted(states) == [f"s{i:05d}.txt" for i in range(50)]  # chunk 1 only, and all of it
    assert {st for st, _ in states.values()} == {"indexed"}
    indices.refresh(client, settings.alias)
    assert indices.count(client, settings.alias) == 50

    monkeypatch.setattr(seam, "index_documents", real_index)
    report = run(settings, options, emit=QUIET)
    assert report.counts == {"unchanged": 50, "indexed": 150}
    states = ledger_states(client, settings, root)
    assert len(states) == 200 and {st for st, _ in states.values()} == {"indexed"}
    assert {doc for _, doc in states.values()} == set(ids)


def _parse_workers() -> list[int]:
    """Pids of this process's parse workers (``python -m pipeline.run.parallel`` children)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if ppid == me and b"pipeline.run.parallel" in argv:
                found.append(int(entry))
    return found


def test_a_parse_worker_killed_mid_run_fails_the_run_and_the_rerun_converges(settings, client, tmp_path, monkeypatch):
    monkeypatch.setattr(parallel, "MIN_SEEDS_PER_WORKER", 10)
    folder = tmp_path / "seeds"
    ids = fk.write_seeds(folder, 3000, tag="workerkill")
    tuning = Tuning(chunk_seeds=100, parse_workers=2)
    options = RunOptions(seed_dir=str(folder), check_images=False, max_batches=1, tuning=tuning)
    written: list[int] = []
    real_index = seam.index_documents
    killed: list[int] = []

    def index_then_kill(client_, target, dl_index, docs, **kw):
        out = real_index(client_, target, dl_index, docs, **kw)
        written.append(len(docs))
        if len(written) == 3:  # three chunks landed; the workers are busy with the next ones
            victims = _parse_workers()
            assert len(victims) == 2, victims
            os.kill(victims[0], signal.SIGKILL)
            killed.append(victims[0])
        return out

    monkeypatch.setattr(seam, "index_documents", index_then_kill)
    with pytest.raises(parallel.ParseWorkerLost, match=r"parse worker process \d+ died \(killed by signal 9\)"):
        run(settings, options, emit=QUIET)
    assert killed and not _parse_workers()  # the other worker was stopped too
    root = str(folder.resolve())
    states = ledger_states(client, settings, root)
    assert {st for st, _ in states.values()} == {"indexed"}
    indices.refresh(client, settings.alias)
    in_index = indices.count(client, settings.alias)
    assert 300 <= len(states) <= in_index < 3000  # never ahead of the index; the run stopped early
    present = {
        d["_id"]
        for d in client.mget(index=settings.alias, body={"ids": [doc for _, doc in states.values()]}, _source=False)[
            "docs"
        ]
        if d.get("found")
    }
    assert present == {doc for _, doc in states.values()}

    monkeypatch.setattr(seam, "index_documents", real_index)
    report = run(settings, options, emit=QUIET)
    assert report.counts == {"unchanged": len(states), "indexed": 3000 - len(states)}
    states = ledger_states(client, settings, root)
    assert len(states) == 3000 and {doc for _, doc in states.values()} == set(ids)
    indices.refresh(client, settings.alias)
    assert indices.count(client, settings.alias) == 3000


UNGUARDED = """
import sys
sys.path.insert(0, {root!r})
from pipeline.config import Settings
from pipeline.run.flow import run
from pipeline.run.options import RunOptions
from pipeline.run.tuning import Tuning
with open({marker!r}, "a") as f:
    f.write("started\\n")
report = run(Settings(opensearch_url={url!r}, index_base={base!r}),
             RunOptions(seed_dir={seeds!r}, check_images=False, max_batches=1, tuning=Tuning(parse_workers=2)),
             emit=print)
print("counts", report.counts)
"""


def test_a_script_without_a_main_guard_runs_once_with_parse_workers(settings, client, tmp_path):
    """Workers are fresh ``python -m pipeline.run.parallel`` processes: they never import the caller's
    ``__main__`` (multiprocessing's spawn and forkserver do, and would run this script again per worker)."""
    fk.write_seeds(tmp_path / "seeds", 1100, tag="unguarded")
    marker, script = tmp_path / "marker", tmp_path / "unguarded.py"
    script.write_text(
        UNGUARDED.format(
            root=str(ROOT),
            marker=str(marker),
            url=settings.opensearch_url,
            base=settings.index_base,
            seeds=str(tmp_path / "seeds"),
        )
    )
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "parsing in 2 worker processes" in proc.stdout
    assert "counts {'indexed': 1100}" in proc.stdout
    assert marker.read_text() == "started\n"


def test_a_worker_hands_its_error_back_and_keeps_serving():
    """The worker loop on in-memory streams: a chunk that raises comes back as that exception with the
    worker's traceback; the next chunk is still built."""
    request = io.BytesIO()
    parallel._write_frame(request, ([], None, None))  # no options: build_part fails on them
    parallel._write_frame(request, ([], RunOptions(seed_dir="/nonexistent", check_images=False), None))
    request.seek(0)
    answer = io.BytesIO()
    assert parallel.serve(request, answer) == 0
    answer.seek(0)
    kind, exc, remote = pickle.loads(parallel._read_frame(answer))
    assert kind == "error" and isinstance(exc, AttributeError) and "build_part" in remote
    kind, built, _ = pickle.loads(parallel._read_frame(answer))
    assert kind == "ok" and built.docs == [] and built.outcomes == []
    assert parallel._read_frame(answer) is None


def test_a_failed_write_with_chunks_out_at_the_workers_stops_them_at_once(settings, client, tmp_path, monkeypatch):
    """The batch stops on a write error while both parse workers still build chunks nobody will read:
    they are killed, not waited for (one blocked writing a result into a full pipe would hold the run
    for WORKER_STOP_SECONDS), and none is left behind."""
    tuning = Tuning(chunk_seeds=400, parse_workers=2)  # a chunk's result of ~200 KB: more than a pipe holds
    monkeypatch.setattr(parallel, "MIN_SEEDS_PER_WORKER", 10)
    monkeypatch.setattr(parallel, "WORKER_STOP_SECONDS", 60.0)  # a wait would show
    folder = tmp_path / "seeds"
    fk.write_seeds(folder, 4000, tag="stopworkers")
    real_index = seam.index_documents
    calls: list[int] = []

    def failing_index(client_, target, dl_index, docs, **kw):
        calls.append(len(docs))
        if len(calls) == 3:
            raise RuntimeError("node went away (injected)")
        return real_index(client_, target, dl_index, docs, **kw)

    monkeypatch.setattr(seam, "index_documents", failing_index)
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="injected"):
        run(settings, RunOptions(seed_dir=str(folder), check_images=False, max_batches=1, tuning=tuning), emit=QUIET)
    assert time.monotonic() - started < 30  # far below the 60 s a worker would have been waited for
    assert not _parse_workers()
    states = ledger_states(client, settings, str(folder.resolve()))
    assert len(states) == 800 and {st for st, _ in states.values()} == {"indexed"}  # chunks 1 and 2 landed
